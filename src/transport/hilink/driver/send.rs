//! Sending: a `send` job is accepted (the acceptance committed) right before `send-sms`;
//! "busy" answers are tried again on the spot, a full storage prunes the sent box once, then
//! `send-status` is polled until the stick lists the number as sent or failed. How each
//! answer ends the message is decided here.
//!
//! Must never: call `send-sms` for a job whose acceptance is not committed, or call it again
//! once a request may have reached the stick (no answer, an unreadable one, no outcome in
//! time: `outcome_unknown`).

use smshub_protocol::device::ErrorCode;
use smshub_protocol::gsm;
use smshub_protocol::hilink::ErrorClass;
use smshub_protocol::hilink::api::{self, BOX_SENT, SendOutcome, SendStatus, SmsList};
use tokio::time::Instant;

use super::Connection;
use crate::registry::Job;
use crate::store::Change;
use crate::transport::hilink::client::ClientError;
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
        let parts = gsm::segment(text).parts;
        let body = api::send_sms_request(to, text, &local_now());
        let mut busy_left = self.config.busy_retries;
        let mut pruned = !self.config.prune_sent;
        loop {
            match self.post("sms/send-sms", &body).await {
                Ok(reply) if api::is_ok(&reply) => break,
                Ok(reply) => {
                    return Err(SendFailure::permanent(
                        ErrorCode::OutcomeUnknown,
                        format!(
                            "the stick answered send-sms with <{}> instead of OK; it may have \
                             been sent",
                            reply.name
                        ),
                    ));
                }
                Err(ClientError::Api(err)) => match err.class() {
                    ErrorClass::Busy if busy_left > 0 => {
                        busy_left -= 1;
                        tracing::debug!(url = %self.url, code = err.code, "stick busy; trying again");
                        tokio::time::sleep(self.config.busy_wait).await;
                    }
                    ErrorClass::StorageFull if !pruned => {
                        pruned = true;
                        if let Err(err) = self.prune_sent_box().await {
                            tracing::warn!(url = %self.url, error = %err, "could not prune the sent box");
                        }
                    }
                    class => return Err(refusal(&err.to_string(), class)),
                },
                // Nothing reached the stick.
                Err(ClientError::Unreachable(error)) => {
                    return Err(SendFailure::temporary(
                        ErrorCode::GenericFailure,
                        format!("the stick cannot be reached: {error}"),
                    ));
                }
                Err(ClientError::Status(status)) => {
                    return Err(SendFailure::temporary(
                        ErrorCode::GenericFailure,
                        format!("the stick refused send-sms with HTTP {status}"),
                    ));
                }
                // The request went out and no readable answer came: it may have been sent.
                Err(err @ (ClientError::NoAnswer(_) | ClientError::Malformed(_))) => {
                    return Err(SendFailure::permanent(
                        ErrorCode::OutcomeUnknown,
                        format!("{err} after send-sms was written; it may have been sent"),
                    ));
                }
            }
        }
        self.await_sent(to, parts).await
    }

    /// Polls `send-status` until `to` is listed as sent or failed.
    async fn await_sent(&mut self, to: &str, parts: usize) -> Result<(), SendFailure> {
        let deadline = Instant::now() + self.config.send_timeout;
        loop {
            tokio::time::sleep(self.config.send_poll).await;
            match self.get("sms/send-status").await {
                Ok(reply) => match SendStatus::from_element(&reply).outcome(to) {
                    SendOutcome::Sent => return Ok(()),
                    SendOutcome::Failed => return Err(self.failed_by_stick(parts)),
                    SendOutcome::Pending => {}
                },
                Err(err) if self.broken() => {
                    return Err(SendFailure::permanent(
                        ErrorCode::OutcomeUnknown,
                        format!(
                            "the stick took the message, then stopped answering ({err}); it \
                             may have been sent"
                        ),
                    ));
                }
                Err(err) => {
                    tracing::debug!(url = %self.url, error = %err, "send-status failed");
                }
            }
            if Instant::now() >= deadline {
                return Err(SendFailure::permanent(
                    ErrorCode::OutcomeUnknown,
                    format!(
                        "the stick took the message but reported no outcome within {} s; it \
                         may have been sent",
                        self.config.send_timeout.as_secs()
                    ),
                ));
            }
        }
    }

    /// The stick lists the number under `FailPhone`, without a reason. One part: nothing went
    /// out, so another try (here or elsewhere) is safe. Several: some parts may have gone out,
    /// and sending again would repeat them.
    fn failed_by_stick(&self, parts: usize) -> SendFailure {
        if parts > 1 {
            return SendFailure::permanent(
                ErrorCode::GenericFailure,
                format!(
                    "the stick reports the send failed; some of the {parts} parts may have gone \
                     out, so it is not sent again"
                ),
            );
        }
        if !self.status.borrow().network.registered {
            return SendFailure::temporary(
                ErrorCode::NoService,
                "the stick reports the send failed and has no network service".to_string(),
            );
        }
        SendFailure::temporary(
            ErrorCode::GenericFailure,
            "the stick reports the send failed (it gives no reason)".to_string(),
        )
    }

    /// Deletes the copies the stick filed in its sent box.
    pub(super) async fn prune_sent_box(&mut self) -> Result<(), ClientError> {
        let list = SmsList::from_element(
            &self
                .post("sms/sms-list", &api::sms_list_request(1, 50, BOX_SENT))
                .await?,
        );
        for message in list.messages {
            self.post("sms/delete-sms", &api::delete_sms_request(message.index))
                .await?;
        }
        Ok(())
    }
}

/// How a refused `send-sms` ends the message. The stick answered, so nothing went out: every
/// refusal may be retried except those that say the message itself is bad.
fn refusal(error: &str, class: ErrorClass) -> SendFailure {
    match class {
        ErrorClass::InvalidRequest => SendFailure::permanent(
            ErrorCode::Unsupported,
            format!("the stick refused the message: {error}"),
        ),
        ErrorClass::Busy => {
            SendFailure::temporary(ErrorCode::Busy, format!("the stick stayed busy: {error}"))
        }
        ErrorClass::StorageFull => SendFailure::temporary(
            ErrorCode::Busy,
            format!("the stick's message storage is full: {error}"),
        ),
        ErrorClass::LoginRequired | ErrorClass::LoginRefused => SendFailure::temporary(
            ErrorCode::GenericFailure,
            format!("the stick wants a login: {error}"),
        ),
        ErrorClass::Session
        | ErrorClass::UssdPending
        | ErrorClass::UssdFailed
        | ErrorClass::NotSupported
        | ErrorClass::Other => SendFailure::temporary(
            ErrorCode::GenericFailure,
            format!("the stick refused send-sms: {error}"),
        ),
    }
}

/// The stick's clock format, for `send-sms`.
fn local_now() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        for (class, code, temporary) in [
            (ErrorClass::Busy, ErrorCode::Busy, true),
            (ErrorClass::StorageFull, ErrorCode::Busy, true),
            (ErrorClass::InvalidRequest, ErrorCode::Unsupported, false),
            (ErrorClass::NotSupported, ErrorCode::GenericFailure, true),
            (ErrorClass::LoginRequired, ErrorCode::GenericFailure, true),
            (ErrorClass::Other, ErrorCode::GenericFailure, true),
        ] {
            let failure = refusal("error 1", class);
            assert_eq!(
                (failure.code, failure.temporary),
                (code, temporary),
                "{class:?}"
            );
        }
    }
}
