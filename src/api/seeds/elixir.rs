//! The Elixir gateway's paths: `POST /api/v1/messages {phone, content}` and
//! `GET /api/v1/messages[/{id}]`, answering its message shape (`id`, `direction`, `phone`,
//! `content`, `status`, `inserted_at`).

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::api::dto::SendSmsRequest;
use crate::api::error::ApiError;
use crate::api::handlers::{self, parse_json};
use crate::api::{ApiState, authorized, json_body, query, run, with_api};
use crate::auth::{Principal, Scope};
use crate::domain::{MessageState, format_millis};
use crate::store::{MessageFilter, MessageRecord};

pub(super) fn routes(api: Arc<ApiState>) -> warp::filters::BoxedFilter<(Response,)> {
    let h = |scope| with_api(api.clone()).and(authorized(api.clone(), scope));
    let create = warp::path!("api" / "v1" / "messages")
        .and(warp::post())
        .and(h(Scope::MessagesSend))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(json_body())
        .and_then(|api, key, idempotency, body| run(create(api, key, idempotency, body)));
    let list = warp::path!("api" / "v1" / "messages")
        .and(warp::get())
        .and(h(Scope::MessagesRead))
        .and(query::<V1Query>())
        .and_then(|api, key, query| run(list(api, key, query)));
    let show = warp::path!("api" / "v1" / "messages" / String)
        .and(warp::get())
        .and(h(Scope::MessagesRead))
        .and_then(|id, api, key| run(show(api, key, id)));
    create.or(list).unify().or(show).unify().boxed()
}

/// Body of `POST /api/v1/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct V1MessageRequest {
    pub phone: Option<String>,
    pub content: Option<String>,
}

/// A message in the Elixir gateway's shape.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V1Message {
    pub id: String,
    /// Always `outgoing` here (received SMS are `GET /api/sms/inbox`).
    pub direction: &'static str,
    pub phone: String,
    pub content: String,
    /// `queued`, `sending`, `sent`, `delivered`, `failed` or `cancelled`.
    pub status: &'static str,
    pub inserted_at: String,
}

/// `{"data": [...]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V1MessageList {
    pub data: Vec<V1Message>,
    pub total: u64,
}

/// Query of `GET /api/v1/messages`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct V1Query {
    /// Most messages (default 50, at most 500).
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// The Elixir gateway's status of a hub state.
fn status(state: MessageState) -> &'static str {
    match state {
        MessageState::Queued | MessageState::Dispatched => "queued",
        MessageState::Accepted => "sending",
        MessageState::Sent => "sent",
        MessageState::Delivered => "delivered",
        MessageState::Failed | MessageState::Expired => "failed",
        MessageState::Cancelled => "cancelled",
    }
}

impl From<MessageRecord> for V1Message {
    fn from(it: MessageRecord) -> Self {
        V1Message {
            id: it.id.to_string(),
            direction: "outgoing",
            phone: it.recipient,
            content: it.text,
            status: status(it.state),
            inserted_at: format_millis(it.created_at),
        }
    }
}

/// `POST /api/v1/messages`: `POST /api/send-sms` with `phone` and `content`; `201` with the
/// message (`200` for a replay of the same `Idempotency-Key`).
pub async fn create(
    api: Arc<ApiState>,
    key: Principal,
    idempotency: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: V1MessageRequest = parse_json(&body)?;
    let native: SendSmsRequest = serde_json::from_value(json!({
        "phone_number": request.phone,
        "message": request.content,
    }))
    .map_err(|err| ApiError::bad_request("invalid_request", format!("request body: {err}")))?;
    let sent = handlers::send(&api, &key, idempotency, native).await?;
    let Some(first) = sent.messages.first() else {
        return Err(ApiError::internal("a send committed no message"));
    };
    let id = Uuid::parse_str(&first.id).map_err(ApiError::internal)?;
    let record = api
        .store
        .get_message(id)
        .await?
        .ok_or_else(|| ApiError::internal("a committed message cannot be read"))?;
    let status = if sent.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(
        warp::reply::with_status(warp::reply::json(&V1Message::from(record)), status)
            .into_response(),
    )
}

/// `GET /api/v1/messages`: newest first.
pub async fn list(
    api: Arc<ApiState>,
    key: Principal,
    query: V1Query,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let offset = super::super::handlers::offset(query.offset)?;
    let filter = MessageFilter {
        owner: (!key.scopes.reads_all_messages()).then_some(key.owner),
        ..MessageFilter::default()
    };
    let (records, total) = api.store.list_messages(&filter, limit, offset).await?;
    let data = records.into_iter().map(V1Message::from).collect();
    Ok(warp::reply::json(&V1MessageList { data, total }).into_response())
}

/// `GET /api/v1/messages/{id}`.
pub async fn show(api: Arc<ApiState>, key: Principal, id: String) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no message with id {id:?}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let record = api
        .store
        .get_message(uuid)
        .await?
        .filter(|it| key.may_see(it.api_key_id))
        .ok_or_else(not_found)?;
    Ok(warp::reply::json(&V1Message::from(record)).into_response())
}
