//! `GET`, `PUT`, `PATCH /settings` of capcom6's API. There they are the settings pushed to
//! the tenant's phones; smshub keeps its devices' settings itself, so only
//! `webhooks.signing_key` is taken (the key that signs the tenant's webhooks of this API, as
//! the app's own setting does); everything else is accepted and ignored.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::json;
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::api::handlers::parse_json;
use crate::auth::Principal;
use crate::store::{Change, WebhookChange};

/// The webhook part of that API's settings.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct WebhookSettings {
    /// Signs every webhook of this API (`X-Signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

/// That API's `DeviceSettings`: only `webhooks` is kept; other sections are ignored.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"webhooks": {"signing_key": "change-me-now"}}))]
pub struct CompatSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<WebhookSettings>,
}

/// `GET /settings`.
pub async fn get(api: Arc<ApiState>, who: Principal) -> Result<Response, ApiError> {
    let key = api.store.compat_signing_key(who.owner).await?;
    let settings = CompatSettings {
        webhooks: key.map(|key| WebhookSettings {
            signing_key: Some(key),
        }),
    };
    Ok(json(&settings, StatusCode::OK))
}

/// `PUT` and `PATCH /settings`: sets the signing key when given; answers the settings.
pub async fn update(api: Arc<ApiState>, who: Principal, body: Bytes) -> Result<Response, ApiError> {
    let request: serde_json::Value = parse_json(&body)?;
    // The Python client writes `signing_key`, the npm client `signingKey`.
    let given = request
        .pointer("/webhooks/signing_key")
        .or_else(|| request.pointer("/webhooks/signingKey"));
    let key = match given {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(key)) if !key.is_empty() && key.len() <= 256 => {
            Some(key.clone())
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_secret",
                "webhooks.signing_key must be a text of 1 to 256 characters",
            ));
        }
    };
    if let Some(key) = key {
        api.store
            .apply(Change::Webhook(WebhookChange::SigningKey {
                owner: who.owner,
                key,
            }))
            .await?;
    }
    get(api, who).await
}
