//! Incoming SMS: `check-notifications` says when unread messages wait and the `sms-count`
//! sweep catches the rest (messages already read in the stick's web UI); the inbox is read
//! page by page, each message stored, then deleted from the stick. The sweep also prunes the
//! sent box.
//!
//! Must never: delete a message before the hub has committed it, or store one message twice
//! (its external id is the same each time it is taken).

use std::collections::HashSet;

use chrono::TimeZone;
use sha2::{Digest, Sha256};
use smshub_protocol::hilink::ErrorClass;
use smshub_protocol::hilink::api::{
    self, BOX_INBOX, Notifications, SmsCount, SmsList, StoredMessage,
};

use super::Connection;
use crate::domain::{Millis, now_millis};
use crate::transport::hilink::client::ClientError;
use crate::transport::radio::device::{self as radio, Incoming};

/// Messages read from a box per `sms-list` call.
const PAGE: u32 = 20;
/// `sms-list` calls per sweep at most.
const MAX_PAGES: u32 = 50;

impl Connection<'_> {
    /// The cheap poll: `check-notifications` says whether unread messages wait.
    pub(super) async fn poll(&mut self) -> Result<(), ClientError> {
        if !self.notifications {
            return Ok(());
        }
        let notes = match self.get("monitoring/check-notifications").await {
            Ok(it) => Notifications::from_element(&it),
            Err(err) if err.class() == Some(ErrorClass::NotSupported) => {
                // Old firmware: the sweep's sms-count does the work, at the sweep's pace.
                self.notifications = false;
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        if notes.unread_message > 0 || notes.sms_storage_full {
            self.sweep().await?;
        }
        Ok(())
    }

    /// `sms-count`: takes what is in the inbox (read or not) and prunes the sent box.
    pub(super) async fn sweep(&mut self) -> Result<(), ClientError> {
        let count = SmsCount::from_element(&self.get("sms/sms-count").await?);
        if count.local_inbox + count.sim_inbox > 0 {
            self.sweep_inbox().await?;
        }
        if self.config.prune_sent && count.local_outbox > 0 {
            self.prune_sent_box().await?;
        }
        Ok(())
    }

    /// Reads the inbox page by page, storing and deleting each message.
    pub(super) async fn sweep_inbox(&mut self) -> Result<(), ClientError> {
        let mut seen = HashSet::new();
        let mut page = 1;
        for _ in 0..MAX_PAGES {
            let list = SmsList::from_element(
                &self
                    .post(
                        "sms/sms-list",
                        &api::sms_list_request(page, PAGE, BOX_INBOX),
                    )
                    .await?,
            );
            let full = list.messages.len() as u32 >= PAGE;
            let fresh: Vec<StoredMessage> = list
                .messages
                .into_iter()
                .filter(|it| seen.insert(it.index))
                .collect();
            if fresh.is_empty() {
                // Everything here was taken but could not be deleted: look further.
                if full {
                    page += 1;
                    continue;
                }
                break;
            }
            for message in fresh {
                self.take(message).await?;
            }
        }
        Ok(())
    }

    /// Stores one received message, then deletes it from the stick.
    async fn take(&mut self, message: StoredMessage) -> Result<(), ClientError> {
        if !message.is_report() {
            let incoming = Incoming {
                external_id: external_id(&message),
                sender: message.phone.clone(),
                text: message.content.clone(),
                received_at: stick_time(&message.date).unwrap_or_else(now_millis),
            };
            if let Err(err) =
                radio::store_incoming(&self.link, self.status, &self.device_id, incoming).await
            {
                tracing::error!(error = %err, index = message.index, "could not store an incoming SMS; it stays on the stick");
                return Ok(());
            }
        }
        match self
            .post("sms/delete-sms", &api::delete_sms_request(message.index))
            .await
        {
            Err(err) if !err.is_silence() => {
                tracing::warn!(url = %self.url, index = message.index, error = %err, "could not delete a stored message");
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }
}

/// The dedupe key of a received message: the stick's index with its date, sender and text,
/// so taking it again after a crash (stored, not yet deleted) finds the same row, while a
/// later message that reuses the index does not.
fn external_id(message: &StoredMessage) -> String {
    let mut hash = Sha256::new();
    for field in [
        message.index.to_string().as_str(),
        &message.date,
        &message.phone,
        &message.content,
    ] {
        hash.update(field.as_bytes());
        hash.update([0]);
    }
    format!("hilink-{}", &hex::encode(hash.finalize())[..32])
}

/// A stick date (`2021-04-23 14:17:33`, the stick's local time, taken as the hub's).
fn stick_time(date: &str) -> Option<Millis> {
    let naive = chrono::NaiveDateTime::parse_from_str(date.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|it| it.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids() {
        let message = StoredMessage {
            index: 40001,
            smstat: 0,
            phone: "+213770123456".into(),
            content: "hello".into(),
            date: "2024-02-03 04:05:06".into(),
            sms_type: 1,
        };
        let again = message.clone();
        assert_eq!(external_id(&message), external_id(&again));
        let later = StoredMessage {
            date: "2024-02-04 04:05:06".into(),
            ..message.clone()
        };
        assert_ne!(external_id(&message), external_id(&later));
        assert!(external_id(&message).starts_with("hilink-"));
    }

    #[test]
    fn stick_times() {
        let parsed = stick_time("2021-04-23 14:17:33").unwrap();
        let back = chrono::Local
            .timestamp_millis_opt(parsed)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        assert_eq!(back, "2021-04-23 14:17:33");
        assert_eq!(stick_time(""), None);
        assert_eq!(stick_time("23.04.2021"), None);
    }
}
