//! Time: when the core must next be woken ([`Core::next_wake`]) and what the deadlines that
//! have passed do ([`Core::tick`]). Scheduled and backed-off messages fall due, messages past
//! their validity expire, offers not accepted within their lease go elsewhere, accepted jobs
//! without an outcome in time fail `outcome_unknown`, rests end. A SIM's pacing ending is a
//! reason to wake only while messages wait.
//!
//! Pure: it never reads a clock nor sleeps. The shell passes `now`, and sleeps until the
//! instant `next_wake` returns.

use uuid::Uuid;

use super::jobs::Held;
use super::{Action, Core};
use crate::dispatch::FastMap as HashMap;
use crate::dispatch::QueuedMessage;
use crate::domain::{DeviceId, Millis};
use crate::registry::RevokeReason;

impl Core {
    /// When time alone will next change something, if ever. Drops deadlines that no longer
    /// apply (the job moved on), so it never wakes for nothing.
    pub fn next_wake(&mut self, now: Millis) -> Option<Millis> {
        while let Some((_, id, device)) = self.leases.first() {
            if self
                .devices
                .get(device)
                .is_some_and(|entry| matches!(entry.jobs.get(id), Some(Held::Offered { .. })))
            {
                break;
            }
            self.leases.pop_first();
        }
        while let Some((_, id, device)) = self.outcome_deadlines.first() {
            let owned = match self.devices.get(device) {
                Some(entry) => matches!(entry.jobs.get(id), Some(Held::Owned { .. })),
                None => self
                    .owned_offline
                    .get(device)
                    .is_some_and(|it| it.contains_key(id)),
            };
            if owned {
                break;
            }
            self.outcome_deadlines.pop_first();
        }
        while let Some((_, id)) = self.expiries.first() {
            let held = self.places.contains_key(id)
                || self
                    .devices
                    .entries
                    .iter()
                    .any(|entry| matches!(entry.jobs.get(id), Some(Held::Offered { .. })));
            if held {
                break;
            }
            self.expiries.pop_first();
        }
        let mut wake: Option<Millis> = None;
        let mut consider = |at: Millis| wake = Some(wake.map_or(at, |it| it.min(at)));
        if let Some(((at, _), _)) = self.later.first_key_value() {
            consider(*at);
        }
        if let Some((at, _)) = self.expiries.first() {
            consider(*at);
        }
        if let Some((at, _, _)) = self.leases.first() {
            consider(*at);
        }
        if let Some((at, _, _)) = self.outcome_deadlines.first() {
            consider(*at);
        }
        for breaker in self.breakers.values() {
            if let Some(until) = breaker.rested_until {
                consider(until);
            }
        }
        // Only pacing still to come: a SIM whose pause is over was free at the last pass, and
        // waking for it again would spin while its device is busy or gone.
        while self.pacing.first().is_some_and(|at| *at <= now) {
            self.pacing.pop_first();
        }
        if self.any_due()
            && let Some(at) = self.pacing.first()
        {
            consider(*at);
        }
        wake
    }

    /// Applies every deadline that has passed.
    pub fn tick(&mut self, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();

        // Schedules and retry backoffs that are due.
        while let Some(due) = self.later.first_entry() {
            if due.key().0 > now {
                break;
            }
            let message = due.remove();
            self.places.remove(&message.id);
            self.insert_due(message);
        }

        // Validity: a message past `valid_until` that no device has accepted expires.
        let mut expired = Vec::new();
        while let Some(&(at, id)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            if self.take_waiting(id).is_some() {
                expired.push(id);
                continue;
            }
            let offered_on = self
                .devices
                .iter()
                .find(|(_, entry)| matches!(entry.jobs.get(&id), Some(Held::Offered { .. })))
                .map(|(device, _)| device.clone());
            if let Some(device) = offered_on {
                if let Some(entry) = self.devices.get_mut(&device) {
                    entry.jobs.remove(&id);
                }
                actions.push(Action::Revoke {
                    device: device.clone(),
                    ids: vec![id],
                    reason: RevokeReason::Expired,
                });
                actions.push(self.in_flight(&device));
                expired.push(id);
            }
        }
        if !expired.is_empty() {
            actions.push(Action::Expire { ids: expired });
        }

        // Offer leases: an offer not accepted in time goes elsewhere.
        let mut lapsed: HashMap<DeviceId, Vec<QueuedMessage>> = HashMap::default();
        while let Some((at, _, _)) = self.leases.first() {
            if *at > now {
                break;
            }
            let Some((_, id, device)) = self.leases.pop_first() else {
                break;
            };
            let Some(entry) = self.devices.get_mut(&device) else {
                continue;
            };
            if !matches!(entry.jobs.get(&id), Some(Held::Offered { .. })) {
                continue;
            }
            if let Some(Held::Offered { mut message, sim }) = entry.jobs.remove(&id) {
                message.avoid.push(device.clone());
                self.refund(&device, sim, id);
                lapsed.entry(device).or_default().push(message);
            }
        }
        for (device, messages) in lapsed {
            let ids = messages.iter().map(|it| it.id).collect();
            actions.push(Action::Revoke {
                device: device.clone(),
                ids,
                reason: RevokeReason::LeaseExpired,
            });
            actions.push(self.in_flight(&device));
            actions.push(Action::Requeue {
                device,
                messages,
                reason: "the device did not accept in time".into(),
            });
        }

        // Accepted jobs that never got an outcome.
        let mut unknown: HashMap<DeviceId, Vec<Uuid>> = HashMap::default();
        while let Some((at, _, _)) = self.outcome_deadlines.first() {
            if *at > now {
                break;
            }
            let Some((_, id, device)) = self.outcome_deadlines.pop_first() else {
                break;
            };
            let still_owned = match self.devices.get_mut(&device) {
                Some(entry) => {
                    matches!(entry.jobs.get(&id), Some(Held::Owned { .. }))
                        && entry.jobs.remove(&id).is_some()
                }
                None => self
                    .owned_offline
                    .get_mut(&device)
                    .and_then(|it| it.remove(&id))
                    .is_some(),
            };
            if still_owned {
                unknown.entry(device).or_default().push(id);
            }
        }
        for (device, ids) in unknown {
            actions.push(self.in_flight(&device));
            actions.push(Action::OutcomeUnknown {
                device,
                ids,
                reason: "the device did not report an outcome in time; it may have been sent"
                    .into(),
            });
        }

        // Rests that are over.
        for (device, breaker) in &mut self.breakers {
            if breaker.rested_until.is_some_and(|until| until <= now) {
                breaker.rested_until = None;
                breaker.reason = None;
                actions.push(Action::Rest {
                    device: device.clone(),
                    until: None,
                    reason: None,
                });
            }
        }
        actions
    }
}
