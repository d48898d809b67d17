//! Sending: a `send` job is accepted (the acceptance committed) right before its PDUs are
//! written with `AT+CMGS`, one part at a time with concatenation references; a part of a long
//! message refused with a transient error is written again, the same PDU (same reference and
//! part number), after a short backoff, up to `part_retries` times; the outcome is committed
//! with the parts' message references (to match status reports later) or as a failure
//! classified by its CMS/CME code, the part it happened at and whether the PDU was written.
//!
//! Must never: write a PDU for a job whose acceptance is not committed, write a part again
//! whose outcome is unknown (a timeout or a lost port after the PDU), or let a failure after
//! parts already sent go back to the queue: that is `outcome_unknown` or final.

use smshub_protocol::at;
use smshub_protocol::device::ErrorCode;
use smshub_protocol::pdu::{Address, ConcatRef, Submit};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Connection;
use crate::domain::now_millis;
use crate::registry::Job;
use crate::store::{Change, ModemRefChange};
use crate::transport::modem::session::{SendError, SessionError, Timeouts};
use crate::transport::radio::RawSent;
use crate::transport::radio::session::{SendFailure, commit_outcome};

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    /// Sends one job of the hub: accept, write, commit the outcome, tell the dispatcher. An
    /// error only when the port failed.
    pub(super) async fn send_job(&mut self, job: Job) -> Result<(), SessionError> {
        let device = self.device_id.clone();
        let id = job.id;
        if !self.link.accept(&device, id, "modem").await {
            return Ok(());
        }
        let result = self
            .send_text(job.recipient.as_str(), &job.text, job.delivery_report)
            .await;
        let ended = result.as_ref().map(|sent| {
            let mut changes = vec![Change::Sent {
                id,
                device: device.clone(),
                parts: sent.parts as u32,
            }];
            // The references are committed with `sent`, so a report that comes after a
            // restart or a reopen still finds the message.
            let parts: Vec<(u32, u8)> = sent
                .references
                .iter()
                .enumerate()
                .filter_map(|(part, mr)| Some((part as u32, (*mr)?)))
                .collect();
            if job.delivery_report && !parts.is_empty() {
                let wait = i64::try_from(self.config.report_wait.as_millis()).unwrap_or(i64::MAX);
                changes.push(Change::ModemRefs(ModemRefChange::Record {
                    device: device.to_string(),
                    message: id,
                    recipient: job.recipient.to_string(),
                    parts,
                    expires_at: now_millis().saturating_add(wait),
                }));
            }
            changes
        });
        commit_outcome(
            &self.link,
            self.status,
            &device,
            id,
            ended,
            "modem",
            &self.port,
        )
        .await;
        match result {
            Err(failure) if failure.fatal => Err(SessionError::Closed),
            _ => Ok(()),
        }
    }

    /// Writes the PDUs of one message.
    pub(super) async fn send_text(
        &mut self,
        to: &str,
        text: &str,
        status_report: bool,
    ) -> Result<RawSent, SendFailure> {
        let permanent = SendFailure::permanent;
        let address = Address::parse(to)
            .map_err(|err| permanent(ErrorCode::InvalidRecipient, err.to_string()))?;
        let reference = self.reference();
        let submit = Submit::new(address, text)
            .status_report(status_report)
            .reference(reference);
        let pdus = submit
            .encode()
            .map_err(|err| permanent(ErrorCode::Unsupported, err.to_string()))?;
        let total = pdus.len();
        let timeouts = self.timeouts();
        let mut references = Vec::with_capacity(total);
        for (idx, part) in pdus.iter().enumerate() {
            let mut tries: u32 = 1;
            loop {
                match self
                    .session
                    .send_pdu(part.tpdu_len, &part.hex, &timeouts)
                    .await
                {
                    Ok(mr) => {
                        references.push(mr);
                        break;
                    }
                    Err(err)
                        if total > 1 && tries <= self.config.part_retries && may_resend(&err) =>
                    {
                        let wait = self
                            .config
                            .part_retry_wait
                            .saturating_mul(1 << (tries - 1).min(16));
                        tracing::info!(port = %self.port, part = idx + 1, total, error = %err, wait_ms = wait.as_millis() as u64, "modem refused a part; writing it again");
                        tries += 1;
                        tokio::time::sleep(wait).await;
                    }
                    Err(err) => return Err(send_failure(err, idx, total, tries, &timeouts)),
                }
            }
        }
        Ok(RawSent {
            parts: total,
            references,
        })
    }

    /// The next concatenation reference, 8- or 16-bit as configured.
    fn reference(&mut self) -> ConcatRef {
        self.next_reference = self.next_reference.wrapping_add(1);
        if self.config.sixteen_bit_refs {
            ConcatRef::SixteenBit(self.next_reference)
        } else {
            ConcatRef::EightBit((self.next_reference & 0xFF) as u8)
        }
    }
}

/// Whether a part of a long message that failed with `err` may be written again, with the same
/// concatenation reference and part number: the modem answered with a transient error
/// (network out of order, congestion, no service, unknown or vendor errors; what Gammu and
/// smstools retry). `+CMS ERROR: 332` (network timeout) is one too, though the part may have
/// reached the network: a phone links parts by reference and number and keeps one copy of a
/// part that comes twice. Never a timeout or a closed port after the PDU: the outcome is
/// unknown and nothing is resent.
fn may_resend(err: &SendError) -> bool {
    let (SendError::BeforePdu(SessionError::Command(error))
    | SendError::AfterPdu(SessionError::Command(error))) = err
    else {
        return false;
    };
    error.class() == at::ErrorClass::Temporary || *error == at::CommandError::Cms(332)
}

/// How a failed PDU ends the message, after `tries` writes of the part. Parts already sent
/// make any failure permanent: sending the message again would repeat them.
fn send_failure(
    err: SendError,
    part: usize,
    total: usize,
    tries: u32,
    timeouts: &Timeouts,
) -> SendFailure {
    let (after, err) = match err {
        SendError::BeforePdu(err) => (false, err),
        SendError::AfterPdu(err) => (true, err),
    };
    let partial = part > 0;
    let which = if total > 1 {
        format!("part {} of {total}: ", part + 1)
    } else {
        String::new()
    };
    let sent_note = match (tries, partial) {
        (1, false) => String::new(),
        (1, true) => format!("; parts 1 to {part} were sent"),
        (_, false) => format!(" ({tries} tries)"),
        (_, true) => format!(" ({tries} tries); parts 1 to {part} were sent"),
    };
    let fatal = err.is_fatal();
    let (code, message, temporary) = match err {
        SessionError::Command(error) => {
            let class = error.class();
            let code = if after && class == at::ErrorClass::OutcomeUnknown {
                ErrorCode::OutcomeUnknown
            } else {
                error.wire_code()
            };
            (
                code,
                format!("{which}the modem answered {error}{sent_note}"),
                class.is_temporary(),
            )
        }
        SessionError::Timeout { .. } if after => (
            ErrorCode::OutcomeUnknown,
            format!(
                "{which}no answer within {} s after the PDU was written; it may have been sent{sent_note}",
                timeouts.send.as_secs()
            ),
            false,
        ),
        SessionError::Timeout { .. } => (
            ErrorCode::Busy,
            format!("{which}the modem did not ask for the PDU{sent_note}"),
            true,
        ),
        SessionError::Io(_) | SessionError::Closed if after => (
            ErrorCode::OutcomeUnknown,
            format!(
                "{which}the modem went away after the PDU was written; it may have been sent{sent_note}"
            ),
            false,
        ),
        SessionError::Io(_) | SessionError::Closed => (
            ErrorCode::GenericFailure,
            format!("{which}the modem went away{sent_note}"),
            true,
        ),
    };
    SendFailure {
        code,
        message,
        temporary: temporary && !partial,
        fatal,
    }
}

#[cfg(test)]
mod tests {
    use smshub_protocol::at::CommandError;

    use super::*;

    #[test]
    fn failures() {
        let t = Timeouts::default();
        let after_timeout = send_failure(
            SendError::AfterPdu(SessionError::Timeout { lines: vec![] }),
            0,
            1,
            1,
            &t,
        );
        assert_eq!(
            (after_timeout.code, after_timeout.temporary),
            (ErrorCode::OutcomeUnknown, false)
        );
        let refused = send_failure(
            SendError::AfterPdu(SessionError::Command(CommandError::Cms(42))),
            0,
            1,
            1,
            &t,
        );
        assert_eq!((refused.code, refused.temporary), (ErrorCode::Busy, true));
        let partial = send_failure(
            SendError::AfterPdu(SessionError::Command(CommandError::Cms(42))),
            1,
            3,
            1,
            &t,
        );
        assert_eq!((partial.code, partial.temporary), (ErrorCode::Busy, false));
        assert!(
            partial.message.contains("part 2 of 3")
                && partial.message.contains("parts 1 to 1 were sent")
        );
        let bad = send_failure(
            SendError::AfterPdu(SessionError::Command(CommandError::Cms(1))),
            0,
            1,
            1,
            &t,
        );
        assert_eq!(
            (bad.code, bad.temporary),
            (ErrorCode::InvalidRecipient, false)
        );
        let gone = send_failure(SendError::BeforePdu(SessionError::Closed), 0, 1, 1, &t);
        assert_eq!(
            (gone.code, gone.temporary, gone.fatal),
            (ErrorCode::GenericFailure, true, true)
        );
    }

    #[test]
    fn transient_errors_may_be_resent_others_not() {
        let refused = |code| SendError::AfterPdu(SessionError::Command(CommandError::Cms(code)));
        for code in [38, 41, 42, 47, 331, 332, 500, 512, 513, 514, 515, 530] {
            assert!(may_resend(&refused(code)), "CMS {code}");
        }
        for code in [1, 8, 21, 96, 304, 330] {
            assert!(!may_resend(&refused(code)), "CMS {code}");
        }
        assert!(may_resend(&SendError::BeforePdu(SessionError::Command(
            CommandError::Cms(331)
        ))));
        assert!(!may_resend(&SendError::AfterPdu(SessionError::Timeout {
            lines: vec![]
        })));
        assert!(!may_resend(&SendError::AfterPdu(SessionError::Closed)));
        let again = send_failure(refused(38), 1, 3, 4, &Timeouts::default());
        assert_eq!((again.code, again.temporary), (ErrorCode::NoService, false));
        assert!(
            again.message.contains("(4 tries); parts 1 to 1 were sent"),
            "{}",
            again.message
        );
    }
}
