//! The sending quotas and pacing of every SIM, kept per device and SIM slot (`sims`), and the
//! instants still to come at which a SIM's pacing ends (`pacing`, so the next wake is found
//! without visiting every SIM). They outlive a device's connection, and `replay_send`
//! rebuilds them after a restart.
//!
//! Pure: no I/O, no clock reads (time comes in as `now`), no randomness of its own (pacing
//! jitter is drawn from the core's seeded generator by the caller).

use std::collections::BTreeSet;

use uuid::Uuid;

use super::Core;
use crate::dispatch::FastMap as HashMap;
use crate::dispatch::limits::SimUsage;
use crate::domain::{DeviceId, Millis};

impl Core {
    /// Gives back the quota an offer took: it was never sent.
    pub(super) fn refund(&mut self, device: &DeviceId, sim: Option<u8>, id: Uuid) {
        if let Some(usage) = self
            .sims
            .get_mut(device)
            .and_then(|it| it.get_mut(&sim.unwrap_or(0)))
        {
            usage.refund(id);
        }
    }

    /// Records an offer made before a restart, so quotas and sticky routes survive it.
    pub fn replay_send(
        &mut self,
        device: &DeviceId,
        sim: Option<u8>,
        recipient: &str,
        parts: u32,
        at: Millis,
    ) {
        let limits = self.config.limits;
        let usage = sim_usage(&mut self.sims, device, sim.unwrap_or(0));
        usage.record(&limits, at, parts, recipient, Uuid::nil(), 0);
        note_pacing(&mut self.pacing, usage, at);
        self.sticky
            .insert(recipient.to_string(), (device.clone(), sim.unwrap_or(0)));
    }
}

/// Remembers when `usage`'s pacing ends, if that is still to come at `now`.
pub(super) fn note_pacing(pacing: &mut BTreeSet<Millis>, usage: &SimUsage, now: Millis) {
    if usage.next_at > now {
        pacing.insert(usage.next_at);
    }
}

/// The quota window of one SIM, created on first use (looked up without allocating).
pub(super) fn sim_usage<'a>(
    sims: &'a mut HashMap<DeviceId, HashMap<u8, SimUsage>>,
    device: &DeviceId,
    slot: u8,
) -> &'a mut SimUsage {
    if !sims.contains_key(device) {
        sims.insert(device.clone(), HashMap::default());
    }
    sims.get_mut(device)
        .expect("inserted above")
        .entry(slot)
        .or_default()
}
