//! The multi-modem manager's paths: `GET /api/health` (its shape and the Elixir gateway's in
//! one answer), `GET /api/performance`, the legacy single-modem paths that act on the first
//! connected modem (`/api/status`, `/api/sim-info`, `/api/sms/send`, `/api/ussd`,
//! `/api/balance`), and data balance and recharge by the SIM's operator profile.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::api::error::ApiError;
use crate::api::{ApiState, authorized, json_body, modems, run, with_api};
use crate::auth::{Principal, Scope};
use crate::domain::MessageState;
use crate::transport::radio::ModemState;
use crate::transport::radio::device::first_amount;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the uptime `GET /api/performance` tells.
pub(super) fn started() {
    STARTED.get_or_init(Instant::now);
}

pub(super) fn routes(api: Arc<ApiState>) -> warp::filters::BoxedFilter<(Response,)> {
    let h = |scope| with_api(api.clone()).and(authorized(api.clone(), scope));
    let health = warp::path!("api" / "health")
        .and(warp::get())
        .and(h(Scope::DevicesRead))
        .and_then(|api, _key| run(health(api)));
    let performance = warp::path!("api" / "performance")
        .and(warp::get())
        .and(h(Scope::DevicesRead))
        .and_then(|api, _key| run(performance(api)));
    let status = warp::path!("api" / "status")
        .and(warp::get())
        .and(h(Scope::DevicesRead))
        .and_then(|api: Arc<ApiState>, _key| {
            run(async move { modems::modem_status(api.clone(), first_modem(&api)?).await })
        });
    let sim = warp::path!("api" / "sim-info")
        .and(warp::get())
        .and(h(Scope::DevicesRead))
        .and_then(|api: Arc<ApiState>, _key| {
            run(async move { modems::modem_sim_info(api.clone(), first_modem(&api)?).await })
        });
    let send = warp::path!("api" / "sms" / "send")
        .and(warp::post())
        .and(h(Scope::MessagesSend))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(json_body())
        .and_then(
            |api: Arc<ApiState>, key: Principal, idempotency, body: Bytes| {
                run(async move {
                    let id = first_modem(&api)?;
                    modems::modem_send_sms(api, key, id, idempotency, body).await
                })
            },
        );
    let ussd = warp::path!("api" / "ussd")
        .and(warp::post())
        .and(h(Scope::ModemsWrite))
        .and(json_body())
        .and_then(|api: Arc<ApiState>, _key, body: Bytes| {
            run(async move { modems::modem_ussd(api.clone(), first_modem(&api)?, body).await })
        });
    let balance = warp::path!("api" / "balance")
        .and(warp::get())
        .and(h(Scope::ModemsWrite))
        .and_then(|api: Arc<ApiState>, _key| {
            run(async move {
                modems::modem_balance(api.clone(), first_modem(&api)?, Default::default()).await
            })
        });
    let recharge = warp::path!("api" / "modems" / String / "recharge")
        .and(warp::post())
        .and(h(Scope::ModemsWrite))
        .and(json_body())
        .and_then(|id, api, _key, body| run(recharge(api, id, body)));
    let data = warp::path!("api" / "modems" / String / "data-balance")
        .and(warp::get())
        .and(h(Scope::ModemsWrite))
        .and_then(|id, api, _key| run(data_balance(api, id)));
    health
        .or(performance)
        .unify()
        .or(status)
        .unify()
        .or(sim)
        .unify()
        .or(send)
        .unify()
        .or(ussd)
        .unify()
        .or(balance)
        .unify()
        .or(recharge)
        .unify()
        .or(data)
        .unify()
        .boxed()
}

/// The first connected modem (ready, by port order), as the legacy paths use it: `409
/// no_modem` when none is.
fn first_modem(api: &ApiState) -> Result<String, ApiError> {
    api.modems
        .status_list()
        .into_iter()
        .find(|it| it.state == ModemState::Ready)
        .map(|it| it.port)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_modem",
                "no modem is connected (POST /api/modems/connect attaches one)",
            )
        })
}

/// Messages waiting for a device and messages a device holds.
async fn queue(
    api: &ApiState,
) -> Result<(u64, u64, std::collections::HashMap<MessageState, u64>), ApiError> {
    let counts = api.store.count_by_state().await?;
    let get = |state| counts.get(&state).copied().unwrap_or(0);
    let pending = get(MessageState::Queued);
    let executing = get(MessageState::Dispatched) + get(MessageState::Accepted);
    Ok((pending, executing, counts))
}

/// `GET /api/health`: the multi-modem manager's health (`modems`, `queue`, `database`) and
/// the Elixir gateway's (`status`, `modem {connected, signal_strength, network}`, `queue
/// {pending, executing}`, `database`) in one answer; `503` when the database cannot commit.
pub async fn health(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let writable = api.store.writer_alive() && api.store.can_commit().await;
    let database = writable || api.store.ping().await;
    let list = api.modems.status_list();
    let ready: Vec<_> = list
        .iter()
        .filter(|it| it.state == ModemState::Ready)
        .collect();
    let first = ready.first();
    let (pending, executing) = match queue(&api).await {
        Ok((pending, executing, _)) => (Some(pending), Some(executing)),
        Err(_) => (None, None),
    };
    let healthy = writable;
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "modem": {
            "connected": first.is_some(),
            "signal_strength": first.and_then(|it| it.network.signal_percent),
            "network": first.and_then(|it| it.network.operator.clone()),
        },
        "modems": {
            "total": list.len(),
            "connected": ready.len(),
            "modems": list,
        },
        "queue": {
            "pending": pending,
            "executing": executing,
            "waiting": api.dispatcher.queue_len().await,
        },
        "database": if database { "connected" } else { "disconnected" },
        "writable": writable,
        "devices_online": api.registry.len(),
        "timestamp": crate::domain::format_millis(crate::domain::now_millis()),
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), status).into_response())
}

/// The process's resident memory in bytes (Linux `/proc/self/statm`), if known.
pub(super) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// `GET /api/performance`: uptime, memory, messages by state, the queue, devices and modems.
pub async fn performance(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let (pending, executing, counts) = queue(&api).await?;
    let messages: serde_json::Map<String, Value> = MessageState::ALL
        .iter()
        .map(|it| {
            (
                it.as_str().to_string(),
                counts.get(it).copied().unwrap_or(0).into(),
            )
        })
        .collect();
    let list = api.modems.status_list();
    let (sent, failed, received) = list.iter().fold((0, 0, 0), |(s, f, r), it| {
        (s + it.sent, f + it.failed, r + it.received)
    });
    let (pending_connections, clients, devices) = api.connections.counts();
    let body = json!({
        "uptime_s": STARTED.get().map_or(0, |it| it.elapsed().as_secs()),
        "memory": { "rss_bytes": resident_bytes() },
        "messages": messages,
        "queue": { "pending": pending, "executing": executing, "waiting": api.dispatcher.queue_len().await },
        "devices_online": api.registry.len(),
        "modems": {
            "total": list.len(),
            "connected": list.iter().filter(|it| it.state == ModemState::Ready).count(),
            "sent": sent, "failed": failed, "received": received,
        },
        "connections": { "pending": pending_connections, "api": clients, "devices": devices },
        "log_lines_dropped": crate::logging::dropped_lines(),
    });
    Ok(warp::reply::json(&body).into_response())
}

/// Body of `POST /api/modems/{id}/recharge`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RechargeRequest {
    /// The voucher's digits.
    #[serde(default, alias = "voucher", alias = "recharge_code")]
    pub code: Option<String>,
}

fn no_code(code: &'static str, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        format!("the operator profile of this SIM has no {what} code; configure one (--operators)"),
    )
}

/// `POST /api/modems/{id}/recharge` with `{"code": "12345678901234"}`: the top-up USSD of
/// the SIM's operator with the voucher in it; `422 no_recharge_code` without one.
pub async fn recharge(api: Arc<ApiState>, id: String, body: Bytes) -> Result<Response, ApiError> {
    let request: RechargeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RechargeRequest::default()
    } else {
        crate::api::handlers::parse_json(&body)?
    };
    let voucher = request.code.unwrap_or_default();
    let voucher = voucher.trim();
    if voucher.is_empty() || voucher.len() > 32 || !voucher.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_voucher",
            "give the voucher's digits as code, e.g. {\"code\": \"12345678901234\"}",
        ));
    }
    let status = api.modems.status(&id).map_err(modems::modem_error)?;
    let profile = status.sim.profile.clone();
    let Some(template) = profile.as_ref().and_then(|it| it.recharge_ussd.clone()) else {
        return Err(no_code("no_recharge_code", "top-up"));
    };
    let code = template.replace("{code}", voucher);
    let answer = api
        .modems
        .ussd(&id, &code)
        .await
        .map_err(modems::modem_error)?;
    Ok(warp::reply::json(&json!({
        "operator": profile.map(|it| it.name),
        "code": code,
        "status": answer.status,
        "text": answer.text,
    }))
    .into_response())
}

/// `GET /api/modems/{id}/data-balance`: the data-balance USSD of the SIM's operator; `422
/// no_data_balance_code` without one.
pub async fn data_balance(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    let status = api.modems.status(&id).map_err(modems::modem_error)?;
    let profile = status.sim.profile.clone();
    let Some(code) = profile.as_ref().and_then(|it| it.data_balance_ussd.clone()) else {
        return Err(no_code("no_data_balance_code", "data-balance"));
    };
    let answer = api
        .modems
        .ussd(&id, &code)
        .await
        .map_err(modems::modem_error)?;
    let amount = answer.text.as_deref().and_then(first_amount);
    Ok(warp::reply::json(&json!({
        "operator": profile.map(|it| it.name),
        "code": code,
        "text": answer.text,
        "amount": amount,
    }))
    .into_response())
}
