//! The HTTP surface: REST API, device WebSocket endpoint, dashboard and health probe.
//!
//! One function per route returning a filter; authentication comes after path matching so
//! an unknown path is a 404, not a 401; every JSON body has a size limit; one `recover`
//! turns every rejection into the JSON error shape of [`error::ApiError`].

pub mod dto;
pub mod error;
mod handlers;
mod modems;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::app::Hub;
use crate::auth::device_token_matches;
use crate::domain::is_valid_device_id;
use crate::store::{ApiKeyRecord, DeviceRecord};
use crate::{dashboard, transport};
use error::ApiError;

/// Largest JSON body accepted.
const MAX_BODY_BYTES: u64 = 256 * 1024;

/// Every route of the hub.
pub fn routes(
    hub: Arc<Hub>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let api = send_sms(hub.clone())
        .or(list_inbox(hub.clone()))
        .unify()
        .or(list_outbox(hub.clone()))
        .unify()
        .or(get_sms(hub.clone()))
        .unify()
        .or(list_sms(hub.clone()))
        .unify()
        .or(list_devices(hub.clone()))
        .unify()
        .or(create_device(hub.clone()))
        .unify()
        .or(delete_device(hub.clone()))
        .unify()
        .or(cancel_sms(hub.clone()))
        .unify()
        .or(set_device_limits(hub.clone()))
        .unify()
        .or(stats(hub.clone()))
        .unify()
        .or(modems::routes(hub.clone()))
        .unify()
        .boxed();
    let health = warp::path!("health")
        .and(warp::get())
        .and(with_hub(hub.clone()))
        .and_then(|hub| run(handlers::health(hub)));
    api.or(device_socket(hub))
        .unify()
        .or(health)
        .unify()
        .or(dashboard::routes())
        .unify()
        .recover(error::recover)
        .unify()
}

fn with_hub(hub: Arc<Hub>) -> impl Filter<Extract = (Arc<Hub>,), Error = Infallible> + Clone {
    warp::any().map(move || hub.clone())
}

/// Turns a handler result into a reply or a rejection for `recover`.
async fn run(
    result: impl std::future::Future<Output = Result<Response, ApiError>>,
) -> Result<Response, Rejection> {
    result.await.map_err(warp::reject::custom)
}

/// Requires an API key in `X-API-Key` or `Authorization: Bearer`.
fn api_key(hub: Arc<Hub>) -> impl Filter<Extract = (ApiKeyRecord,), Error = Rejection> + Clone {
    warp::header::optional::<String>("x-api-key")
        .and(warp::header::optional::<String>("authorization"))
        .and(with_hub(hub))
        .and_then(
            |key: Option<String>, authorization: Option<String>, hub: Arc<Hub>| async move {
                let secret = key.or_else(|| bearer(authorization.as_deref()));
                let Some(secret) = secret else {
                    return Err(warp::reject::custom(ApiError::unauthorized(
                        "send an API key in the X-API-Key header or as Authorization: Bearer",
                    )));
                };
                match hub.api_keys.check(&secret).await {
                    Ok(Some(record)) => Ok(record),
                    Ok(None) => Err(warp::reject::custom(ApiError::unauthorized(
                        "the API key is not valid",
                    ))),
                    Err(err) => Err(warp::reject::custom(ApiError::from(err))),
                }
            },
        )
}

fn bearer(header: Option<&str>) -> Option<String> {
    let header = header?.trim();
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|it| !it.is_empty())
}

fn json_body() -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_BODY_BYTES).and(warp::body::bytes())
}

fn send_sms(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "send-sms")
        .and(warp::post())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(json_body())
        .and_then(|hub, key, idempotency, body| {
            run(handlers::send_sms(hub, key, idempotency, body))
        })
}

fn cancel_sms(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / String)
        .and(warp::delete())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and_then(|id, hub, _key| run(handlers::cancel_sms(hub, id)))
}

fn set_device_limits(
    hub: Arc<Hub>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String / "limits")
        .and(warp::put())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and(json_body())
        .and_then(|id, hub, _key, body| run(handlers::set_device_limits(hub, id, body)))
}

fn get_sms(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / String)
        // `inbox` and `outbox` are lists, never ids: their own errors (a bad query) must win.
        .and_then(|id: String| async move {
            match id.as_str() {
                "inbox" | "outbox" => Err(warp::reject::not_found()),
                _ => Ok(id),
            }
        })
        .and(warp::get())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and_then(|id, hub, _key| run(handlers::get_sms(hub, id)))
}

fn list_sms(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms")
        .and(warp::get())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and(query::<dto::MessageQuery>())
        .and_then(|hub, _key, query| run(handlers::list_sms(hub, query, false)))
}

fn list_outbox(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / "outbox")
        .and(warp::get())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and(query::<dto::MessageQuery>())
        .and_then(|hub, _key, query| run(handlers::list_sms(hub, query, true)))
}

fn list_inbox(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sms" / "inbox")
        .and(warp::get())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and(query::<dto::InboxQuery>())
        .and_then(|hub, _key, query| run(handlers::list_inbox(hub, query)))
}

fn list_devices(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices")
        .and(warp::get())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and_then(|hub, _key| run(handlers::list_devices(hub)))
}

fn create_device(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices")
        .and(warp::post())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and(json_body())
        .and_then(|hub, _key, body| run(handlers::create_device(hub, body)))
}

fn delete_device(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String)
        .and(warp::delete())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and_then(|id, hub, _key| run(handlers::delete_device(hub, id)))
}

fn stats(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "stats")
        .and(warp::get())
        .and(with_hub(hub.clone()))
        .and(api_key(hub))
        .and_then(|hub, _key| run(handlers::stats(hub)))
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

/// `GET /ws/device/{id}`: authenticate the device token, then upgrade.
fn device_socket(hub: Arc<Hub>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("ws" / "device" / String)
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(
            warp::query::<HashMap<String, String>>()
                .or(warp::any().map(HashMap::new))
                .unify(),
        )
        .and(with_hub(hub))
        .and_then(
            |id: String,
             authorization: Option<String>,
             query: HashMap<String, String>,
             hub: Arc<Hub>| async move {
                let token =
                    bearer(authorization.as_deref()).or_else(|| query.get("token").cloned());
                let unauthorized = || {
                    warp::reject::custom(ApiError::unauthorized("unknown device or wrong token"))
                };
                let Some(token) = token else {
                    return Err(warp::reject::custom(ApiError::unauthorized(
                        "send the device token as Authorization: Bearer or ?token=",
                    )));
                };
                if !is_valid_device_id(&id) {
                    return Err(unauthorized());
                }
                match hub.store.find_device(&id).await {
                    Ok(Some(device)) if device_token_matches(&device, &token) => Ok((device, hub)),
                    Ok(_) => Err(unauthorized()),
                    Err(err) => Err(warp::reject::custom(ApiError::from(err))),
                }
            },
        )
        .untuple_one()
        .and(transport::websocket::upgrade())
        .map(
            |device: DeviceRecord, hub: Arc<Hub>, upgrade: transport::websocket::Upgrade| {
                upgrade.on_upgrade(transport::android::MAX_FRAME_BYTES, move |socket| {
                    transport::android::run(socket, device, hub)
                })
            },
        )
}
