//! `POST /mobile/v1/hooks`: the webhooks the app posts back to smshub (it is told of them by
//! `GET /mobile/v1/webhooks`). The app sends its webhooks itself, signed with the key its
//! settings gave it (`X-Signature`: hex HMAC-SHA256 of the body followed by `X-Timestamp`);
//! the envelope names the device.
//!
//! - `system:ping`: its health (battery level and charging, connection), every ping
//!   interval: a status report for the registry and the dispatcher's scoring.
//! - `sms:received`: an SMS it received, stored in the inbox once (the app's message id is
//!   the incoming id, so a webhook sent again is stored once).
//!
//! Other events are answered `200` and dropped (smshub tracks sends itself).

use bytes::Bytes;
use serde_json::Value;
use smshub_protocol::device::{Battery, Status};
use subtle::ConstantTimeEq;
use warp::Rejection;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::device::signing_key;
use super::session::baseline;
use super::wire::Hook;
use super::{GatewayApp, KIND};
use crate::domain::{now_millis, parse_rfc3339};
use crate::store::{Change, DeviceRecord};
use crate::transport::Refused;

/// How far a webhook's timestamp may be from the hub's clock.
const CLOCK_SKEW_S: i64 = 15 * 60;

/// `POST /mobile/v1/hooks`.
pub(super) async fn receive(
    app: GatewayApp,
    signature: Option<String>,
    timestamp: Option<String>,
    body: Bytes,
) -> Result<Response, Rejection> {
    let hook: Hook = serde_json::from_slice(&body).map_err(|it| {
        warp::reject::custom(Refused::bad_request(
            "invalid_json",
            format!("the body is not a webhook of the app: {it}"),
        ))
    })?;
    let device = verified(&app, &hook, signature, timestamp, &body).await?;
    match hook.event.as_str() {
        "system:ping" => {
            if let Some(session) = app.sessions.session(&device.id) {
                app.link.touch(&device.id, session);
                if let Some(status) = status_of(&hook.payload, baseline(&device)) {
                    app.link.report_status(&device.id, session, status);
                }
            }
            Ok(StatusCode::OK.into_response())
        }
        "sms:received" => received(&app, &device, &hook.payload).await,
        _ => Ok(StatusCode::OK.into_response()),
    }
}

/// The device the webhook names, if the signature is its own and recent.
async fn verified(
    app: &GatewayApp,
    hook: &Hook,
    signature: Option<String>,
    timestamp: Option<String>,
    body: &[u8],
) -> Result<DeviceRecord, Rejection> {
    let refuse = |message: &str| warp::reject::custom(Refused::unauthorized(message));
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(refuse("sign the webhook (X-Signature and X-Timestamp)"));
    };
    let Ok(at) = timestamp.trim().parse::<i64>() else {
        return Err(refuse("X-Timestamp must be Unix seconds"));
    };
    if (now_millis() / 1000 - at).abs() > CLOCK_SKEW_S {
        return Err(refuse("X-Timestamp is too far from the hub's clock"));
    }
    let device = match app.link.store().find_device(&hook.device_id).await {
        Ok(Some(it)) if it.kind == KIND => it,
        Ok(_) => return Err(refuse("unknown device or wrong signature")),
        Err(err) => return Err(warp::reject::custom(Refused::internal(err))),
    };
    let expected = crate::webhooks::compat::signature(&signing_key(&device), body, at);
    let given = signature.trim().to_ascii_lowercase();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(refuse("unknown device or wrong signature"));
    }
    Ok(device)
}

/// Stores a received SMS once.
async fn received(
    app: &GatewayApp,
    device: &DeviceRecord,
    payload: &Value,
) -> Result<Response, Rejection> {
    let text = |key: &str| payload.get(key).and_then(Value::as_str);
    let (Some(id), Some(sender), Some(body)) = (
        text("messageId"),
        text("phoneNumber").or_else(|| text("sender")),
        text("message"),
    ) else {
        return Err(warp::reject::custom(Refused::bad_request(
            "invalid_payload",
            "sms:received needs messageId, phoneNumber and message",
        )));
    };
    if id.is_empty() || id.len() > 128 || sender.is_empty() || sender.len() > 64 {
        return Err(warp::reject::custom(Refused::bad_request(
            "invalid_payload",
            "messageId must be 1 to 128 characters, phoneNumber 1 to 64",
        )));
    }
    if !app.link.incoming_allowed(&device.id) {
        // Not stored: the app keeps the webhook and sends it again later.
        return Err(warp::reject::custom(Refused::rate_limited(
            "too many incoming SMS from this device; send it again later",
        )));
    }
    let sim_slot = payload
        .get("simNumber")
        .and_then(Value::as_u64)
        .and_then(|it| u8::try_from(it).ok())
        .and_then(|it| it.checked_sub(1));
    let received_at = text("receivedAt")
        .and_then(parse_rfc3339)
        .unwrap_or_else(now_millis);
    let change = Change::Incoming {
        device: device.id.clone(),
        external_id: id.to_string(),
        sim_slot,
        sender: sender.to_string(),
        text: body.to_string(),
        received_at,
    };
    let committed = app
        .link
        .submit(vec![change])
        .await
        .map_err(|it| warp::reject::custom(Refused::internal(it)))?;
    committed
        .await
        .map_err(|it| warp::reject::custom(Refused::internal(it)))?;
    Ok(StatusCode::OK.into_response())
}

/// The app's health report (`{"health": {"checks": {"battery:level": {"observedValue":
/// 80}, ...}}}`) as a status: battery level in percent, charging (its flags: 1 charging,
/// 2 on AC, 4 on USB), the connection's transport (flags: 2 cellular, 4 Wi-Fi, 8 ethernet)
/// or none when the connection check failed. The rest (its SIMs) is `known`.
pub fn status_of(payload: &Value, known: Status) -> Option<Status> {
    let checks = payload.get("health")?.get("checks")?;
    let value = |name: &str| checks.get(name)?.get("observedValue")?.as_i64();
    let battery = value("battery:level").map(|level| Battery {
        level: u8::try_from(level.clamp(0, 100)).unwrap_or(0),
        charging: value("battery:charging").is_some_and(|it| it != 0),
    });
    let connection = match (value("connection:status"), value("connection:transport")) {
        (Some(0), _) => Some("none".to_string()),
        (_, Some(flags)) if flags & 4 != 0 => Some("wifi".to_string()),
        (_, Some(flags)) if flags & 8 != 0 => Some("ethernet".to_string()),
        (_, Some(flags)) if flags & 2 != 0 => Some("cellular".to_string()),
        _ => None,
    };
    if battery.is_none() && connection.is_none() {
        return None;
    }
    Some(Status {
        battery: battery.or(known.battery),
        sims: known.sims,
        connection: connection.or(known.connection),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_apps_health_becomes_a_status() {
        let payload = json!({"health": {"status": "pass", "checks": {
            "battery:level": {"status": "pass", "observedValue": 76, "observedUnit": "percent"},
            "battery:charging": {"status": "pass", "observedValue": 5, "observedUnit": "flags"},
            "connection:status": {"status": "pass", "observedValue": 1},
            "connection:transport": {"status": "pass", "observedValue": 4},
        }}});
        let known = Status {
            battery: None,
            sims: Vec::new(),
            connection: None,
        };
        let status = status_of(&payload, known.clone()).expect("a status");
        assert_eq!(
            status.battery,
            Some(Battery {
                level: 76,
                charging: true
            })
        );
        assert_eq!(status.connection.as_deref(), Some("wifi"));
        assert!(status_of(&json!({"health": {"checks": {}}}), known).is_none());
    }
}
