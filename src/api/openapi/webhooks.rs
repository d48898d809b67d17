//! The documentation of the webhook routes (`api/webhooks.rs`): their `#[utoipa::path]`
//! attributes and the shapes their handlers build with `json!`. Never called; schemathesis
//! checks every answer against these shapes.

#![allow(dead_code)]

use utoipa::{IntoParams, ToSchema};

use super::schemas::ErrorBody;

/// A webhook as lists show it: never its secret.
#[derive(ToSchema)]
#[schema(example = json!({"id": "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", "url": "https://app.example/hooks/sms", "types": ["message.*", "sms.received"], "device_id": null, "enabled": true, "disabled_reason": null, "failing_since": null, "previous_secret_expires_at": null, "last_event_id": 1234, "created_at": "2026-12-05T09:00:00Z"}))]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// Type filters (`message.*` for a family); empty: every type.
    pub types: Vec<String>,
    /// Only events of this device.
    pub device_id: Option<String>,
    pub enabled: bool,
    /// Why it was disabled (a `410`, failing too long).
    pub disabled_reason: Option<String>,
    /// Since when every attempt failed.
    pub failing_since: Option<String>,
    /// Until when the secret before the last rotation is still signed with.
    pub previous_secret_expires_at: Option<String>,
    /// The last event fanned out to it.
    pub last_event_id: i64,
    pub created_at: String,
}

/// A created webhook: the fields of [`WebhookView`] and its secret, shown this once.
#[derive(ToSchema)]
pub struct CreatedWebhook {
    /// `whsec_` and base64: verify deliveries with it (Standard Webhooks).
    pub secret: String,
    pub id: String,
    pub url: String,
    pub types: Vec<String>,
    pub device_id: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<String>,
    pub previous_secret_expires_at: Option<String>,
    pub last_event_id: i64,
    pub created_at: String,
}

/// `GET /api/webhooks`.
#[derive(ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// `POST /api/webhooks`. Unknown fields are refused.
#[derive(ToSchema)]
#[schema(example = json!({"url": "https://app.example/hooks/sms", "types": ["message.*", "sms.received"]}))]
pub struct CreateWebhookRequest {
    /// `http` or `https` (only `https` with `--webhook-require-https`); never this machine
    /// unless `--webhook-allow-loopback`.
    pub url: String,
    /// A list or one comma-separated text of types, `message.*` for a family; absent: all.
    pub types: Option<Vec<String>>,
    /// Only events of this device.
    pub device_id: Option<String>,
    /// `whsec_` and the base64 of 24 to 64 bytes; absent: generated.
    pub secret: Option<String>,
}

/// `POST /api/webhooks/{id}/rotate-secret` (the body is optional).
#[derive(ToSchema)]
pub struct RotateSecretRequest {
    /// The new secret; absent: generated.
    pub secret: Option<String>,
}

/// A rotated secret.
#[derive(ToSchema)]
pub struct RotatedSecret {
    pub id: String,
    /// The new secret, shown this once.
    pub secret: String,
    /// Until then deliveries carry both signatures.
    pub previous_secret_expires_at: String,
}

/// One delivery of one event to the webhook.
#[derive(ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// The `webhook-id` header: the same on every attempt and replay.
    pub webhook_message_id: String,
    pub event_id: i64,
    pub event_type: String,
    pub message_id: Option<String>,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: u32,
    /// The last answer's HTTP status.
    pub response_code: Option<u16>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

/// `GET /api/webhooks/{id}/deliveries`.
#[derive(ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

/// A replay's answer.
#[derive(ToSchema)]
pub struct Replayed {
    /// Deliveries made pending again or created.
    pub replayed: u64,
    /// The last event id the replay covered.
    pub through: i64,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQueryDoc {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Deliveries of events before this id (the next page).
    pub before: Option<i64>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplayQueryDoc {
    /// Replay the events after this id.
    #[param(minimum = 0)]
    pub after: i64,
}

/// Register a webhook. Deliveries follow the Standard Webhooks specification
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`); the secret is in this answer
/// only.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "created", body = CreatedWebhook),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_url`, `url_not_allowed`, `https_required`, `invalid_types`, `invalid_device_id`, `invalid_secret`", body = ErrorBody),
    ))]
fn create_webhook() {}

/// This credential's webhooks (every webhook for `admin`).
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks",
    responses((status = 200, description = "the webhooks", body = WebhookList)))]
fn list_webhooks() {}

/// One webhook.
#[utoipa::path(get, path = "/api/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    responses(
        (status = 200, description = "the webhook", body = WebhookView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn show_webhook() {}

/// Delete a webhook and its delivery log.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn delete_webhook() {}

/// A new secret; the previous one stays valid (both signatures sent) for
/// `--webhook-secret-overlap`.
#[utoipa::path(post, path = "/api/webhooks/{id}/rotate-secret", tag = "webhooks",
    request_body(content = Option<RotateSecretRequest>, description = "optional"),
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    responses(
        (status = 200, description = "rotated", body = RotatedSecret),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_secret`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn rotate_webhook_secret() {}

/// Enable a disabled webhook: its pending deliveries are due now, and it catches up on the
/// events since it was disabled (within retention).
#[utoipa::path(post, path = "/api/webhooks/{id}/enable", tag = "webhooks",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    responses(
        (status = 200, description = "enabled", body = WebhookView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn enable_webhook() {}

/// The delivery log, newest event first.
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"), DeliveryQueryDoc),
    responses(
        (status = 200, description = "the deliveries", body = DeliveryList),
        (status = 400, description = "`invalid_status`, `invalid_limit`, `invalid_query`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn list_deliveries() {}

/// Send one delivery again now (same `webhook-id`).
#[utoipa::path(post, path = "/api/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(
        ("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"),
        ("delivery_id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5c"),
    ),
    responses(
        (status = 202, description = "pending again", body = DeliveryView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn retry_delivery() {}

/// Send again every event after `after` that the webhook wants (same `webhook-id`s), within
/// retention.
#[utoipa::path(post, path = "/api/webhooks/{id}/replay", tag = "webhooks",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"), ReplayQueryDoc),
    responses(
        (status = 202, description = "replaying", body = Replayed),
        (status = 400, description = "`invalid_after`, `invalid_query`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn replay_webhook() {}
