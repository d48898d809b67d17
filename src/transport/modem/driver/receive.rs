//! Incoming SMS: messages announced by `+CMTI` (read with `AT+CMGR`), routed by `+CMT`, or
//! found by the periodic `AT+CMGL=4` sweep are decoded, reassembled when long, stored, and
//! only then deleted from the modem; the parts of a long message that never completes are
//! stored after `parts_wait`, marked incomplete. Status reports found the same way go to
//! [`super::reports`].
//!
//! Must never: delete a stored message before the hub has committed it, or drop an
//! undecodable PDU (it stays in the modem's storage).

use smshub_protocol::at::sms;
use smshub_protocol::pdu::{self, DecodedPdu, Deliver, Timestamp};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Connection;
use crate::domain::{Millis, now_millis};
use crate::transport::modem::parts::Received;
use crate::transport::modem::session::SessionError;
use crate::transport::radio::device::{self as radio, Incoming};

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    /// Reads a stored message or report announced by `+CMTI`/`+CDSI`.
    pub(super) async fn read_stored(
        &mut self,
        storage: &str,
        index: u32,
    ) -> Result<(), SessionError> {
        let t = self.timeouts();
        let switched = self.storage.as_deref().is_some_and(|it| it != storage);
        if switched {
            self.lines(&format!("AT+CPMS=\"{storage}\""), t.command)
                .await?;
        }
        let result = match self
            .session
            .command(&format!("AT+CMGR={index}"), t.list)
            .await
        {
            Ok(lines) => match sms::parse_cmgr(&lines) {
                Some(stored) => self.take_pdu(Some(index), &stored.pdu).await,
                None => Ok(()),
            },
            Err(err) if err.is_fatal() => Err(err),
            Err(err) => {
                tracing::debug!(%index, error = %err, "stored message not readable");
                Ok(())
            }
        };
        if switched && let Some(back) = self.storage.clone() {
            self.lines(&format!("AT+CPMS=\"{back}\""), t.command)
                .await?;
        }
        result
    }

    /// Lists every stored message and takes the received ones (lost notifications included).
    pub(super) async fn sweep(&mut self) -> Result<(), SessionError> {
        let lines = match self
            .session
            .command("AT+CMGL=4", self.config.timeouts.list)
            .await
        {
            Ok(lines) => lines,
            Err(err) if err.is_fatal() => return Err(err),
            Err(err) => {
                tracing::debug!(port = %self.port, error = %err, "AT+CMGL=4 failed");
                return Ok(());
            }
        };
        for stored in sms::parse_cmgl(&lines) {
            if matches!(stored.stat, sms::StoredStat::Sent | sms::StoredStat::Unsent) {
                continue;
            }
            self.take_pdu(stored.index, &stored.pdu).await?;
        }
        self.expire_parts().await
    }

    /// Takes one PDU, stored at `index` or routed straight to the hub (`None`): a message is
    /// received, a status report matched (and deleted once read from storage).
    pub(super) async fn take_pdu(
        &mut self,
        index: Option<u32>,
        hex: &str,
    ) -> Result<(), SessionError> {
        match pdu::decode(hex) {
            Ok(DecodedPdu::Deliver(deliver)) => self.receive(deliver, index).await,
            Ok(DecodedPdu::StatusReport(report)) => {
                self.take_report(report).await;
                match index {
                    Some(index) => self.delete(index).await,
                    None => Ok(()),
                }
            }
            Ok(DecodedPdu::Submit(_)) => Ok(()),
            Err(err) => {
                tracing::warn!(port = %self.port, ?index, error = %err, "undecodable PDU left in storage");
                Ok(())
            }
        }
    }

    /// Receives one message or part; once a message is whole and stored, its parts are
    /// deleted from storage.
    async fn receive(&mut self, deliver: Deliver, index: Option<u32>) -> Result<(), SessionError> {
        let now = self.clock_ms();
        match self.gathering.push(deliver, index, now) {
            Some(message) => self.keep(message).await,
            None => Ok(()),
        }
    }

    /// Stores what arrived of long messages whose other parts did not come within
    /// `parts_wait` of the last new part: a gateway delivers what it has rather than lose it.
    /// The body holds the parts in order with `[…]` for each missing one, then
    /// `[incomplete: k of n parts]`; the parts are then deleted from the modem (a part arriving
    /// even later is stored as a message of its own, marked the same way).
    async fn expire_parts(&mut self) -> Result<(), SessionError> {
        let now = self.clock_ms();
        let max_age = u64::try_from(self.config.parts_wait.as_millis()).unwrap_or(u64::MAX);
        for message in self.gathering.expire(now, max_age) {
            tracing::info!(
                port = %self.port,
                sender = %message.sender.number,
                "incomplete long message stored with the parts that arrived"
            );
            self.keep(message).await?;
        }
        Ok(())
    }

    /// Stores a received message, then deletes its parts from the modem.
    async fn keep(&mut self, message: Received) -> Result<(), SessionError> {
        if self.store_incoming(&message).await {
            for index in message.indexes {
                self.delete(index).await?;
            }
        }
        Ok(())
    }

    /// Commits a received SMS; true once it is stored (or was already).
    async fn store_incoming(&mut self, message: &Received) -> bool {
        let incoming = Incoming {
            external_id: message.key(),
            sender: message.sender.number.clone(),
            text: message.body.clone(),
            received_at: timestamp_millis(&message.timestamp).unwrap_or_else(now_millis),
        };
        match radio::store_incoming(&self.link, self.status, &self.device_id, incoming).await {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(error = %err, "could not store an incoming SMS; it stays on the modem");
                false
            }
        }
    }

    /// Deletes a stored message; only a dead port is an error.
    async fn delete(&mut self, index: u32) -> Result<(), SessionError> {
        match self
            .session
            .command(&format!("AT+CMGD={index}"), self.config.timeouts.command)
            .await
        {
            Err(err) if err.is_fatal() => Err(err),
            Err(err) => {
                tracing::warn!(port = %self.port, index, error = %err, "could not delete a stored message");
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    /// Milliseconds since this session started: the reassembler's clock.
    fn clock_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The UTC instant of a service-centre timestamp.
fn timestamp_millis(timestamp: &Timestamp) -> Option<Millis> {
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::from(timestamp.year),
        timestamp.month.into(),
        timestamp.day.into(),
    )?;
    let time = date.and_hms_opt(
        timestamp.hour.into(),
        timestamp.minute.into(),
        timestamp.second.into(),
    )?;
    let local = time.and_utc().timestamp_millis();
    Some(local - i64::from(timestamp.tz_quarters) * 15 * 60 * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        // python-gsmmodem TestTimestamp: 2015-11-27 00:00 +02:00 is 2015-11-26 22:00 UTC.
        let ts = Timestamp {
            year: 2015,
            month: 11,
            day: 27,
            hour: 0,
            minute: 0,
            second: 0,
            tz_quarters: 8,
        };
        assert_eq!(timestamp_millis(&ts), Some(1_448_575_200_000));
        let bad = Timestamp { month: 13, ..ts };
        assert_eq!(timestamp_millis(&bad), None);
    }
}
