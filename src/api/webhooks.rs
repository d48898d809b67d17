//! The webhook routes: `/api/webhooks` (create, list, show, delete), a secret's rotation,
//! enabling a disabled endpoint, the delivery log, and replays (one delivery, or every event
//! after an id). All need `webhooks:write`; a credential sees only its own tenant's webhooks
//! unless it is `admin` (another's is `404`, as if it did not exist).
//!
//! Must never: answer a secret except when it is made (creation, rotation), or accept a
//! target the policy refuses (`webhooks::target`).

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::error::ApiError;
use super::handlers::parse_json;
use super::{ApiState, authorized, query, run, with_api};
use crate::auth::{Principal, Scope};
use crate::domain::{Millis, format_millis, now_millis};
use crate::events::access::Filter as EventFilter;
use crate::store::{
    Change, DeliveryRecord, Outcome, WebhookChange, WebhookRecord, delivery_status,
};
use crate::webhooks::{fanout, sign};

/// Events a replay reads at most.
const REPLAY_MAX: usize = 10_000;

/// Every webhook route.
pub fn routes(api: Arc<ApiState>) -> warp::filters::BoxedFilter<(Response,)> {
    let hooks = || with_api(api.clone()).and(authorized(api.clone(), Scope::WebhooksWrite));
    let create = warp::path!("api" / "webhooks")
        .and(warp::post())
        .and(hooks())
        .and(super::json_body())
        .and_then(|api, who, body| run(create(api, who, body)));
    let list = warp::path!("api" / "webhooks")
        .and(warp::get())
        .and(hooks())
        .and_then(|api, who| run(list(api, who)));
    let show = warp::path!("api" / "webhooks" / String)
        .and(warp::get())
        .and(hooks())
        .and_then(|id, api, who| run(show(api, who, id)));
    let delete = warp::path!("api" / "webhooks" / String)
        .and(warp::delete())
        .and(hooks())
        .and_then(|id, api, who| run(delete(api, who, id)));
    let rotate = warp::path!("api" / "webhooks" / String / "rotate-secret")
        .and(warp::post())
        .and(hooks())
        .and(super::json_body())
        .and_then(|id, api, who, body| run(rotate(api, who, id, body)));
    let enable = warp::path!("api" / "webhooks" / String / "enable")
        .and(warp::post())
        .and(hooks())
        .and_then(|id, api, who| run(enable(api, who, id)));
    let deliveries = warp::path!("api" / "webhooks" / String / "deliveries")
        .and(warp::get())
        .and(hooks())
        .and(query::<DeliveryQuery>())
        .and_then(|id, api, who, query| run(deliveries(api, who, id, query)));
    let retry = warp::path!("api" / "webhooks" / String / "deliveries" / String / "retry")
        .and(warp::post())
        .and(hooks())
        .and_then(|id, delivery, api, who| run(retry(api, who, id, delivery)));
    let replay = warp::path!("api" / "webhooks" / String / "replay")
        .and(warp::post())
        .and(hooks())
        .and(query::<ReplayQuery>())
        .and_then(|id, api, who, query| run(replay(api, who, id, query)));
    create
        .or(list)
        .unify()
        .or(show)
        .unify()
        .or(delete)
        .unify()
        .or(rotate)
        .unify()
        .or(enable)
        .unify()
        .or(deliveries)
        .unify()
        .or(retry)
        .unify()
        .or(replay)
        .unify()
        .boxed()
}

/// `POST /api/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    url: String,
    /// A list, or one comma-separated text; absent or empty: every type.
    #[serde(default)]
    types: Option<Types>,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Types {
    List(Vec<String>),
    Text(String),
}

/// `POST /api/webhooks/{id}/rotate-secret` (a body is optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DeliveryQuery {
    status: Option<String>,
    /// Deliveries of events before this id (the next page).
    before: Option<i64>,
    limit: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct ReplayQuery {
    after: Option<String>,
}

async fn create(api: Arc<ApiState>, who: Principal, body: Bytes) -> Result<Response, ApiError> {
    let request: CreateRequest = parse_json(&body)?;
    let policy = api.webhooks.policy;
    let url = policy
        .parse(&request.url)
        .map_err(|it| ApiError::bad_request(it.code(), it.to_string()))?;
    policy
        .check(&url)
        .await
        .map_err(|it| ApiError::bad_request(it.code(), it.to_string()))?;
    let types = match request.types {
        None => Vec::new(),
        Some(Types::Text(text)) => parse_types(&text)?,
        Some(Types::List(list)) => parse_types(&list.join(","))?,
    };
    if let Some(device) = &request.device_id
        && (device.is_empty() || device.len() > 128)
    {
        return Err(ApiError::bad_request(
            "invalid_device_id",
            "device_id must be 1 to 128 characters",
        ));
    }
    let secret = match request.secret {
        Some(secret) => {
            sign::check_secret(&secret)
                .map_err(|it| ApiError::bad_request("invalid_secret", it))?;
            secret
        }
        None => sign::new_secret(),
    };
    let record = WebhookRecord {
        id: Uuid::now_v7(),
        owner: who.owner,
        scopes: who.scopes.to_string(),
        url: url.to_string(),
        types: types.join(","),
        device_id: request.device_id,
        secret: secret.clone(),
        old_secret: None,
        old_secret_until: None,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        // From the next event on.
        cursor: api.store.events().last_id(),
        created_at: now_millis(),
        compat_id: None,
        compat_event: None,
    };
    api.store
        .apply(Change::Webhook(WebhookChange::Create(record.clone())))
        .await?;
    api.webhooks.wake();
    tracing::info!(webhook = %record.id, url = %record.url, by = %who.label, "webhook created");
    let mut body = view(&record, now_millis());
    body["secret"] = secret.into();
    Ok(json(&body, StatusCode::CREATED))
}

fn parse_types(text: &str) -> Result<Vec<String>, ApiError> {
    EventFilter::parse_types(text).map_err(|it| ApiError::bad_request("invalid_types", it))
}

async fn list(api: Arc<ApiState>, who: Principal) -> Result<Response, ApiError> {
    let owner = (!who.scopes.contains(Scope::Admin)).then_some(who.owner);
    let now = now_millis();
    let hooks: Vec<Value> = api
        .store
        .list_webhooks(owner)
        .await?
        .iter()
        .map(|it| view(it, now))
        .collect();
    Ok(json(&json!({ "webhooks": hooks }), StatusCode::OK))
}

async fn show(api: Arc<ApiState>, who: Principal, id: String) -> Result<Response, ApiError> {
    let hook = own(&api, &who, &id).await?;
    Ok(json(&view(&hook, now_millis()), StatusCode::OK))
}

async fn delete(api: Arc<ApiState>, who: Principal, id: String) -> Result<Response, ApiError> {
    let hook = own(&api, &who, &id).await?;
    api.store
        .apply(Change::Webhook(WebhookChange::Delete { id: hook.id }))
        .await?;
    tracing::info!(webhook = %hook.id, by = %who.label, "webhook deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rotate(
    api: Arc<ApiState>,
    who: Principal,
    id: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    let hook = own(&api, &who, &id).await?;
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        parse_json(&body)?
    };
    let secret = match request.secret {
        Some(secret) => {
            sign::check_secret(&secret)
                .map_err(|it| ApiError::bad_request("invalid_secret", it))?;
            secret
        }
        None => sign::new_secret(),
    };
    let overlap = i64::try_from(api.webhooks.config.secret_overlap.as_millis()).unwrap_or(0);
    let old_until = now_millis().saturating_add(overlap);
    api.store
        .apply(Change::Webhook(WebhookChange::Rotate {
            id: hook.id,
            secret: secret.clone(),
            old_until,
        }))
        .await?;
    Ok(json(
        &json!({
            "id": hook.id,
            "secret": secret,
            "previous_secret_expires_at": format_millis(old_until),
        }),
        StatusCode::OK,
    ))
}

async fn enable(api: Arc<ApiState>, who: Principal, id: String) -> Result<Response, ApiError> {
    let hook = own(&api, &who, &id).await?;
    api.store
        .apply(Change::Webhook(WebhookChange::Enable { id: hook.id }))
        .await?;
    api.webhooks.wake();
    let hook = own(&api, &who, &id).await?;
    Ok(json(&view(&hook, now_millis()), StatusCode::OK))
}

async fn deliveries(
    api: Arc<ApiState>,
    who: Principal,
    id: String,
    query: DeliveryQuery,
) -> Result<Response, ApiError> {
    let hook = own(&api, &who, &id).await?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(
            it @ (delivery_status::PENDING | delivery_status::DELIVERED | delivery_status::FAILED),
        ) => Some(it),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_status",
                format!("status must be pending, delivered or failed, not {other:?}"),
            ));
        }
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be 1 to 1000",
        ));
    }
    let rows: Vec<Value> = api
        .store
        .list_deliveries(hook.id, status, query.before, limit)
        .await?
        .iter()
        .map(delivery_view)
        .collect();
    Ok(json(&json!({ "deliveries": rows }), StatusCode::OK))
}

async fn retry(
    api: Arc<ApiState>,
    who: Principal,
    id: String,
    delivery: String,
) -> Result<Response, ApiError> {
    let hook = own(&api, &who, &id).await?;
    let missing = || ApiError::not_found(format!("no delivery {delivery:?} of this webhook"));
    let delivery_id = Uuid::parse_str(&delivery).map_err(|_| missing())?;
    let outcome = api
        .store
        .apply(Change::Webhook(WebhookChange::Retry {
            webhook: hook.id,
            delivery: delivery_id,
        }))
        .await?;
    if outcome != Outcome::Applied {
        return Err(missing());
    }
    api.webhooks.wake();
    let row = api
        .store
        .get_delivery(delivery_id)
        .await?
        .ok_or_else(missing)?;
    Ok(json(&delivery_view(&row), StatusCode::ACCEPTED))
}

async fn replay(
    api: Arc<ApiState>,
    who: Principal,
    id: String,
    query: ReplayQuery,
) -> Result<Response, ApiError> {
    let hook = own(&api, &who, &id).await?;
    let after = query
        .after
        .as_deref()
        .and_then(|it| it.trim().parse::<i64>().ok())
        .filter(|it| *it >= 0)
        .ok_or_else(|| {
            ApiError::bad_request("invalid_after", "after must be an event id (a number)")
        })?;
    // Events past the webhook's position are coming anyway; replay those before it.
    let mut deliveries = Vec::new();
    let mut cursor = after;
    let mut read = 0;
    while cursor < hook.cursor && read < REPLAY_MAX {
        let page = api.store.events().after(cursor, 512, None, None).await?;
        let Some(last) = page.last().map(|it| it.id) else {
            break;
        };
        read += page.len();
        let older = page.iter().filter(|it| it.id <= hook.cursor);
        deliveries.extend(fanout::wanted(&hook, older));
        cursor = last;
    }
    let count = deliveries.len();
    if count > 0 {
        api.store
            .apply(Change::Webhook(WebhookChange::Replay { deliveries }))
            .await?;
        api.webhooks.wake();
    }
    Ok(json(
        &json!({ "replayed": count, "through": cursor.min(hook.cursor).max(after) }),
        StatusCode::ACCEPTED,
    ))
}

/// The webhook `id` if the caller may see it (its own tenant's, or any for `admin`).
async fn own(api: &ApiState, who: &Principal, id: &str) -> Result<WebhookRecord, ApiError> {
    let missing = || ApiError::not_found(format!("no webhook {id:?}"));
    let id = Uuid::parse_str(id).map_err(|_| missing())?;
    let hook = api.store.get_webhook(id).await?.ok_or_else(missing)?;
    if hook.owner != who.owner && !who.scopes.contains(Scope::Admin) {
        return Err(missing());
    }
    Ok(hook)
}

fn view(hook: &WebhookRecord, now: Millis) -> Value {
    let types: Vec<&str> = hook.types.split(',').filter(|it| !it.is_empty()).collect();
    json!({
        "id": hook.id,
        "url": hook.url,
        "types": types,
        "device_id": hook.device_id,
        "enabled": hook.enabled,
        "disabled_reason": hook.disabled_reason,
        "failing_since": hook.failing_since.map(format_millis),
        "previous_secret_expires_at": hook
            .old_secret_until
            .filter(|it| *it > now)
            .map(format_millis),
        "last_event_id": hook.cursor,
        "created_at": format_millis(hook.created_at),
    })
}

fn delivery_view(row: &DeliveryRecord) -> Value {
    json!({
        "id": row.id,
        "webhook_message_id": sign::message_id(row.webhook_id, row.event_id),
        "event_id": row.event_id,
        "event_type": row.event_type,
        "message_id": row.message_id,
        "status": row.status,
        "attempts": row.attempts,
        "response_code": row.response_code,
        "latency_ms": row.latency_ms,
        "error": row.error,
        "next_attempt_at": row.next_attempt_at.map(format_millis),
        "last_attempt_at": row.last_attempt_at.map(format_millis),
        "created_at": format_millis(row.created_at),
        "delivered_at": row.delivered_at.map(format_millis),
    })
}

fn json(value: &impl serde::Serialize, status: StatusCode) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}
