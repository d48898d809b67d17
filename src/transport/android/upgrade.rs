//! The WebSocket upgrade for device sessions; a request that is not an upgrade is refused
//! with [`Refused`] (`400 websocket_required`), which the HTTP layer's one `recover` answers.
//!
//! warp's own `ws()` filter cannot size tungstenite's buffers, and tungstenite keeps a 128 KiB
//! read buffer per socket (zero-filled before every read). A hub holds thousands of idle
//! phones that send frames of a few hundred bytes, so the upgrade is done here with a small
//! read buffer: the buffer still grows for a large frame, and the hub's memory per connected
//! phone stays a few KiB.

use std::future::Future;

use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use warp::Filter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::hyper::upgrade::{OnUpgrade, Upgraded};
use warp::reject::Rejection;

use super::Refused;

/// A device's socket after the upgrade.
pub type DeviceSocket = WebSocketStream<TokioIo<Upgraded>>;

/// Initial read buffer of a device socket; grows for larger frames. A phone's frames are a
/// few hundred bytes (a `hello` with held jobs more); every connected phone holds one.
const READ_BUFFER_BYTES: usize = 1024;

/// Frames are written to the socket when this much is buffered, else when the session
/// flushes (once per turn of its loop); the buffer starts empty and grows only when used.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// A request that asked for a WebSocket and may be upgraded.
pub struct Upgrade {
    accept: String,
    on_upgrade: OnUpgrade,
}

/// Matches a WebSocket upgrade request (`GET`, `Connection: upgrade`, `Upgrade: websocket`,
/// version 13, a key); anything else is refused with 400 `websocket_required`.
pub fn upgrade() -> impl Filter<Extract = (Upgrade,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::method())
        .and_then(
            |headers: warp::http::HeaderMap,
             on_upgrade: Option<OnUpgrade>,
             method: warp::http::Method| async move {
                let has = |name: header::HeaderName, token: &str| {
                    headers.get_all(name).iter().any(|value| {
                        value.to_str().is_ok_and(|it| {
                            it.split(',')
                                .any(|part| part.trim().eq_ignore_ascii_case(token))
                        })
                    })
                };
                let key = headers.get(header::SEC_WEBSOCKET_KEY);
                match (key, on_upgrade) {
                    (Some(key), Some(on_upgrade))
                        if method == warp::http::Method::GET
                            && has(header::CONNECTION, "upgrade")
                            && has(header::UPGRADE, "websocket")
                            && has(header::SEC_WEBSOCKET_VERSION, "13") =>
                    {
                        Ok(Upgrade {
                            accept: derive_accept_key(key.as_bytes()),
                            on_upgrade,
                        })
                    }
                    _ => Err(warp::reject::custom(Refused::websocket_required())),
                }
            },
        )
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and runs `session` on the socket once upgraded.
    pub fn on_upgrade<F, U>(self, max_frame_bytes: usize, session: F) -> warp::reply::Response
    where
        F: FnOnce(DeviceSocket) -> U + Send + 'static,
        U: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(it) => it,
                Err(err) => {
                    tracing::debug!(error = %err, "websocket upgrade failed");
                    return;
                }
            };
            let config = WebSocketConfig::default()
                .read_buffer_size(READ_BUFFER_BYTES)
                .write_buffer_size(WRITE_BUFFER_BYTES)
                .max_message_size(Some(max_frame_bytes))
                .max_frame_size(Some(max_frame_bytes));
            let socket = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            session(socket).await;
        });
        let mut response = warp::reply::Response::default();
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&self.accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}
