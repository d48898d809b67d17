//! `GET /inbox` of capcom6's API: the SMS smshub's devices received, as that API's
//! `IncomingMessage` (every one of type `SMS`), newest first, with `X-Total-Count`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::json;
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::api::handlers;
use crate::domain::format_millis;

/// The query of `GET /inbox`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct InboxQuery {
    /// `SMS` (smshub receives no other type: any other gives an empty list).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// 1 to 500, default 50.
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub offset: Option<u64>,
    /// Accepted; not a filter here.
    #[serde(default)]
    #[allow(dead_code)]
    pub from: Option<String>,
    /// Accepted; not a filter here.
    #[serde(default)]
    #[allow(dead_code)]
    pub to: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    /// Accepted and ignored (no MMS).
    #[serde(default)]
    #[allow(dead_code)]
    pub include_attachments: Option<String>,
}

/// That API's `IncomingMessage`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncomingMessage {
    pub id: String,
    /// Always `SMS`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sender: String,
    /// 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_number: Option<u32>,
    /// The whole text.
    pub content_preview: String,
    pub created_at: String,
    /// The device that received it (an smshub addition).
    pub device_id: String,
}

/// `GET /inbox`.
pub async fn list(api: Arc<ApiState>, query: InboxQuery) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let offset = handlers::offset(query.offset)?;
    let (records, total) = match query.kind.as_deref() {
        None | Some("SMS") => {
            api.store
                .list_inbox(query.device_id.as_deref(), None, None, limit, offset)
                .await?
        }
        Some("DATA_SMS" | "MMS" | "MMS_DOWNLOADED") => (Vec::new(), 0),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("type must be SMS, DATA_SMS, MMS or MMS_DOWNLOADED, got {other:?}"),
            ));
        }
    };
    let messages: Vec<IncomingMessage> = records
        .into_iter()
        .map(|it| IncomingMessage {
            id: it.id.to_string(),
            kind: "SMS",
            sender: it.sender,
            sim_number: it.sim_slot.map(|slot| u32::from(slot) + 1),
            content_preview: it.text,
            created_at: format_millis(it.received_at),
            device_id: it.device_id,
        })
        .collect();
    let mut response = json(&messages, StatusCode::OK);
    response
        .headers_mut()
        .insert("x-total-count", HeaderValue::from(total));
    Ok(response)
}
