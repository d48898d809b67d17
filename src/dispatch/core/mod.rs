//! The dispatcher's pure core: which message waits where, which device holds which job, and
//! every deadline (schedules, retry backoff, validity, offer leases, outcome timeouts, rests,
//! pacing).
//!
//! Pure: it does no I/O, reads no clock, spawns nothing and never touches tokio; its only
//! randomness is the pacing jitter, from a generator seeded with [`DispatchConfig::seed`].
//! Every input carries `now`, and every decision comes out as an [`Action`] for the shell
//! (`dispatch/mod.rs`) to carry out against the store and the devices. [`Core::next_wake`]
//! says when time alone will next change something. That makes every timer testable with
//! tokio's paused clock, and keeps the policies in one place.
//!
//! This file holds the types the shell sees and the core's state; each job has its own file:
//! - `queue`: the waiting messages (`enqueue`, `waiting`, `waiting_for_key`);
//! - `devices`: the connected devices (`connected`, `status`, `set_limits`, `disconnected`,
//!   `removed`);
//! - `jobs`: the jobs devices hold (`owned`, `finished`, `rejected`, `offer_refused`,
//!   `cancel`, `restore_owned`);
//! - `choose`: dispatch passes (`dispatch`) and sticky routes;
//! - `sims`: SIM quotas and pacing (`replay_send`, `quotas`);
//! - `breaker`: rests after failures in a row;
//! - `timers`: `next_wake` and `tick`;
//! - `explain`: `why_waiting`;
//! - `sim_cards`: managed SIM cards bound to device slots (enabled flag, own limits, label);
//! - `routing`: routing rules by number prefix (`put_route`).

mod breaker;
mod choose;
mod devices;
mod explain;
mod jobs;
mod queue;
mod routing;
mod sim_cards;
mod sims;
mod timers;

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand::rngs::StdRng;
use uuid::Uuid;

use self::breaker::Breaker;
use self::devices::Devices;
use self::jobs::OwnedJob;
use self::queue::{Place, Rank};
use self::routing::Routes;

pub use self::routing::RoutingRule;
pub use self::sim_cards::{ReportedSim, SimCard};
pub use self::sims::SimQuota;
use super::FastMap as HashMap;
use super::QueuedMessage;
use super::limits::{Limits, SimUsage};
use super::scoring::ScoringConfig;
use crate::domain::FailureCode;
use crate::domain::{DeviceId, Millis};
use crate::registry::RevokeReason;

/// Tunables of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Which devices may get a job, by their status.
    pub scoring: ScoringConfig,
    /// How long a device has to accept an offer before it goes elsewhere.
    pub offer_lease_ms: Millis,
    /// How long an accepted job may go without an outcome before it fails `outcome_unknown`.
    pub outcome_timeout_ms: Millis,
    /// Offers allowed per message before a temporary failure becomes final.
    pub max_attempts: u32,
    /// Retry backoff: `base × 2^(attempt−1)`, at most `cap`.
    pub retry_base_ms: Millis,
    /// The longest retry backoff (see `retry_base_ms`).
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
    /// The device sent it.
    Sent,
    /// A final failure.
    Failed { code: FailureCode },
    /// A temporary failure that the store sent back to the queue.
    Retried { code: FailureCode },
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Commit `dispatched` for these jobs, then send them to the device.
    Offer {
        device: DeviceId,
        jobs: Vec<(QueuedMessage, Option<u8>)>,
    },
    /// Commit `dispatched → queued` for these offers, then hand them back with `Requeued`.
    Requeue {
        device: DeviceId,
        messages: Vec<QueuedMessage>,
        reason: String,
    },
    /// Tell the device to drop these jobs.
    Revoke {
        device: DeviceId,
        ids: Vec<Uuid>,
        reason: RevokeReason,
    },
    /// Commit `expired` for these messages.
    Expire { ids: Vec<Uuid> },
    /// Commit "not sent, retry" for these accepted jobs: the device says it never sent them.
    Disown {
        device: DeviceId,
        ids: Vec<Uuid>,
        reason: String,
    },
    /// Commit `failed outcome_unknown` for these accepted jobs.
    OutcomeUnknown {
        device: DeviceId,
        ids: Vec<Uuid>,
        reason: String,
    },
    /// Fail these messages: their pinned device was removed.
    FailRemoved { device: DeviceId, ids: Vec<Uuid> },
    /// Fail these messages `unsupported`: their pinned device cannot send multipart messages
    /// and they have several parts, so it can never take them.
    FailUnsendable { device: DeviceId, ids: Vec<Uuid> },
    /// Load these messages from the store and enqueue them (the core lost their content).
    Reload { ids: Vec<Uuid> },
    /// Show the device's in-flight count.
    InFlight { device: DeviceId, count: u32 },
    /// Show the device as rested until `until` (or no longer rested).
    Rest {
        device: DeviceId,
        until: Option<Millis>,
        reason: Option<String>,
    },
}

/// The dispatcher's state.
pub struct Core {
    /// Tunables, fixed at start.
    config: DispatchConfig,
    /// Draws the pacing jitter; seeded, so runs repeat.
    rng: StdRng,
    /// Due one-part messages any device may take, in rank order.
    ready: BTreeMap<Rank, QueuedMessage>,
    /// Due multipart messages any device may take, in rank order: apart, so that a pass
    /// skips them at no cost when no device with room sends multipart messages, and they
    /// never hold up the one-part messages behind them.
    ready_long: BTreeMap<Rank, QueuedMessage>,
    /// Due messages that name their device, per device, in rank order.
    pinned: HashMap<DeviceId, BTreeMap<Rank, QueuedMessage>>,
    /// Messages not due yet, by the instant they fall due.
    later: BTreeMap<(Millis, Uuid), QueuedMessage>,
    /// Where each waiting message is, by id.
    places: HashMap<Uuid, (Place, Rank)>,
    /// Validity deadlines of waiting and offered messages.
    expiries: BTreeSet<(Millis, Uuid)>,
    /// Offer leases: (until, message, device).
    leases: BTreeSet<(Millis, Uuid, DeviceId)>,
    /// Outcome deadlines of accepted jobs: (until, message, device).
    outcome_deadlines: BTreeSet<(Millis, Uuid, DeviceId)>,
    /// The connected devices.
    devices: Devices,
    /// Accepted jobs of devices that are offline, per device.
    owned_offline: HashMap<DeviceId, HashMap<Uuid, OwnedJob>>,
    /// Quota windows per device and SIM slot; they outlive a connection.
    sims: HashMap<DeviceId, HashMap<u8, SimUsage>>,
    /// Every SIM's end of pacing still to come (`SimUsage::next_at`), so the next wake is
    /// found without visiting every SIM; instants already past are dropped lazily.
    pacing: BTreeSet<Millis>,
    /// The device and SIM that last sent to each recipient.
    sticky: HashMap<String, (DeviceId, u8)>,
    /// Circuit breakers per device; they outlive sessions.
    breakers: HashMap<DeviceId, Breaker>,
    /// Waiting messages per API key.
    waiting_by_key: HashMap<Option<Uuid>, usize>,
    /// Managed SIM cards, by id.
    cards: HashMap<Uuid, SimCard>,
    /// The SIMs each device reported at its last `hello`.
    reported: HashMap<DeviceId, Vec<ReportedSim>>,
    /// The enabled routing rules.
    routes: Routes,
}

impl Core {
    /// A core with nothing waiting and no device connected.
    pub fn new(config: DispatchConfig) -> Core {
        let rng = StdRng::seed_from_u64(config.seed);
        Core {
            config,
            rng,
            ready: BTreeMap::new(),
            ready_long: BTreeMap::new(),
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
            cards: HashMap::default(),
            reported: HashMap::default(),
            routes: Routes::default(),
        }
    }

    /// A routing rule was created or changed (a disabled one is dropped).
    pub fn put_route(&mut self, rule: RoutingRule, enabled: bool) {
        if enabled {
            self.routes.put(rule);
        } else {
            self.routes.remove(rule.id);
        }
    }

    /// A routing rule was deleted.
    pub fn remove_route(&mut self, id: Uuid) {
        self.routes.remove(id);
    }

    /// The tunables it was made with.
    pub fn config(&self) -> &DispatchConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests;
