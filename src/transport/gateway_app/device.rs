//! What the app asks about itself: `GET`/`PATCH /mobile/v1/device` (its record; its SIM
//! cards), `GET /mobile/v1/settings` (smshub's limits where the app can enforce them, the
//! event channel, the ping interval, the key it signs its webhooks with) and
//! `GET /mobile/v1/webhooks` (the webhooks that bring its health and received SMS back to
//! smshub; see `hooks.rs`).

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use smshub_protocol::device::SimInfo;
use warp::Rejection;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::GatewayApp;
use super::wire::{DeviceUpdate, HOOK_EVENTS, SimCard};
use crate::dispatch::limits::Limits;
use crate::domain::format_millis;
use crate::store::DeviceRecord;
use crate::transport::Refused;
use crate::transport::link::{hello_changes, parse_limits};

/// `GET /mobile/v1/device`: the device (with a valid token) and the address the hub sees.
pub(super) fn describe(device: Option<DeviceRecord>, peer: Option<String>) -> Response {
    let mut body = json!({});
    if let Some(device) = device {
        let created = format_millis(device.created_at);
        body["device"] = json!({
            "id": device.id,
            "name": device.name,
            "createdAt": created,
            "updatedAt": device.last_seen_at.map_or(created.clone(), format_millis),
            "lastSeen": device.last_seen_at.map_or(created, format_millis),
        });
    }
    if let Some(peer) = peer {
        body["externalIp"] = Value::String(peer);
    }
    warp::reply::json(&body).into_response()
}

/// `PATCH /mobile/v1/device`: the app's SIM cards (and its version, from its user agent).
pub(super) async fn update(
    app: GatewayApp,
    device: DeviceRecord,
    agent: Option<String>,
    body: Bytes,
) -> Result<Response, Rejection> {
    let update: DeviceUpdate = serde_json::from_slice(&body).map_err(|it| {
        warp::reject::custom(Refused::bad_request(
            "invalid_json",
            format!("the body is not a device update: {it}"),
        ))
    })?;
    if update.id != *device.id {
        return Err(warp::reject::custom(Refused::forbidden(
            "the id is not this token's device",
        )));
    }
    let version = agent
        .as_deref()
        .and_then(app_version)
        .or(device.app_version);
    let sims = update.sim_cards.as_deref().map(sims_of).unwrap_or_default();
    let changes = hello_changes(&device.id, device.model, version, &sims);
    let committed = app
        .link
        .submit(changes)
        .await
        .map_err(|it| warp::reject::custom(Refused::internal(it)))?;
    committed
        .await
        .map_err(|it| warp::reject::custom(Refused::internal(it)))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The app's SIM cards as smshub's SIMs (slots 0-based, as the app's `slotIndex`).
pub fn sims_of(cards: &[SimCard]) -> Vec<SimInfo> {
    cards
        .iter()
        .filter_map(|card| {
            let slot = u8::try_from(card.slot_index).ok()?;
            Some(SimInfo {
                slot,
                operator: card.carrier_name.clone().filter(|it| !it.is_empty()),
                mcc_mnc: None,
                // The app masks all but the last four digits: not a number to route by.
                phone_number: card
                    .phone_number
                    .clone()
                    .filter(|it| !it.is_empty() && !it.contains('*')),
                iccid: card.iccid.clone().filter(|it| !it.is_empty()),
            })
        })
        .take(8)
        .collect()
}

/// The app's version in its user agent (`me.capcom.smsgateway/1.66.0`).
pub fn app_version(agent: &str) -> Option<String> {
    let (name, version) = agent.split_once('/')?;
    (name.contains("smsgateway") && !version.is_empty()).then(|| version.chars().take(32).collect())
}

/// `GET /mobile/v1/settings`: what the app should enforce and how it reaches smshub.
pub(super) fn settings(device: &DeviceRecord, heartbeat_s: u32) -> Response {
    let mut messages = json!({});
    if let Some(limits) = parse_limits(device.limits.clone()) {
        messages = messages_settings(&limits);
    }
    let body = json!({
        "messages": messages,
        // Its health (battery, connection) comes back as the `system:ping` webhook.
        "ping": { "interval_seconds": heartbeat_s.max(1) },
        "webhooks": { "signing_key": signing_key(device) },
        // smshub reaches the phone on its event stream, never through Firebase.
        "gateway": { "notification_channel": "SSE_ONLY" },
    });
    warp::reply::json(&body).into_response()
}

/// smshub's per-SIM limits in the app's words: one period and count for the phone (the
/// shortest period smshub limits; the app counts for all its SIMs together, so never more
/// than one SIM may send), and the pause between sends. smshub still enforces every limit
/// itself: the app's copy only keeps a phone from sending faster on its own.
fn messages_settings(limits: &Limits) -> Value {
    let mut out = json!({});
    let period = [
        ("PerMinute", limits.per_minute),
        ("PerHour", limits.per_hour),
        ("PerDay", limits.per_day),
    ]
    .into_iter()
    .find_map(|(name, value)| value.map(|it| (name, it)));
    if let Some((name, value)) = period {
        out["limit_period"] = json!(name);
        out["limit_value"] = json!(value.max(1));
    }
    if limits.min_interval_ms > 0 {
        let min = limits.min_interval_ms.div_ceil(1000).max(1);
        let max = (limits.min_interval_ms + limits.jitter_ms)
            .div_ceil(1000)
            .max(min);
        out["send_interval_min"] = json!(min);
        out["send_interval_max"] = json!(max);
    }
    out
}

/// The key a device signs its webhooks to smshub with: derived from its token's hash, so it
/// changes when the token does and is never stored apart from it.
pub fn signing_key(device: &DeviceRecord) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(device.token_hash.as_bytes()) else {
        return String::new();
    };
    mac.update(b"smshub gateway-app webhooks");
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// `GET /mobile/v1/webhooks`: the webhooks that bring the app's health and received SMS
/// back to smshub, at `base` (the hub's address as the phone reached it).
pub(super) fn webhooks(base: &str) -> Response {
    let url = format!("{base}/mobile/v1/hooks");
    let hooks: Vec<Value> = HOOK_EVENTS
        .iter()
        .map(|event| {
            json!({
                "id": format!("smshub-{}", event.replace(':', "-")),
                "url": url,
                "event": event,
            })
        })
        .collect();
    warp::reply::json(&hooks).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_limited_period_and_the_pause_reach_the_app() {
        let limits = Limits {
            min_interval_ms: 1500,
            jitter_ms: 1000,
            per_hour: Some(30),
            per_day: Some(200),
            ..Limits::default()
        };
        let settings = messages_settings(&limits);
        assert_eq!(settings["limit_period"], "PerHour");
        assert_eq!(settings["limit_value"], 30);
        assert_eq!(settings["send_interval_min"], 2);
        assert_eq!(settings["send_interval_max"], 3);
        assert_eq!(messages_settings(&Limits::default()), json!({}));
    }

    #[test]
    fn the_apps_version_is_read_from_its_user_agent() {
        assert_eq!(
            app_version("me.capcom.smsgateway/1.66.0").as_deref(),
            Some("1.66.0")
        );
        assert_eq!(app_version("okhttp/4.12.0"), None);
    }
}
