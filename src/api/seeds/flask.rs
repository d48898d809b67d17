//! The Flask gateway's paths: `POST /api/sms {recipient, message, sim_card_id}` answering
//! `{message_id, sender_sim}`, `GET /api/statistics` (memory, database size, message counts
//! total/incoming/outgoing, per SIM and per day) and `GET /api/logs` (recent log events and
//! audit entries, newest first, filterable).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::api::dto::SendSmsRequest;
use crate::api::error::ApiError;
use crate::api::handlers::{self, parse_json};
use crate::api::{ApiState, authorized, json_body, query, run, with_api};
use crate::auth::{Principal, Scope};
use crate::domain::{MessageState, format_millis, now_millis, parse_rfc3339};
use crate::logging;
use crate::store::AuditFilter;

/// Days `GET /api/statistics` counts per day.
const STATISTICS_DAYS: i64 = 30;
/// Most entries of one `GET /api/logs`.
const MAX_LOGS: u64 = 1000;

pub(super) fn routes(api: Arc<ApiState>) -> warp::filters::BoxedFilter<(Response,)> {
    let h = |scope| with_api(api.clone()).and(authorized(api.clone(), scope));
    let send = warp::path!("api" / "sms")
        .and(warp::post())
        .and(h(Scope::MessagesSend))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(json_body())
        .and_then(|api, key, idempotency, body| run(send(api, key, idempotency, body)));
    let statistics = warp::path!("api" / "statistics")
        .and(warp::get())
        .and(h(Scope::DevicesRead))
        .and_then(|api, _key| run(statistics(api)));
    let logs = warp::path!("api" / "logs")
        .and(warp::get())
        .and(h(Scope::Admin))
        .and(query::<LogsQuery>())
        .and_then(|api, _key, query| run(logs(api, query)));
    send.or(statistics).unify().or(logs).unify().boxed()
}

/// Body of the Flask gateway's `POST /api/sms`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FlaskSmsRequest {
    #[serde(default, alias = "phone_number", alias = "to")]
    pub recipient: Option<String>,
    #[serde(default, alias = "text")]
    pub message: Option<String>,
    /// The SIM card to send from (`/api/sim-cards`); passed on as the native send's
    /// `sim_card_id`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub sim_card_id: Option<Value>,
}

/// `POST /api/sms`: `POST /api/send-sms` with the Flask gateway's names; `201` with
/// `message_id` and `sender_sim` (the pinned SIM card, else `null`: the dispatcher picks one
/// when a device is free).
pub async fn send(
    api: Arc<ApiState>,
    key: Principal,
    idempotency: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: FlaskSmsRequest = parse_json(&body)?;
    let mut native = json!({
        "phone_number": request.recipient,
        "message": request.message,
    });
    // The Flask gateway numbered its cards; smshub's ids are UUIDs, and a number names a
    // card by its label (`pin` matches id, ICCID or label).
    match &request.sim_card_id {
        Some(Value::Number(number)) => native["sim_card_id"] = json!(number.to_string()),
        Some(sim) => native["sim_card_id"] = sim.clone(),
        None => {}
    }
    let native: SendSmsRequest = serde_json::from_value(native)
        .map_err(|err| ApiError::bad_request("invalid_request", format!("request body: {err}")))?;
    let sent = handlers::send(&api, &key, idempotency, native).await?;
    let Some(message) = sent.messages.first() else {
        return Err(ApiError::internal("a send committed no message"));
    };
    let body = json!({
        "message_id": message.id,
        "sender_sim": request.sim_card_id,
        "status": message.state,
        "recipient": message.phone_number,
    });
    let status = if sent.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), status).into_response())
}

/// The host's memory from `/proc/meminfo` (total and available bytes), if known.
fn host_memory() -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return (None, None);
    };
    let field = |name: &str| {
        text.lines()
            .find(|it| it.starts_with(name))
            .and_then(|it| it.split_whitespace().nth(1))
            .and_then(|it| it.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// `GET /api/statistics`.
pub async fn statistics(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let since = now_millis() - STATISTICS_DAYS * 86_400_000;
    let stats = api.store.statistics(since).await?;
    let counts = api.store.count_by_state().await?;
    let by_state: BTreeMap<&str, u64> = MessageState::ALL
        .iter()
        .map(|it| (it.as_str(), counts.get(it).copied().unwrap_or(0)))
        .collect();
    let (total, available) = host_memory();
    let per_sim: Vec<Value> = stats
        .per_sim
        .iter()
        .map(|it| {
            let get = |state: MessageState| it.outgoing.get(state.as_str()).copied().unwrap_or(0);
            json!({
                "device_id": it.device_id,
                "sim_slot": it.sim_slot,
                "outgoing": it.outgoing.values().sum::<u64>(),
                "sent": get(MessageState::Sent) + get(MessageState::Delivered),
                "failed": get(MessageState::Failed),
                "incoming": it.incoming,
                "by_state": it.outgoing,
            })
        })
        .collect();
    let per_day: Vec<Value> = stats
        .per_day
        .iter()
        .map(|it| {
            json!({
                "date": it.day,
                "outgoing": it.outgoing,
                "incoming": it.incoming,
                "total": it.outgoing + it.incoming,
            })
        })
        .collect();
    let body = json!({
        "memory": {
            "process_rss_bytes": super::manager::resident_bytes(),
            "system_total_bytes": total,
            "system_available_bytes": available,
        },
        "database": { "size_bytes": stats.database_bytes },
        "messages": {
            "total": stats.outgoing + stats.incoming,
            "incoming": stats.incoming,
            "outgoing": stats.outgoing,
            "by_state": by_state,
        },
        "sim_cards": per_sim,
        "daily": per_day,
    });
    Ok(warp::reply::json(&body).into_response())
}

/// Query of `GET /api/logs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// The least severe level to include: `error`, `warn`, `info` (default), `debug`, `trace`.
    pub level: Option<String>,
    /// RFC 3339: only entries at or after it.
    pub since: Option<String>,
    /// Most entries (default 100, at most 1000).
    pub limit: Option<u64>,
    /// `log` (the hub's log events) or `audit` (the audit log); both when left out.
    pub source: Option<String>,
}

/// `GET /api/logs`: the hub's recent log events (kept in memory, the last
/// [`logging::RECENT_LINES`]) and its audit entries, newest first. An audit entry is `info`,
/// or `warn` when what it records was refused.
pub async fn logs(api: Arc<ApiState>, query: LogsQuery) -> Result<Response, ApiError> {
    let rank = match &query.level {
        Some(level) => logging::level_rank(level).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("level must be error, warn, info, debug or trace, got {level:?}"),
            )
        })?,
        None => 3,
    };
    let since = match &query.since {
        Some(text) => Some(parse_rfc3339(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("since must be an RFC 3339 time, got {text:?}"),
            )
        })?),
        None => None,
    };
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LOGS);
    let (want_log, want_audit) = match query.source.as_deref() {
        None => (true, true),
        Some("log") => (true, false),
        Some("audit") => (false, true),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("source must be log or audit, got {other:?}"),
            ));
        }
    };
    let mut entries: Vec<(i64, Value)> = Vec::new();
    if want_log {
        for it in logging::recent(rank, since, limit as usize) {
            entries.push((
                it.at,
                json!({
                    "at": format_millis(it.at),
                    "source": "log",
                    "level": it.level,
                    "target": it.target,
                    "message": it.message,
                    "fields": it.fields,
                }),
            ));
        }
    }
    if want_audit {
        let filter = AuditFilter {
            since,
            limit,
            ..AuditFilter::default()
        };
        for it in api.store.list_audit(&filter).await? {
            let level = if it.ok { "info" } else { "warn" };
            if logging::level_rank(level).is_some_and(|it| it > rank) {
                continue;
            }
            entries.push((
                it.at,
                json!({
                    "at": format_millis(it.at),
                    "source": "audit",
                    "level": level,
                    "action": it.action,
                    "actor": it.actor,
                    "target": it.target,
                    "ok": it.ok,
                    "detail": it.detail,
                }),
            ));
        }
    }
    entries.sort_by_key(|it| std::cmp::Reverse(it.0));
    entries.truncate(limit as usize);
    let logs: Vec<Value> = entries.into_iter().map(|it| it.1).collect();
    Ok(warp::reply::json(&json!({ "logs": logs })).into_response())
}
