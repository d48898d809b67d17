//! Choosing devices. A dispatch pass offers every waiting message that some device can take
//! now. A pinned message goes only to its device; one its device can never send (several
//! parts to a device without multipart) fails `unsupported`, and one it cannot send now is
//! passed over, never holding up those behind it. Any other goes to the device and SIM that
//! last sent to its recipient (its sticky route) when that one can take it, else by smooth
//! weighted round-robin over the devices' health (see `scoring`); devices that refused or
//! failed the message come last. Only devices with room are looked at, and the pass gives up
//! after [`LOOKAHEAD`] messages that no device can take. `assign` books an offer: its quota,
//! pacing (with jitter) and lease.
//!
//! Pure: no I/O and no clock reads; the only randomness is the pacing jitter, drawn from the
//! core's generator seeded with `DispatchConfig::seed`. This is the hot path: keep what does
//! not depend on the message out of the per-message loop, and allocate nothing for a message
//! that is only looked at.

use std::collections::BTreeMap;

use rand::Rng;

use super::devices::DeviceEntry;
use super::jobs::Held;
use super::queue::Rank;
use super::routing::RoutingRule;
use super::sims::{note_pacing, sim_usage};
use super::{Action, Core};
use crate::dispatch::FastMap as HashMap;
use crate::dispatch::QueuedMessage;
use crate::dispatch::limits::SimUsage;
use crate::dispatch::scoring;
use crate::domain::{DeviceId, Millis};

/// How far past an unplaceable message the queue is searched for one that fits elsewhere.
const LOOKAHEAD: usize = 64;

/// Sticky routes remembered at most.
const STICKY_MAX: usize = 200_000;

impl Core {
    /// Remembers that `device` (and `sim`) sent to `to`: its next message goes there too if it
    /// can. The routes are forgotten all at once when there are [`STICKY_MAX`] of them.
    pub(super) fn remember_route(&mut self, to: &str, device: &DeviceId, sim: Option<u8>) {
        if self.sticky.len() >= STICKY_MAX {
            self.sticky.clear();
        }
        self.sticky
            .insert(to.to_string(), (device.clone(), sim.unwrap_or(0)));
    }

    /// Scores `device` for `message`, honouring rests, capabilities, quotas and pacing.
    fn candidate(
        &mut self,
        device: &DeviceId,
        message: &QueuedMessage,
        now: Millis,
    ) -> Option<scoring::Candidate> {
        if self.rested(device, now) {
            return None;
        }
        let entry = self.devices.get(device)?;
        // A pinned message names its SIM itself: routing rules do not apply to it.
        entry_candidate(entry, &mut self.sims, message, now, None)
    }

    /// Offers every waiting message that some device can take now.
    pub fn dispatch(&mut self, now: Millis) -> Vec<Action> {
        // Status reports from thousands of idle phones must not cost a pass each.
        if !self.any_due() {
            return Vec::new();
        }
        let mut offers: HashMap<DeviceId, Vec<(QueuedMessage, Option<u8>)>> = HashMap::default();
        let mut actions = Vec::new();

        // Pinned messages: only their device can take them.
        let pinned_devices: Vec<DeviceId> = self
            .pinned
            .keys()
            .filter(|it| self.devices.contains_key(it))
            .cloned()
            .collect();
        for device in pinned_devices {
            let unsendable = self.dispatch_pinned(&device, now, &mut offers);
            if !unsendable.is_empty() {
                actions.push(Action::FailUnsendable {
                    device,
                    ids: unsendable,
                });
            }
        }
        self.pinned.retain(|_, queue| !queue.is_empty());

        // Everything else: sticky route first, else smooth weighted round-robin over health.
        // Only devices with room are considered: when every phone is full, a pass is free.
        // What does not depend on the message is settled before it: health when a status
        // arrives, rests once per pass; a message costs a look at each device's load and
        // quotas.
        let rests = !self.breakers.is_empty();
        let mut pool: Vec<usize> = self
            .devices
            .entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| {
                (entry.jobs.len() as u32) < entry.max_in_flight
                    && entry.health.is_some()
                    && !(rests && self.rested(&entry.name, now))
            })
            .map(|(at, _)| at)
            .collect();
        // Candidates of one message: (index into `pool`, weight, SIM).
        let mut candidates: Vec<(usize, f64, Option<u8>)> = Vec::with_capacity(pool.len());
        let mut credits: Vec<f64> = Vec::with_capacity(pool.len());
        let mut weights: Vec<f64> = Vec::with_capacity(pool.len());
        // Routing rules matching a message, in the order they are tried (reused).
        let mut tiers: Vec<usize> = Vec::new();
        let mut misses = 0;
        let mut cursor: Option<Rank> = None;
        // Multipart messages are looked at only while a device with room sends them.
        let mut long = self.pool_sends_multipart(&pool);
        while misses < LOOKAHEAD && !pool.is_empty() {
            let short = next_after(&self.ready, cursor);
            let longer = if long {
                next_after(&self.ready_long, cursor)
            } else {
                None
            };
            // Taken out while it is placed (no clone); put back if nothing can take it.
            let key = match (short, longer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            let Some(message) = self
                .ready
                .remove(&key)
                .or_else(|| self.ready_long.remove(&key))
            else {
                break;
            };
            let sticky = self.sticky.get(message.recipient.as_str());
            candidates.clear();
            let mut sticky_pick = None;
            // Without rules for its number, one tier: any SIM. With rules, each rule's SIMs in
            // turn, the first tier with a candidate winning (the fallback order).
            if self.routes.is_empty() {
                tiers.clear();
            } else {
                self.routes.matching(message.recipient.as_str(), &mut tiers);
            }
            for tier in 0..tiers.len().max(1) {
                let rule = tiers.get(tier).map(|at| self.routes.get(*at));
                for avoid_pass in [true, false] {
                    if !avoid_pass && message.avoid.is_empty() {
                        break;
                    }
                    for (index, at) in pool.iter().enumerate() {
                        let entry = &self.devices.entries[*at];
                        if avoid_pass == message.avoid.iter().any(|it| **it == *entry.name) {
                            continue;
                        }
                        let Some(candidate) =
                            entry_candidate(entry, &mut self.sims, &message, now, rule)
                        else {
                            continue;
                        };
                        if let Some((sticky_device, sticky_sim)) = sticky
                            && **sticky_device == *entry.name
                            && candidate.sim_slot.unwrap_or(0) == *sticky_sim
                        {
                            sticky_pick = Some(candidates.len());
                        }
                        candidates.push((index, candidate.weight, candidate.sim_slot));
                    }
                    // Devices that refused or failed this message are a last resort.
                    if !candidates.is_empty() {
                        break;
                    }
                }
                if !candidates.is_empty() {
                    break;
                }
            }
            let chosen = match sticky_pick {
                Some(it) => Some(it),
                None => {
                    let entries = &mut self.devices.entries;
                    credits.clear();
                    credits.extend(candidates.iter().map(|it| entries[pool[it.0]].credit));
                    weights.clear();
                    weights.extend(candidates.iter().map(|it| it.1));
                    let chosen = scoring::pick(&mut credits, &weights);
                    for ((index, _, _), credit) in candidates.iter().zip(&credits) {
                        entries[pool[*index]].credit = *credit;
                    }
                    chosen
                }
            };
            let Some(chosen) = chosen else {
                self.ready_of(&message).insert(key, message);
                cursor = Some(key);
                misses += 1;
                continue;
            };
            self.places.remove(&message.id);
            let (index, _, sim) = candidates[chosen];
            let device = self.devices.entries[pool[index]].name.clone();
            self.assign(&device, message, sim, now, &mut offers);
            // A device that is full now is not scanned again in this pass.
            let entry = &self.devices.entries[pool[index]];
            if entry.jobs.len() as u32 >= entry.max_in_flight {
                pool.remove(index);
                long = self.pool_sends_multipart(&pool);
            }
        }

        for (device, jobs) in offers {
            actions.push(self.in_flight(&device));
            actions.push(Action::Offer { device, jobs });
        }
        actions
    }

    /// Offers `device` the messages pinned to it that it can take now, looking past up to
    /// [`LOOKAHEAD`] that it cannot take now (a SIM out of quota, a slot it lacks), so that
    /// none of those holds up the messages behind it. Returns the messages it can never
    /// take (several parts, and it does not send multipart messages), taken out of the
    /// queue to be failed.
    fn dispatch_pinned(
        &mut self,
        device: &DeviceId,
        now: Millis,
        offers: &mut HashMap<DeviceId, Vec<(QueuedMessage, Option<u8>)>>,
    ) -> Vec<uuid::Uuid> {
        let mut unsendable = Vec::new();
        let mut cursor: Option<Rank> = None;
        let mut misses = 0;
        while misses < LOOKAHEAD {
            let Some(entry) = self.devices.get(device) else {
                break;
            };
            let multipart = entry.multipart;
            // Nothing at all goes to a device that is full, has no usable status or rests.
            let open = entry.health.is_some() && (entry.jobs.len() as u32) < entry.max_in_flight;
            if !open || self.rested(device, now) {
                break;
            }
            let Some(queue) = self.pinned.get_mut(device) else {
                break;
            };
            let Some(key) = next_after(queue, cursor) else {
                break;
            };
            let Some(message) = queue.remove(&key) else {
                break;
            };
            if message.parts > 1 && !multipart {
                self.places.remove(&message.id);
                if let Some(count) = self.waiting_by_key.get_mut(&message.api_key) {
                    *count = count.saturating_sub(1);
                }
                unsendable.push(message.id);
                continue;
            }
            match self.candidate(device, &message, now) {
                Some(candidate) => {
                    self.places.remove(&message.id);
                    self.assign(device, message, candidate.sim_slot, now, offers);
                }
                None => {
                    if let Some(queue) = self.pinned.get_mut(device) {
                        queue.insert(key, message);
                    }
                    cursor = Some(key);
                    misses += 1;
                }
            }
        }
        unsendable
    }

    /// Whether a device of `pool` (indexes of devices with room) sends multipart messages.
    fn pool_sends_multipart(&self, pool: &[usize]) -> bool {
        pool.iter().any(|at| self.devices.entries[*at].multipart)
    }

    /// Books `message` as offered to `device` (and `sim`): its attempt, the SIM's quota and
    /// pacing (with jitter), the offer's lease; the offer joins `offers`.
    fn assign(
        &mut self,
        device: &DeviceId,
        mut message: QueuedMessage,
        sim: Option<u8>,
        now: Millis,
        offers: &mut HashMap<DeviceId, Vec<(QueuedMessage, Option<u8>)>>,
    ) {
        if let Some(count) = self.waiting_by_key.get_mut(&message.api_key) {
            *count = count.saturating_sub(1);
        }
        message.attempts += 1;
        let Some(entry) = self.devices.get_mut(device) else {
            return;
        };
        let limits = entry.limits_of(sim.unwrap_or(0));
        entry.jobs.insert(
            message.id,
            Held::Offered {
                message: message.clone(),
                sim,
            },
        );
        let extra = if limits.jitter_ms > 0 {
            self.rng.random_range(0..=limits.jitter_ms)
        } else {
            0
        };
        let usage = sim_usage(&mut self.sims, device, sim.unwrap_or(0));
        usage.record(
            &limits,
            now,
            message.parts,
            message.recipient.as_str(),
            message.id,
            extra,
        );
        note_pacing(&mut self.pacing, usage, now);
        self.leases.insert((
            now.saturating_add(self.config.offer_lease_ms),
            message.id,
            device.clone(),
        ));
        offers
            .entry(device.clone())
            .or_default()
            .push((message, sim));
    }
}

/// The first key of `queue` after `cursor` (from the start without one).
fn next_after(queue: &BTreeMap<Rank, QueuedMessage>, cursor: Option<Rank>) -> Option<Rank> {
    match cursor {
        None => queue.keys().next().copied(),
        Some(after) => queue
            .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .next()
            .map(|(key, _)| *key),
    }
}

/// Scores a connected device for `message` (rests aside): capabilities, health cached from
/// its last status, load, its SIMs' cards (enabled, own limits), the routing `rule` being
/// tried, quotas and pacing (not looked up for a SIM without limits).
fn entry_candidate(
    entry: &DeviceEntry,
    sims: &mut HashMap<DeviceId, HashMap<u8, SimUsage>>,
    message: &QueuedMessage,
    now: Millis,
    rule: Option<&RoutingRule>,
) -> Option<scoring::Candidate> {
    if message.parts > 1 && !entry.multipart {
        return None;
    }
    // A message of a key restricted to some devices (or SIMs) goes only through those.
    if let Some(allowed) = &message.allowed
        && !allowed.allows_device(&entry.name)
    {
        return None;
    }
    let usable = |sim: u8| {
        let allowed = message
            .allowed
            .as_ref()
            .is_none_or(|it| it.allows_slot(&entry.name, sim));
        if !allowed {
            return false;
        }
        // The common case, no managed card and no rule: the device's limits, nothing more.
        let policy = if entry.slots.is_empty() {
            None
        } else {
            entry.slot(sim)
        };
        if policy.is_some_and(|it| !it.enabled) {
            return false;
        }
        if let Some(rule) = rule
            && !rule.admits(
                policy.and_then(|it| it.label.as_deref()),
                policy.and_then(|it| it.operator.as_deref()),
            )
        {
            return false;
        }
        let limits = policy.and_then(|it| it.limits).unwrap_or(entry.limits);
        limits.is_unlimited()
            || sim_usage(sims, &entry.name, sim)
                .check(&limits, now, message.parts, message.recipient.as_str())
                .is_ok()
    };
    entry.health.as_ref()?.candidate(
        entry.jobs.len() as u32,
        entry.max_in_flight,
        message.sim_slot,
        usable,
    )
}
