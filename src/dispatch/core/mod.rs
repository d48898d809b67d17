//! The dispatcher's state machine: which message waits where, which device holds which job,
//! and every deadline (schedules, retry backoff, validity, offer leases, outcome timeouts,
//! rest periods, pacing).
//!
//! Pure: it does no I/O and reads no clock. Every input carries `now`, and every decision
//! comes out as an [`Action`] for the shell (`dispatch/mod.rs`) to carry out against the
//! store and the devices. [`Core::next_wake`] says when time alone will next change
//! something. That makes every timer testable with tokio's paused clock, and keeps the
//! policies in one place.

mod breaker;
mod devices;
mod jobs;
mod queue;
mod sims;
mod timers;

use std::collections::{BTreeMap, BTreeSet};

use super::FastMap as HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use self::breaker::Breaker;
use self::devices::{DeviceEntry, Devices};
use self::jobs::{Held, OwnedJob};
use self::queue::{Place, Rank, rank};
use self::sims::{note_pacing, sim_usage};
use super::QueuedMessage;
use super::limits::{Limits, SimUsage};
use super::scoring::{self, ScoringConfig};
use crate::domain::{Millis, format_millis};

/// Tunables of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub scoring: ScoringConfig,
    /// How long a device has to accept an offer before it goes elsewhere.
    pub offer_lease_ms: Millis,
    /// How long an accepted job may go without an outcome before it fails `outcome_unknown`.
    pub outcome_timeout_ms: Millis,
    /// Offers allowed per message before a temporary failure becomes final.
    pub max_attempts: u32,
    /// Retry backoff: `base × 2^(attempt−1)`, at most `cap`.
    pub retry_base_ms: Millis,
    pub retry_cap_ms: Millis,
    /// Consecutive failures after which a device is rested.
    pub breaker_failures: u32,
    /// First rest period; each further rest in a row doubles it, up to 16×.
    pub breaker_rest_ms: Millis,
    /// Default sending limits of every SIM (a device's own limits replace them).
    pub limits: Limits,
    /// Seed of the pacing jitter, so runs can be repeated.
    pub seed: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            scoring: ScoringConfig::default(),
            offer_lease_ms: 30_000,
            outcome_timeout_ms: 3_600_000,
            max_attempts: 3,
            retry_base_ms: 5_000,
            retry_cap_ms: 300_000,
            breaker_failures: 5,
            breaker_rest_ms: 60_000,
            limits: Limits::default(),
            seed: 0x5eed,
        }
    }
}

/// How a device's job ended, as far as the dispatcher cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    Sent,
    /// A final failure.
    Failed {
        code: String,
    },
    /// A temporary failure that the store sent back to the queue.
    Retried {
        code: String,
    },
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Commit `dispatched` for these jobs, then send them to the device.
    Offer {
        device: String,
        jobs: Vec<(QueuedMessage, Option<u8>)>,
    },
    /// Commit `dispatched → queued` for these offers, then hand them back with `Requeued`.
    Requeue {
        device: String,
        messages: Vec<QueuedMessage>,
        reason: String,
    },
    /// Tell the device to drop these jobs.
    Revoke {
        device: String,
        ids: Vec<Uuid>,
        reason: &'static str,
    },
    /// Commit `expired` for these messages.
    Expire { ids: Vec<Uuid> },
    /// Commit "not sent, retry" for these accepted jobs: the device says it never sent them.
    Disown {
        device: String,
        ids: Vec<Uuid>,
        reason: String,
    },
    /// Commit `failed outcome_unknown` for these accepted jobs.
    OutcomeUnknown {
        device: String,
        ids: Vec<Uuid>,
        reason: String,
    },
    /// Fail these messages: their pinned device was removed.
    FailRemoved { device: String, ids: Vec<Uuid> },
    /// Load these messages from the store and enqueue them (the core lost their content).
    Reload { ids: Vec<Uuid> },
    /// Show the device's in-flight count.
    InFlight { device: String, count: u32 },
    /// Show the device as rested until `until` (or no longer rested).
    Rest {
        device: String,
        until: Option<Millis>,
        reason: Option<String>,
    },
}

/// The dispatcher's state.
pub struct Core {
    config: DispatchConfig,
    rng: StdRng,
    ready: BTreeMap<Rank, QueuedMessage>,
    pinned: HashMap<String, BTreeMap<Rank, QueuedMessage>>,
    later: BTreeMap<(Millis, Uuid), QueuedMessage>,
    places: HashMap<Uuid, (Place, Rank)>,
    expiries: BTreeSet<(Millis, Uuid)>,
    leases: BTreeSet<(Millis, Uuid, String)>,
    outcome_deadlines: BTreeSet<(Millis, Uuid, String)>,
    devices: Devices,
    owned_offline: HashMap<String, HashMap<Uuid, OwnedJob>>,
    /// Quota windows per device and SIM slot; they outlive a connection.
    sims: HashMap<String, HashMap<u8, SimUsage>>,
    /// Every SIM's end of pacing still to come (`SimUsage::next_at`), so the next wake is
    /// found without visiting every SIM; instants already past are dropped lazily.
    pacing: BTreeSet<Millis>,
    sticky: HashMap<String, (String, u8)>,
    breakers: HashMap<String, Breaker>,
    waiting_by_key: HashMap<Option<Uuid>, usize>,
}

/// How far past an unplaceable message the queue is searched for one that fits elsewhere.
const LOOKAHEAD: usize = 64;
/// Sticky routes remembered at most.
const STICKY_MAX: usize = 200_000;

impl Core {
    pub fn new(config: DispatchConfig) -> Core {
        let rng = StdRng::seed_from_u64(config.seed);
        Core {
            config,
            rng,
            ready: BTreeMap::new(),
            pinned: HashMap::default(),
            later: BTreeMap::new(),
            places: HashMap::default(),
            expiries: BTreeSet::new(),
            leases: BTreeSet::new(),
            outcome_deadlines: BTreeSet::new(),
            devices: Devices::default(),
            owned_offline: HashMap::default(),
            sims: HashMap::default(),
            pacing: BTreeSet::new(),
            sticky: HashMap::default(),
            breakers: HashMap::default(),
            waiting_by_key: HashMap::default(),
        }
    }

    pub fn config(&self) -> &DispatchConfig {
        &self.config
    }

    // ----- inputs -------------------------------------------------------------------------

    // ----- time ---------------------------------------------------------------------------

    // ----- choosing devices ---------------------------------------------------------------

    /// Scores `device` for `message`, honouring rests, capabilities, quotas and pacing.
    fn candidate(
        &mut self,
        device: &str,
        message: &QueuedMessage,
        now: Millis,
    ) -> Option<scoring::Candidate> {
        if self.rested(device, now) {
            return None;
        }
        let entry = self.devices.get(device)?;
        entry_candidate(entry, &mut self.sims, message, now)
    }

    /// Offers every waiting message that some device can take now.
    pub fn dispatch(&mut self, now: Millis) -> Vec<Action> {
        // Status reports from thousands of idle phones must not cost a pass each.
        if self.ready.is_empty() && self.pinned.is_empty() {
            return Vec::new();
        }
        let mut offers: HashMap<String, Vec<(QueuedMessage, Option<u8>)>> = HashMap::default();

        // Pinned messages: only their device can take them.
        let pinned_devices: Vec<String> = self
            .pinned
            .keys()
            .filter(|it| self.devices.contains_key(it))
            .cloned()
            .collect();
        for device in pinned_devices {
            while let Some(message) = self
                .pinned
                .get(&device)
                .and_then(|it| it.values().next())
                .cloned()
            {
                let Some(candidate) = self.candidate(&device, &message, now) else {
                    break;
                };
                if let Some(queue) = self.pinned.get_mut(&device) {
                    queue.remove(&rank(&message));
                }
                self.places.remove(&message.id);
                self.assign(&device, message, candidate.sim_slot, now, &mut offers);
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
        let mut misses = 0;
        let mut cursor: Option<Rank> = None;
        while misses < LOOKAHEAD && !pool.is_empty() {
            let next = match cursor {
                None => self.ready.iter().next(),
                Some(after) => self
                    .ready
                    .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .next(),
            };
            // Taken out while it is placed (no clone); put back if nothing can take it.
            let Some(key) = next.map(|(key, _)| *key) else {
                break;
            };
            let Some(message) = self.ready.remove(&key) else {
                break;
            };
            let sticky = self.sticky.get(&message.to);
            candidates.clear();
            let mut sticky_pick = None;
            for avoid_pass in [true, false] {
                if !avoid_pass && message.avoid.is_empty() {
                    break;
                }
                for (index, at) in pool.iter().enumerate() {
                    let entry = &self.devices.entries[*at];
                    if avoid_pass == message.avoid.iter().any(|it| **it == *entry.name) {
                        continue;
                    }
                    let Some(candidate) = entry_candidate(entry, &mut self.sims, &message, now)
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
                self.ready.insert(key, message);
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
            }
        }

        let mut actions = Vec::new();
        for (device, jobs) in offers {
            actions.push(self.in_flight(&device));
            actions.push(Action::Offer { device, jobs });
        }
        actions
    }

    fn assign(
        &mut self,
        device: &str,
        mut message: QueuedMessage,
        sim: Option<u8>,
        now: Millis,
        offers: &mut HashMap<String, Vec<(QueuedMessage, Option<u8>)>>,
    ) {
        if let Some(count) = self.waiting_by_key.get_mut(&message.api_key) {
            *count = count.saturating_sub(1);
        }
        message.attempts += 1;
        let Some(entry) = self.devices.get_mut(device) else {
            return;
        };
        let limits = entry.limits;
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
        usage.record(&limits, now, message.parts, &message.to, message.id, extra);
        note_pacing(&mut self.pacing, usage, now);
        self.leases.insert((
            now.saturating_add(self.config.offer_lease_ms),
            message.id,
            device.to_string(),
        ));
        offers
            .entry(device.to_string())
            .or_default()
            .push((message, sim));
    }

    // ----- explaining ---------------------------------------------------------------------

    /// Why a message is not with a device yet, or `None` if the core does not hold it.
    pub fn why_waiting(&mut self, id: Uuid, now: Millis) -> Option<String> {
        if let Some((device, _)) = self
            .devices
            .iter()
            .find(|(_, entry)| entry.jobs.contains_key(&id))
        {
            return Some(format!(
                "offered to device {device}, waiting for it to accept"
            ));
        }
        let (place, key) = *self.places.get(&id)?;
        let message = match place {
            Place::Later(at) => {
                let message = self.later.get(&(at, id))?;
                return Some(if message.attempts > 0 {
                    format!(
                        "retrying after a temporary failure, not before {}",
                        format_millis(at)
                    )
                } else {
                    format!("scheduled for {}", format_millis(at))
                });
            }
            Place::Ready => self.ready.get(&key)?.clone(),
            Place::Pinned => self.pinned.values().find_map(|it| it.get(&key))?.clone(),
        };
        let devices: Vec<String> = match &message.device_id {
            Some(device) if !self.devices.contains_key(device) => {
                return Some(format!("waiting for device {device}, which is offline"));
            }
            Some(device) => vec![device.clone()],
            None => self
                .devices
                .iter()
                .map(|(name, _)| name.to_string())
                .collect(),
        };
        if devices.is_empty() {
            return Some("no device is online".into());
        }
        let mut reasons = Vec::new();
        for device in devices {
            reasons.push(format!(
                "{device}: {}",
                self.device_reason(&device, &message, now)
            ));
        }
        reasons.sort();
        Some(format!(
            "no device can take it now ({})",
            reasons.join("; ")
        ))
    }

    fn device_reason(&mut self, device: &str, message: &QueuedMessage, now: Millis) -> String {
        if let Some(until) = self
            .breakers
            .get(device)
            .and_then(|it| it.rested_until)
            .filter(|it| *it > now)
        {
            return format!(
                "rested after repeated failures until {}",
                format_millis(until)
            );
        }
        let Some(entry) = self.devices.get(device) else {
            return "offline".into();
        };
        if message.parts > 1 && !entry.multipart {
            return "does not send multipart messages".into();
        }
        let Some(status) = entry.status.clone() else {
            return "has not reported its status yet".into();
        };
        if entry.jobs.len() as u32 >= entry.max_in_flight {
            return format!("at its in-flight limit of {}", entry.max_in_flight);
        }
        if let Some(battery) = status.battery
            && !battery.charging
            && battery.level < self.config.scoring.min_battery
        {
            return format!("battery at {}% and not charging", battery.level);
        }
        let limits = entry.limits;
        let mut sim_reasons = Vec::new();
        for sim in &status.sims {
            if message.sim_slot.is_some_and(|it| it != sim.slot) {
                continue;
            }
            if scoring::signal(sim).is_none() {
                sim_reasons.push(format!("SIM {} has no service", sim.slot));
                continue;
            }
            let usage = sim_usage(&mut self.sims, device, sim.slot);
            if let Err(blocked) = usage.check(&limits, now, message.parts, &message.to) {
                sim_reasons.push(format!("SIM {} {blocked}", sim.slot));
            }
        }
        if sim_reasons.is_empty() {
            if let Some(slot) = message.sim_slot
                && !status.sims.iter().any(|it| it.slot == slot)
            {
                return format!("has no SIM in slot {slot}");
            }
            return "eligible".into();
        }
        sim_reasons.join(", ")
    }
}

/// Scores a connected device for `message` (rests aside): capabilities, health cached from
/// its last status, load, quotas and pacing (not looked up for a SIM without limits).
fn entry_candidate(
    entry: &DeviceEntry,
    sims: &mut HashMap<String, HashMap<u8, SimUsage>>,
    message: &QueuedMessage,
    now: Millis,
) -> Option<scoring::Candidate> {
    if message.parts > 1 && !entry.multipart {
        return None;
    }
    let usable = |sim: u8| {
        entry.limits.is_unlimited()
            || sim_usage(sims, &entry.name, sim)
                .check(&entry.limits, now, message.parts, &message.to)
                .is_ok()
    };
    entry.health.as_ref()?.candidate(
        entry.jobs.len() as u32,
        entry.max_in_flight,
        message.sim_slot,
        usable,
    )
}

#[cfg(test)]
mod tests;
