//! The documentation of the mobile API of capcom6's SMS Gateway for Android app
//! (`transport/gateway_app`, `api/compat/mobile.rs`): what the app calls on its server, so a
//! phone running it joins smshub unchanged. Never called.

#![allow(dead_code)]

use super::schemas::ErrorBody;
use crate::api::compat::mobile::{RegisterRequest, Registered, UserCode};

/// Registers a phone running the app as a device of kind `sms-gateway-app`: with
/// `Authorization: Bearer` and an API key with `devices:write` (the app's "private token"),
/// `Authorization: Basic` with a user who may write devices (or any name and such a key), or
/// `Authorization: Code` with a pairing code. The token is shown once.
#[utoipa::path(post, path = "/mobile/v1/device", tag = "sms-gateway-app",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "the device's id and token", body = Registered),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`, `invalid_header`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the credential may not write devices", body = ErrorBody),
        (status = 404, description = "`invalid_pairing_code`", body = ErrorBody),
        (status = 410, description = "`pairing_code_used`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
fn register() {}

/// The device of the bearer token (none without one) and the address the hub sees the
/// phone at.
#[utoipa::path(get, path = "/mobile/v1/device", tag = "sms-gateway-app",
    responses(
        (status = 200, description = "`{device?, externalIp}`", body = serde_json::Value),
        (status = 401, description = "`unauthorized`: a token of no such device", body = ErrorBody),
    ))]
fn get_device() {}

/// The app's SIM cards (`{id, pushToken, simCards}`); the id must be the token's device.
#[utoipa::path(patch, path = "/mobile/v1/device", tag = "sms-gateway-app",
    request_body = serde_json::Value,
    responses(
        (status = 204, description = "recorded"),
        (status = 400, description = "`invalid_json`, `invalid_header`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: another device's id", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
    ))]
fn patch_device() {}

/// A pairing code another phone redeems with `Authorization: Code` (Basic credentials of a
/// user who may write devices, or any credential with `devices:write`).
#[utoipa::path(get, path = "/mobile/v1/user/code", tag = "sms-gateway-app",
    responses(
        (status = 200, description = "the code and until when it is valid", body = UserCode),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 503, description = "`too_many_pairing_codes`", body = ErrorBody),
    ))]
fn user_code() {}

/// The phone's live channel (Server-Sent Events): `MessageEnqueued` when a job waits for
/// it, a keep-alive comment every 15 s. The phone is online while it is open.
#[utoipa::path(get, path = "/mobile/v1/events", tag = "sms-gateway-app",
    responses(
        (status = 200, description = "the event stream", content_type = "text/event-stream", body = String),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`too_many_connections`", body = ErrorBody),
    ))]
fn events() {}

/// The phone's jobs: what it pulls becomes accepted for it (never offered elsewhere), and
/// every job it holds and has not reported is listed (`MobileMessage`).
#[utoipa::path(get, path = "/mobile/v1/message", tag = "sms-gateway-app",
    params(("order" = Option<String>, Query, description = "`lifo` (default) or `fifo`")),
    responses(
        (status = 200, description = "the jobs", body = Vec<serde_json::Value>),
        (status = 400, description = "`invalid_order`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
fn pull() {}

/// As `GET /mobile/v1/message`.
#[utoipa::path(get, path = "/mobile/v1/messages", tag = "sms-gateway-app",
    params(("order" = Option<String>, Query, description = "`lifo` (default) or `fifo`")),
    responses(
        (status = 200, description = "the jobs", body = Vec<serde_json::Value>),
        (status = 400, description = "`invalid_order`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
fn pull_plural() {}

/// The states of the phone's jobs (`[{id, state, recipients, states}]`), never moving a
/// message backwards; a message that is not the phone's is ignored.
#[utoipa::path(patch, path = "/mobile/v1/message", tag = "sms-gateway-app",
    request_body = Vec<serde_json::Value>,
    responses(
        (status = 204, description = "recorded"),
        (status = 400, description = "`invalid_json`, `invalid_state`, `too_many_ids`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
    ))]
fn report() {}

/// As `PATCH /mobile/v1/message`.
#[utoipa::path(patch, path = "/mobile/v1/messages", tag = "sms-gateway-app",
    request_body = Vec<serde_json::Value>,
    responses(
        (status = 204, description = "recorded"),
        (status = 400, description = "`invalid_json`, `invalid_state`, `too_many_ids`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
    ))]
fn report_plural() {}

/// The app's settings from smshub: its sending limits and pause (from the device's
/// limits), the ping interval, the key it signs its webhooks to smshub with, the
/// `SSE_ONLY` channel.
#[utoipa::path(get, path = "/mobile/v1/settings", tag = "sms-gateway-app",
    responses(
        (status = 200, description = "`DeviceSettings`", body = serde_json::Value),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
fn settings() {}

/// The webhooks the app posts back to smshub: `system:ping` (its health) and
/// `sms:received`, both to `POST /mobile/v1/hooks`.
#[utoipa::path(get, path = "/mobile/v1/webhooks", tag = "sms-gateway-app",
    responses(
        (status = 200, description = "`[{id, url, event}]`", body = Vec<serde_json::Value>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
fn webhooks() {}

/// The app's webhooks (`{id, webhookId, event, deviceId, payload}`), signed with its key:
/// `X-Signature` is the hex HMAC-SHA256 of the body followed by `X-Timestamp` (Unix
/// seconds, within 15 minutes of the hub's clock).
#[utoipa::path(post, path = "/mobile/v1/hooks", tag = "sms-gateway-app",
    request_body = serde_json::Value,
    params(
        ("X-Signature" = Option<String>, Header, description = "hex HMAC-SHA256"),
        ("X-Timestamp" = Option<String>, Header, description = "Unix seconds"),
    ),
    responses(
        (status = 200, description = "stored (or not an event smshub keeps)"),
        (status = 400, description = "`invalid_json`, `invalid_payload`, `invalid_header`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: unsigned, stale, or not the device's signature", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
fn hooks() {}
