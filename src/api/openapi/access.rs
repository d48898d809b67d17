//! The documentation of the access-control routes (keys, people, audit, pairing, device
//! tokens) and the event streams: their `#[utoipa::path]` attributes and the shapes their
//! handlers build with `json!` (`api/access.rs`, `api/credentials.rs`, `api/events.rs`).
//! Never called; schemathesis checks every answer against these shapes.

#![allow(dead_code)]

use utoipa::ToSchema;

use super::schemas::ErrorBody;

/// Rate limits a key overrides (absent: the hub's defaults; 0: no limit).
#[derive(ToSchema)]
pub struct KeyLimitsDoc {
    #[schema(minimum = 0)]
    pub requests_per_minute: Option<u32>,
    #[schema(minimum = 0)]
    pub messages_per_minute: Option<u32>,
    #[schema(minimum = 0)]
    pub messages_per_hour: Option<u32>,
    #[schema(minimum = 0)]
    pub messages_per_day: Option<u32>,
}

/// An API key as lists show it: never its secret or hash.
#[derive(ToSchema)]
#[schema(example = json!({"id": "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", "name": "shop", "prefix": "shk_7DWX4B", "scopes": ["messages:send", "messages:read"], "created_at": "2026-12-05T09:00:00Z", "expires_at": null, "last_used_at": "2026-12-05T09:30:00Z", "revoked_at": null, "status": "active", "devices": null, "rate_limits": {}, "created_by": "admin"}))]
pub struct KeyView {
    pub id: String,
    pub name: String,
    /// Shown in lists, logs and the dashboard to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// The only devices (`id` or `id:slot`) it may send through; `null`: any.
    pub devices: Option<Vec<String>>,
    pub rate_limits: KeyLimitsDoc,
    pub created_by: Option<String>,
}

/// `GET /api/keys`.
#[derive(ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

/// A created or rotated key: the fields of [`KeyView`] and its secret, shown this once.
#[derive(ToSchema)]
pub struct CreatedKey {
    /// The secret (send it as `X-API-Key`); shown only in this answer.
    pub key: String,
    /// The same secret (the Flask gateway's name for it).
    pub api_key: String,
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub status: String,
    pub devices: Option<Vec<String>>,
    pub rate_limits: KeyLimitsDoc,
    pub created_by: Option<String>,
}

/// `POST /api/keys`. Unknown fields are refused.
#[derive(ToSchema)]
#[schema(example = json!({"name": "shop", "scopes": ["messages:send", "messages:read"], "expires_at": "90d", "rate_limits": {"messages_per_minute": 60}}))]
pub struct CreateKeyRequest {
    /// 1 to 64 characters.
    pub name: String,
    /// Scope names, as a list or one space- or comma-separated text (default
    /// `messages:send messages:read`); the creator must hold each.
    #[schema(value_type = Option<Vec<String>>)]
    pub scopes: Option<serde_json::Value>,
    /// RFC 3339, or a duration from now like `30d`, `12h`.
    pub expires_at: Option<String>,
    /// Restrict sending to these devices (`id`) or SIMs (`id:slot`).
    pub devices: Option<Vec<String>>,
    pub rate_limits: Option<KeyLimitsDoc>,
}

/// `POST /api/generate-api-key` (the Flask gateway's): a key with the caller's scopes.
#[derive(ToSchema)]
pub struct GeneratedKey {
    pub api_key: String,
    pub id: String,
    pub prefix: String,
    pub scopes: Vec<String>,
}

/// One audit entry.
#[derive(ToSchema)]
pub struct AuditEntry {
    pub at: String,
    /// A key's prefix or `user:NAME`.
    pub actor: String,
    /// `key.create`, `key.revoke`, `login`, …
    pub action: String,
    pub target: Option<String>,
    pub ok: bool,
    pub detail: Option<String>,
}

/// `GET /api/audit`.
#[derive(ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
}

/// Query of `GET /api/audit`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQueryDoc {
    /// Only this actor (a key's prefix or `user:NAME`).
    pub actor: Option<String>,
    /// Only this action, e.g. `key.revoke`.
    pub action: Option<String>,
    /// RFC 3339: only entries at or after.
    pub since: Option<String>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 0)]
    pub limit: Option<u64>,
}

/// A username and password.
#[derive(ToSchema)]
#[schema(example = json!({"username": "admin", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// `POST /api/auth/login`: the session is the `HttpOnly` cookie; send `csrf_token` as
/// `X-CSRF-Token` with every unsafe request of the session.
#[derive(ToSchema)]
pub struct SessionAnswer {
    pub username: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    pub scopes: Vec<String>,
    pub csrf_token: String,
    pub expires_at: String,
}

/// `POST /api/auth/token`: a hub JWT for `Authorization: Bearer`.
#[derive(ToSchema)]
pub struct TokenAnswer {
    pub token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: i64,
    pub role: String,
    pub scopes: Vec<String>,
}

/// `POST /api/auth` (the Flask gateway's login).
#[derive(ToSchema)]
pub struct FlaskToken {
    pub token: String,
    pub username: String,
    pub role: String,
}

/// `GET /api/auth/me`: who the credential is.
#[derive(ToSchema)]
pub struct Me {
    pub label: String,
    /// The tenant: the key's id, or the user's.
    pub owner: String,
    pub scopes: Vec<String>,
    /// `api_key`, `session`, `token` or `oidc`.
    pub via: String,
    pub devices: Option<Vec<String>>,
}

/// `POST /api/devices/pairing`. Unknown fields are refused.
#[derive(ToSchema)]
#[schema(example = json!({"name": "shop phone", "ttl_s": 600}))]
pub struct PairingRequest {
    /// The new device's name (1 to 64 characters).
    pub name: Option<String>,
    /// Seconds the code lives (default 600, at most 86400).
    #[schema(minimum = 0)]
    pub ttl_s: Option<u64>,
}

/// A one-time pairing code and its QR code.
#[derive(ToSchema)]
pub struct Pairing {
    pub code: String,
    pub expires_at: String,
    pub expires_in_s: u64,
    pub hub_url: String,
    /// What the QR code holds: `{"hub":…,"code":…}`.
    pub qr_payload: String,
    /// The QR code as an SVG image.
    pub qr_svg: String,
}

/// `POST /api/devices/pair`. Unknown fields are refused.
#[derive(ToSchema)]
#[schema(example = json!({"code": "K7M2-Q9XD", "name": "shop phone"}))]
pub struct RedeemRequest {
    pub code: String,
    pub name: Option<String>,
}

/// A paired device: its id, token (shown this once) and socket URL.
#[derive(ToSchema)]
pub struct Paired {
    pub device_id: String,
    pub name: String,
    pub token: String,
    pub ws_url: String,
}

/// A device's new token (the old one no longer works).
#[derive(ToSchema)]
pub struct RotatedToken {
    pub device_id: String,
    pub token: String,
    pub ws_url: String,
}

/// The filters and resume position of both event streams.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQueryDoc {
    /// Comma-separated event types; `message.*` for a family.
    #[param(example = "message.*,sms.received")]
    pub types: Option<String>,
    /// Only this device's events.
    pub device_id: Option<String>,
    /// Only this message's events.
    pub message_id: Option<uuid::Uuid>,
    /// Replay from after this event id (SSE: `Last-Event-ID` wins).
    #[param(example = "1042")]
    pub after: Option<String>,
}

// ---- keys ----

/// Every API key, newest first, revoked ones too, with last use.
#[utoipa::path(get, path = "/api/keys", tag = "access",
    responses((status = 200, description = "the keys", body = KeyList)))]
fn list_keys() {}

/// Create a key. The secret is in this answer only; the creator must hold every scope it
/// grants.
#[utoipa::path(post, path = "/api/keys", tag = "access", request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "created", body = CreatedKey),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`, `invalid_scope`, `invalid_time`", body = ErrorBody),
    ))]
fn create_key() {}

/// One key, by id or prefix.
#[utoipa::path(get, path = "/api/keys/{id}", tag = "access",
    params(("id" = String, Path, min_length = 1, description = "the key's id or prefix", example = "shk_7DWX4B")),
    responses(
        (status = 200, description = "the key", body = KeyView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn show_key() {}

/// Revoke a key: refused from the next request on.
#[utoipa::path(delete, path = "/api/keys/{id}", tag = "access",
    params(("id" = String, Path, min_length = 1, description = "the key's id or prefix", example = "shk_7DWX4B")),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "`not_found`: no such key, or revoked already", body = ErrorBody),
    ))]
fn revoke_key() {}

/// Replace a key with a new one of the same name, scopes and limits; the old one is revoked.
#[utoipa::path(post, path = "/api/keys/{id}/rotate", tag = "access",
    params(("id" = String, Path, min_length = 1, description = "the key's id or prefix", example = "shk_7DWX4B")),
    responses(
        (status = 200, description = "the new key (its secret shown this once)", body = CreatedKey),
        (status = 404, description = "`not_found`: no such key, or revoked already", body = ErrorBody),
    ))]
fn rotate_key() {}

/// The Flask gateway's key generation: a new key with the caller's scopes.
#[utoipa::path(post, path = "/api/generate-api-key", tag = "access",
    responses((status = 201, description = "created", body = GeneratedKey)))]
fn generate_api_key() {}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "access", params(AuditQueryDoc),
    responses(
        (status = 200, description = "the entries", body = AuditList),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    ))]
fn audit() {}

// ---- people ----

/// Every user, by name: role, when made, last sign-in, lockout. Never a password or hash.
#[utoipa::path(get, path = "/api/users", tag = "access",
    responses((status = 200, description = "the users", body = crate::api::dto::UserList)))]
fn list_users() {}

/// Add a user (their password stored as an argon2id hash, as `smshub users add` does).
#[utoipa::path(post, path = "/api/users", tag = "access",
    request_body = crate::api::dto::CreateUserRequest,
    responses(
        (status = 201, description = "added", body = crate::api::dto::UserDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_username`, `invalid_password`, `invalid_role`", body = ErrorBody),
        (status = 409, description = "`user_exists`", body = ErrorBody),
    ))]
fn create_user() {}

/// Change a user's role and/or password (a new password ends their sessions).
#[utoipa::path(patch, path = "/api/users/{username}", tag = "access",
    request_body = crate::api::dto::UpdateUserRequest,
    params(("username" = String, Path, min_length = 1, example = "alice")),
    responses(
        (status = 200, description = "the user as changed", body = crate::api::dto::UserDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_password`, `invalid_role`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`last_admin`: the hub's only admin cannot lose the role", body = ErrorBody),
    ))]
fn update_user() {}

/// Remove a user; their sessions end.
#[utoipa::path(delete, path = "/api/users/{username}", tag = "access",
    params(("username" = String, Path, min_length = 1, example = "alice")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`last_admin`: the hub's only admin cannot be removed", body = ErrorBody),
    ))]
fn delete_user() {}

/// Sign in: a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` on TLS) and its CSRF
/// token. No credential needed.
#[utoipa::path(post, path = "/api/auth/login", tag = "access", request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in", body = SessionAnswer),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong username or password", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many failed logins (with `Retry-After`)", body = ErrorBody),
    ))]
fn login() {}

/// The Flask gateway's login: `{token, username, role}`. No credential needed.
#[utoipa::path(post, path = "/api/auth", tag = "access", request_body = LoginRequest,
    responses(
        (status = 200, description = "a hub JWT", body = FlaskToken),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong username or password", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many failed logins (with `Retry-After`)", body = ErrorBody),
    ))]
fn flask_login() {}

/// A hub JWT (15 minutes) for a username and password, or, with an empty body, for the
/// signed-in session's user.
#[utoipa::path(post, path = "/api/auth/token", tag = "access",
    request_body(content = Option<LoginRequest>, description = "omit with a session"),
    responses(
        (status = 200, description = "a hub JWT", body = TokenAnswer),
        (status = 400, description = "`invalid_json`, `invalid_request`: no password and no session", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong username or password", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many failed logins (with `Retry-After`)", body = ErrorBody),
    ))]
fn token() {}

/// Sign out: the session ends and its cookie is cleared. Any credential.
#[utoipa::path(post, path = "/api/auth/logout", tag = "access",
    responses((status = 204, description = "signed out")))]
fn logout() {}

/// Who this credential is: label, tenant, scopes, how it authenticated. Any credential.
#[utoipa::path(get, path = "/api/auth/me", tag = "access",
    responses((status = 200, description = "the caller", body = Me)))]
fn me() {}

// ---- pairing and device tokens ----

/// A one-time pairing code (and its QR code) a phone redeems for its device id and token.
#[utoipa::path(post, path = "/api/devices/pairing", tag = "devices",
    request_body(content = Option<PairingRequest>, description = "optional"),
    responses(
        (status = 201, description = "the code", body = Pairing),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`, `invalid_ttl`", body = ErrorBody),
        (status = 503, description = "`too_many_pairing_codes`", body = ErrorBody),
    ))]
fn create_pairing() {}

/// Redeem a pairing code: the phone gets its device id, token and socket URL. No credential:
/// the code is the credential (attempts per address are rate-limited).
#[utoipa::path(post, path = "/api/devices/pair", tag = "devices", request_body = RedeemRequest,
    responses(
        (status = 201, description = "paired", body = Paired),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`", body = ErrorBody),
        (status = 404, description = "`invalid_pairing_code`: no such code, or it expired", body = ErrorBody),
        (status = 410, description = "`pairing_code_used`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (with `Retry-After`)", body = ErrorBody),
    ))]
fn redeem_pairing() {}

/// A new token for the device; its open socket closes with code 4004.
#[utoipa::path(post, path = "/api/devices/{id}/token", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "pixel-7-0f3a")),
    responses(
        (status = 200, description = "the new token, shown this once", body = RotatedToken),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn rotate_device_token() {}

/// Revoke the device's token: it cannot connect until given a new one; its open socket
/// closes with code 4004.
#[utoipa::path(delete, path = "/api/devices/{id}/token", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "pixel-7-0f3a")),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn revoke_device_token() {}

// ---- rests ----

/// Rest a device: it is offered no new job for `minutes` (default 60); the jobs it holds
/// stay its own. Shown as `rested_until` and `rest_reason`; a `device.rested` event.
#[utoipa::path(post, path = "/api/devices/{id}/rest", tag = "devices",
    request_body(content = Option<crate::api::dto::RestRequest>, description = "optional"),
    params(("id" = String, Path, min_length = 1, example = "pixel-7-0f3a")),
    responses(
        (status = 200, description = "rested", body = crate::api::dto::RestDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_minutes`, `invalid_reason`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn rest_device() {}

/// End a device's rest, an operator's or the circuit breaker's: it gets offers again.
#[utoipa::path(delete, path = "/api/devices/{id}/rest", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "pixel-7-0f3a")),
    responses(
        (status = 200, description = "no longer rested", body = crate::api::dto::RestDto),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn unrest_device() {}

// ---- events ----

/// The event log as Server-Sent Events: one `event:` per type, `id:` the event's id, `data:`
/// the event as JSON; a comment every 15 s. Resumes after `Last-Event-ID` (or `?after=`).
/// Only the events this credential may see.
#[utoipa::path(get, path = "/api/events", tag = "events", params(StreamQueryDoc,
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this event id")),
    responses(
        (status = 200, description = "the stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_types`, `invalid_after`, `invalid_query`", body = ErrorBody),
    ))]
fn events() {}

/// The event log as a WebSocket (the modem manager's path): one text frame per event (JSON);
/// pings every 15 s; `?after=` resumes.
#[utoipa::path(get, path = "/ws", tag = "events", params(StreamQueryDoc),
    responses(
        (status = 101, description = "upgraded to a WebSocket"),
        (status = 400, description = "`invalid_types`, `invalid_after`, `invalid_query`, `missing_header`, `invalid_header`: not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no credential, or not a valid one", body = ErrorBody),
        (status = 403, description = "`forbidden`: the credential lacks the scope", body = ErrorBody),
    ))]
fn events_socket() {}
