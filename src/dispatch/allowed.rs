//! The devices (and SIMs) a message may go through: what an API key restricted to some
//! devices gives every message it sends. Stored with the message (text, `a,b:1`) so the
//! restriction survives a restart; `None` everywhere for an unrestricted key, so the
//! dispatcher's hot path pays nothing for it.
//!
//! Pure: no I/O.

use std::fmt;
use std::sync::Arc;

use crate::domain::DeviceId;

/// A non-empty list of devices, each with all its SIMs or one SIM slot. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedDevices(Arc<[(DeviceId, Option<u8>)]>);

impl AllowedDevices {
    /// Parses `DEVICE` or `DEVICE:SLOT` items, separated by commas; an empty list is `None`.
    pub fn parse(text: &str) -> Result<Option<AllowedDevices>, String> {
        let mut items = Vec::new();
        for item in text.split(',').map(str::trim).filter(|it| !it.is_empty()) {
            let (device, slot) = match item.rsplit_once(':') {
                Some((device, slot)) => {
                    let slot = slot
                        .parse::<u8>()
                        .map_err(|_| format!("bad SIM slot in {item:?} (DEVICE or DEVICE:SLOT)"))?;
                    (device, Some(slot))
                }
                None => (item, None),
            };
            let device =
                DeviceId::parse(device).ok_or_else(|| format!("{device:?} is not a device id"))?;
            items.push((device, slot));
        }
        Ok((!items.is_empty()).then(|| AllowedDevices(items.into())))
    }

    /// Whether `device` may be used at all.
    pub fn allows_device(&self, device: &str) -> bool {
        self.0.iter().any(|(it, _)| it.as_str() == device)
    }

    /// Whether `device` may send from `sim` (`None`: the device's choice).
    pub fn allows(&self, device: &str, sim: Option<u8>) -> bool {
        self.0.iter().any(|(it, slot)| {
            it.as_str() == device && (slot.is_none() || sim.is_none() || *slot == sim)
        })
    }

    /// Whether `device` may send from the SIM in `slot`.
    pub fn allows_slot(&self, device: &str, slot: u8) -> bool {
        self.0
            .iter()
            .any(|(it, allowed)| it.as_str() == device && allowed.is_none_or(|it| it == slot))
    }

    /// Whether every item of `self` is allowed by `other`.
    pub fn within(&self, other: &AllowedDevices) -> bool {
        self.0.iter().all(|(device, slot)| match slot {
            Some(slot) => other.allows_slot(device, *slot),
            None => other
                .0
                .iter()
                .any(|(it, allowed)| it == device && allowed.is_none()),
        })
    }

    /// The items as text (`DEVICE` or `DEVICE:SLOT`).
    pub fn items(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(device, slot)| match slot {
                Some(slot) => format!("{device}:{slot}"),
                None => device.to_string(),
            })
            .collect()
    }
}

/// The stored form: items separated by commas.
impl fmt::Display for AllowedDevices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.items().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_slots_parse_and_restrict() {
        let a = "dev_aaaaaaaaaaaaaaaa";
        let b = "dev_bbbbbbbbbbbbbbbb";
        let set = AllowedDevices::parse(&format!("{a}, {b}:1"))
            .unwrap()
            .unwrap();
        assert!(set.allows(a, Some(0)) && set.allows(a, None));
        assert!(set.allows(b, Some(1)) && !set.allows(b, Some(0)));
        assert!(!set.allows_device("dev_cccccccccccccccc"));
        assert_eq!(AllowedDevices::parse(" , ").unwrap(), None);
        assert!(AllowedDevices::parse(&format!("{a}:x")).is_err());
        assert_eq!(
            AllowedDevices::parse(&set.to_string()).unwrap().unwrap(),
            set
        );
    }
}
