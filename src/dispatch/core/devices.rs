//! The connected devices: one [`DeviceEntry`] per open session (capabilities, last status and
//! the health scored from it, the jobs it holds, its round-robin credit, its sending limits),
//! kept in a vector so a dispatch pass walks them without hashing. Sessions opening, reporting
//! status and ending, and devices being removed. The accepted jobs of a device that is offline
//! wait in `owned_offline` and return to it when it reconnects.
//!
//! Pure: no I/O and no clock reads; what the shell must tell the store or a device comes out
//! as [`Action`]s.

use smshub_protocol::device::{Capabilities, Status};
use uuid::Uuid;

use super::jobs::Held;
use super::{Action, Core};
use crate::dispatch::FastMap as HashMap;
use crate::dispatch::limits::Limits;
use crate::dispatch::scoring;
use crate::domain::{DeviceId, Millis};

/// A connected device: its session, capabilities, last status, the jobs it holds, its share of
/// the round-robin and its sending limits. (Not a SIM slot: those are `u8` numbers.)
#[derive(Debug)]
pub(super) struct DeviceEntry {
    /// The device's id, shared with dispatch passes.
    pub(super) name: DeviceId,
    /// The session this entry belongs to; events from an older one are ignored.
    session: u64,
    /// How many jobs (offered or accepted) it may hold at once.
    pub(super) max_in_flight: u32,
    /// Whether it sends multipart messages.
    pub(super) multipart: bool,
    /// Its last reported status.
    pub(super) status: Option<Status>,
    /// What `status` says for scoring; `None` without status or when it must get no job.
    pub(super) health: Option<scoring::Health>,
    /// The jobs it holds, offered or accepted.
    pub(super) jobs: HashMap<Uuid, Held>,
    /// Its running credit in the smooth weighted round-robin.
    pub(super) credit: f64,
    /// Its sending limits: its own, else the configured defaults.
    pub(super) limits: Limits,
    /// Its slots' managed cards (enabled, own limits, label, operator); empty when none.
    pub(super) slots: Vec<super::sim_cards::SlotPolicy>,
}

impl DeviceEntry {
    /// The policy of the SIM in `slot`, if the slot is known.
    pub(super) fn slot(&self, slot: u8) -> Option<&super::sim_cards::SlotPolicy> {
        self.slots.iter().find(|it| it.slot == slot)
    }

    /// The limits of the SIM in `slot`: its card's own, else the device's.
    pub(super) fn limits_of(&self, slot: u8) -> Limits {
        self.slot(slot)
            .and_then(|it| it.limits)
            .unwrap_or(self.limits)
    }
}

/// The connected devices: entries in a vector, so a dispatch pass walks them without hashing,
/// and an index by id.
#[derive(Default)]
pub(super) struct Devices {
    pub(super) entries: Vec<DeviceEntry>,
    index: HashMap<DeviceId, usize>,
}

impl Devices {
    /// The entry of `device`, if it is connected.
    pub(super) fn get(&self, device: &str) -> Option<&DeviceEntry> {
        self.index.get(device).map(|at| &self.entries[*at])
    }

    /// The entry of `device`, if it is connected, to change.
    pub(super) fn get_mut(&mut self, device: &str) -> Option<&mut DeviceEntry> {
        self.index.get(device).map(|at| &mut self.entries[*at])
    }

    /// Whether `device` is connected.
    pub(super) fn contains_key(&self, device: &str) -> bool {
        self.index.contains_key(device)
    }

    /// Adds `entry`, replacing any entry of the same device.
    fn insert(&mut self, entry: DeviceEntry) {
        match self.index.get(&entry.name) {
            Some(at) => self.entries[*at] = entry,
            None => {
                self.index.insert(entry.name.clone(), self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    /// Takes out the entry of `device` (the last entry fills its place).
    fn remove(&mut self, device: &str) -> Option<DeviceEntry> {
        let at = self.index.remove(device)?;
        let entry = self.entries.swap_remove(at);
        if let Some(moved) = self.entries.get(at) {
            self.index.insert(moved.name.clone(), at);
        }
        Some(entry)
    }

    /// Every entry, with its device's id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&DeviceId, &DeviceEntry)> {
        self.entries.iter().map(|it| (&it.name, it))
    }

    /// Every entry, with its device's id, to change.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (DeviceId, &mut DeviceEntry)> {
        self.entries.iter_mut().map(|it| (it.name.clone(), it))
    }
}

impl Core {
    /// A device session opened. `held` lists the jobs the device's journal holds, when it
    /// keeps one.
    pub fn connected(
        &mut self,
        device: &DeviceId,
        session: u64,
        capabilities: &Capabilities,
        limits: Option<Limits>,
        held: Option<&[Uuid]>,
        now: Millis,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        // A session replaced without a disconnect first: its offers go back, its owned jobs
        // carry over to the new session.
        if let Some(old) = self.devices.remove(device) {
            actions.extend(self.release_offers(device, old, "device reconnected"));
        }
        let owned = self.owned_offline.remove(device).unwrap_or_default();
        let mut jobs = HashMap::default();
        let mut lost = Vec::new();
        for (id, (message, sim)) in owned {
            if held.is_some_and(|held| !held.contains(&id)) {
                lost.push(id);
            } else {
                jobs.insert(id, Held::Owned { message, sim });
            }
        }
        let entry = DeviceEntry {
            name: device.clone(),
            session,
            max_in_flight: capabilities.max_in_flight,
            multipart: capabilities.multipart,
            status: None,
            health: None,
            jobs,
            credit: 0.0,
            limits: limits.unwrap_or(self.config.limits),
            slots: Vec::new(),
        };
        self.devices.insert(entry);
        self.rebind(device);
        if !lost.is_empty() {
            actions.push(Action::OutcomeUnknown {
                device: device.clone(),
                ids: lost,
                reason: "the device reconnected without this job in its journal".into(),
            });
        }
        actions.push(self.in_flight(device));
        if let Some(until) = self
            .breakers
            .get(device)
            .and_then(|it| it.rested_until)
            .filter(|it| *it > now)
        {
            actions.push(Action::Rest {
                device: device.clone(),
                until: Some(until),
                reason: self.rest_reason(device),
            });
        }
        actions
    }

    /// A device reported its status (ignored from a session that has ended).
    pub fn status(&mut self, device: &DeviceId, session: u64, status: Status) {
        if let Some(entry) = self.devices.get_mut(device)
            && entry.session == session
        {
            entry.health = scoring::Health::of(&status, &self.config.scoring);
            entry.status = Some(status);
        }
    }

    /// A device's sending limits changed (`None`: the configured defaults).
    pub fn set_limits(&mut self, device: &DeviceId, limits: Option<Limits>) {
        let limits = limits.unwrap_or(self.config.limits);
        if let Some(entry) = self.devices.get_mut(device) {
            entry.limits = limits;
        }
    }

    /// A device session ended: its offers go back to the queue; accepted jobs wait for it.
    pub fn disconnected(&mut self, device: &DeviceId, session: u64) -> Vec<Action> {
        if self
            .devices
            .get(device)
            .is_none_or(|it| it.session != session)
        {
            return Vec::new();
        }
        let Some(entry) = self.devices.remove(device) else {
            return Vec::new();
        };
        self.release_offers(device, entry, "device disconnected before accepting")
    }

    /// Takes a closed session's jobs: offers go back to the queue, accepted jobs wait offline.
    fn release_offers(
        &mut self,
        device: &DeviceId,
        entry: DeviceEntry,
        reason: &str,
    ) -> Vec<Action> {
        let mut offered = Vec::new();
        for (id, held) in entry.jobs {
            match held {
                Held::Offered { message, sim } => {
                    self.refund(device, sim, id);
                    offered.push(message);
                }
                Held::Owned { message, sim } => {
                    self.owned_offline
                        .entry(device.clone())
                        .or_default()
                        .insert(id, (message, sim));
                }
            }
        }
        if offered.is_empty() {
            return Vec::new();
        }
        vec![Action::Requeue {
            device: device.clone(),
            messages: offered,
            reason: reason.to_string(),
        }]
    }

    /// A device was removed: what waits for it fails.
    pub fn removed(&mut self, device: &DeviceId) -> Vec<Action> {
        self.owned_offline.remove(device);
        let Some(queue) = self.pinned.remove(device) else {
            return Vec::new();
        };
        let ids: Vec<Uuid> = queue.values().map(|it| it.id).collect();
        for message in queue.values() {
            self.places.remove(&message.id);
            if let Some(count) = self.waiting_by_key.get_mut(&message.api_key) {
                *count = count.saturating_sub(1);
            }
        }
        vec![Action::FailRemoved {
            device: device.clone(),
            ids,
        }]
    }

    /// The device's in-flight count, to show.
    pub(super) fn in_flight(&self, device: &DeviceId) -> Action {
        let count = self
            .devices
            .get(device)
            .map_or(0, |it| it.jobs.len() as u32);
        Action::InFlight {
            device: device.clone(),
            count,
        }
    }
}
