//! Phones (and any worker that speaks device protocol v1) over WebSocket.
//!
//! - this file: the route `GET /ws/device/{id}`: the device token is checked, then the
//!   connection is upgraded and handed to a session;
//! - [`upgrade`]: the WebSocket handshake, with small per-socket buffers;
//! - [`session`]: one task per connection, owning the socket, fed by the registry's channel;
//! - `frames`: what each device frame does, the answers, and the bounds on floods.
//!
//! A refused connection is a [`Refused`] rejection; the HTTP layer's one `recover` turns it
//! into the hub's JSON error shape. This module knows nothing of the REST API.

mod frames;
pub mod session;
pub mod upgrade;

use std::collections::HashMap;

use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::auth::{bearer, device_token_matches};
use crate::domain::is_valid_device_id;
use crate::store::DeviceRecord;
use crate::transport::link::DeviceLink;

pub use crate::transport::refused::Refused;

pub use frames::{MAX_IDS_PER_FRAME, STRIKES_PER_MINUTE};
pub use session::MAX_FRAME_BYTES;

/// WebSocket close codes of device protocol v1 (4000-4999 are application codes).
pub mod close_code {
    /// Another connection for the same device replaced this one.
    pub const REPLACED: u16 = 4000;
    /// The device was removed; it must not reconnect.
    pub const REMOVED: u16 = 4001;
    /// No common protocol version.
    pub const UNSUPPORTED_VERSION: u16 = 4002;
    /// The device stayed silent too long: no `hello` in time, or no frame for 3 heartbeats.
    pub const TIMEOUT: u16 = 4003;
    /// The device's token was rotated or revoked; it must not reconnect with it.
    pub const TOKEN_REVOKED: u16 = 4004;
    /// The hub is shutting down (standard "going away").
    pub const GOING_AWAY: u16 = 1001;
    /// The hub could not store a report (standard "internal error").
    pub const INTERNAL_ERROR: u16 = 1011;
    /// A frame over the size limit (standard "message too big").
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The device kept sending bad frames (standard "policy violation").
    pub const POLICY_VIOLATION: u16 = 1008;
}

/// `GET /ws/device/{id}`: authenticate the device token (`Authorization: Bearer` or
/// `?token=`), then upgrade and run the session; a socket without `hello` within
/// `hello_timeout` is closed with 4003.
pub fn routes(
    link: DeviceLink,
    hello_timeout: std::time::Duration,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("ws" / "device" / String)
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(
            warp::query::<HashMap<String, String>>()
                .or(warp::any().map(HashMap::new))
                .unify(),
        )
        .and(warp::any().map(move || link.clone()))
        .and_then(
            |id: String,
             authorization: Option<String>,
             query: HashMap<String, String>,
             link: DeviceLink| async move {
                let token = authorization
                    .as_deref()
                    .and_then(bearer)
                    .or_else(|| query.get("token").cloned());
                let Some(token) = token else {
                    return Err(warp::reject::custom(Refused::unauthorized(
                        "send the device token as Authorization: Bearer or ?token=",
                    )));
                };
                let unauthorized =
                    || warp::reject::custom(Refused::unauthorized("unknown device or wrong token"));
                if !is_valid_device_id(&id) {
                    return Err(unauthorized());
                }
                match link.store().find_device(&id).await {
                    Ok(Some(device)) if device_token_matches(&device, &token) => Ok((device, link)),
                    Ok(_) => Err(unauthorized()),
                    Err(err) => Err(warp::reject::custom(Refused::internal(err))),
                }
            },
        )
        .untuple_one()
        .and(upgrade::upgrade())
        .map(
            move |device: DeviceRecord, link: DeviceLink, upgrade: upgrade::Upgrade| {
                let start = Box::new(session::Start {
                    device,
                    link,
                    hello_timeout,
                });
                upgrade.on_upgrade(MAX_FRAME_BYTES, move |socket| {
                    session::run(Box::new(socket), start)
                })
            },
        )
}
