//! Phones' credentials: pairing codes (`POST /api/devices/pairing`, redeemed without an API
//! key at `POST /api/devices/pair`) and device tokens rotated or revoked
//! (`POST`/`DELETE /api/devices/{id}/token`). A rotated or revoked token's open socket is
//! closed at once (close code 4004); its offers go back to the queue as for any disconnect.
//!
//! Must never: answer a redemption faster or slower by how much of a code was right, or
//! let one client address try codes without limit.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::error::ApiError;
use super::{ApiState, authorized, json_body, run, with_api};
use crate::auth::pairing::{DEFAULT_TTL, MAX_TTL, Redeemed};
use crate::auth::{self, Scope};
use crate::domain::{DeviceId, DeviceKind};
use crate::registry::CloseReason;
use crate::server::PeerAddr;

/// Redemption attempts per client address: a burst of this many, then one every 6 s.
const REDEEM_BURST: u32 = 10;

/// Redemption attempts, per client address.
pub struct RedeemLimiter(DefaultKeyedRateLimiter<IpAddr>);

impl Default for RedeemLimiter {
    fn default() -> RedeemLimiter {
        let burst = NonZeroU32::new(REDEEM_BURST).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(Duration::from_secs(6))
            .unwrap_or_else(|| Quota::per_minute(burst))
            .allow_burst(burst);
        RedeemLimiter(DefaultKeyedRateLimiter::keyed(quota))
    }
}

/// The routes of this module.
pub fn routes(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    create_pairing(api.clone())
        .or(redeem(api.clone()))
        .unify()
        .or(rotate_token(api.clone()))
        .unify()
        .or(revoke_token(api))
        .unify()
}

/// The hub's address as the caller reached it (`Host`), with the scheme it used.
fn hub_url() -> impl Filter<Extract = (HubUrl,), Error = Rejection> + Clone {
    warp::header::optional::<String>("host").map(|host: Option<String>| HubUrl { host })
}

struct HubUrl {
    host: Option<String>,
}

impl HubUrl {
    fn http(&self, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host.as_deref().unwrap_or("localhost"))
    }

    fn ws(&self, tls: bool, device: &DeviceId) -> String {
        let scheme = if tls { "wss" } else { "ws" };
        let host = self.host.as_deref().unwrap_or("localhost");
        format!("{scheme}://{host}/ws/device/{device}")
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PairingRequest {
    name: Option<String>,
    /// Seconds the code lives (default 600, at most a day).
    ttl_s: Option<u64>,
}

#[derive(Serialize)]
struct Pairing {
    code: String,
    expires_at: String,
    expires_in_s: u64,
    hub_url: String,
    /// What the QR code holds: `{"hub":…,"code":…}`.
    qr_payload: String,
    /// The QR code as an SVG image.
    qr_svg: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    code: String,
    name: Option<String>,
}

#[derive(Serialize)]
struct Paired {
    device_id: String,
    name: String,
    token: String,
    ws_url: String,
}

#[derive(Serialize)]
struct RotatedToken {
    device_id: String,
    token: String,
    ws_url: String,
}

fn create_pairing(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / "pairing")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesWrite))
        .and(hub_url())
        .and(json_body())
        .and_then(|api, _who, url, body| run(pairing(api, url, body)))
}

fn redeem(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / "pair")
        .and(warp::post())
        .and(with_api(api))
        .and(warp::ext::optional::<PeerAddr>())
        .and(hub_url())
        .and(json_body())
        .and_then(|api, peer, url, body| run(redeem_code(api, peer, url, body)))
}

fn rotate_token(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String / "token")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesWrite))
        .and(hub_url())
        .and_then(|id, api, _who, url| run(rotate(api, id, url)))
}

fn revoke_token(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "devices" / String / "token")
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::DevicesWrite))
        .and_then(|id, api, _who| run(revoke(api, id)))
}

async fn pairing(api: Arc<ApiState>, url: HubUrl, body: Bytes) -> Result<Response, ApiError> {
    let request: PairingRequest = if body.is_empty() {
        PairingRequest::default()
    } else {
        super::handlers::parse_json(&body)?
    };
    let name = request.name.map(|it| check_name(&it)).transpose()?;
    let ttl = match request.ttl_s {
        None => DEFAULT_TTL,
        Some(s) if (1..=MAX_TTL.as_secs()).contains(&s) => Duration::from_secs(s),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_ttl",
                format!("ttl_s must be 1 to {}", MAX_TTL.as_secs()),
            ));
        }
    };
    let Some(code) = api.pairings.create(name, ttl) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_pairing_codes",
            "too many pairing codes are open; let some expire first",
        ));
    };
    let hub = url.http(api.config.tls_enabled);
    let qr_payload = serde_json::json!({ "hub": hub, "code": code.code }).to_string();
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(code.expires_in).unwrap_or(chrono::Duration::zero());
    let body = Pairing {
        qr_svg: qr_svg(&qr_payload),
        code: code.code,
        expires_at: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        expires_in_s: code.expires_in.as_secs(),
        hub_url: hub,
        qr_payload,
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response())
}

async fn redeem_code(
    api: Arc<ApiState>,
    peer: Option<PeerAddr>,
    url: HubUrl,
    body: Bytes,
) -> Result<Response, ApiError> {
    limit_redeeming(&api, peer)?;
    let request: RedeemRequest = super::handlers::parse_json(&body)?;
    let asked = request.name.map(|it| check_name(&it)).transpose()?;
    let name = redeem_pairing(&api, &request.code)?
        .or(asked)
        .unwrap_or_else(|| "phone".to_string());
    let created = match auth::create_device(&api.store, &name, DeviceKind::Android).await {
        Ok(it) => it,
        Err(err) => {
            api.pairings.unredeem(&request.code);
            return Err(err.into());
        }
    };
    tracing::info!(device = %created.id, name = %created.name, "device paired");
    let body = Paired {
        ws_url: url.ws(api.config.tls_enabled, &created.id),
        device_id: created.id.into(),
        name: created.name,
        token: created.token,
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response())
}

async fn rotate(api: Arc<ApiState>, id: String, url: HubUrl) -> Result<Response, ApiError> {
    let id = device(&id)?;
    let Some(token) = auth::rotate_device_token(&api.store, &id).await? else {
        return Err(ApiError::not_found(format!("no device with id {id:?}")));
    };
    api.registry.close(&id, CloseReason::TokenRevoked);
    tracing::info!(device = %id, "device token rotated");
    let body = RotatedToken {
        ws_url: url.ws(api.config.tls_enabled, &id),
        device_id: id.into(),
        token,
    };
    Ok(warp::reply::json(&body).into_response())
}

async fn revoke(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    let id = device(&id)?;
    if !auth::revoke_device_token(&api.store, &id).await? {
        return Err(ApiError::not_found(format!("no device with id {id:?}")));
    }
    api.registry.close(&id, CloseReason::TokenRevoked);
    tracing::info!(device = %id, "device token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Counts one redemption attempt of the client at `peer`: `429` past the limit.
pub(crate) fn limit_redeeming(api: &ApiState, peer: Option<PeerAddr>) -> Result<(), ApiError> {
    let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |it| it.0.ip());
    if api.redeem_limiter.0.len() > 10_000 {
        api.redeem_limiter.0.retain_recent();
    }
    if let Err(not_until) = api.redeem_limiter.0.check_key(&ip) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many pairing attempts from this address; wait and try again",
        );
        error.retry_after = Some(u32::try_from(wait.as_secs() + 1).unwrap_or(u32::MAX));
        return Err(error);
    }
    Ok(())
}

/// Redeems pairing code `code` once: the device name it was made for, if any; `410` if it
/// was used, `404` if there is no such code.
pub(crate) fn redeem_pairing(api: &ApiState, code: &str) -> Result<Option<String>, ApiError> {
    match api.pairings.redeem(code) {
        Redeemed::Valid { name } => Ok(name),
        Redeemed::Used => Err(ApiError::new(
            StatusCode::GONE,
            "pairing_code_used",
            "this pairing code was used already; ask for a new one",
        )),
        Redeemed::Invalid => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_pairing_code",
            "no such pairing code, or it expired",
        )),
    }
}

fn device(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(id).ok_or_else(|| ApiError::not_found(format!("no device with id {id:?}")))
}

pub(crate) fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 64 characters",
        ));
    }
    Ok(name.to_string())
}

/// The QR code of `payload` as an SVG image (empty if it does not fit a QR code).
pub fn qr_svg(payload: &str) -> String {
    qrcode::QrCode::new(payload.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build()
        })
        .unwrap_or_default()
}
