//! Putting the parts of a long incoming message back together.
//!
//! Parts are keyed by sender, concatenation reference (its size included: an 8-bit 7 and a
//! 16-bit 7 are different messages), and total. A duplicate part is ignored; the message comes
//! out when its last missing part arrives, in any order. There is no clock here: the caller
//! passes "now" as a plain number (seconds, say) with each part and calls
//! [`Reassembler::expire`] now and then. Must never panic on any input, and never hold more
//! than 255 parts per key.

use serde::Serialize;
use std::collections::BTreeMap;

use super::address::Address;
use super::deliver::Deliver;
use super::timestamp::Timestamp;
use super::udh::ConcatRef;
use super::user_data::Body;

/// What identifies the parts of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PartKey {
    /// Who sent it.
    pub sender: Address,
    /// The concatenation reference, with its size.
    pub reference: ConcatRef,
    /// How many parts there are.
    pub total: u8,
}

/// A whole incoming message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Who sent it.
    pub sender: Address,
    /// The service centre timestamp of its first part.
    pub timestamp: Timestamp,
    /// The service centre of its first part.
    pub smsc: Option<Address>,
    /// The parts' bodies joined: text when every part is text, data when every part is data;
    /// a mix (which no phone sends) joins as text, data parts read as lossy UTF-8.
    pub body: Body,
    /// How many parts it had.
    pub parts: u8,
}

/// The parts received of a message that did not complete in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Which message.
    pub key: PartKey,
    /// The parts that did arrive, by part number.
    pub parts: Vec<Deliver>,
}

#[derive(Debug, Clone)]
struct Partial {
    parts: BTreeMap<u8, Deliver>,
    last_seen: u64,
}

/// Collects parts of long messages until each is whole.
#[derive(Debug, Clone, Default)]
pub struct Reassembler {
    partials: BTreeMap<PartKey, Partial>,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// Takes one decoded SMS-DELIVER received at `now`; returns the whole message when this
    /// completes it. A message that is not concatenated (or whose concatenation header makes
    /// no sense: total 0 or 1, part 0, part beyond the total) comes out at once.
    pub fn push(&mut self, deliver: Deliver, now: u64) -> Option<Message> {
        let concat = deliver.udh.as_ref().and_then(|udh| udh.concat);
        let Some(concat) = concat.filter(|c| c.total > 1 && (1..=c.total).contains(&c.seq)) else {
            return Some(Message {
                body: deliver.body,
                sender: deliver.sender,
                timestamp: deliver.timestamp,
                smsc: deliver.smsc,
                parts: 1,
            });
        };
        let key = PartKey {
            sender: deliver.sender.clone(),
            reference: concat.reference,
            total: concat.total,
        };
        let partial = self.partials.entry(key.clone()).or_insert_with(|| Partial {
            parts: BTreeMap::new(),
            last_seen: now,
        });
        // Only a new part counts as progress: a part read again (a modem's storage swept
        // while the message waits) must not keep an incomplete message from expiring.
        if let std::collections::btree_map::Entry::Vacant(slot) = partial.parts.entry(concat.seq) {
            slot.insert(deliver);
            partial.last_seen = partial.last_seen.max(now);
        }
        if partial.parts.len() < usize::from(concat.total) {
            return None;
        }
        let parts = self.partials.remove(&key)?.parts;
        join(parts.into_values().collect(), concat.total)
    }

    /// Drops the messages whose latest new part arrived before `now - max_age` (a duplicate
    /// does not count), and returns what had arrived of them (the caller may deliver it marked incomplete, or log it).
    pub fn expire(&mut self, now: u64, max_age: u64) -> Vec<Expired> {
        let cutoff = now.saturating_sub(max_age);
        let stale: Vec<PartKey> = self
            .partials
            .iter()
            .filter(|(_, partial)| partial.last_seen < cutoff)
            .map(|(key, _)| key.clone())
            .collect();
        stale
            .into_iter()
            .filter_map(|key| {
                let partial = self.partials.remove(&key)?;
                Some(Expired {
                    key,
                    parts: partial.parts.into_values().collect(),
                })
            })
            .collect()
    }

    /// How many messages are waiting for parts.
    pub fn pending(&self) -> usize {
        self.partials.len()
    }
}

/// Joins parts already in order.
fn join(parts: Vec<Deliver>, total: u8) -> Option<Message> {
    let first = parts.first()?;
    let (sender, timestamp, smsc) = (first.sender.clone(), first.timestamp, first.smsc.clone());
    let body = if parts.iter().all(|part| matches!(part.body, Body::Data(_))) {
        Body::Data(
            parts
                .into_iter()
                .flat_map(|part| match part.body {
                    Body::Data(data) => data,
                    Body::Text(_) => Vec::new(),
                })
                .collect(),
        )
    } else {
        Body::Text(
            parts
                .into_iter()
                .map(|part| match part.body {
                    Body::Text(text) => text,
                    Body::Data(data) => String::from_utf8_lossy(&data).into_owned(),
                })
                .collect(),
        )
    };
    Some(Message {
        sender,
        timestamp,
        smsc,
        body,
        parts: total,
    })
}
