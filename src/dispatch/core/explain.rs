//! Explaining why a message is not with a device yet, in words for the API: its schedule or
//! retry backoff, its device being offline, or for each device the first thing that keeps it
//! from taking the message (a rest, a capability, no status yet, its load, its battery, a SIM
//! without service, disabled, not allowed by the routing rules of its number, or out of
//! quota).
//!
//! Pure and only a look: no I/O, no clock reads, and it must decide nothing nor change what
//! the dispatcher decides by (at most it creates an empty quota window for a SIM it checks).

use uuid::Uuid;

use super::Core;
use super::queue::Place;
use super::routing::RoutingRule;
use super::sims::sim_usage;
use crate::dispatch::QueuedMessage;
use crate::dispatch::scoring;
use crate::domain::{DeviceId, Millis, format_millis};

impl Core {
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
            Place::Ready => self
                .ready
                .get(&key)
                .or_else(|| self.ready_long.get(&key))?
                .clone(),
            Place::Pinned => self.pinned.values().find_map(|it| it.get(&key))?.clone(),
        };
        let devices: Vec<DeviceId> = match &message.device_id {
            Some(device) if !self.devices.contains_key(device) => {
                return Some(format!("waiting for device {device}, which is offline"));
            }
            Some(device) => vec![device.clone()],
            None => self.devices.iter().map(|(name, _)| name.clone()).collect(),
        };
        if devices.is_empty() {
            return Some("no device is online".into());
        }
        // Routing rules apply to messages that do not name their device.
        let mut rules: Vec<RoutingRule> = Vec::new();
        if message.device_id.is_none() {
            let mut tiers = Vec::new();
            self.routes.matching(message.recipient.as_str(), &mut tiers);
            rules.extend(tiers.iter().map(|at| self.routes.get(*at).clone()));
        }
        let mut reasons = Vec::new();
        for device in devices {
            reasons.push(format!(
                "{device}: {}",
                self.device_reason(&device, &message, &rules, now)
            ));
        }
        reasons.sort();
        if !rules.is_empty() {
            let held: Vec<String> = rules.iter().map(RoutingRule::describe).collect();
            return Some(format!(
                "held back by {}: no SIM it allows can take it now ({})",
                held.join(", then "),
                reasons.join("; ")
            ));
        }
        Some(format!(
            "no device can take it now ({})",
            reasons.join("; ")
        ))
    }

    /// What keeps `device` from taking `message` now, or "eligible".
    fn device_reason(
        &mut self,
        device: &DeviceId,
        message: &QueuedMessage,
        rules: &[RoutingRule],
        now: Millis,
    ) -> String {
        if let Some(breaker) = self
            .breakers
            .get(device)
            .filter(|it| it.rested_until.is_some_and(|until| until > now))
        {
            let until = format_millis(breaker.rested_until.unwrap_or(now));
            return match &breaker.reason {
                Some(reason) => format!("rested until {until}: {reason}"),
                None => format!("rested after repeated failures until {until}"),
            };
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
        if status.sims.is_empty() {
            return "reports no SIM".into();
        }
        let policies = entry.slots.clone();
        let device_limits = entry.limits;
        let mut sim_reasons = Vec::new();
        for sim in &status.sims {
            if message.sim_slot.is_some_and(|it| it != sim.slot) {
                continue;
            }
            if scoring::signal(sim).is_none() {
                sim_reasons.push(format!("SIM {} has no service", sim.slot));
                continue;
            }
            let policy = policies.iter().find(|it| it.slot == sim.slot);
            if policy.is_some_and(|it| !it.enabled) {
                sim_reasons.push(format!("SIM {} is disabled", sim.slot));
                continue;
            }
            let label = policy.and_then(|it| it.label.as_deref());
            let operator = policy.and_then(|it| it.operator.as_deref());
            if !rules.is_empty() && !rules.iter().any(|it| it.admits(label, operator)) {
                let names: Vec<String> = rules.iter().map(|it| format!("{:?}", it.name)).collect();
                sim_reasons.push(format!(
                    "SIM {} is not allowed by routing rule {}",
                    sim.slot,
                    names.join(" or ")
                ));
                continue;
            }
            let limits = policy.and_then(|it| it.limits).unwrap_or(device_limits);
            let usage = sim_usage(&mut self.sims, device, sim.slot);
            if let Err(blocked) =
                usage.check(&limits, now, message.parts, message.recipient.as_str())
            {
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
