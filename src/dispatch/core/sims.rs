//! The sending quotas and pacing of every SIM, kept per device and SIM slot (`sims`), and the
//! instants still to come at which a SIM's pacing ends (`pacing`, so the next wake is found
//! without visiting every SIM). They outlive a device's connection, `replay_send` rebuilds
//! them after a restart, and `quotas` tells the API what each online device's SIMs used.
//!
//! Pure: no I/O, no clock reads (time comes in as `now`), no randomness of its own (pacing
//! jitter is drawn from the core's seeded generator by the caller).

use std::collections::BTreeSet;

use uuid::Uuid;

use super::Core;
use crate::dispatch::FastMap as HashMap;
use crate::dispatch::limits::{Limits, SimUsage, Used};
use crate::domain::{DeviceId, Millis};

/// One SIM of a connected device: the limits that apply to it and what it has used of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimQuota {
    pub slot: u8,
    /// Its card's own limits, else its device's, else the hub's defaults.
    pub limits: Limits,
    pub used: Used,
    /// No send before this instant, when that is still to come.
    pub paced_until: Option<Millis>,
}

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

    /// Each connected device's SIMs with their limits and what they used at `now`: every
    /// slot the device reported or has a card or a quota window for (slot 0 when none).
    /// Reading evicts what left the windows, nothing else changes.
    pub fn quotas(&mut self, now: Millis) -> Vec<(DeviceId, Vec<SimQuota>)> {
        let mut out = Vec::with_capacity(self.devices.entries.len());
        for entry in &self.devices.entries {
            let mut slots: Vec<u8> = entry.slots.iter().map(|it| it.slot).collect();
            if let Some(usage) = self.sims.get(&entry.name) {
                slots.extend(usage.keys().copied());
            }
            if slots.is_empty() {
                slots.push(0);
            }
            slots.sort_unstable();
            slots.dedup();
            let sims = slots
                .into_iter()
                .map(|slot| {
                    let usage = sim_usage(&mut self.sims, &entry.name, slot);
                    SimQuota {
                        slot,
                        limits: entry.limits_of(slot),
                        used: usage.used(now),
                        paced_until: (usage.next_at > now).then_some(usage.next_at),
                    }
                })
                .collect();
            out.push((entry.name.clone(), sims));
        }
        out
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
