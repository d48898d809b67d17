//! The messages waiting for a device. Each waits in one of three places: `ready` (any
//! device may take it; multipart messages in `ready_long`, so they cost nothing while no
//! device that can send them has room), `pinned` (per device, for a message that names its device) or `later`
//! (not due before its schedule or retry backoff ends). Within a place they are ranked by
//! priority (highest first), then age, then id. `places` finds a waiting message by id,
//! `expiries` holds validity deadlines (kept while the message is offered, too) and
//! `waiting_by_key` counts waiting messages per API key.
//!
//! Pure: no I/O and no clock reads; whether a message is due is decided from the `now` given.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use uuid::Uuid;

use super::{Action, Core};
use crate::dispatch::QueuedMessage;
use crate::domain::Millis;

/// A waiting message's order: priority (highest first), then creation time, then id.
pub(super) type Rank = (Reverse<i32>, Millis, Uuid);

/// Where `message` stands in line.
pub(super) fn rank(message: &QueuedMessage) -> Rank {
    (Reverse(message.priority), message.created_at, message.id)
}

/// Which of the three places a waiting message is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// In `ready`: any device may take it.
    Ready,
    /// In `pinned`, under its device.
    Pinned,
    /// In `later`, not due before this instant.
    Later(Millis),
}

impl Core {
    /// Messages waiting for a device (ready, pinned or not yet due).
    pub fn waiting(&self) -> usize {
        self.places.len()
    }

    /// Messages waiting, for one API key.
    pub fn waiting_for_key(&self, key: Option<Uuid>) -> usize {
        self.waiting_by_key.get(&key).copied().unwrap_or(0)
    }

    /// Messages committed as queued (new, requeued or reloaded).
    pub fn enqueue(&mut self, messages: Vec<QueuedMessage>, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut expired = Vec::new();
        for message in messages {
            if message.valid_until.is_some_and(|until| until <= now) {
                expired.push(message.id);
                continue;
            }
            self.insert_waiting(message, now);
        }
        if !expired.is_empty() {
            actions.push(Action::Expire { ids: expired });
        }
        actions
    }

    pub(super) fn insert_waiting(&mut self, message: QueuedMessage, now: Millis) {
        if self.places.contains_key(&message.id) {
            return;
        }
        let key = rank(&message);
        if let Some(until) = message.valid_until {
            self.expiries.insert((until, message.id));
        }
        *self.waiting_by_key.entry(message.api_key).or_default() += 1;
        match message.not_before {
            Some(at) if at > now => {
                self.places.insert(message.id, (Place::Later(at), key));
                self.later.insert((at, message.id), message);
            }
            _ => self.insert_due(message),
        }
    }

    pub(super) fn insert_due(&mut self, message: QueuedMessage) {
        let key = rank(&message);
        match &message.device_id {
            Some(device) => {
                self.places.insert(message.id, (Place::Pinned, key));
                self.pinned
                    .entry(device.clone())
                    .or_default()
                    .insert(key, message);
            }
            None => {
                self.places.insert(message.id, (Place::Ready, key));
                self.ready_of(&message).insert(key, message);
            }
        }
    }

    /// The ready queue `message` belongs in: by its parts.
    pub(super) fn ready_of(
        &mut self,
        message: &QueuedMessage,
    ) -> &mut BTreeMap<Rank, QueuedMessage> {
        if message.parts > 1 {
            &mut self.ready_long
        } else {
            &mut self.ready
        }
    }

    /// Whether any message waits in a ready or pinned queue.
    pub(super) fn any_due(&self) -> bool {
        !self.ready.is_empty() || !self.ready_long.is_empty() || !self.pinned.is_empty()
    }

    /// Removes a waiting message, wherever it waits.
    pub(super) fn take_waiting(&mut self, id: Uuid) -> Option<QueuedMessage> {
        let (place, key) = self.places.remove(&id)?;
        let message = match place {
            Place::Ready => self
                .ready
                .remove(&key)
                .or_else(|| self.ready_long.remove(&key)),
            Place::Later(at) => self.later.remove(&(at, id)),
            Place::Pinned => {
                let mut found = None;
                for queue in self.pinned.values_mut() {
                    if let Some(it) = queue.remove(&key) {
                        found = Some(it);
                        break;
                    }
                }
                found
            }
        }?;
        if let Some(count) = self.waiting_by_key.get_mut(&message.api_key) {
            *count = count.saturating_sub(1);
        }
        Some(message)
    }
}
