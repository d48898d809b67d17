//! What a serial modem and a HiLink stick do the same way as devices of the hub: describe
//! themselves (model, SIM, radio status) in the device protocol's terms, store a received
//! SMS, and read a balance from a USSD answer.

use smshub_protocol::device::{SimInfo, SimStatus, Status};
use tokio::sync::watch;

use super::operators::OperatorProfile;
use super::status::{Balance, ModemError, ModemStatus, UssdAnswer};
use crate::domain::{DeviceId, Millis};
use crate::store::{Change, Outcome, StoreError};
use crate::transport::link::DeviceLink;

/// A received SMS, as the driver read it.
pub struct Incoming {
    /// The dedupe key: the same message taken twice has the same one.
    pub external_id: String,
    pub sender: String,
    pub text: String,
    pub received_at: Millis,
}

/// Commits a received SMS of SIM slot 0 and counts it in `status` when it is new; `Ok` once it
/// is stored (or was already), so the device may delete it.
pub async fn store_incoming(
    link: &DeviceLink,
    status: &watch::Sender<ModemStatus>,
    device_id: &DeviceId,
    incoming: Incoming,
) -> Result<(), StoreError> {
    let change = Change::Incoming {
        device: device_id.clone(),
        external_id: incoming.external_id,
        sim_slot: Some(0),
        sender: incoming.sender,
        text: incoming.text,
        received_at: incoming.received_at,
    };
    if link.store().apply(change).await? == Outcome::Applied {
        status.send_modify(|it| it.received += 1);
    }
    Ok(())
}

/// "Maker Model" as far as the device told.
pub fn model_name(status: &ModemStatus) -> Option<String> {
    match (&status.manufacturer, &status.model) {
        (Some(maker), Some(model)) => Some(format!("{maker} {model}")),
        (None, Some(model)) => Some(model.clone()),
        (Some(maker), None) => Some(maker.clone()),
        (None, None) => None,
    }
}

/// The one SIM (slot 0) of a modem or stick.
pub fn sim_info(status: &ModemStatus) -> SimInfo {
    SimInfo {
        slot: 0,
        operator: status.sim.operator.clone(),
        mcc_mnc: status.sim.mcc_mnc.clone(),
        phone_number: status.sim.phone_number.clone(),
        iccid: status.sim.iccid.clone(),
    }
}

/// The signal bars (0 to 4) of a signal in dBm.
pub fn signal_level(dbm: Option<i32>) -> Option<u8> {
    dbm.map(|dbm| match dbm {
        ..=-111 => 0,
        -110..=-98 => 1,
        -97..=-90 => 2,
        -89..=-82 => 3,
        _ => 4,
    })
}

/// The device-protocol status of a USB modem or stick with one SIM.
pub fn radio_status(snapshot: &ModemStatus, signal_level: Option<u8>) -> Status {
    let network = &snapshot.network;
    Status {
        battery: None,
        sims: vec![SimStatus {
            slot: 0,
            signal_dbm: network.signal_dbm,
            signal_level,
            network: network.network_type.clone(),
            registered: network.registered,
            operator: network.operator.clone(),
        }],
        connection: Some("usb".to_string()),
    }
}

/// The SIM's operator profile and the USSD code that asks for its balance.
pub fn balance_code(status: &ModemStatus) -> Result<(Option<OperatorProfile>, String), ModemError> {
    let profile = status.sim.profile.clone();
    let Some(code) = profile.as_ref().and_then(|it| it.balance_ussd.clone()) else {
        return Err(ModemError::NoBalanceCode);
    };
    Ok((profile, code))
}

/// The balance told by the answer to the balance `code` (the first amount in its text).
pub fn balance(profile: Option<OperatorProfile>, code: String, answer: UssdAnswer) -> Balance {
    let amount = answer.text.as_deref().and_then(first_amount);
    Balance {
        operator: profile.map(|it| it.name),
        code,
        text: answer.text,
        amount,
    }
}

/// The first amount in a text (`Available Balance: R 96.45 .` → 96.45).
pub fn first_amount(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let start = bytes.iter().position(u8::is_ascii_digit)?;
    let mut end = start;
    while end < bytes.len()
        && (bytes[end].is_ascii_digit()
            || ((bytes[end] == b'.' || bytes[end] == b',')
                && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)))
    {
        end += 1;
    }
    text.get(start..end)?.replace(',', ".").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(first_amount("Available Balance: R 96.45 ."), Some(96.45));
        assert_eq!(first_amount("Votre solde est de 1250,50 DA"), Some(1250.5));
        assert_eq!(first_amount("Balance 100DA."), Some(100.0));
        assert_eq!(first_amount("no digits"), None);
    }
}
