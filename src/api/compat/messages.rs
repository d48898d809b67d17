//! `POST /messages`, `GET /messages`, `GET /messages/{id}`, `DELETE /messages/{id}` of
//! capcom6's API (and the deprecated `/message`).
//!
//! A send becomes a native `SendSmsRequest` and goes through `handlers::send`, under the
//! client's `id` (or one made here) as its idempotency key: a repeat of an `id` is the `409`
//! that API answers. The key then names the group of smshub messages the send made.
//!
//! Must never: send other than through `handlers::send`, or show a message the credential
//! may not read.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use warp::http::{HeaderValue, StatusCode, header::LOCATION};
use warp::reply::Response;

use super::json;
use super::states::CompatState;
use crate::api::ApiState;
use crate::api::dto::SendSmsRequest;
use crate::api::error::ApiError;
use crate::api::handlers::{self, parse_json};
use crate::auth::Principal;
use crate::domain::{MessageState, Millis, format_millis, now_millis, parse_rfc3339};
use crate::store::MessageRecord;

/// Most recipients of one message, as that API allows.
const MAX_RECIPIENTS: usize = 100;
/// Longest client `id`.
const MAX_ID: usize = 36;
/// Shortest `ttl`, in seconds.
const MIN_TTL_S: i64 = 5;
/// Most groups looked through when a list filters by state or device.
const FILTER_SCAN: u64 = 10_000;

/// The text of a text message.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct TextMessage {
    pub text: String,
}

/// A data message (binary SMS to a port): smshub's devices do not send these; refused.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct DataMessage {
    /// Base64.
    pub data: String,
    pub port: u32,
}

/// `POST /messages`: that API's `Message`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": "order-1234", "textMessage": {"text": "Your code is 482913"}, "phoneNumbers": ["+14155552671"], "simNumber": 1, "withDeliveryReport": true, "ttl": 3600}))]
pub struct CompatMessage {
    /// Up to 36 characters; a repeat is a `409`. Made by the hub when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Send through this device only.
    #[serde(default)]
    pub device_id: Option<String>,
    /// Deprecated form of `textMessage.text`.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub text_message: Option<TextMessage>,
    #[serde(default)]
    pub data_message: Option<DataMessage>,
    /// MMS: refused.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub mms_message: Option<serde_json::Value>,
    /// 1 to 100 recipients.
    #[serde(default)]
    pub phone_numbers: Option<Vec<String>>,
    /// End-to-end encrypted content: refused (smshub's devices cannot decrypt it).
    #[serde(default)]
    pub is_encrypted: Option<bool>,
    /// The SIM, 1-based (smshub's `sim_slot` + 1).
    #[serde(default)]
    pub sim_number: Option<i64>,
    /// Default `true`.
    #[serde(default)]
    pub with_delivery_report: Option<bool>,
    /// -128 to 127; smshub's -100 to 100 takes it clamped.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Seconds, at least 5 (not with `validUntil`).
    #[serde(default)]
    pub ttl: Option<i64>,
    /// RFC 3339.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// RFC 3339, in the future.
    #[serde(default)]
    pub schedule_at: Option<String>,
}

/// The query of `POST /messages`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SendQuery {
    /// `true`: accept any `+` and 7 to 15 digits.
    #[serde(default)]
    pub skip_phone_validation: Option<String>,
    /// Accepted and ignored: smshub chooses among the devices online now.
    #[serde(default)]
    #[allow(dead_code)]
    pub device_active_within: Option<String>,
}

/// The query of `GET /messages`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// RFC 3339: made at or after.
    #[serde(default)]
    pub from: Option<String>,
    /// RFC 3339: made at or before.
    #[serde(default)]
    pub to: Option<String>,
    /// `Pending`, `Processed`, `Sent`, `Delivered`, `Failed` or `Cancelled`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    /// 1 to 100, default 50.
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub offset: Option<u64>,
    /// `true`: with `textMessage`.
    #[serde(default)]
    pub include_content: Option<String>,
    /// `created_at` or `-created_at` (default: newest first).
    #[serde(default)]
    pub sort: Option<String>,
}

/// One recipient's state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipientState {
    pub phone_number: String,
    pub state: CompatState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// That API's `MessageState`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatMessageState {
    pub id: String,
    /// The device of the first recipient that has one (empty while none has).
    pub device_id: String,
    pub state: CompatState,
    pub is_hashed: bool,
    pub is_encrypted: bool,
    pub recipients: Vec<RecipientState>,
    /// When each state was first reached, RFC 3339.
    pub states: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_message: Option<TextMessage>,
    pub created_at: String,
}

impl CompatMessage {
    /// The native request this one is, under idempotency key `id`; every check of that API
    /// smshub's own checks do not make.
    fn into_native(self, id: String, skip: bool, now: Millis) -> Result<SendSmsRequest, ApiError> {
        let invalid = |message: &str| ApiError::bad_request("invalid_request", message);
        if self.mms_message.is_some() {
            return Err(ApiError::bad_request(
                "unsupported_message",
                "MMS is not supported by smshub",
            ));
        }
        if self.data_message.is_some() {
            return Err(ApiError::bad_request(
                "unsupported_message",
                "data messages are not supported by smshub's devices; send a textMessage",
            ));
        }
        if self.is_encrypted == Some(true) {
            return Err(ApiError::bad_request(
                "unsupported_message",
                "encrypted messages are not supported: smshub's devices cannot decrypt them",
            ));
        }
        let text = match (self.text_message, self.message) {
            (Some(_), Some(_)) => {
                return Err(invalid("give one of textMessage and message"));
            }
            (Some(text), None) => text.text,
            (None, Some(text)) => text,
            (None, None) => {
                return Err(invalid(
                    "must specify exactly one of: textMessage or dataMessage",
                ));
            }
        };
        let numbers = self.phone_numbers.unwrap_or_default();
        if numbers.is_empty() {
            return Err(ApiError::bad_request(
                "missing_recipient",
                "phoneNumbers must hold 1 to 100 numbers",
            ));
        }
        if numbers.len() > MAX_RECIPIENTS {
            return Err(ApiError::bad_request(
                "too_many_recipients",
                format!(
                    "at most {MAX_RECIPIENTS} phoneNumbers, got {}",
                    numbers.len()
                ),
            ));
        }
        let sim_slot = match self.sim_number {
            None => None,
            Some(n) if n >= 1 => Some(n - 1),
            Some(n) => {
                return Err(ApiError::bad_request(
                    "invalid_sim_slot",
                    format!("simNumber is 1-based, got {n}"),
                ));
            }
        };
        if let Some(ttl) = self.ttl
            && ttl < MIN_TTL_S
        {
            return Err(ApiError::bad_request(
                "invalid_ttl",
                format!("ttl must be at least {MIN_TTL_S} seconds, got {ttl}"),
            ));
        }
        if let Some(at) = &self.schedule_at
            && parse_rfc3339(at).is_some_and(|it| it <= now)
        {
            return Err(ApiError::bad_request(
                "invalid_schedule",
                "scheduleAt must be in the future",
            ));
        }
        let priority = self.priority.map(|it| it.clamp(-100, 100) as i32);
        Ok(SendSmsRequest {
            phone_number: None,
            phone_numbers: Some(numbers),
            message: Some(text),
            device_id: self.device_id.filter(|it| !it.is_empty()),
            sim_slot,
            sim_card_id: None,
            sim: None,
            delivery_report: Some(self.with_delivery_report.unwrap_or(true)),
            id: Some(id),
            ttl: self.ttl,
            valid_until: self.valid_until,
            schedule_at: self.schedule_at,
            priority,
            template_id: None,
            params: None,
            skip_phone_validation: Some(skip),
        })
    }
}

/// `POST /messages`: `202` with the message's state and its `Location`; `409` when its `id`
/// was sent before.
pub async fn send(
    api: Arc<ApiState>,
    who: Principal,
    body: Bytes,
    query: SendQuery,
    prefix: &'static str,
) -> Result<Response, ApiError> {
    let request: CompatMessage = parse_json(&body)?;
    let id = match &request.id {
        Some(id) if id.is_empty() || id.chars().count() > MAX_ID => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("id must be 1 to {MAX_ID} characters"),
            ));
        }
        Some(id) => id.clone(),
        None => Uuid::now_v7().to_string(),
    };
    let skip = matches!(query.skip_phone_validation.as_deref(), Some("true" | "1"));
    let now = now_millis();
    let native = request.into_native(id.clone(), skip, now)?;
    let sent = handlers::send(&api, &who, None, native).await?;
    if sent.replayed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_id",
            format!("a message with the id {id:?} already exists"),
        ));
    }
    let ids: Vec<Uuid> = sent
        .messages
        .iter()
        .filter_map(|it| Uuid::parse_str(&it.id).ok())
        .collect();
    let records = api.store.get_messages(&ids).await?;
    let state = shown(&id, &records, now, false);
    let mut response = json(&state, StatusCode::ACCEPTED);
    if let Ok(location) = HeaderValue::from_str(&format!("{prefix}/messages/{id}")) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// `GET /messages/{id}`.
pub async fn get(api: Arc<ApiState>, who: Principal, id: String) -> Result<Response, ApiError> {
    let (records, created_at) = resolve(&api, &who, &id).await?;
    Ok(json(
        &shown(&id, &records, created_at, false),
        StatusCode::OK,
    ))
}

/// `DELETE /messages/{id}`: cancels every recipient no device has taken yet; `409` when none
/// could be (all taken or ended).
pub async fn cancel(api: Arc<ApiState>, who: Principal, id: String) -> Result<Response, ApiError> {
    let (records, created_at) = resolve(&api, &who, &id).await?;
    let mut cancelled = 0;
    for record in &records {
        if matches!(
            record.state,
            MessageState::Queued | MessageState::Dispatched
        ) && api.dispatcher.cancel(record.id).await? == crate::store::Outcome::Applied
        {
            cancelled += 1;
        }
    }
    if cancelled == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_cancellable",
            "the message is not pending: a device has taken it, or it has ended",
        ));
    }
    let ids: Vec<Uuid> = records.iter().map(|it| it.id).collect();
    let records = api.store.get_messages(&ids).await?;
    Ok(json(
        &shown(&id, &records, created_at, false),
        StatusCode::OK,
    ))
}

/// `GET /messages`: the credential's messages (sends with an id), newest first unless
/// `sort=created_at`; `X-Total-Count` is how many match.
pub async fn list(
    api: Arc<ApiState>,
    who: Principal,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    let offset = handlers::offset(query.offset)?;
    let time = |name: &str, text: &Option<String>| -> Result<Option<Millis>, ApiError> {
        match text {
            Some(text) => parse_rfc3339(text).map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name} must be an RFC 3339 time, got {text:?}"),
                )
            }),
            None => Ok(None),
        }
    };
    let window = (time("from", &query.from)?, time("to", &query.to)?);
    let newest = match query.sort.as_deref() {
        None | Some("-created_at") => true,
        Some("created_at") => false,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("sort must be created_at or -created_at, got {other:?}"),
            ));
        }
    };
    let state = match &query.state {
        Some(text) => Some(CompatState::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("state must be Pending, Processed, Sent, Delivered, Failed or Cancelled, got {text:?}"),
            )
        })?),
        None => None,
    };
    let content = matches!(query.include_content.as_deref(), Some("true" | "1"));
    let filtered = state.is_some() || query.device_id.is_some();
    // Filters on what the messages became are applied to the groups read, so the page is
    // cut here; without them the database cuts it.
    let page = if filtered {
        (FILTER_SCAN, 0)
    } else {
        (limit, offset)
    };
    let (groups, total) = api
        .store
        .list_send_groups(Some(who.owner), window, newest, page)
        .await?;
    let ids: Vec<Uuid> = groups
        .iter()
        .flat_map(|it| it.message_ids.clone())
        .collect();
    let mut by_id: std::collections::HashMap<Uuid, MessageRecord> = api
        .store
        .get_messages(&ids)
        .await?
        .into_iter()
        .map(|it| (it.id, it))
        .collect();
    let mut shown_all: Vec<CompatMessageState> = groups
        .iter()
        .map(|group| {
            let records: Vec<MessageRecord> = group
                .message_ids
                .iter()
                .filter_map(|id| by_id.remove(id))
                .collect();
            shown(&group.key, &records, group.created_at, content)
        })
        .filter(|it| !it.recipients.is_empty())
        .collect();
    let total = if filtered {
        shown_all.retain(|it| {
            state.is_none_or(|state| it.state == state)
                && query
                    .device_id
                    .as_ref()
                    .is_none_or(|device| it.device_id == *device)
        });
        let total = shown_all.len() as u64;
        shown_all = shown_all
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        total
    } else {
        total
    };
    let mut response = json(&shown_all, StatusCode::OK);
    response
        .headers_mut()
        .insert("x-total-count", HeaderValue::from(total));
    Ok(response)
}

/// The messages of the credential's group `id`, or the one message with that id it may
/// read (a native send); and when it was made.
async fn resolve(
    api: &ApiState,
    who: &Principal,
    id: &str,
) -> Result<(Vec<MessageRecord>, Millis), ApiError> {
    if let Some(group) = api.store.send_group(who.owner, id).await? {
        let records = api.store.get_messages(&group.message_ids).await?;
        if !records.is_empty() {
            return Ok((records, group.created_at));
        }
    }
    if let Ok(uuid) = Uuid::parse_str(id)
        && let Some(record) = api
            .store
            .get_message(uuid)
            .await?
            .filter(|it| who.may_see(it.api_key_id))
    {
        let created_at = record.created_at;
        return Ok((vec![record], created_at));
    }
    Err(ApiError::not_found(format!("no message with id {id:?}")))
}

/// A group of messages as that API shows a message.
fn shown(
    id: &str,
    records: &[MessageRecord],
    created_at: Millis,
    content: bool,
) -> CompatMessageState {
    let recipients: Vec<RecipientState> = records
        .iter()
        .map(|it| RecipientState {
            phone_number: it.recipient.clone(),
            state: CompatState::of(it.state),
            error: it.error.as_ref().map(|error| error.message.clone()),
        })
        .collect();
    let state = CompatState::of_group(recipients.iter().map(|it| it.state));
    let mut states: BTreeMap<String, Millis> = BTreeMap::new();
    let mut reached = |state: CompatState, at: Option<Millis>| {
        if let Some(at) = at {
            let entry = states.entry(state.as_str().to_string()).or_insert(at);
            *entry = (*entry).min(at);
        }
    };
    for it in records {
        reached(CompatState::Pending, Some(it.created_at));
        reached(CompatState::Processed, it.accepted_at);
        reached(CompatState::Sent, it.sent_at);
        reached(CompatState::Delivered, it.delivered_at);
        reached(CompatState::Failed, it.failed_at.or(it.expired_at));
        reached(CompatState::Cancelled, it.cancelled_at);
    }
    CompatMessageState {
        id: id.to_string(),
        device_id: records
            .iter()
            .find_map(|it| it.device_id.as_ref().or(it.requested_device_id.as_ref()))
            .map(ToString::to_string)
            .unwrap_or_default(),
        state,
        is_hashed: false,
        is_encrypted: false,
        recipients,
        states: states
            .into_iter()
            .map(|(state, at)| (state, format_millis(at)))
            .collect(),
        text_message: content
            .then(|| {
                records.first().map(|it| TextMessage {
                    text: it.text.clone(),
                })
            })
            .flatten(),
        created_at: format_millis(created_at),
    }
}
