//! The documentation of capcom6's SMS Gateway 3rd-party API (`api/compat/`): one
//! `#[utoipa::path]` per operation under `/3rdparty/v1`; [`Prefixes`] copies each under
//! `/api/3rdparty/v1`, where it is served too. Never called.

#![allow(dead_code)]

use utoipa::Modify;
use utoipa::openapi::OpenApi as Document;

use super::schemas::ErrorBody;
use crate::api::compat::auth::{TokenRequest, TokenResponse};
use crate::api::compat::devices::CompatDevice;
use crate::api::compat::health::CompatHealth;
use crate::api::compat::inbox::{InboxQuery, IncomingMessage};
use crate::api::compat::messages::{CompatMessage, CompatMessageState, ListQuery, SendQuery};
use crate::api::compat::settings::CompatSettings;
use crate::api::compat::webhooks::{CompatWebhook, CompatWebhookRequest};

/// The prefix the operations are documented under, and the other one they are served under.
const PREFIX: &str = "/3rdparty/v1/";
const API_PREFIX: &str = "/api/3rdparty/v1/";

/// Copies every operation of [`PREFIX`] under [`API_PREFIX`]; runs before the scopes and
/// the shared answers are added, so both copies get them.
pub(super) struct Prefixes;

impl Modify for Prefixes {
    fn modify(&self, doc: &mut Document) {
        let copies: Vec<(String, utoipa::openapi::PathItem)> = doc
            .paths
            .paths
            .iter()
            .filter_map(|(path, item)| {
                path.strip_prefix(PREFIX)
                    .map(|rest| (format!("{API_PREFIX}{rest}"), item.clone()))
            })
            .collect();
        for (path, mut item) in copies {
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(id) = operation.operation_id.take() {
                    operation.operation_id = Some(format!("api_{id}"));
                }
            }
            doc.paths.paths.insert(path, item);
        }
    }
}

const SEND_ERRORS: &str = "`invalid_json`, `invalid_request`, `missing_recipient`, `too_many_recipients`, `invalid_phone_number`, `empty_message`, `message_too_long`, `unsupported_message` (data, MMS, encrypted), `unknown_device`, `invalid_sim_slot`, `invalid_time`, `invalid_ttl`, `invalid_valid_until`, `invalid_schedule`";

/// Send one message to 1 to 100 recipients (capcom6's `Message`).
///
/// One smshub message per recipient, committed before the `202`, chosen a device by smshub's
/// dispatcher. `id` (the client's, up to 36 characters) names the message; a repeat is a
/// `409`. `simNumber` is 1-based; `priority` is clamped to smshub's -100 to 100. Data and
/// MMS messages and `isEncrypted` are refused.
#[utoipa::path(post, path = "/3rdparty/v1/messages", tag = "sms-gateway",
    params(SendQuery),
    request_body = CompatMessage,
    responses(
        (status = 202, description = "committed; `Location` is its state", body = CompatMessageState),
        (status = 400, description = SEND_ERRORS, body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 409, description = "`duplicate_id`: a message with this id exists; `idempotency_conflict`", body = ErrorBody),
        (status = 503, description = "`queue_full`", body = ErrorBody),
    ))]
fn send() {}

/// The deprecated name of `POST /3rdparty/v1/messages` (the npm client 3.0 calls it).
#[utoipa::path(post, path = "/3rdparty/v1/message", tag = "sms-gateway",
    params(SendQuery),
    request_body = CompatMessage,
    responses(
        (status = 202, description = "committed; `Location` is its state", body = CompatMessageState),
        (status = 400, description = SEND_ERRORS, body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 409, description = "`duplicate_id`, `idempotency_conflict`", body = ErrorBody),
        (status = 503, description = "`queue_full`", body = ErrorBody),
    ))]
fn send_deprecated() {}

/// The credential's messages sent with an id (every send of this API has one), newest first.
///
/// `X-Total-Count` is how many match. Filters by `state` or `deviceId` look through the
/// newest 10 000 messages.
#[utoipa::path(get, path = "/3rdparty/v1/messages", tag = "sms-gateway",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of messages", body = Vec<CompatMessageState>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn list() {}

/// The deprecated name of `GET /3rdparty/v1/messages`.
#[utoipa::path(get, path = "/3rdparty/v1/message", tag = "sms-gateway",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of messages", body = Vec<CompatMessageState>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn list_deprecated() {}

/// A message's state and each recipient's (capcom6's `MessageState`).
#[utoipa::path(get, path = "/3rdparty/v1/messages/{id}", tag = "sms-gateway",
    params(("id" = String, Path, min_length = 1, example = "order-1234")),
    responses(
        (status = 200, description = "the message", body = CompatMessageState),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn get() {}

/// The deprecated name of `GET /3rdparty/v1/messages/{id}` (the npm client 3.0 calls it).
#[utoipa::path(get, path = "/3rdparty/v1/message/{id}", tag = "sms-gateway",
    params(("id" = String, Path, min_length = 1, example = "order-1234")),
    responses(
        (status = 200, description = "the message", body = CompatMessageState),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn get_deprecated() {}

/// Cancel the recipients no device has taken yet.
#[utoipa::path(delete, path = "/3rdparty/v1/messages/{id}", tag = "sms-gateway",
    params(("id" = String, Path, min_length = 1, example = "order-1234")),
    responses(
        (status = 200, description = "the message after the cancel", body = CompatMessageState),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`not_cancellable`: no recipient was pending", body = ErrorBody),
    ))]
fn cancel() {}

/// The deprecated name of `DELETE /3rdparty/v1/messages/{id}`.
#[utoipa::path(delete, path = "/3rdparty/v1/message/{id}", tag = "sms-gateway",
    params(("id" = String, Path, min_length = 1, example = "order-1234")),
    responses(
        (status = 200, description = "the message after the cancel", body = CompatMessageState),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`not_cancellable`: no recipient was pending", body = ErrorBody),
    ))]
fn cancel_deprecated() {}

/// Every device, oldest first (capcom6's `Device`).
#[utoipa::path(get, path = "/3rdparty/v1/devices", tag = "sms-gateway",
    responses(
        (status = 200, description = "the devices", body = Vec<CompatDevice>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn devices() {}

/// Remove a device (as `DELETE /api/devices/{id}`).
#[utoipa::path(delete, path = "/3rdparty/v1/devices/{id}", tag = "sms-gateway",
    params(("id" = String, Path, min_length = 1, example = "dev_7Kq2")),
    responses(
        (status = 204, description = "removed"),
        (status = 400, description = "`invalid_device_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn delete_device() {}

/// Received SMS, newest first (capcom6's `IncomingMessage`); `X-Total-Count`.
#[utoipa::path(get, path = "/3rdparty/v1/inbox", tag = "sms-gateway",
    params(InboxQuery),
    responses(
        (status = 200, description = "a page of received SMS", body = Vec<IncomingMessage>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn inbox() {}

/// The credential's webhooks of this API.
#[utoipa::path(get, path = "/3rdparty/v1/webhooks", tag = "sms-gateway",
    responses(
        (status = 200, description = "the webhooks", body = Vec<CompatWebhook>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn webhooks() {}

/// Register a webhook for one event; an existing `id` is replaced.
///
/// Delivered by smshub's webhook engine (retried until acknowledged) as that app delivers:
/// the body `{id, webhookId, event, deviceId, payload}`, `X-Timestamp` (Unix seconds) and
/// `X-Signature`, the hex HMAC-SHA256 of the body followed by the timestamp, keyed with the
/// `signingKey` (given, or made by the hub and answered here once).
#[utoipa::path(post, path = "/3rdparty/v1/webhooks", tag = "sms-gateway",
    request_body = CompatWebhookRequest,
    responses(
        (status = 201, description = "registered, with its signing key", body = CompatWebhook),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_event`, `invalid_url`, `invalid_device_id`, `invalid_secret`, `https_required`, `url_not_allowed`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn create_webhook() {}

/// Remove a webhook (`204` whether it existed or not).
#[utoipa::path(delete, path = "/3rdparty/v1/webhooks/{id}", tag = "sms-gateway",
    params(("id" = String, Path, min_length = 1, example = "hook-1")),
    responses(
        (status = 204, description = "removed"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn delete_webhook() {}

/// The tenant's settings of this API: only `webhooks.signing_key` is kept.
#[utoipa::path(get, path = "/3rdparty/v1/settings", tag = "sms-gateway",
    responses(
        (status = 200, description = "the settings", body = CompatSettings),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn get_settings() {}

/// Sets `webhooks.signing_key`, the key of every webhook of this API of the tenant; other
/// settings are accepted and ignored (smshub keeps its devices' settings itself).
#[utoipa::path(put, path = "/3rdparty/v1/settings", tag = "sms-gateway",
    request_body = CompatSettings,
    responses(
        (status = 200, description = "the settings", body = CompatSettings),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_secret`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn put_settings() {}

/// As `PUT /3rdparty/v1/settings`.
#[utoipa::path(patch, path = "/3rdparty/v1/settings", tag = "sms-gateway",
    request_body = CompatSettings,
    responses(
        (status = 200, description = "the settings", body = CompatSettings),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_secret`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
fn patch_settings() {}

/// capcom6's `HealthResponse`: `pass`, `warn` (no device online) or `fail` (the database
/// takes no writes).
#[utoipa::path(get, path = "/3rdparty/v1/health", tag = "sms-gateway",
    responses((status = 200, description = "how the hub is", body = CompatHealth)))]
fn health() {}

/// A hub JWT (at most 15 minutes) with the scopes asked for, for the user of a Basic
/// username and password (or a session or hub JWT); capcom6's scope names are mapped onto
/// smshub's.
#[utoipa::path(post, path = "/3rdparty/v1/auth/token", tag = "sms-gateway",
    request_body = TokenRequest,
    responses(
        (status = 201, description = "the token", body = TokenResponse),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_scope`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: an API key, or none of the scopes is the user's", body = ErrorBody),
    ))]
fn token() {}
