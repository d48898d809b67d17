//! Sending: a `send` job is accepted (the acceptance committed) right before `send-sms`, which
//! the stick's [`Calls`](crate::transport::hilink::calls::Calls) make and follow to sent or
//! failed; the outcome is committed here.
//!
//! Must never: call `send-sms` for a job whose acceptance is not committed.

use smshub_protocol::gsm;

use super::Connection;
use crate::registry::Job;
use crate::store::Change;
use crate::transport::radio::session::{SendFailure, commit_outcome};

impl Connection<'_> {
    /// Sends one job of the hub: accept, send, commit the outcome, tell the dispatcher.
    pub(super) async fn send_job(&mut self, job: Job) {
        let device = self.device_id.clone();
        let id = job.id;
        if !self.link.accept(&device, id, "HiLink stick").await {
            return;
        }
        let parts = gsm::segment(&job.text).parts;
        let result = self.send_text(job.recipient.as_str(), &job.text).await;
        let ended = result.as_ref().map(|()| {
            vec![Change::Sent {
                id,
                device: device.clone(),
                parts: parts as u32,
            }]
        });
        commit_outcome(
            &self.link,
            self.status,
            &device,
            id,
            ended,
            "HiLink stick",
            &self.url,
        )
        .await;
    }

    /// Hands one message to the stick and waits until it says sent or failed.
    pub(super) async fn send_text(&mut self, to: &str, text: &str) -> Result<(), SendFailure> {
        let registered = self.status.borrow().network.registered;
        self.calls.send_text(to, text, registered).await
    }
}
