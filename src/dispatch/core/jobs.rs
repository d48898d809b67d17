//! The jobs devices hold, from offer to outcome: an offer accepted (the job is the device's
//! own then), refused by the device or by the store, or cancelled; a job that ended (sent,
//! failed, or sent back for a retry after a backoff, avoiding the device that failed it); and
//! the accepted jobs found in the store at start.
//!
//! Pure: no I/O and no clock reads (every call carries `now`); the store commits what the
//! returned [`Action`]s say.

use smshub_protocol::device::ErrorCode;
use uuid::Uuid;

use super::{Action, Core, JobEnd};
use crate::dispatch::QueuedMessage;
use crate::domain::{DeviceId, FailureCode, Millis, retry_delay};
use crate::registry::RevokeReason;

/// An accepted job of a device that is not connected: its content (if known) and SIM.
pub(super) type OwnedJob = (Option<QueuedMessage>, Option<u8>);

/// A job a device holds.
#[derive(Debug)]
pub(super) enum Held {
    /// Offered, not accepted yet.
    Offered {
        message: QueuedMessage,
        sim: Option<u8>,
    },
    /// Accepted, waiting for its outcome; `message` is `None` when the core lacks its content.
    Owned {
        message: Option<QueuedMessage>,
        sim: Option<u8>,
    },
}

impl Core {
    /// The device's acceptance of these jobs is committed: they are its own now.
    pub fn owned(&mut self, device: &DeviceId, ids: &[Uuid], now: Millis) -> Vec<Action> {
        let deadline = now.saturating_add(self.config.outcome_timeout_ms);
        for id in ids {
            self.outcome_deadlines
                .insert((deadline, *id, device.clone()));
            match self.devices.get_mut(device) {
                Some(entry) => {
                    let (message, sim) = match entry.jobs.remove(id) {
                        Some(Held::Offered { message, sim }) => (Some(message), sim),
                        Some(Held::Owned { message, sim }) => (message, sim),
                        None => (None, None),
                    };
                    entry.jobs.insert(*id, Held::Owned { message, sim });
                }
                None => {
                    self.owned_offline
                        .entry(device.clone())
                        .or_default()
                        .entry(*id)
                        .or_insert((None, None));
                }
            }
        }
        vec![self.in_flight(device)]
    }

    /// When the message of job `id`, held by `device`, was submitted (if the core has it).
    pub fn submitted_at(&self, device: &DeviceId, id: Uuid) -> Option<Millis> {
        let message = match self.devices.get(device).and_then(|it| it.jobs.get(&id)) {
            Some(Held::Offered { message, .. }) => Some(message),
            Some(Held::Owned { message, .. }) => message.as_ref(),
            None => self
                .owned_offline
                .get(device)
                .and_then(|it| it.get(&id))
                .and_then(|(message, _)| message.as_ref()),
        };
        message.map(|it| it.created_at)
    }

    /// A job stopped occupying the device.
    pub fn finished(
        &mut self,
        device: &DeviceId,
        id: Uuid,
        end: JobEnd,
        now: Millis,
    ) -> Vec<Action> {
        let held = match self.devices.get_mut(device) {
            Some(entry) => entry.jobs.remove(&id),
            None => self
                .owned_offline
                .get_mut(device)
                .and_then(|it| it.remove(&id))
                .map(|(message, sim)| Held::Owned { message, sim }),
        };
        let (message, sim) = match held {
            Some(Held::Offered { message, sim }) => (Some(message), sim),
            Some(Held::Owned { message, sim }) => (message, sim),
            None => (None, None),
        };
        let mut actions = vec![self.in_flight(device)];
        match end {
            JobEnd::Sent => {
                self.success(device);
                if let Some(message) = &message {
                    self.remember_route(message.recipient.as_str(), device, sim);
                }
            }
            JobEnd::Failed { code } => actions.extend(self.failure(device, &code, now)),
            JobEnd::Retried { code } => {
                actions.extend(self.failure(device, &code, now));
                match message {
                    Some(mut message) => {
                        message.attempts = message.attempts.max(1);
                        message.not_before = Some(
                            now + retry_delay(
                                message.attempts,
                                self.config.retry_base_ms,
                                self.config.retry_cap_ms,
                            ),
                        );
                        message.avoid.push(device.clone());
                        self.insert_waiting(message, now);
                    }
                    None => actions.push(Action::Reload { ids: vec![id] }),
                }
            }
        }
        actions
    }

    /// The device refused these jobs: offers go elsewhere (the shell commits the requeue);
    /// accepted jobs the device says it never sent are retried like a temporary failure.
    pub fn rejected(
        &mut self,
        device: &DeviceId,
        ids: &[Uuid],
        reason: &str,
        now: Millis,
    ) -> Vec<Action> {
        let mut messages = Vec::new();
        let mut disowned = Vec::new();
        if let Some(entry) = self.devices.get_mut(device) {
            for id in ids {
                match entry.jobs.get(id) {
                    Some(Held::Offered { .. }) => {
                        if let Some(Held::Offered { mut message, sim }) = entry.jobs.remove(id) {
                            message.avoid.push(device.clone());
                            messages.push((message, sim));
                        }
                    }
                    // Still in flight until the store has sent it back to the queue.
                    Some(Held::Owned { .. }) => disowned.push(*id),
                    None => {}
                }
            }
        }
        for (message, sim) in &messages {
            self.refund(device, *sim, message.id);
        }
        let mut actions = vec![self.in_flight(device)];
        // A refusal for a reason of the device (an error code of the protocol) counts like a
        // failure, so a device that refuses everything is rested rather than offered the same
        // job again and again; one that cannot send at all is rested at once.
        if !messages.is_empty()
            && let FailureCode::Known(code) = FailureCode::parse(reason)
        {
            actions.extend(if code == ErrorCode::PermissionDenied {
                self.rest(device, &format!("it refused jobs: {reason}"), now)
            } else {
                self.failure(device, &FailureCode::Known(code), now)
            });
        }
        if !messages.is_empty() {
            actions.push(Action::Requeue {
                device: device.clone(),
                messages: messages.into_iter().map(|it| it.0).collect(),
                reason: "the device rejected the offer".into(),
            });
        }
        if !disowned.is_empty() {
            actions.push(Action::Disown {
                device: device.clone(),
                ids: disowned,
                reason: reason.to_string(),
            });
        }
        actions
    }

    /// Offers whose `dispatched` did not commit (the message changed meanwhile).
    pub fn offer_refused(&mut self, device: &DeviceId, ids: &[Uuid]) -> Vec<Action> {
        if let Some(entry) = self.devices.get_mut(device) {
            for id in ids {
                entry.jobs.remove(id);
            }
        }
        vec![self.in_flight(device)]
    }

    /// A client cancels a message: it leaves the queue, or its offer is revoked; an accepted
    /// job stays (the store decides for good).
    pub fn cancel(&mut self, id: Uuid) -> Vec<Action> {
        if self.take_waiting(id).is_some() {
            return Vec::new();
        }
        let mut actions = Vec::new();
        let mut offered_on = None;
        for (device, entry) in self.devices.iter_mut() {
            if matches!(entry.jobs.get(&id), Some(Held::Offered { .. })) {
                entry.jobs.remove(&id);
                offered_on = Some(device.clone());
                break;
            }
        }
        if let Some(device) = offered_on {
            actions.push(Action::Revoke {
                device: device.clone(),
                ids: vec![id],
                reason: RevokeReason::Cancelled,
            });
            actions.push(self.in_flight(&device));
        }
        actions
    }

    /// Registers an accepted job found in the database at start.
    pub fn restore_owned(
        &mut self,
        device: &DeviceId,
        message: QueuedMessage,
        sim: Option<u8>,
        accepted_at: Millis,
    ) {
        let id = message.id;
        self.outcome_deadlines.insert((
            accepted_at.saturating_add(self.config.outcome_timeout_ms),
            id,
            device.clone(),
        ));
        self.owned_offline
            .entry(device.clone())
            .or_default()
            .insert(id, (Some(message), sim));
    }
}
