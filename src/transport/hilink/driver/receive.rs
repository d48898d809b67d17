//! Incoming SMS: `check-notifications` says when unread messages wait and the `sms-count`
//! sweep catches the rest (messages already read in the stick's web UI); the stick's
//! [`Calls`](crate::transport::hilink::calls::Calls) read the inbox page by page, and each
//! message is stored here before the stick deletes it. The sweep also prunes the sent box.
//!
//! Must never: delete a message before the hub has committed it, or store one message twice
//! (its external id is the same each time it is taken).

use smshub_protocol::hilink::api::StoredMessage;

use tokio::sync::watch;

use super::Connection;
use crate::domain::{DeviceId, now_millis};
use crate::transport::hilink::calls::{Keep, external_id, stick_time};
use crate::transport::hilink::client::ClientError;
use crate::transport::link::DeviceLink;
use crate::transport::radio::ModemStatus;
use crate::transport::radio::device::{self as radio, Incoming};

impl Connection<'_> {
    /// The cheap poll: `check-notifications` says whether unread messages wait.
    pub(super) async fn poll(&mut self) -> Result<(), ClientError> {
        if self.calls.unread().await? {
            self.sweep().await?;
        }
        Ok(())
    }

    /// `sms-count`: takes what is in the inbox (read or not) and prunes the sent box.
    pub(super) async fn sweep(&mut self) -> Result<(), ClientError> {
        let mut hub = Hub {
            link: &self.link,
            status: self.status,
            device: &self.device_id,
        };
        self.calls.sweep(&mut hub).await
    }

    /// Reads the inbox page by page, storing and deleting each message.
    pub(super) async fn sweep_inbox(&mut self) -> Result<(), ClientError> {
        let mut hub = Hub {
            link: &self.link,
            status: self.status,
            device: &self.device_id,
        };
        self.calls.sweep_inbox(&mut hub).await
    }
}

/// The hub's store, where a swept message is kept.
struct Hub<'a> {
    link: &'a DeviceLink,
    status: &'a watch::Sender<ModemStatus>,
    device: &'a DeviceId,
}

impl Keep for Hub<'_> {
    fn keep(&mut self, message: &StoredMessage) -> impl Future<Output = bool> + Send {
        store(self.link, self.status, self.device, message.clone())
    }
}

/// Stores one received message; whether it is kept (and may be deleted from the stick).
async fn store(
    link: &DeviceLink,
    status: &watch::Sender<ModemStatus>,
    device: &DeviceId,
    message: StoredMessage,
) -> bool {
    let incoming = Incoming {
        external_id: external_id(&message),
        sender: message.phone.clone(),
        text: message.content.clone(),
        received_at: stick_time(&message.date).unwrap_or_else(now_millis),
    };
    match radio::store_incoming(link, status, device, incoming).await {
        Ok(_) => true,
        Err(err) => {
            tracing::error!(error = %err, index = message.index, "could not store an incoming SMS; it stays on the stick");
            false
        }
    }
}
