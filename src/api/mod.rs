//! The HTTP surface: REST API, dashboard and health probe, and the one place where the
//! routes of the transports that speak HTTP (the device WebSocket) join them; every answer
//! is counted there for `/metrics`, by route template and status.
//!
//! One function per route returning a filter; authentication comes after path matching so
//! an unknown path is a 404, not a 401; every JSON body has a size limit; one `recover`
//! turns every rejection (the transports' too) into the JSON error shape of
//! [`error::ApiError`].
//!
//! The API owns its state ([`ApiState`]): the store, the registry and the dispatcher it
//! shares with the transports, and what only it uses: API keys, back-pressure, the modems.

mod access;
pub mod allow;
mod compat;
mod cors;
pub mod credential;
mod credentials;
pub mod dto;
pub mod error;
mod events;
mod handlers;
mod metrics;
mod modems;
pub mod openapi;
pub mod relay;
pub(crate) mod seeds;
pub mod send;
pub mod sim_cards;
pub(crate) mod templates;
mod users;
mod webhooks;

use std::convert::Infallible;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::auth::oidc::Oidc;
use crate::auth::pairing::Pairings;
use crate::auth::{ApiKeys, Principal, Scope};
use crate::dashboard;
use crate::dispatch::{Backlog, Dispatcher};
use crate::registry::DeviceRegistry;
use crate::server::Connections;
use crate::store::Store;
use crate::telemetry;
use crate::transport::attached::Modems;
use error::ApiError;

/// What the API's checks need to know of the configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Region for numbers written without `+`, e.g. `DZ`.
    pub default_region: Option<phonenumber::country::Id>,
    /// Longest accepted text, in SMS parts.
    pub max_parts: u32,
    /// Most messages waiting for a device, in all and per API key; beyond, `503`.
    pub max_queued: usize,
    pub max_queued_per_key: usize,
    /// A bearer token `GET /metrics` requires; open without.
    pub metrics_token: Option<String>,
    /// The hub serves HTTPS (cookies may be `Secure`; URLs given to phones are `wss://`).
    pub tls_enabled: bool,
    /// Origins allowed to call the API from a browser (`*`: any); empty: CORS off.
    pub cors_origins: Vec<String>,
    /// How recipients' numbers are checked (`--phone-validation`).
    pub phone_validation: send::PhoneValidation,
}

/// Everything a request handler works with.
pub struct ApiState {
    pub config: ApiConfig,
    pub store: Store,
    pub registry: Arc<DeviceRegistry>,
    pub dispatcher: Dispatcher,
    pub api_keys: ApiKeys,
    pub backlog: Arc<Backlog>,
    /// Serial modems and HiLink sticks attached to this api.
    pub modems: Arc<Modems>,
    /// The open connections (readiness: can a device connect).
    pub connections: Arc<Connections>,
    /// Rate limits, login lockout, hub JWTs, cookie settings.
    pub access: credential::Access,
    /// The OpenID provider whose bearer tokens are accepted, if any.
    pub oidc: Option<Oidc>,
    /// Open pairing codes, and the limit on redeeming them.
    pub pairings: Pairings,
    pub redeem_limiter: credentials::RedeemLimiter,
    /// The webhook sender's settings, target policy and wake-up.
    pub webhooks: crate::webhooks::Webhooks,
    /// Each device's last day, fed by the sampler in `app.rs`.
    pub history: crate::history::DeviceHistory,
}

/// Largest JSON body accepted.
const MAX_BODY_BYTES: u64 = 256 * 1024;

/// Every route of the hub: the API's and `devices`, the routes of the transports that speak
/// HTTP, behind the one `recover`.
pub fn routes(
    api: Arc<ApiState>,
    devices: BoxedFilter<(Response,)>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let rest = send_sms(api.clone())
        .or(events::sse(api.clone()))
        .unify()
        .or(events::websocket(api.clone()))
        .unify()
        .or(list_inbox(api.clone()))
        .unify()
        .or(list_outbox(api.clone()))
        .unify()
        .or(get_sms(api.clone()))
        .unify()
        .or(list_sms(api.clone()))
        .unify()
        .or(list_devices(api.clone()))
        .unify()
        .or(create_device(api.clone()))
        .unify()
        .or(delete_device(api.clone()))
        .unify()
        .or(cancel_sms(api.clone()))
        .unify()
        .or(set_device_limits(api.clone()))
        .unify()
        .or(rest_device(api.clone()))
        .unify()
        .or(unrest_device(api.clone()))
        .unify()
        .or(device_history(api.clone()))
        .unify()
        // Boxed halfway: one chain of every route overflows the compiler's query depth.
        .boxed()
        .or(stats(api.clone()))
        .unify()
        .or(series(api.clone()))
        .unify()
        .or(modems::routes(api.clone()))
        .unify()
        .or(access::routes(api.clone()))
        .unify()
        .or(credentials::routes(api.clone()))
        .unify()
        .or(webhooks::routes(api.clone()))
        .unify()
        .or(templates::routes(api.clone()))
        .unify()
        .or(seeds::routes(api.clone()))
        .unify()
        .or(compat::routes(api.clone()))
        .unify()
        .or(sim_cards::routes(api.clone()))
        .unify()
        .or(users::routes(api.clone()))
        .unify()
        .boxed();
    let cors = cors::Cors::new(&api.config.cors_origins);
    let health = warp::path!("health")
        .map(|| handlers::Probe::Summary)
        .or(warp::path!("health" / "live").map(|| handlers::Probe::Live))
        .unify()
        .or(warp::path!("health" / "ready").map(|| handlers::Probe::Ready))
        .unify()
        .and(warp::get().or(warp::head()).unify())
        .and(with_api(api.clone()))
        .and_then(|probe, api| run(handlers::health(api, probe)));
    let all = cors::preflight(cors.clone())
        .or(rest)
        .unify()
        .or(devices)
        .unify()
        .or(health)
        .unify()
        .or(dashboard::routes())
        .unify()
        .or(openapi::routes())
        .unify()
        .or(metrics::route(api))
        .unify()
        .recover(error::recover)
        .unify();
    // A request whose `Origin` is not text is answered as one without.
    let origin = warp::header::optional::<String>("origin")
        .or(warp::any().map(|| None))
        .unify();
    warp::any()
        .map(std::time::Instant::now)
        .and(warp::method())
        .and(warp::path::full())
        .and(origin)
        .and(all)
        .map(
            move |start: std::time::Instant,
                  method: warp::http::Method,
                  path: warp::path::FullPath,
                  origin: Option<String>,
                  response| {
                let route = allow::find(path.as_str());
                let response = allow::add_allow(route, response);
                let response = cors::decorate(cors.as_deref(), origin.as_deref(), response);
                telemetry::record_request(
                    route.map_or("unmatched", |it| it.path),
                    telemetry::method_label(&method),
                    response.status().as_u16(),
                    start.elapsed(),
                );
                response
            },
        )
}

fn with_api(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Arc<ApiState>,), Error = Infallible> + Clone {
    warp::any().map(move || api.clone())
}

/// Turns a handler result into a reply or a rejection for `recover`.
async fn run(
    result: impl std::future::Future<Output = Result<Response, ApiError>>,
) -> Result<Response, Rejection> {
    result.await.map_err(warp::reject::custom)
}

/// Requires a credential that has `scope`: `401 unauthorized` without a valid one,
/// `403 forbidden` naming the scope when it lacks it (and the CSRF and rate-limit checks of
/// [`credential::authorize`]).
fn authorized(
    api: Arc<ApiState>,
    scope: Scope,
) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    principal(api, Some(scope))
}

/// Requires any valid credential (`/api/auth/me`, logout).
fn signed_in(api: Arc<ApiState>) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    principal(api, None)
}

fn principal(
    api: Arc<ApiState>,
    scope: Option<Scope>,
) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    credential::presented().and(with_api(api)).and_then(
        move |presented: credential::Presented, api: Arc<ApiState>| async move {
            credential::authorize(&api, scope, &presented)
                .await
                .map_err(warp::reject::custom)
        },
    )
}

/// A request body of at most [`MAX_BODY_BYTES`]; a request with neither `Content-Length`
/// nor `Transfer-Encoding` has an empty one (a bodiless `POST` is an empty request, not a
/// `411`).
fn json_body() -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
    let bodiless = warp::header::optional::<String>("content-length")
        .and(warp::header::optional::<String>("transfer-encoding"))
        .and_then(
            |length: Option<String>, encoding: Option<String>| async move {
                match (length, encoding) {
                    (None, None) => Ok(bytes::Bytes::new()),
                    _ => Err(warp::reject::not_found()),
                }
            },
        );
    bodiless
        .or(warp::body::content_length_limit(MAX_BODY_BYTES).and(warp::body::bytes()))
        .unify()
}

fn send_sms(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "send-sms")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesSend))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(json_body())
        .and(query::<dto::SendQuery>())
        .and_then(|api, key, idempotency, body, query: dto::SendQuery| {
            run(handlers::send_sms(
                api,
                key,
                idempotency,
                body,
                query.skip_phone_validation(),
            ))
        })
}

fn cancel_sms(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / String)
        .and_then(not_a_list)
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesSend))
        .and_then(|id, api, key| run(handlers::cancel_sms(api, key, id)))
}

fn set_device_limits(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String / "limits")
        .and(warp::put())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesWrite))
        .and(json_body())
        .and_then(|id, api, _key, body| run(handlers::set_device_limits(api, id, body)))
}

fn rest_device(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String / "rest")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesWrite))
        .and(json_body())
        .and_then(|id, api, key, body| run(handlers::rest_device(api, key, id, body)))
}

fn unrest_device(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String / "rest")
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesWrite))
        .and_then(|id, api, key| run(handlers::unrest_device(api, key, id)))
}

fn get_sms(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / String)
        .and_then(not_a_list)
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesRead))
        .and_then(|id, api, key| run(handlers::get_sms(api, key, id)))
}

/// `inbox` and `outbox` are lists, never message ids: their own errors (a bad query, a
/// `405` for `DELETE`) must win.
async fn not_a_list(id: String) -> Result<String, Rejection> {
    match id.as_str() {
        "inbox" | "outbox" => Err(warp::reject::not_found()),
        _ => Ok(id),
    }
}

fn list_sms(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesRead))
        .and(query::<dto::MessageQuery>())
        .and_then(|api, key, query| run(handlers::list_sms(api, key, query, false)))
}

fn list_outbox(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / "outbox")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesRead))
        .and(query::<dto::MessageQuery>())
        .and_then(|api, key, query| run(handlers::list_sms(api, key, query, true)))
}

fn list_inbox(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / "inbox")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::InboxRead))
        .and(query::<dto::InboxQuery>())
        .and_then(|api, _key, query| run(handlers::list_inbox(api, query)))
}

fn list_devices(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesRead))
        .and_then(|api, _key| run(handlers::list_devices(api)))
}

fn create_device(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesWrite))
        .and(json_body())
        .and_then(|api, key, body| run(handlers::create_device(api, key, body)))
}

fn delete_device(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String)
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesWrite))
        .and_then(|id, api, key| run(handlers::delete_device(api, key, id)))
}

fn device_history(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String / "history")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesRead))
        .and(query::<handlers::SeriesQuery>())
        .and_then(|id, api, _key, query| run(handlers::device_history(api, id, query)))
}

fn stats(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "stats")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesRead))
        .and_then(|api, _key| run(handlers::stats(api)))
}

fn series(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "series")
        .and(warp::get())
        .and(authorized(api, Scope::DevicesRead))
        .and(query::<handlers::SeriesQuery>())
        .and_then(|_key, query| run(handlers::series(query)))
}

/// A query string parsed into `T`, with an `invalid_query` error that names the problem.
fn query<T: serde::de::DeserializeOwned + Default + Send + 'static>()
-> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|raw: String| async move {
            if raw.is_empty() {
                return Ok(T::default());
            }
            serde_urlencoded_from_str::<T>(&raw)
                .map_err(|err| warp::reject::custom(ApiError::bad_request("invalid_query", err)))
        })
}

fn serde_urlencoded_from_str<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, String> {
    // Parse into a flat map first, then let serde_json convert types (numbers from strings).
    let mut map = serde_json::Map::new();
    for pair in raw.split('&').filter(|it| !it.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        // `_=…` and the like are cache-busters that browsers and proxies add: not a filter.
        if key.starts_with('_') {
            continue;
        }
        let value = percent_decode(value)?;
        let value = match value.parse::<u64>() {
            Ok(n) if matches!(key.as_str(), "limit" | "offset" | "slot") => {
                serde_json::Value::from(n)
            }
            _ => serde_json::Value::String(value),
        };
        map.insert(key, value);
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|err| format!("query: {err}"))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(idx + 1..idx + 3)
                    .ok_or("bad percent-escape in query")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "bad percent-escape in query")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad percent-escape in query")?);
                idx += 2;
            }
            b => out.push(b),
        }
        idx += 1;
    }
    String::from_utf8(out).map_err(|_| "query is not UTF-8".to_string())
}
