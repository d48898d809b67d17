//! Status reports (`+CDS`, or stored and announced by `+CDSI`): matched to their message by
//! the message reference and recipient recorded when it was sent, then committed as delivered
//! (once every part is) or as failed.
//!
//! Must never: touch a message whose references do not match the report, or talk to the
//! modem (reading and deleting stored reports is [`super::receive`]'s job).

use smshub_protocol::device::ErrorCode;
use smshub_protocol::pdu::{StatusClass, StatusReport};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Connection;
use crate::domain::now_millis;
use crate::store::{Change, ModemRefChange};

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    /// Matches a status report to its message by TP-MR and recipient, from the references
    /// stored when the message was sent (newest first: the MR wraps after 256 parts).
    pub(super) async fn take_report(&mut self, report: StatusReport) {
        let mr = report.message_reference;
        let store = self.link.store();
        let candidates = match store.modem_refs(&self.device_id, mr, now_millis()).await {
            Ok(it) => it,
            Err(err) => {
                tracing::error!(error = %err, "could not look up a status report's message");
                return;
            }
        };
        let Some(found) = candidates
            .into_iter()
            .find(|it| same_number(&it.recipient, &report.recipient.number))
        else {
            tracing::debug!(mr, recipient = %report.recipient.number, "status report for no awaited message");
            return;
        };
        let id = found.message_id;
        let device = self.device_id.clone();
        let changes = match report.status.class() {
            StatusClass::StillTrying => return,
            StatusClass::Delivered => {
                let waiting = match store.modem_refs_of(id).await {
                    Ok(it) => it.len(),
                    Err(err) => {
                        tracing::error!(error = %err, "could not read a message's references");
                        return;
                    }
                };
                let mut changes = vec![Change::ModemRefs(ModemRefChange::Settle {
                    ids: vec![found.id],
                })];
                if waiting <= 1 {
                    changes.push(Change::Delivered { id, device });
                }
                changes
            }
            StatusClass::PermanentFailure | StatusClass::TemporaryFailure => vec![
                Change::ModemRefs(ModemRefChange::Forget { message: id }),
                Change::Failed {
                    id,
                    device: Some(device),
                    code: ErrorCode::DeliveryFailed.into(),
                    message: format!(
                        "the network reports: {} (TP-ST {:#04x})",
                        report.status.description(),
                        report.status.0
                    ),
                    temporary: false,
                    retry: None,
                },
            ],
        };
        if let Err(err) = self.link.store().apply_all(changes).await {
            tracing::error!(error = %err, "could not record a delivery report");
        }
    }
}

/// Whether two numbers are the same subscriber: their last nine digits agree (a report may
/// carry the national form of an international number).
fn same_number(a: &str, b: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<Vec<_>>();
    let (a, b) = (digits(a), digits(b));
    if a.is_empty() || b.is_empty() {
        return true;
    }
    let n = a.len().min(b.len()).min(9);
    a[a.len() - n..] == b[b.len() - n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert!(same_number("+213770123456", "0770123456"));
        assert!(same_number("+31628870634", "+31628870634"));
        assert!(!same_number("+213770123456", "+213770999999"));
    }
}
