//! `GET /metrics`: Prometheus text. The recorder's counters and histograms (requests,
//! writer, transitions; see [`crate::telemetry`]) and the gauges of live state read now: messages
//! per state, the queue, devices online by kind, each online device's battery, charging,
//! signal per SIM and jobs in flight.
//!
//! Open by default, like `/health`: scrapers carry no API key, and the hub listens on
//! loopback unless told otherwise. With `--metrics-token` it needs
//! `Authorization: Bearer <token>` (set it when the hub listens beyond loopback: device ids
//! and traffic figures are not for everyone). It is not an API key on purpose: a scraper's
//! credential should open nothing else.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use warp::http::HeaderValue;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::ApiError;
use super::{ApiState, run, with_api};
use crate::auth::bearer;
use crate::domain::{DeviceKind, MessageState};
use crate::telemetry::{self, Gauges};

/// `GET /metrics`.
pub fn route(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(with_api(api))
        .and_then(|authorization: Option<String>, api: Arc<ApiState>| {
            run(metrics(api, authorization))
        })
}

async fn metrics(api: Arc<ApiState>, authorization: Option<String>) -> Result<Response, ApiError> {
    if let Some(token) = &api.config.metrics_token {
        let given = authorization
            .as_deref()
            .and_then(bearer)
            .unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return Err(ApiError::unauthorized(
                "send the metrics token as Authorization: Bearer",
            ));
        }
    }
    let mut text = telemetry::render_recorded();
    text.push_str(&live_gauges(&api).await?);
    let mut response = Response::new(text.into());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn live_gauges(api: &ApiState) -> Result<String, ApiError> {
    let mut gauges = Gauges::default();
    let counts = api.store.count_by_state().await?;
    gauges.family("smshub_messages", "messages in the database, by state");
    for state in MessageState::ALL {
        let n = counts.get(&state).copied().unwrap_or(0);
        gauges.sample("smshub_messages", &[("state", state.as_str())], n as f64);
    }
    gauges
        .family(
            "smshub_queue_depth",
            "messages waiting in the dispatcher for a device",
        )
        .sample(
            "smshub_queue_depth",
            &[],
            api.dispatcher.queue_len().await as f64,
        );
    let devices = api.registry.snapshot();
    gauges.family("smshub_devices_online", "devices connected now, by kind");
    for kind in DeviceKind::ALL {
        let n = devices.iter().filter(|it| it.kind == kind).count();
        gauges.sample(
            "smshub_devices_online",
            &[("kind", kind.as_str())],
            n as f64,
        );
    }
    gauges.family(
        "smshub_device_in_flight",
        "jobs offered to or held by an online device",
    );
    for device in &devices {
        let id: &str = &device.device_id;
        gauges.sample(
            "smshub_device_in_flight",
            &[("device", id)],
            f64::from(device.in_flight),
        );
    }
    gauges.family(
        "smshub_device_battery_percent",
        "battery level an online device last reported",
    );
    for device in &devices {
        if let Some(battery) = device.status.as_ref().and_then(|it| it.battery) {
            let id: &str = &device.device_id;
            gauges.sample(
                "smshub_device_battery_percent",
                &[("device", id)],
                f64::from(battery.level),
            );
        }
    }
    gauges.family(
        "smshub_device_charging",
        "1 if an online device last reported charging",
    );
    for device in &devices {
        if let Some(battery) = device.status.as_ref().and_then(|it| it.battery) {
            let id: &str = &device.device_id;
            gauges.sample(
                "smshub_device_charging",
                &[("device", id)],
                f64::from(u8::from(battery.charging)),
            );
        }
    }
    gauges.family(
        "smshub_device_signal_dbm",
        "signal an online device last reported, per SIM slot",
    );
    for device in &devices {
        let id: &str = &device.device_id;
        for sim in device.status.iter().flat_map(|it| it.sims.iter()) {
            if let Some(dbm) = sim.signal_dbm {
                let slot = sim.slot.to_string();
                gauges.sample(
                    "smshub_device_signal_dbm",
                    &[("device", id), ("slot", &slot)],
                    f64::from(dbm),
                );
            }
        }
    }
    Ok(gauges.into_text())
}
