//! What the modem and HiLink drivers do the same way to be a device of the hub: find or
//! create their device, register and announce a session, accept and finish `send` jobs
//! through store changes, store incoming messages, and report status. The drivers keep what
//! differs (talking to the device, the order of their steps); these functions keep the
//! wiring to the store, the registry and the dispatcher in one place.
//!
//! `what` parameters name the kind of device in log messages ("modem", "HiLink stick").

use smshub_protocol::device::{Capabilities, ErrorCode, SimInfo, SimStatus, Status};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::app::Hub;
use crate::auth;
use crate::dispatch::Event;
use crate::dispatch::core::JobEnd;
use crate::domain::{Millis, now_millis};
use crate::registry::{LiveDevice, Outbound, close_code};
use crate::store::{Change, Outcome, Retry, StoreError};
use crate::transport::modem::driver::first_amount;
use crate::transport::modem::{Balance, ModemError, ModemStatus, OperatorProfile, UssdAnswer};

/// The hub device named `{kind}-{identity}` and its stored limits (JSON); the device is
/// created the first time it is seen. `what` names the device in the log ("modem").
pub(crate) async fn device_for(
    hub: &Hub,
    kind: &'static str,
    identity: &str,
    what: &str,
) -> Result<(String, Option<serde_json::Value>), String> {
    let name = format!("{kind}-{identity}");
    let devices = hub
        .store
        .list_devices()
        .await
        .map_err(|it| it.to_string())?;
    if let Some(found) = devices
        .into_iter()
        .find(|it| it.kind == kind && it.name == name)
    {
        return Ok((found.id, found.limits));
    }
    let created = auth::create_device(&hub.store, &name, kind)
        .await
        .map_err(|it| it.to_string())?;
    tracing::info!(device = %created.id, %name, "new {what} registered as a device");
    Ok((created.id, None))
}

/// Records the model, version and SIMs the device reported (`DeviceHello`), without
/// waiting for the commit.
pub(crate) async fn hello(hub: &Hub, device_id: &str, snapshot: &ModemStatus, sims: Vec<SimInfo>) {
    let sims = serde_json::to_value(sims).unwrap_or_default();
    let _ = hub
        .store
        .submit(vec![Change::DeviceHello {
            id: device_id.to_string(),
            model: model_name(snapshot),
            app_version: snapshot.revision.clone(),
            sims,
        }])
        .await;
}

/// Registers a session in the registry and closes the one it replaces; returns the session
/// number.
pub(crate) fn register(hub: &Hub, live: LiveDevice, tx: mpsc::Sender<Outbound>) -> u64 {
    let (session_no, replaced) = hub.registry.connect(live, tx);
    if let Some(old) = replaced {
        let _ = old.try_send(Outbound::Close {
            code: close_code::REPLACED,
            reason: "replaced by a newer connection",
        });
    }
    session_no
}

/// Tells the dispatcher the session is up, with its first status. The device keeps no
/// journal (`held` is empty): a job it accepted in an earlier session and never reported may
/// have gone out, so the dispatcher ends it as outcome_unknown.
pub(crate) fn announce(
    hub: &Hub,
    device_id: &str,
    session: u64,
    capabilities: Capabilities,
    limits: Option<serde_json::Value>,
    status: Status,
) {
    hub.dispatcher.send(Event::Connected {
        device_id: device_id.to_string(),
        session,
        capabilities,
        limits: limits.and_then(|it| serde_json::from_value(it).ok()),
        held: Some(Vec::new()),
    });
    hub.dispatcher.send(Event::Status {
        device_id: device_id.to_string(),
        session,
        status,
    });
}

/// Ends a session: out of the registry (recording when the device was last seen, if this
/// session was still the registered one), then tells the dispatcher.
pub(crate) async fn go_offline(hub: &Hub, device_id: &str, session: u64) {
    if hub.registry.disconnect(device_id, session) {
        let _ = hub
            .store
            .submit(vec![Change::DeviceSeen {
                id: device_id.to_string(),
                at: now_millis(),
            }])
            .await;
    }
    hub.dispatcher.send(Event::Disconnected {
        device_id: device_id.to_string(),
        session,
    });
}

/// Hands a radio status to the registry and the dispatcher.
pub(crate) fn report_status(hub: &Hub, device_id: &str, session: u64, status: Status) {
    let now = now_millis();
    hub.registry.update(device_id, session, |it| {
        it.status = Some(status.clone());
        it.last_seen_at = now;
    });
    hub.dispatcher.send(Event::Status {
        device_id: device_id.to_string(),
        session,
        status,
    });
}

/// Commits the acceptance of a `send` job by `device_id` and tells the dispatcher; the id of
/// the message when it is this device's to send, `None` when nothing must be sent (malformed
/// id, cancelled or reassigned, or the store failed).
pub(crate) async fn accept(hub: &Hub, device_id: &str, job_id: &str, what: &str) -> Option<Uuid> {
    let Ok(id) = Uuid::parse_str(job_id) else {
        tracing::warn!(id = %job_id, "send job with a malformed id ignored");
        return None;
    };
    match hub
        .store
        .apply(Change::Accept {
            id,
            device: device_id.to_string(),
        })
        .await
    {
        Ok(Outcome::Applied | Outcome::Unchanged) => {
            hub.dispatcher.send(Event::Owned {
                device_id: device_id.to_string(),
                ids: vec![id],
            });
            Some(id)
        }
        Ok(Outcome::Refused | Outcome::Requeued) => {
            // Not this device's any more (cancelled, reassigned): nothing is sent.
            hub.dispatcher.send(Event::OfferRefused {
                device_id: device_id.to_string(),
                ids: vec![id],
            });
            None
        }
        Err(err) => {
            tracing::error!(error = %err, "could not record a {what}'s acceptance");
            hub.dispatcher.send(Event::Rejected {
                device_id: device_id.to_string(),
                ids: vec![id],
                reason: "hub_error".into(),
            });
            None
        }
    }
}

/// The change that fails message `id` on `device_id`, and its error code; a temporary
/// failure goes back to the queue by the dispatch config's retry rule.
pub(crate) fn failed(
    hub: &Hub,
    id: Uuid,
    device_id: &str,
    code: ErrorCode,
    message: String,
    temporary: bool,
) -> (Change, String) {
    let code = code.as_str().to_string();
    let dispatch = &hub.config.dispatch;
    let retry = temporary.then_some(Retry {
        max_attempts: dispatch.max_attempts,
        base_ms: dispatch.retry_base_ms,
        cap_ms: dispatch.retry_cap_ms,
    });
    let change = Change::Failed {
        id,
        device: Some(device_id.to_string()),
        code: code.clone(),
        message,
        temporary,
        retry,
    };
    (change, code)
}

/// Tells the dispatcher how job `id` ended, from the outcome of committing its report
/// (`code` is `None` for sent, the error code for failed). When the commit failed the job
/// stays accepted, and ends as outcome unknown when the device reconnects.
pub(crate) fn finish(
    hub: &Hub,
    device_id: &str,
    id: Uuid,
    outcome: Result<Outcome, StoreError>,
    code: Option<String>,
    what: &str,
) {
    let end = match (outcome, code) {
        (Ok(Outcome::Applied), None) => Some(JobEnd::Sent),
        (Ok(Outcome::Applied), Some(code)) => Some(JobEnd::Failed { code }),
        (Ok(Outcome::Requeued), Some(code)) => Some(JobEnd::Retried { code }),
        (Ok(_), _) => None,
        (Err(err), _) => {
            tracing::error!(error = %err, %id, "could not record a {what}'s report");
            None
        }
    };
    if let Some(end) = end {
        hub.dispatcher.send(Event::Finished {
            device_id: device_id.to_string(),
            id,
            end,
        });
    }
}

/// A received SMS, as the driver read it.
pub(crate) struct Incoming {
    /// The dedupe key: the same message taken twice has the same one.
    pub external_id: String,
    pub sender: String,
    pub body: String,
    pub received_at: Millis,
}

/// Commits a received SMS of SIM slot 0 and counts it in `status` when it is new; `Ok` once it
/// is stored (or was already), so the device may delete it.
pub(crate) async fn store_incoming(
    hub: &Hub,
    status: &watch::Sender<ModemStatus>,
    device_id: &str,
    incoming: Incoming,
) -> Result<(), StoreError> {
    let change = Change::Incoming {
        device: device_id.to_string(),
        external_id: incoming.external_id,
        sim_slot: Some(0),
        sender: incoming.sender,
        body: incoming.body,
        received_at: incoming.received_at,
    };
    if hub.store.apply(change).await? == Outcome::Applied {
        status.send_modify(|it| it.received += 1);
    }
    Ok(())
}

/// "Maker Model" as far as the device told.
pub(crate) fn model_name(status: &ModemStatus) -> Option<String> {
    match (&status.manufacturer, &status.model) {
        (Some(maker), Some(model)) => Some(format!("{maker} {model}")),
        (None, Some(model)) => Some(model.clone()),
        (Some(maker), None) => Some(maker.clone()),
        (None, None) => None,
    }
}

/// The one SIM (slot 0) of a modem or stick.
pub(crate) fn sim_info(status: &ModemStatus, phone_number: Option<String>) -> SimInfo {
    SimInfo {
        slot: 0,
        operator: status.sim.operator.clone(),
        mcc_mnc: status.sim.mcc_mnc.clone(),
        phone_number,
        iccid: status.sim.iccid.clone(),
    }
}

/// The signal bars (0 to 4) of a signal in dBm.
pub(crate) fn signal_level(dbm: Option<i32>) -> Option<u8> {
    dbm.map(|dbm| match dbm {
        ..=-111 => 0,
        -110..=-98 => 1,
        -97..=-90 => 2,
        -89..=-82 => 3,
        _ => 4,
    })
}

/// The device-protocol status of a USB modem or stick with one SIM.
pub(crate) fn radio_status(snapshot: &ModemStatus, signal_level: Option<u8>) -> Status {
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
pub(crate) fn balance_code(
    status: &ModemStatus,
) -> Result<(Option<OperatorProfile>, String), ModemError> {
    let profile = status.sim.profile.clone();
    let Some(code) = profile.as_ref().and_then(|it| it.balance_ussd.clone()) else {
        return Err(ModemError::NoBalanceCode);
    };
    Ok((profile, code))
}

/// The balance told by the answer to the balance `code` (the first amount in its text).
pub(crate) fn balance(
    profile: Option<OperatorProfile>,
    code: String,
    answer: UssdAnswer,
) -> Balance {
    let amount = answer.text.as_deref().and_then(first_amount);
    Balance {
        operator: profile.map(|it| it.name),
        code,
        text: answer.text,
        amount,
    }
}
