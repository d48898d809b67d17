//! Phones running capcom6's "SMS Gateway for Android" app in private-server mode, on the
//! app's own mobile API (`/mobile/v1/...`), unchanged: devices of kind `sms-gateway-app`.
//!
//! The app has no socket both ways and no two-phase commit. It keeps a Server-Sent Events
//! stream open (its "SSE only" channel), pulls its messages over HTTP when told to, and
//! reports their states back; its health and received SMS come as webhooks it posts itself.
//! So, over the same [`DeviceLink`] as every transport:
//!
//! - [`session`]: `GET /mobile/v1/events`. The phone is online while this stream is open; an
//!   offer is kept for its next pull and announced with `MessageEnqueued` at once.
//! - [`pull`]: `GET /mobile/v1/message` commits the acceptance of what the phone pulls, then
//!   lists every job it holds; `PATCH /mobile/v1/message` reports states.
//! - [`device`]: `GET`/`PATCH /mobile/v1/device`, `GET /mobile/v1/settings`,
//!   `GET /mobile/v1/webhooks`.
//! - [`hooks`]: `POST /mobile/v1/hooks`, the app's webhooks back to smshub (health, received
//!   SMS), signed with a key of the device's own.
//! - [`wire`]: the app's JSON.
//!
//! Registering (`POST /mobile/v1/device`) and one-time codes (`GET /mobile/v1/user/code`)
//! need the API's credentials and are in `api/compat/mobile.rs`. A phone's token is sent as
//! `Authorization: Bearer` and names the device by itself.

mod device;
mod hooks;
mod pull;
mod session;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::auth::bearer;
use crate::domain::{DeviceKind, hash_secret};
use crate::server::PeerAddr;
use crate::store::DeviceRecord;
use crate::transport::Refused;
use crate::transport::link::DeviceLink;

pub use device::{app_version, signing_key, sims_of};
pub use hooks::status_of;
pub use pull::failure_code;
pub use session::{KEEPALIVE, baseline, capabilities};
pub use wire::SimCard;

/// The kind of device these phones are.
pub const KIND: DeviceKind = DeviceKind::GatewayApp;
/// Jobs offered to or held by one phone at once. The app sends one after another, pausing
/// between sends as its settings say, so a few are enough to keep it busy.
pub const MAX_IN_FLIGHT: u32 = 8;
/// Largest body the app may send.
const MAX_BODY_BYTES: u64 = 256 * 1024;

/// What the routes of this transport share.
#[derive(Clone)]
pub struct GatewayApp {
    link: DeviceLink,
    sessions: Arc<session::Sessions>,
    /// The hub serves HTTPS: webhook URLs given to phones are `https://`.
    secure: bool,
}

/// Every route of the app's mobile API but registration.
pub fn routes(
    link: DeviceLink,
    secure: bool,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let app = GatewayApp {
        link,
        sessions: Arc::default(),
        secure,
    };
    let with_app = {
        let app = app.clone();
        warp::any().map(move || app.clone())
    };
    // `message`, and `messages` as the app's server also routes it.
    let messages = || {
        warp::path!("mobile" / "v1" / "message")
            .or(warp::path!("mobile" / "v1" / "messages"))
            .unify()
    };
    let events = warp::path!("mobile" / "v1" / "events")
        .and(warp::get())
        .and(with_app.clone())
        .and(device_of(app.clone()))
        .map(session::open);
    let pull = messages()
        .and(warp::get())
        .and(with_app.clone())
        .and(device_of(app.clone()))
        .and(
            warp::query::<HashMap<String, String>>()
                .or(warp::any().map(HashMap::new))
                .unify(),
        )
        .and_then(|app, device, query: HashMap<String, String>| {
            pull::pull(app, device, query.get("order").cloned())
        });
    let report = messages()
        .and(warp::patch())
        .and(with_app.clone())
        .and(device_of(app.clone()))
        .and(body())
        .and_then(pull::report);
    let get_device = warp::path!("mobile" / "v1" / "device")
        .and(warp::get())
        .and(maybe_device_of(app.clone()))
        .and(warp::ext::optional::<PeerAddr>())
        .map(|device, peer: Option<PeerAddr>| {
            device::describe(device, peer.map(|it| it.0.ip().to_string()))
        });
    let patch_device = warp::path!("mobile" / "v1" / "device")
        .and(warp::patch())
        .and(with_app.clone())
        .and(device_of(app.clone()))
        .and(warp::header::optional::<String>("user-agent"))
        .and(body())
        .and_then(device::update);
    let settings = warp::path!("mobile" / "v1" / "settings")
        .and(warp::get())
        .and(with_app.clone())
        .and(device_of(app.clone()))
        .map(|app: GatewayApp, device: DeviceRecord| {
            device::settings(&device, app.link.heartbeat_s())
        });
    let webhooks = warp::path!("mobile" / "v1" / "webhooks")
        .and(warp::get())
        .and(with_app.clone())
        .and(device_of(app.clone()))
        .and(warp::header::optional::<String>("host"))
        .and(warp::header::optional::<String>("x-forwarded-proto"))
        .map(
            |app: GatewayApp, _device, host: Option<String>, proto: Option<String>| {
                // Behind a proxy that ends TLS, the phone reached the hub over HTTPS.
                let https = app.secure || proto.is_some_and(|it| it.eq_ignore_ascii_case("https"));
                let scheme = if https { "https" } else { "http" };
                let host = host.unwrap_or_else(|| "localhost".to_string());
                device::webhooks(&format!("{scheme}://{host}"))
            },
        );
    let hooks = warp::path!("mobile" / "v1" / "hooks")
        .and(warp::post())
        .and(with_app)
        .and(warp::header::optional::<String>("x-signature"))
        .and(warp::header::optional::<String>("x-timestamp"))
        .and(body())
        .and_then(hooks::receive);
    events
        .or(pull)
        .unify()
        .or(report)
        .unify()
        .or(get_device)
        .unify()
        .or(patch_device)
        .unify()
        .or(settings)
        .unify()
        .or(webhooks)
        .unify()
        .or(hooks)
        .unify()
}

/// The body, at most [`MAX_BODY_BYTES`].
fn body() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_BODY_BYTES).and(warp::body::bytes())
}

/// The device whose token is the request's bearer token.
fn device_of(app: GatewayApp) -> impl Filter<Extract = (DeviceRecord,), Error = Rejection> + Clone {
    maybe_device_of(app).and_then(|device: Option<DeviceRecord>| async move {
        device.ok_or_else(|| {
            warp::reject::custom(Refused::unauthorized(
                "send the device token as Authorization: Bearer",
            ))
        })
    })
}

/// The device of the bearer token, if the request carries one; a wrong token is refused.
fn maybe_device_of(
    app: GatewayApp,
) -> impl Filter<Extract = (Option<DeviceRecord>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(
        move |authorization: Option<String>| {
            let app = app.clone();
            async move {
                let Some(token) = authorization.as_deref().and_then(bearer) else {
                    return Ok(None);
                };
                match app
                    .link
                    .store()
                    .find_device_by_token(&hash_secret(&token))
                    .await
                {
                    Ok(Some(device)) if device.kind == KIND => Ok(Some(device)),
                    Ok(_) => Err(warp::reject::custom(Refused::unauthorized(
                        "unknown device or wrong token",
                    ))),
                    Err(err) => Err(warp::reject::custom(Refused::internal(err))),
                }
            }
        },
    )
}
