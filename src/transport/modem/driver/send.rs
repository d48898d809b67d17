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

use smshub_protocol::device::ErrorCode;
use smshub_protocol::pdu::{Address, ConcatRef, Submit};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Connection;
use crate::domain::now_millis;
use crate::registry::Job;
use crate::store::{Change, ModemRefChange};
use crate::transport::modem::parts::write_parts;
use crate::transport::modem::session::SessionError;
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
        let references = write_parts(
            &mut self.session,
            &pdus,
            &timeouts,
            self.config.part_retries,
            self.config.part_retry_wait,
            &self.port,
        )
        .await?;
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
