//! The HTTP server: the accept loop on the hub's listener, connection caps, timeouts, and the
//! graceful shutdown with its bounded grace. It serves one warp filter and knows nothing of
//! the routes beyond one rule: a request under `/ws/` (or `/mobile/v1/events`, the event
//! stream of capcom6's app) is a device's.
//!
//! Every connection is in one pool ([`pool`]), decided by its first request:
//! - *pending* until its first request's headers are read (`--max-pending-connections`); when
//!   full, the oldest pending connection is closed to admit a new one, so silent sockets can
//!   neither lock anyone out nor use up the file descriptors (they also meet the header
//!   timeout);
//! - *API* (`--max-api-connections`): when full, the oldest idle keep-alive connection is
//!   closed; if every one is busy, the newcomer gets `503 too_many_connections`;
//! - *device* (`--max-device-connections`, a request under `/ws/` or `/mobile/v1/events`):
//!   counted until the socket
//!   closes, WebSocket included; when full, `503 too_many_connections`, and no phone is ever
//!   dropped for a newcomer. A device request that is not upgraded closes its connection.
//!
//! So API floods cannot lock phones out, nor the reverse. Timeouts: a request's headers
//! within `--header-timeout-s` of the connection opening or of the previous answer (so it is
//! also the keep-alive idle timeout), its body within `--body-timeout-s` of its headers
//! (else `408 request_timeout` and the connection closes).
//!
//! With TLS ([`tls`]), a connection's handshake happens while it is pending and must end
//! within the header timeout; everything above (pools, timeouts, upgrades) is the same.
//! Each request carries its peer's address as a [`PeerAddr`] extension.

mod io;
mod pool;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use warp::Filter;
use warp::http::{HeaderValue, Request, StatusCode, header};
use warp::reply::{Reply, Response};

use pool::Pool;
pub use tls::{Tls, TlsFiles};

/// The address a request came from (a request extension, for per-client limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Headers a route asks to have on its answer, whatever the answer turns out to be (an
/// error too): a request extension each request gets, read back when the answer is sent.
/// The server knows no route: it only carries them.
#[derive(Clone, Default, Debug)]
pub struct AnswerHeaders(Arc<Mutex<Vec<(header::HeaderName, HeaderValue)>>>);

impl AnswerHeaders {
    /// Puts `name: value` on the answer.
    pub fn add(&self, name: header::HeaderName, value: HeaderValue) {
        self.0
            .lock()
            .unwrap_or_else(|it| it.into_inner())
            .push((name, value));
    }

    fn apply(&self, response: &mut Response) {
        let added = std::mem::take(&mut *self.0.lock().unwrap_or_else(|it| it.into_inner()));
        for (name, value) in added {
            response.headers_mut().insert(name, value);
        }
    }
}

/// Connection caps and timeouts.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections that have not sent a whole request head yet.
    pub max_pending_connections: usize,
    /// API (and dashboard, health) connections.
    pub max_api_connections: usize,
    /// Device connections (WebSocket sessions and their upgrades).
    pub max_device_connections: usize,
    /// A request's headers must arrive within this, counted from the connection opening or
    /// the previous answer (so it is also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// A request's body must arrive within this, counted from its headers.
    pub body_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_pending_connections: 1024,
            max_api_connections: 1024,
            max_device_connections: 20_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// The open connections, by pool.
pub struct Connections {
    limits: ServerLimits,
    pending: Pool,
    api: Pool,
    devices: Pool,
    next_id: AtomicU64,
}

impl Connections {
    pub fn new(limits: ServerLimits) -> Arc<Connections> {
        Arc::new(Connections {
            pending: Pool::new(limits.max_pending_connections, true),
            api: Pool::new(limits.max_api_connections, true),
            devices: Pool::new(limits.max_device_connections, false),
            limits,
            next_id: AtomicU64::new(0),
        })
    }

    /// Whether a device could connect now (readiness).
    pub fn devices_can_connect(&self) -> bool {
        !self.devices.is_full()
    }

    /// Open connections: pending, API, devices.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.pending.len(), self.api.len(), self.devices.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Pending,
    Api,
    Device,
    /// Refused at its first request: in no pool.
    Refused,
}

/// One connection's state, shared by its task, its service and its stream.
struct ConnState {
    id: u64,
    connections: Arc<Connections>,
    class: Mutex<Class>,
    /// A request is in progress.
    busy: AtomicBool,
    /// Set when the connection should close to make room.
    evicted: Notify,
    body_timed_out: AtomicBool,
}

impl ConnState {
    fn is_idle(&self) -> bool {
        !self.busy.load(Ordering::Relaxed)
    }

    fn evict(&self) {
        *self.class.lock().unwrap_or_else(|it| it.into_inner()) = Class::Refused;
        self.evicted.notify_one();
    }

    /// Moves a pending connection to the pool its first request says; `false` if that pool
    /// has no room.
    fn admit(self: &Arc<Self>, path: &str) -> Option<Class> {
        let mut class = self.class.lock().unwrap_or_else(|it| it.into_inner());
        if *class != Class::Pending {
            return (*class != Class::Refused).then_some(*class);
        }
        self.connections.pending.leave(self.id);
        let (wanted, pool) = if is_device_path(path) {
            (Class::Device, &self.connections.devices)
        } else {
            (Class::Api, &self.connections.api)
        };
        // The pool may close another connection, which locks that one's class: not ours.
        *class = if pool.join(self) {
            wanted
        } else {
            Class::Refused
        };
        (*class != Class::Refused).then_some(*class)
    }
}

/// Whether a request's path is a device's live channel: a WebSocket under `/ws/`, or the
/// event stream of capcom6's app.
fn is_device_path(path: &str) -> bool {
    path.starts_with("/ws/") || path == "/mobile/v1/events"
}

impl Drop for ConnState {
    fn drop(&mut self) {
        let class = *self.class.get_mut().unwrap_or_else(|it| it.into_inner());
        match class {
            Class::Pending => self.connections.pending.leave(self.id),
            Class::Api => self.connections.api.leave(self.id),
            Class::Device => self.connections.devices.leave(self.id),
            Class::Refused => {}
        }
    }
}

/// Serves `routes` on `listener` (over TLS with `tls`) until `shutdown` resolves; then stops
/// accepting, lets requests in flight finish for at most `grace`, and closes what remains.
pub async fn serve<F>(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    routes: F,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let (stopping, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(it) => it,
                    Err(error) => {
                        // Out of file descriptors: close the oldest silent connection, then
                        // try again.
                        if !connections.pending.evict_oldest() {
                            tracing::warn!(%error, "cannot accept a connection");
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let state = Arc::new(ConnState {
                    id: connections.next_id.fetch_add(1, Ordering::Relaxed),
                    connections: connections.clone(),
                    class: Mutex::new(Class::Pending),
                    busy: AtomicBool::new(false),
                    evicted: Notify::new(),
                    body_timed_out: AtomicBool::new(false),
                });
                connections.pending.join(&state);
                let socket = Accepted { tcp, peer, tls: tls.clone() };
                tasks.spawn(connection(socket, state, routes.clone(), stop.clone()));
            }
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    let finished =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!(
            ?grace,
            open = tasks.len(),
            "requests still open after the grace period; closing them"
        );
        tasks.shutdown().await;
    }
}

/// An accepted socket, before its TLS handshake.
struct Accepted {
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    tls: Option<Arc<Tls>>,
}

/// Serves one connection until it closes, it is evicted, or the server stops.
async fn connection<F>(
    accepted: Accepted,
    state: Arc<ConnState>,
    routes: F,
    mut stop: watch::Receiver<bool>,
) where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let limits = state.connections.limits.clone();
    let Accepted { tcp, peer, tls } = accepted;
    let socket = match tls {
        None => io::Socket::Plain(tcp),
        // The handshake counts against the header timeout, and a pending connection
        // evicted meanwhile ends with it.
        Some(tls) => {
            let handshake = tokio::time::timeout(limits.header_timeout, tls.acceptor().accept(tcp));
            tokio::select! {
                done = handshake => match done {
                    Ok(Ok(stream)) => io::Socket::Tls(Box::new(stream)),
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                () = state.evicted.notified() => return,
                _ = stop.wait_for(|it| *it) => return,
            }
        }
    };
    let stream = io::Stream {
        tcp: socket,
        _state: state.clone(),
    };
    let service = Service {
        routes,
        state: state.clone(),
        body_timeout: limits.body_timeout,
        peer: PeerAddr(peer),
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = state.evicted.notified() => {
            if *state.class.lock().unwrap_or_else(|it| it.into_inner()) == Class::Refused
                && state.is_idle()
            {
                // Silent or idle: close now.
                return;
            }
        }
        _ = stop.wait_for(|it| *it) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// The routes behind the connection rules: admission on the first request, the body
/// deadline, `408` for a body that timed out, and one request per device connection unless
/// it was upgraded.
struct Service<F> {
    routes: F,
    state: Arc<ConnState>,
    body_timeout: Duration,
    /// The client's address, given to routes as a request extension.
    peer: PeerAddr,
}

impl<F> hyper::service::Service<Request<Incoming>> for Service<F>
where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.peer);
        let state = self.state.clone();
        let Some(class) = state.admit(request.uri().path()) else {
            return Box::pin(async { Ok(refusal(too_many_connections())) });
        };
        state.busy.store(true, Ordering::Relaxed);
        let sleep = (!http_body::Body::is_end_stream(request.body()))
            .then(|| Box::pin(tokio::time::sleep(self.body_timeout)));
        let mut request = request.map(|inner| io::Deadline {
            inner,
            sleep,
            state: state.clone(),
        });
        let added = AnswerHeaders::default();
        request.extensions_mut().insert(added.clone());
        let answer = tower_service::Service::call(&mut warp::service(self.routes.clone()), request);
        Box::pin(async move {
            let Ok(mut response) = answer.await;
            added.apply(&mut response);
            state.busy.store(false, Ordering::Relaxed);
            if state.body_timed_out.load(Ordering::Relaxed) {
                response = refusal(error(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "the request body did not arrive in time",
                ));
            }
            if class == Class::Device && response.status() != StatusCode::SWITCHING_PROTOCOLS {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}

fn too_many_connections() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "the hub has as many connections of this kind as it takes; try again shortly",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// An answer after which the connection closes.
fn refusal(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The hub's JSON error shape (as `api::error` writes it).
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}
