//! A message's parts, the same for the hub's modem driver and the remote worker
//! (`crate::worker::modem`): writing the PDUs of an outgoing message with the part-retry rule,
//! and gathering the parts of an incoming one with the storage indexes to delete once it is
//! kept.
//!
//! Must never: write a part again unless its refusal says it did not go out
//! ([`may_resend`]), or hand out a stored part's index before its whole message (or, after
//! `parts_wait`, what arrived of it).

use std::collections::HashMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use smshub_protocol::pdu::{
    self, Address, Body, Deliver, EncodedPdu, Expired, PartKey, Reassembler, Timestamp,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::failure::{may_resend, send_failure};
use super::session::{Session, Timeouts};
use crate::transport::radio::session::SendFailure;

/// Writes the PDUs of one message. A part of a long message refused with a transient error is
/// written again (same reference and part number) up to `retries` times, after `first_wait`,
/// doubling; returns each part's TP-MR.
pub async fn write_parts<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session<S>,
    pdus: &[EncodedPdu],
    timeouts: &Timeouts,
    retries: u32,
    first_wait: Duration,
    port: &str,
) -> Result<Vec<Option<u8>>, SendFailure> {
    let total = pdus.len();
    let mut references = Vec::with_capacity(total);
    for (idx, part) in pdus.iter().enumerate() {
        let mut tries: u32 = 1;
        loop {
            match session.send_pdu(part.tpdu_len, &part.hex, timeouts).await {
                Ok(mr) => {
                    references.push(mr);
                    break;
                }
                Err(err) if total > 1 && tries <= retries && may_resend(&err) => {
                    let wait = first_wait.saturating_mul(1 << (tries - 1).min(16));
                    tracing::info!(%port, part = idx + 1, total, error = %err, wait_ms = wait.as_millis() as u64, "modem refused a part; writing it again");
                    tries += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(err) => return Err(send_failure(err, idx, total, tries, timeouts)),
            }
        }
    }
    Ok(references)
}

/// An incoming message, whole or given up on, with the storage indexes of its parts.
#[derive(Debug)]
pub struct Received {
    pub sender: Address,
    /// The service centre's timestamp of its first part.
    pub timestamp: Timestamp,
    /// The text (binary data as `[binary HEX]`); an incomplete message's parts in order with
    /// `[…]` for each missing one, then `[incomplete: k of n parts]`.
    pub body: String,
    /// Where its parts are stored on the modem (none when routed with `+CMT`).
    pub indexes: Vec<u32>,
}

impl Received {
    /// A dedupe key from its sender, timestamp and text: the same message taken twice (a
    /// crash between storing it and deleting it from the modem) gets the same key.
    pub fn key(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.sender.number.as_bytes());
        hash.update(self.timestamp.to_string().as_bytes());
        hash.update(self.body.as_bytes());
        format!("modem-{}", &hex::encode(hash.finalize())[..32])
    }
}

/// The parts of long incoming messages until they are whole.
#[derive(Default)]
pub struct Gathering {
    reassembler: Reassembler,
    indexes: HashMap<PartKey, Vec<u32>>,
}

impl Gathering {
    pub fn new() -> Gathering {
        Gathering::default()
    }

    /// Adds one received part, stored at `index` (or routed, `None`); a message comes back
    /// once whole. `now_ms` is any monotonic clock in milliseconds.
    pub fn push(&mut self, deliver: Deliver, index: Option<u32>, now_ms: u64) -> Option<Received> {
        let key = deliver
            .udh
            .as_ref()
            .and_then(|it| it.concat)
            .filter(|it| it.total > 1)
            .map(|concat| PartKey {
                sender: deliver.sender.clone(),
                reference: concat.reference,
                total: concat.total,
            });
        if let (Some(key), Some(index)) = (&key, index) {
            let indexes = self.indexes.entry(key.clone()).or_default();
            if !indexes.contains(&index) {
                indexes.push(index);
            }
        }
        let message = self.reassembler.push(deliver, now_ms)?;
        let indexes = match key {
            Some(key) => self.indexes.remove(&key).unwrap_or_default(),
            None => index.into_iter().collect(),
        };
        let body = match message.body {
            Body::Text(text) => text,
            Body::Data(data) => format!("[binary {}]", pdu::hex::encode(&data)),
        };
        Some(Received {
            sender: message.sender,
            timestamp: message.timestamp,
            body,
            indexes,
        })
    }

    /// The messages whose latest new part is older than `max_age_ms`, with what arrived of
    /// them: a gateway delivers what it has rather than lose it.
    pub fn expire(&mut self, now_ms: u64, max_age_ms: u64) -> Vec<Received> {
        self.reassembler
            .expire(now_ms, max_age_ms)
            .into_iter()
            .filter_map(|expired| {
                let first = expired.parts.first()?;
                let (sender, timestamp) = (first.sender.clone(), first.timestamp);
                let body = incomplete_body(&expired);
                let indexes = self.indexes.remove(&expired.key).unwrap_or_default();
                Some(Received {
                    sender,
                    timestamp,
                    body,
                    indexes,
                })
            })
            .collect()
    }
}

/// The text of an incomplete long message: its parts in order, `[…]` for each missing one,
/// and `[incomplete: k of n parts]`.
fn incomplete_body(expired: &Expired) -> String {
    let mut body = String::new();
    for seq in 1..=expired.key.total {
        let part = expired.parts.iter().find(|it| {
            it.udh
                .as_ref()
                .and_then(|udh| udh.concat)
                .is_some_and(|concat| concat.seq == seq)
        });
        match part.map(|it| &it.body) {
            Some(Body::Text(text)) => body.push_str(text),
            Some(Body::Data(data)) => {
                body.push_str(&format!("[binary {}]", pdu::hex::encode(data)))
            }
            None => body.push_str("[…]"),
        }
    }
    format!(
        "{body} [incomplete: {} of {} parts]",
        expired.parts.len(),
        expired.key.total
    )
}
