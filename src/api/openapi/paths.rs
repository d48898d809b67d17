//! One `#[utoipa::path]` per route of the hub: its parameters, body, answers and the error
//! codes each status can carry. These functions are never called; they only carry the
//! attributes, so the route list in `api/mod.rs` stays readable. Credentials and scopes are
//! added by [`super::Scopes`] from [`super::SCOPES`]; the answers every route shares (`401`,
//! `403`, `500`, `503`, `408`/`413` for bodies) by [`super::Common`].

#![allow(dead_code)]

use super::schemas::*;
use crate::api::dto::*;
use crate::api::modems::{BalanceQuery, DetectRequest, PortRequest, UssdRequest};
use crate::dispatch::limits::Limits;

const MESSAGE_ID: &str = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b";

// ---- messages ----

/// Queue one message per recipient.
///
/// Every message is committed to the database before the `202`. A repeat with the same
/// `Idempotency-Key` (or body `id`) answers `200` with the same messages and the header
/// `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/api/send-sms", tag = "messages",
    params(("Idempotency-Key" = Option<String>, Header, description = "a repeat with the same key returns the same messages, never new ones", example = "order-1234"), SendQuery),
    request_body(content = SendSmsRequest, examples(
        ("one" = (summary = "one recipient", value = json!({"phone_number": "+14155552671", "message": "Your code is 482913", "delivery_report": true}))),
        ("template" = (summary = "a template filled in", value = json!({"phone_number": "+14155552671", "template_id": "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", "params": {"name": "Ana", "code": "482913"}}))),
        ("several" = (summary = "several recipients, pinned to SIM 0, scheduled", value = json!({"phone_numbers": ["+14155552671", "+447911123456"], "message": "Shop opens at 9", "sim_slot": 0, "schedule_at": "2030-01-01T09:00:00Z", "priority": 10}))),
    )),
    responses(
        (status = 202, description = "committed, one message per recipient", body = SendSmsResponse),
        (status = 200, description = "a replay of an earlier request with the same idempotency key", body = SendSmsResponse),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_recipient`, `too_many_recipients`, `invalid_phone_number`, `empty_message`, `message_too_long`, `unknown_device`, `invalid_sim_slot`, `invalid_priority`, `invalid_time`, `invalid_ttl`, `invalid_valid_until`, `invalid_schedule`, `invalid_header`, `unknown_sim_card`, `conflicting_sim`", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`: the key was used with a different request; `sim_card_disabled`, `sim_card_not_placed`: the SIM card asked for cannot send", body = ErrorBody),
        (status = 422, description = "`unknown_template`, `missing_template_param`, `unknown_template_param`, `invalid_template_param`: the `template_id` or its `params`", body = ErrorBody),
    ))]
fn send_sms() {}

/// One message: state, device, SIM, parts, error, history and why it still waits.
#[utoipa::path(get, path = "/api/sms/{id}", tag = "messages",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    responses(
        (status = 200, description = "the message", body = MessageDto),
        (status = 404, description = "`not_found`: no such message (or not visible to this credential)", body = ErrorBody),
    ))]
fn get_sms() {}

/// Cancel a message no device has accepted yet (an offer out to a phone is revoked).
#[utoipa::path(delete, path = "/api/sms/{id}", tag = "messages",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    responses(
        (status = 200, description = "cancelled", body = MessageDto),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`not_cancellable`: a device has accepted it, or it has ended", body = ErrorBody),
    ))]
fn cancel_sms() {}

/// Messages, newest first, with filters and a `total`.
#[utoipa::path(get, path = "/api/sms", tag = "messages", params(MessageQuery),
    responses(
        (status = 200, description = "a page of messages", body = MessageList),
        (status = 400, description = "`invalid_query`, `invalid_phone_number`", body = ErrorBody),
    ))]
fn list_sms() {}

/// Messages that went out (`sent`, `delivered`), newest send first; the filters of
/// `GET /api/sms`.
#[utoipa::path(get, path = "/api/sms/outbox", tag = "messages", params(MessageQuery),
    responses(
        (status = 200, description = "a page of sent messages", body = MessageList),
        (status = 400, description = "`invalid_query`, `invalid_phone_number`", body = ErrorBody),
    ))]
fn list_outbox() {}

/// Received SMS, newest first.
#[utoipa::path(get, path = "/api/sms/inbox", tag = "messages", params(InboxQuery),
    responses(
        (status = 200, description = "a page of received SMS", body = InboxList),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    ))]
fn list_inbox() {}

// ---- devices ----

/// Every device: online, battery, SIMs with signal and network, in-flight, counters.
#[utoipa::path(get, path = "/api/devices", tag = "devices",
    responses((status = 200, description = "the devices", body = DeviceList)))]
fn list_devices() {}

/// Register a device; its token is shown only in this answer.
#[utoipa::path(post, path = "/api/devices", tag = "devices", request_body = CreateDeviceRequest,
    responses(
        (status = 201, description = "registered", body = CreatedDevice),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`, `invalid_kind`", body = ErrorBody),
    ))]
fn create_device() {}

/// Remove a device; its open socket is closed with code 4001.
#[utoipa::path(delete, path = "/api/devices/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "pixel-7-0f3a")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn delete_device() {}

/// Set the device's sending limits (`null` clears them).
#[utoipa::path(put, path = "/api/devices/{id}/limits", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "pixel-7-0f3a")),
    request_body(content = Option<Limits>, example = json!({"min_interval_ms": 2000, "jitter_ms": 500, "per_hour": 60, "per_day": 500})),
    responses(
        (status = 200, description = "the limits now in force", body = DeviceLimits),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn set_device_limits() {}

/// Message counts per state, devices online and total, messages waiting.
#[utoipa::path(get, path = "/api/stats", tag = "devices",
    responses((status = 200, description = "the counts", body = Stats)))]
fn stats() {}

/// The console's charts: per step, messages that reached each state, submission-to-sent
/// percentiles (bucket bounds), the most messages waiting and devices online; kept in
/// memory for a day, from the hub's start.
#[utoipa::path(get, path = "/api/series", tag = "devices",
    params(crate::api::handlers::SeriesQuery),
    responses(
        (status = 200, description = "the points, oldest first", body = crate::api::handlers::Series),
        (status = 400, description = "`invalid_query`, `invalid_window`", body = ErrorBody),
    ))]
fn series() {}

/// A device's last hour, six hours or day, per step: minutes online, the last battery
/// level, each SIM's mean signal, messages sent and failed; and its online, offline and
/// unknown periods by the minute. Kept in memory from the hub's start, sampled every 5 s.
#[utoipa::path(get, path = "/api/devices/{id}/history", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "pixel-7-0f3a"),
        crate::api::handlers::SeriesQuery),
    responses(
        (status = 200, description = "the points and periods, oldest first", body = crate::api::handlers::DeviceHistoryDto),
        (status = 400, description = "`invalid_query`, `invalid_window`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn device_history() {}

// ---- modems ----

/// Serial ports that answer AT and sticks in HiLink mode; attaches them with `connect`.
#[utoipa::path(post, path = "/api/modems/detect", tag = "modems",
    request_body(content = Option<DetectRequest>, example = json!({"connect": false})),
    responses(
        (status = 200, description = "`{detected, hilink, connected}`", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
    ))]
fn modems_detect() {}

/// Attach a serial modem (`/dev/…`) or a HiLink stick (`http://…`) and remember it.
#[utoipa::path(post, path = "/api/modems/connect", tag = "modems",
    request_body(content = Option<PortRequest>, example = json!({"port": "/dev/ttyUSB2"})),
    responses(
        (status = 200, description = "the modem's state once ready or failed once", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_port`, `port_not_allowed`, `invalid_url`", body = ErrorBody),
        (status = 404, description = "`port_not_found`", body = ErrorBody),
    ))]
fn modems_connect() {}

/// Detach a modem (by port, device id or IMEI) and forget it.
#[utoipa::path(post, path = "/api/modems/disconnect", tag = "modems",
    request_body(content = Option<PortRequest>, example = json!({"port": "/dev/ttyUSB2"})),
    responses(
        (status = 200, description = "its last state", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_port`", body = ErrorBody),
        (status = 404, description = "`modem_not_found`", body = ErrorBody),
    ))]
fn modems_disconnect() {}

/// Every attached modem.
#[utoipa::path(get, path = "/api/modems/status", tag = "modems",
    responses((status = 200, description = "`{modems: [...]}`", body = serde_json::Value)))]
fn modems_status() {}

const MODEM_ERRORS_404: &str = "`modem_not_found`";

/// One modem's state, signal, operator and identity.
#[utoipa::path(get, path = "/api/modems/{id}/status", tag = "modems",
    params(("id" = String, Path, min_length = 1, description = "device id, IMEI or port name", example = "861234567890123")),
    responses(
        (status = 200, description = "the modem", body = serde_json::Value),
        (status = 404, description = MODEM_ERRORS_404, body = ErrorBody),
    ))]
fn modem_status() {}

/// The modem's SIM: IMSI, ICCID, operator, own number.
#[utoipa::path(get, path = "/api/modems/{id}/sim-info", tag = "modems",
    params(("id" = String, Path, min_length = 1, description = "device id, IMEI or port name", example = "861234567890123")),
    responses(
        (status = 200, description = "the SIM", body = serde_json::Value),
        (status = 404, description = MODEM_ERRORS_404, body = ErrorBody),
        (status = 409, description = "`modem_not_ready`", body = ErrorBody),
    ))]
fn modem_sim_info() {}

/// Messages stored on the modem.
#[utoipa::path(get, path = "/api/modems/{id}/sms", tag = "modems",
    params(("id" = String, Path, min_length = 1, description = "device id, IMEI or port name", example = "861234567890123")),
    responses(
        (status = 200, description = "`{messages: [...]}`", body = serde_json::Value),
        (status = 404, description = MODEM_ERRORS_404, body = ErrorBody),
        (status = 409, description = "`modem_not_ready`", body = ErrorBody),
        (status = 502, description = "`modem_error`", body = ErrorBody),
        (status = 504, description = "`modem_timeout`", body = ErrorBody),
    ))]
fn modem_list_sms() {}

/// Send through this modem only; stored and tracked like `POST /api/send-sms` with
/// `device_id` (`to`/`number` and `text` are read as `phone_number` and `message`).
#[utoipa::path(post, path = "/api/modems/{id}/sms/send", tag = "modems",
    params(("id" = String, Path, min_length = 1, description = "device id, IMEI or port name", example = "861234567890123"),
        ("Idempotency-Key" = Option<String>, Header, example = "order-1234")),
    request_body(content = SendSmsRequest, example = json!({"phone_number": "+14155552671", "message": "Hello from the modem"})),
    responses(
        (status = 202, description = "committed", body = SendSmsResponse),
        (status = 200, description = "an idempotent replay", body = SendSmsResponse),
        (status = 400, description = "the codes of `POST /api/send-sms`", body = ErrorBody),
        (status = 404, description = MODEM_ERRORS_404, body = ErrorBody),
        (status = 409, description = "`modem_not_ready`, `idempotency_conflict`", body = ErrorBody),
    ))]
fn modem_send_sms() {}

/// Delete the message at `index` of the modem's storage.
#[utoipa::path(delete, path = "/api/modems/{id}/sms/{index}", tag = "modems",
    params(("id" = String, Path, min_length = 1, description = "device id, IMEI or port name", example = "861234567890123"),
        ("index" = u32, Path, minimum = 0, maximum = 4294967295_u64, example = 3)),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "`modem_not_found`, `sms_not_found`", body = ErrorBody),
        (status = 409, description = "`modem_not_ready`", body = ErrorBody),
        (status = 502, description = "`modem_error`", body = ErrorBody),
        (status = 504, description = "`modem_timeout`", body = ErrorBody),
    ))]
fn modem_delete_sms() {}

/// Run a USSD code (`*100#`) and answer the network's reply.
///
/// The id names a modem attached to this hub or, failing that, a connected remote device
/// (a phone or `smshub worker`) whose `hello` announced `capabilities.ussd`: the code then runs
/// on its SIM `slot` (default 0) through the device protocol's `ussd` frame, waited for up to
/// 60 s.
#[utoipa::path(post, path = "/api/modems/{id}/ussd", tag = "modems",
    params(("id" = String, Path, min_length = 1, description = "device id, IMEI or port name", example = "861234567890123")),
    request_body(content = Option<UssdRequest>, example = json!({"code": "*100#"})),
    responses(
        (status = 200, description = "the reply", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_code`", body = ErrorBody),
        (status = 404, description = MODEM_ERRORS_404, body = ErrorBody),
        (status = 409, description = "`modem_not_ready`; `ussd_unsupported`: a remote device that did not announce USSD", body = ErrorBody),
        (status = 502, description = "`modem_error` (a remote device's error code is in the message)", body = ErrorBody),
        (status = 503, description = "`modem_unavailable`: the remote device disconnected before answering", body = ErrorBody),
        (status = 504, description = "`modem_timeout`", body = ErrorBody),
    ))]
fn modem_ussd() {}

/// The balance USSD of the SIM's operator.
///
/// As for USSD, the id names a modem attached to this hub or a connected remote device (a
/// phone or `smshub worker`) that announced `capabilities.ussd`: the code of the operator of
/// its SIM `slot` (by the MCC-MNC its `hello` gave) runs there.
#[utoipa::path(get, path = "/api/modems/{id}/balance", tag = "modems",
    params(("id" = String, Path, min_length = 1, description = "device id, IMEI or port name", example = "861234567890123"), BalanceQuery),
    responses(
        (status = 200, description = "the balance", body = serde_json::Value),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 404, description = MODEM_ERRORS_404, body = ErrorBody),
        (status = 409, description = "`modem_not_ready`; `ussd_unsupported`: a remote device that did not announce USSD", body = ErrorBody),
        (status = 422, description = "`no_balance_code`: the operator profile has none", body = ErrorBody),
        (status = 502, description = "`modem_error`", body = ErrorBody),
        (status = 503, description = "`modem_unavailable`: the remote device disconnected before answering", body = ErrorBody),
        (status = 504, description = "`modem_timeout`", body = ErrorBody),
    ))]
fn modem_balance() {}

// ---- operations ----

/// Summary: liveness, readiness, database, devices online, open connections (no key).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "ready", body = HealthSummary),
        (status = 503, description = "not ready (with `Retry-After`)", body = HealthSummary),
    ))]
fn health() {}

/// Liveness: the process and its database writer run (`503`: restart it).
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses(
        (status = 200, description = "alive", body = Liveness),
        (status = 503, description = "the writer is down", body = Liveness),
    ))]
fn health_live() {}

/// Readiness: a write can commit now and devices can connect (`503`: send no traffic).
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "not ready (with `Retry-After`)", body = Readiness),
    ))]
fn health_ready() {}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "the metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "`unauthorized`: the hub runs with `--metrics-token` and the request lacks it", body = ErrorBody),
    ))]
fn metrics() {}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", body = serde_json::Value)))]
fn openapi() {}

/// Swagger UI for this document (served from the binary, works offline).
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses(
        (status = 200, description = "the page (after the redirect)", content_type = "text/html", body = String),
        (status = 302, description = "to `/docs/`"),
    ))]
fn docs() {}

/// A file of Swagger UI.
#[utoipa::path(get, path = "/docs/{file}", tag = "operations",
    params(("file" = String, Path, min_length = 1, example = "swagger-ui.css")),
    responses(
        (status = 200, description = "the file", content_type = "*/*", body = String),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn docs_file() {}

/// The live dashboard.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "the page", content_type = "text/html", body = String)))]
fn dashboard() {}

/// A file of the dashboard.
#[utoipa::path(get, path = "/assets/{file}", tag = "operations",
    params(("file" = String, Path, min_length = 1, example = "app.js")),
    responses(
        (status = 200, description = "the file", content_type = "*/*", body = String),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn dashboard_asset() {}

/// The device WebSocket (protocol v1, see `android-client-spec/`): a `GET` with
/// `Upgrade: websocket` and the device token as `Authorization: Bearer` or `?token=`. Not
/// a REST call: after `101` the connection speaks the device protocol.
#[utoipa::path(get, path = "/ws/device/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "pixel-7-0f3a"),
        ("token" = Option<String>, Query, description = "the device token, when it cannot be sent as `Authorization: Bearer`")),
    responses(
        (status = 101, description = "upgraded to a WebSocket"),
        (status = 400, description = "`missing_header`, `invalid_header`: not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no token, unknown device or wrong token", body = ErrorBody),
        (status = 503, description = "`too_many_connections`, `store_unavailable`", body = ErrorBody),
    ))]
fn device_socket() {}
