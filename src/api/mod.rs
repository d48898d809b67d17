//! The HTTP surface: REST API, dashboard and health probe, and the one place where the
//! routes of the transports that speak HTTP (the device WebSocket) join them.
//!
//! One function per route returning a filter; authentication comes after path matching so
//! an unknown path is a 404, not a 401; every JSON body has a size limit; one `recover`
//! turns every rejection (the transports' too) into the JSON error shape of
//! [`error::ApiError`].
//!
//! The API owns its state ([`ApiState`]): the store, the registry and the dispatcher it
//! shares with the transports, and what only it uses: API keys, back-pressure, the modems.

mod allow;
pub mod dto;
pub mod error;
mod events;
mod handlers;
mod modems;
pub mod send;

use std::convert::Infallible;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::auth::{ApiKeys, Principal, Scope, bearer};
use crate::dashboard;
use crate::dispatch::{Backlog, Dispatcher};
use crate::registry::DeviceRegistry;
use crate::server::Connections;
use crate::store::{ApiKeyRecord, Store};
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
        .or(stats(api.clone()))
        .unify()
        .or(modems::routes(api.clone()))
        .unify()
        .boxed();
    let health = warp::path("health")
        .and(
            warp::path::end()
                .map(|| handlers::Probe::Summary)
                .or(warp::path!("live").map(|| handlers::Probe::Live))
                .unify()
                .or(warp::path!("ready").map(|| handlers::Probe::Ready))
                .unify(),
        )
        .and(warp::get().or(warp::head()).unify())
        .and(with_api(api))
        .and_then(|probe, api| run(handlers::health(api, probe)));
    let all = rest
        .or(devices)
        .unify()
        .or(health)
        .unify()
        .or(dashboard::routes())
        .unify()
        .recover(error::recover)
        .unify();
    warp::path::full()
        .and(all)
        .map(|path: warp::path::FullPath, response| allow::add_allow(path.as_str(), response))
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
/// `403 forbidden` naming the scope when it lacks it.
fn authorized(
    api: Arc<ApiState>,
    scope: Scope,
) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    api_key(api).and_then(move |key: ApiKeyRecord| async move {
        let principal = Principal::of_key(&key);
        if principal.scopes.contains(scope) {
            Ok(principal)
        } else {
            Err(warp::reject::custom(ApiError::forbidden(scope)))
        }
    })
}

/// Requires an API key in `X-API-Key` or `Authorization: Bearer`.
fn api_key(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (ApiKeyRecord,), Error = Rejection> + Clone {
    warp::header::optional::<String>("x-api-key")
        .and(warp::header::optional::<String>("authorization"))
        .and(with_api(api))
        .and_then(
            |key: Option<String>, authorization: Option<String>, api: Arc<ApiState>| async move {
                let secret = key.or_else(|| authorization.as_deref().and_then(bearer));
                let Some(secret) = secret else {
                    return Err(warp::reject::custom(ApiError::unauthorized(
                        "send an API key in the X-API-Key header or as Authorization: Bearer",
                    )));
                };
                match api.api_keys.check(&secret).await {
                    Ok(Some(record)) => Ok(record),
                    Ok(None) => Err(warp::reject::custom(ApiError::unauthorized(
                        "the API key is not valid",
                    ))),
                    Err(err) => Err(warp::reject::custom(ApiError::from(err))),
                }
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
        .and_then(|api, key, idempotency, body| {
            run(handlers::send_sms(api, key, idempotency, body))
        })
}

fn cancel_sms(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / String)
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesSend))
        .and_then(|id, api, _key| run(handlers::cancel_sms(api, id)))
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

fn get_sms(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / String)
        // `inbox` and `outbox` are lists, never ids: their own errors (a bad query) must win.
        .and_then(|id: String| async move {
            match id.as_str() {
                "inbox" | "outbox" => Err(warp::reject::not_found()),
                _ => Ok(id),
            }
        })
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesRead))
        .and_then(|id, api, _key| run(handlers::get_sms(api, id)))
}

fn list_sms(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesRead))
        .and(query::<dto::MessageQuery>())
        .and_then(|api, _key, query| run(handlers::list_sms(api, query, false)))
}

fn list_outbox(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / "outbox")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesRead))
        .and(query::<dto::MessageQuery>())
        .and_then(|api, _key, query| run(handlers::list_sms(api, query, true)))
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
        .and_then(|api, _key, body| run(handlers::create_device(api, body)))
}

fn delete_device(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String)
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesWrite))
        .and_then(|id, api, _key| run(handlers::delete_device(api, id)))
}

fn stats(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "stats")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesRead))
        .and_then(|api, _key| run(handlers::stats(api)))
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
            Ok(n) if key == "limit" || key == "offset" => serde_json::Value::from(n),
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
