//! Managed SIM cards as the dispatcher needs them: which card sits in each slot of a connected
//! device (by ICCID, else by device and slot), whether it may send, its own limits, its label
//! and home operator. Each device entry keeps the result per slot ([`SlotPolicy`]), worked out
//! when the device connects or a card changes, so a dispatch pass reads it without lookups.
//!
//! Pure: no I/O, no clock.

use uuid::Uuid;

use super::Core;
use crate::dispatch::limits::Limits;
use crate::domain::DeviceId;

/// A managed SIM card.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCard {
    pub id: Uuid,
    pub iccid: Option<String>,
    /// The device it is in (or was registered for) and its slot there.
    pub device: Option<DeviceId>,
    pub slot: Option<u8>,
    pub label: Option<String>,
    /// Its home operator as last reported.
    pub operator: Option<String>,
    /// A disabled card gets no job.
    pub enabled: bool,
    /// Its own limits, replacing its device's.
    pub limits: Option<Limits>,
}

/// A SIM a device reported at `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedSim {
    pub slot: u8,
    pub iccid: Option<String>,
    pub operator: Option<String>,
}

/// What the dispatcher honours for one slot of a connected device.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotPolicy {
    pub slot: u8,
    /// The card in it, if managed.
    pub card: Option<Uuid>,
    pub enabled: bool,
    pub limits: Option<Limits>,
    pub label: Option<String>,
    pub operator: Option<String>,
}

/// The policies of a device's slots from what it reported and the cards.
pub fn bind_slots<'a>(
    device: &str,
    reported: &[ReportedSim],
    cards: impl Iterator<Item = &'a SimCard> + Clone,
) -> Vec<SlotPolicy> {
    let mut out: Vec<SlotPolicy> = Vec::new();
    for sim in reported {
        let card = cards
            .clone()
            .find(|it| it.iccid.is_some() && it.iccid == sim.iccid)
            .or_else(|| {
                cards.clone().find(|it| {
                    it.device.as_deref() == Some(device)
                        && it.slot == Some(sim.slot)
                        && (it.iccid.is_none() || sim.iccid.is_none())
                })
            });
        out.push(policy(sim.slot, card, sim.operator.clone()));
    }
    // Cards registered by device and slot for slots the hello did not list.
    for card in cards {
        if card.device.as_deref() == Some(device)
            && let Some(slot) = card.slot
            && !out.iter().any(|it| it.slot == slot)
            && !(card.iccid.is_some() && reported.iter().any(|it| it.iccid.is_some()))
        {
            out.push(policy(slot, Some(card), None));
        }
    }
    out
}

fn policy(slot: u8, card: Option<&SimCard>, operator: Option<String>) -> SlotPolicy {
    SlotPolicy {
        slot,
        card: card.map(|it| it.id),
        enabled: card.is_none_or(|it| it.enabled),
        limits: card.and_then(|it| it.limits),
        label: card.and_then(|it| it.label.clone()),
        operator: operator.or_else(|| card.and_then(|it| it.operator.clone())),
    }
}

impl Core {
    /// A card was created or changed.
    pub fn put_sim_card(&mut self, card: SimCard) {
        self.cards.insert(card.id, card);
        self.rebind_all();
    }

    /// A card was deleted.
    pub fn remove_sim_card(&mut self, id: Uuid) {
        if self.cards.remove(&id).is_some() {
            self.rebind_all();
        }
    }

    /// What a device reported about its SIMs at `hello`.
    pub fn sims_reported(&mut self, device: &DeviceId, sims: Vec<ReportedSim>) {
        self.reported.insert(device.clone(), sims);
        self.rebind(device);
    }

    /// Works out the slot policies of a connected device again.
    pub(super) fn rebind(&mut self, device: &DeviceId) {
        let reported = self
            .reported
            .get(device)
            .map_or(&[][..], |it| it.as_slice());
        let slots = bind_slots(device, reported, self.cards.values());
        if let Some(entry) = self.devices.get_mut(device) {
            entry.slots = slots;
        }
    }

    fn rebind_all(&mut self) {
        let devices: Vec<DeviceId> = self.devices.iter().map(|(it, _)| it.clone()).collect();
        for device in devices {
            self.rebind(&device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(iccid: Option<&str>, device: Option<&str>, slot: Option<u8>) -> SimCard {
        SimCard {
            id: Uuid::new_v4(),
            iccid: iccid.map(str::to_string),
            device: device.map(|it| DeviceId::parse(it).unwrap()),
            slot,
            label: Some("x".into()),
            operator: None,
            enabled: false,
            limits: None,
        }
    }

    #[test]
    fn cards_bind_by_iccid_else_by_device_and_slot() {
        let dev = "dev_aaaaaaaaaaaaaaaa";
        let other = "dev_bbbbbbbbbbbbbbbb";
        let by_iccid = card(Some("8949"), Some(other), Some(1));
        let by_slot = card(None, Some(dev), Some(1));
        let unreported = card(None, Some(dev), Some(3));
        let cards = [by_iccid.clone(), by_slot.clone(), unreported.clone()];
        let reported = [
            ReportedSim {
                slot: 0,
                iccid: Some("8949".into()),
                operator: Some("Telekom".into()),
            },
            ReportedSim {
                slot: 1,
                iccid: None,
                operator: None,
            },
            ReportedSim {
                slot: 2,
                iccid: Some("7777".into()),
                operator: None,
            },
        ];
        let slots = bind_slots(dev, &reported, cards.iter());
        let of = |slot: u8| slots.iter().find(|it| it.slot == slot).unwrap();
        assert_eq!(
            of(0).card,
            Some(by_iccid.id),
            "the ICCID wins over the device"
        );
        assert_eq!(of(0).operator.as_deref(), Some("Telekom"));
        assert_eq!(of(1).card, Some(by_slot.id));
        assert!(!of(1).enabled);
        assert_eq!(of(2).card, None, "an unknown SIM is not managed");
        assert!(of(2).enabled);
        assert_eq!(of(3).card, Some(unreported.id));
    }
}
