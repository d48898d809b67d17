//! `GET /webhooks`, `POST /webhooks`, `DELETE /webhooks/{id}` of capcom6's API, on smshub's
//! webhook engine: a webhook of that API is a smshub webhook with a `compat_id` and a
//! `compat_event`, fanned out and retried as every other, delivered in that app's envelope
//! and signature (`webhooks::compat`).
//!
//! The signing key: that app keeps one per device (its `webhooks.signing_key` setting). Here
//! the tenant's `PATCH /settings` sets it for all its webhooks of this API; a registration
//! may also give one as `signingKey` (an smshub addition to the body); without either the
//! hub makes one and answers it once in the `201`. A registration with an `id` that exists
//! replaces it.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::json;
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::api::handlers::parse_json;
use crate::auth::Principal;
use crate::domain::now_millis;
use crate::store::{Change, WebhookChange, WebhookRecord};
use crate::webhooks::compat as events;

/// Longest webhook id.
const MAX_ID: usize = 36;
/// Length of a generated signing key (letters and digits).
const KEY_LEN: usize = 24;

/// `POST /webhooks`: that API's `Webhook`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"url": "https://app.example/hooks/sms", "event": "sms:delivered"}))]
pub struct CompatWebhookRequest {
    /// Up to 36 characters; an existing id is replaced. Made by the hub when absent.
    #[serde(default)]
    pub id: Option<String>,
    pub url: String,
    /// `sms:received`, `sms:sent`, `sms:delivered`, `sms:failed`, `sms:cancelled`,
    /// `system:ping` (and, never sent by smshub, `sms:data-received`, `mms:received`,
    /// `mms:downloaded`, `app:started`).
    pub event: String,
    /// Only events of this device.
    #[serde(default)]
    pub device_id: Option<String>,
    /// The key `X-Signature` is made with (smshub addition); made by the hub when absent.
    #[serde(default)]
    pub signing_key: Option<String>,
}

/// A webhook as that API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatWebhook {
    pub id: String,
    pub url: String,
    pub event: String,
    pub device_id: Option<String>,
    /// Only in the answer to its registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

fn shown(hook: &WebhookRecord) -> CompatWebhook {
    CompatWebhook {
        id: hook.compat_id.clone().unwrap_or_default(),
        url: hook.url.clone(),
        event: hook.compat_event.clone().unwrap_or_default(),
        device_id: hook.device_id.clone(),
        signing_key: None,
    }
}

/// The credential's webhooks of that API.
async fn own(api: &ApiState, who: &Principal) -> Result<Vec<WebhookRecord>, ApiError> {
    Ok(api
        .store
        .list_webhooks(Some(who.owner))
        .await?
        .into_iter()
        .filter(|it| it.compat_id.is_some())
        .collect())
}

/// `GET /webhooks`.
pub async fn list(api: Arc<ApiState>, who: Principal) -> Result<Response, ApiError> {
    let hooks: Vec<CompatWebhook> = own(&api, &who).await?.iter().map(shown).collect();
    Ok(json(&hooks, StatusCode::OK))
}

/// `POST /webhooks`: `201` with the webhook and its signing key.
pub async fn create(api: Arc<ApiState>, who: Principal, body: Bytes) -> Result<Response, ApiError> {
    let request: CompatWebhookRequest = parse_json(&body)?;
    let Some(event) = events::event(&request.event) else {
        let known: Vec<&str> = events::EVENTS.iter().map(|it| it.name).collect();
        return Err(ApiError::bad_request(
            "invalid_event",
            format!("event must be one of {known:?}, got {:?}", request.event),
        ));
    };
    let id = match request.id.filter(|it| !it.is_empty()) {
        Some(id) if id.chars().count() > MAX_ID => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("id must be at most {MAX_ID} characters"),
            ));
        }
        Some(id) => id,
        None => Uuid::new_v4().to_string(),
    };
    if let Some(device) = &request.device_id
        && (device.is_empty() || device.len() > 128)
    {
        return Err(ApiError::bad_request(
            "invalid_device_id",
            "deviceId must be 1 to 128 characters",
        ));
    }
    if let Some(key) = &request.signing_key
        && (key.is_empty() || key.len() > 256)
    {
        return Err(ApiError::bad_request(
            "invalid_secret",
            "signingKey must be 1 to 256 characters",
        ));
    }
    let policy = api.webhooks.policy;
    let url = policy
        .parse(&request.url)
        .map_err(|it| ApiError::bad_request(it.code(), it.to_string()))?;
    policy
        .check(&url)
        .await
        .map_err(|it| ApiError::bad_request(it.code(), it.to_string()))?;
    let replaced = own(&api, &who)
        .await?
        .into_iter()
        .find(|it| it.compat_id.as_deref() == Some(id.as_str()));
    let key = match request.signing_key {
        Some(key) => key,
        None => match api.store.compat_signing_key(who.owner).await? {
            Some(key) => key,
            None => replaced
                .as_ref()
                .map_or_else(new_key, |it| it.secret.clone()),
        },
    };
    if let Some(old) = &replaced {
        api.store
            .apply(Change::Webhook(WebhookChange::Delete { id: old.id }))
            .await?;
    }
    let record = WebhookRecord {
        id: Uuid::now_v7(),
        owner: who.owner,
        scopes: who.scopes.to_string(),
        url: url.to_string(),
        types: events::type_filter(event),
        device_id: request.device_id,
        secret: key.clone(),
        old_secret: None,
        old_secret_until: None,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        // From the next event on.
        cursor: api.store.events().last_id(),
        created_at: now_millis(),
        compat_id: Some(id),
        compat_event: Some(event.name.to_string()),
    };
    api.store
        .apply(Change::Webhook(WebhookChange::Create(record.clone())))
        .await?;
    api.webhooks.wake();
    tracing::info!(webhook = %record.id, url = %record.url, event = event.name, by = %who.label, "webhook of capcom6's API created");
    let mut body = shown(&record);
    body.signing_key = Some(key);
    Ok(json(&body, StatusCode::CREATED))
}

/// `DELETE /webhooks/{id}`: `204`, whether it existed or not (as there).
pub async fn delete(api: Arc<ApiState>, who: Principal, id: String) -> Result<Response, ApiError> {
    for hook in own(&api, &who).await? {
        if hook.compat_id.as_deref() == Some(id.as_str()) {
            api.store
                .apply(Change::Webhook(WebhookChange::Delete { id: hook.id }))
                .await?;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A new signing key: letters and digits.
fn new_key() -> String {
    crate::domain::generate_secret("")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(KEY_LEN)
        .collect()
}
