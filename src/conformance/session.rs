//! The hub side of a conformance run: a WebSocket server for one device id and token, and
//! the sessions a worker opens on it, driven frame by frame by the rules.
//!
//! It speaks device protocol v1 as the spec words it, from `smshub-protocol`'s wire types,
//! with no store, dispatcher or registry behind it: what it remembers of jobs is the
//! rules' [`Ledger`]. It must never be the real hub's session code, so that a worker that
//! passes here passes because it follows the spec, not because it matches the hub's habits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use smshub_protocol::device::{
    Ack, AckedReport, DeviceFrame, HeldPhase, Hello, HubFrame, JobIds, ReportKind, Revoke, Welcome,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The largest frame in either direction (spec 2.3).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Who may connect, and where.
#[derive(Debug, Clone)]
pub struct Door {
    pub device_id: String,
    pub token: String,
}

impl Door {
    /// Spec 2.2: the token as a bearer header or a `token` query parameter, for this id.
    fn admits(&self, request: &Request) -> bool {
        if request.uri().path() != format!("/ws/device/{}", self.device_id) {
            return false;
        }
        let bearer = request
            .headers()
            .get("authorization")
            .and_then(|it| it.to_str().ok())
            .and_then(|it| it.strip_prefix("Bearer "))
            .map(str::to_string);
        let query = request.uri().query().and_then(|query| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == "token")
                .map(|(_, value)| percent_decode(value))
        });
        bearer.or(query).is_some_and(|it| it == self.token)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut n = 0;
    while n < bytes.len() {
        if bytes[n] == b'%'
            && let Some(hex) = text.get(n + 1..n + 3)
            && let Ok(value) = u8::from_str_radix(hex, 16)
        {
            out.push(value);
            n += 3;
            continue;
        }
        out.push(if bytes[n] == b'+' { b' ' } else { bytes[n] });
        n += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Ws = WebSocketStream<TcpStream>;

/// The listening socket, which a rule can take down and bring back (a hub restart).
pub struct Server {
    addr: SocketAddr,
    door: Door,
    /// Upgraded, authenticated sockets, in the order they came.
    arrivals: mpsc::Receiver<Ws>,
    arrivals_tx: mpsc::Sender<Ws>,
    /// `false` closes the listener; `true` opens it again on the same address.
    listening: watch::Sender<bool>,
}

impl Server {
    /// Binds `addr` and starts accepting.
    pub async fn bind(addr: SocketAddr, door: Door) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (arrivals_tx, arrivals) = mpsc::channel(16);
        let (listening, _) = watch::channel(true);
        let server = Server {
            addr,
            door,
            arrivals,
            arrivals_tx,
            listening,
        };
        server.accept_on(listener);
        Ok(server)
    }

    /// The address it listens on (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn accept_on(&self, listener: TcpListener) {
        let door = self.door.clone();
        let arrivals = self.arrivals_tx.clone();
        let mut listening = self.listening.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let door = door.clone();
                        let arrivals = arrivals.clone();
                        tokio::spawn(async move {
                            if let Some(ws) = upgrade(stream, &door).await {
                                let _ = arrivals.send(ws).await;
                            }
                        });
                    }
                    changed = listening.changed() => {
                        if changed.is_err() || !*listening.borrow() {
                            return;
                        }
                    }
                }
            }
        });
    }

    /// Stops listening: new connections are refused until [`Server::listen_again`].
    pub fn stop_listening(&self) {
        self.listening.send_replace(false);
    }

    /// Listens again on the same address.
    pub async fn listen_again(&mut self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        self.listening.send_replace(true);
        self.accept_on(listener);
        Ok(())
    }

    /// The next authenticated socket within `wait`.
    pub async fn next_socket(&mut self, wait: Duration) -> Option<Ws> {
        tokio::time::timeout(wait, self.arrivals.recv())
            .await
            .ok()
            .flatten()
    }

    /// Sockets that arrived and were not taken (dropped, a worker with two connections).
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.arrivals.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}

// The refusal's type is tungstenite's handshake callback's, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn upgrade(stream: TcpStream, door: &Door) -> Option<Ws> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        if door.admits(request) {
            return Ok(response);
        }
        let mut refusal = http::Response::new(Some(
            r#"{"error":{"code":"unauthorized","message":"missing or invalid device token"}}"#
                .to_string(),
        ));
        *refusal.status_mut() = http::StatusCode::UNAUTHORIZED;
        refusal.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Err(refusal)
    };
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)),
    )
    .await
    .ok()?
    .ok()
}

/// What the worker did on the socket.
#[derive(Debug, Clone)]
pub enum Got {
    /// A protocol frame (heartbeats, `status` and `incoming` are handled by the session
    /// and never returned).
    Frame(DeviceFrame),
    /// A text frame that does not parse, or a binary frame.
    Invalid(String),
    /// The socket closed: the close code, if the worker sent one.
    Closed(Option<u16>),
}

/// How the hub regards a job it offered (the rules' memory, like the real hub's store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Offered; not this worker's. On a resume it is revoked.
    Offered,
    /// The hub recorded this worker's ownership: a resumed `accepted` gets `commit`.
    Owned,
    /// Its outcome report was stored and acknowledged.
    Done,
    /// Revoked or rejected: no longer this worker's.
    Gone,
}

/// The hub's memory of every job of the run.
#[derive(Debug, Default)]
pub struct Ledger {
    pub jobs: HashMap<String, Held>,
}

/// What the hub saw at the opening of a session, for the rules on every session.
#[derive(Debug, Clone)]
pub struct Opening {
    /// The number of the session in the run, from 1.
    pub number: usize,
    /// The first frame, as text.
    pub first: String,
    /// The `hello`, when the first frame was one.
    pub hello: Option<Hello>,
    /// Frames that came after `hello` but before `welcome` was sent (spec 10.2).
    pub before_welcome: Vec<String>,
    /// The first frame after `welcome` (spec 4.2: a `status`).
    pub after_welcome: Option<String>,
}

/// Every frame a worker sent that the rules on the whole run look at.
#[derive(Debug, Default)]
pub struct Transcript {
    pub openings: Vec<Opening>,
    /// Every report and answer (`sent`, `failed`, `delivered`, `rejected`), with its session.
    pub reports: Vec<(usize, DeviceFrame)>,
    pub statuses: usize,
    pub heartbeats: usize,
    /// `hello` frames inside open sessions (spec 4.1.5: once per session).
    pub second_hellos: usize,
}

/// One open session.
pub struct Session {
    ws: Ws,
    pub number: usize,
    pub hello: Hello,
    /// Reports are acknowledged as they come unless a rule turns this off.
    pub auto_ack: bool,
    /// Heartbeats are answered unless a rule turns this off (a silent hub).
    pub answer_heartbeats: bool,
    /// Frames read while opening the session, handed out first.
    pending: Vec<Got>,
    /// When the worker last sent a frame, and when the hub last did.
    pub last_from_worker: Instant,
    pub last_to_worker: Instant,
    /// The times of the worker's heartbeats in this session.
    pub heartbeats: Vec<Instant>,
    /// Reports seen in this session, by (id, kind).
    pub reported: Vec<(String, ReportKind)>,
}

/// The frame kinds a rule waits for.
fn kind(frame: &DeviceFrame) -> Option<ReportKind> {
    match frame {
        DeviceFrame::Sent(_) => Some(ReportKind::Sent),
        DeviceFrame::Delivered(_) => Some(ReportKind::Delivered),
        DeviceFrame::Failed(_) => Some(ReportKind::Failed),
        DeviceFrame::Incoming(_) => Some(ReportKind::Incoming),
        _ => None,
    }
}

/// The id a report is about.
pub fn report_id(frame: &DeviceFrame) -> Option<&str> {
    match frame {
        DeviceFrame::Sent(it) => Some(&it.id),
        DeviceFrame::Delivered(it) => Some(&it.id),
        DeviceFrame::Failed(it) => Some(&it.id),
        DeviceFrame::Incoming(it) => Some(&it.id),
        _ => None,
    }
}

/// A frame in one line, for the report.
pub fn brief(frame: &DeviceFrame) -> String {
    let text = frame.to_json();
    if text.len() > 160 {
        format!("{}…", &text[..text.floor_char_boundary(160)])
    } else {
        text
    }
}

impl Session {
    /// Reads `hello` (within 10 s, spec 4.1), sends `welcome` after `hold` (any frame in
    /// that window breaks 10.2), answers the held jobs from `ledger` (5.8.2), and waits for
    /// the first frame after `welcome`.
    pub async fn open(
        mut ws: Ws,
        number: usize,
        device_id: &str,
        heartbeat_s: u32,
        ledger: &mut Ledger,
        transcript: &mut Transcript,
        patience: Duration,
    ) -> Result<Session, String> {
        let first = match read_text(&mut ws, Duration::from_secs(10)).await {
            Ok(it) => it,
            Err(closed) => {
                transcript.openings.push(Opening {
                    number,
                    first: closed.clone(),
                    hello: None,
                    before_welcome: Vec::new(),
                    after_welcome: None,
                });
                return Err(format!("session {number}: no hello ({closed})"));
            }
        };
        let hello = match DeviceFrame::parse(&first) {
            Ok(DeviceFrame::Hello(hello)) => hello,
            _ => {
                transcript.openings.push(Opening {
                    number,
                    first: first.clone(),
                    hello: None,
                    before_welcome: Vec::new(),
                    after_welcome: None,
                });
                let _ = ws.close(None).await;
                return Err(format!(
                    "session {number}: the first frame was not hello: {first}"
                ));
            }
        };
        let mut opening = Opening {
            number,
            first,
            hello: Some(hello.clone()),
            before_welcome: Vec::new(),
            after_welcome: None,
        };
        if !hello.protocol.contains(&1) {
            let _ = ws
                .send(Message::text(
                    r#"{"type":"error","code":"unsupported_version","message":"this hub speaks protocol 1"}"#,
                ))
                .await;
            let _ = ws
                .close(Some(CloseFrame {
                    code: CloseCode::from(4002),
                    reason: "unsupported protocol version".into(),
                }))
                .await;
            transcript.openings.push(opening);
            return Err(format!("session {number}: hello.protocol has no 1"));
        }
        // Spec 10.2: nothing may come between hello and welcome.
        let hold = Instant::now() + Duration::from_millis(250);
        while let Ok(text) = read_text_until(&mut ws, hold).await {
            opening.before_welcome.push(text);
        }
        let mut session = Session {
            ws,
            number,
            hello: hello.clone(),
            auto_ack: true,
            answer_heartbeats: true,
            pending: Vec::new(),
            last_from_worker: Instant::now(),
            last_to_worker: Instant::now(),
            heartbeats: Vec::new(),
            reported: Vec::new(),
        };
        session
            .send(&HubFrame::Welcome(Welcome {
                protocol: 1,
                device_id: device_id.to_string(),
                heartbeat_s,
                server_time: chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }))
            .await;
        // Spec 5.8.2: commit the listed accepted jobs the hub still gives this worker,
        // revoke the others; listed committed jobs that are still its own get nothing.
        let mut commit = Vec::new();
        let mut revoke = Vec::new();
        for job in hello.jobs.iter().flatten() {
            let held = ledger.jobs.get(&job.id).copied();
            match (job.phase, held) {
                (HeldPhase::Committed, Some(Held::Owned | Held::Done)) => {}
                (_, Some(Held::Owned)) => commit.push(job.id.clone()),
                _ => {
                    revoke.push(job.id.clone());
                    if held.is_some() {
                        ledger.jobs.insert(job.id.clone(), Held::Gone);
                    }
                }
            }
        }
        if !commit.is_empty() {
            session
                .send(&HubFrame::Commit(JobIds { ids: commit }))
                .await;
        }
        if !revoke.is_empty() {
            session
                .send(&HubFrame::Revoke(Revoke {
                    ids: revoke,
                    reason: Some("not_assigned".into()),
                }))
                .await;
        }
        // The first frame after welcome (spec 4.2: status).
        let deadline = Instant::now() + patience;
        loop {
            match read_text_until(&mut session.ws, deadline).await {
                Ok(text) => {
                    let parsed = DeviceFrame::parse(&text);
                    if matches!(parsed, Ok(DeviceFrame::Heartbeat(_))) {
                        session.heartbeats.push(Instant::now());
                        transcript.heartbeats += 1;
                        session.answer_heartbeat().await;
                        continue;
                    }
                    opening.after_welcome = Some(text.clone());
                    session.last_from_worker = Instant::now();
                    if let Some(got) = session.take(text, transcript).await {
                        session.pending.push(got);
                    }
                    break;
                }
                Err(closed) => {
                    opening.after_welcome = Some(closed.clone());
                    if closed.starts_with("closed") {
                        session.pending.push(Got::Closed(None));
                    }
                    break;
                }
            }
        }
        // Frames that came early are handled first, as if they came now.
        let mut early = Vec::new();
        for text in opening.before_welcome.clone() {
            if let Some(got) = session.take(text, transcript).await {
                early.push(got);
            }
        }
        early.append(&mut session.pending);
        session.pending = early;
        transcript.openings.push(opening);
        Ok(session)
    }

    /// Sends a hub frame; `false` if the socket is gone.
    pub async fn send(&mut self, frame: &HubFrame) -> bool {
        self.send_text(frame.to_json()).await
    }

    /// Sends any text frame (malformed ones too).
    pub async fn send_text(&mut self, text: String) -> bool {
        self.last_to_worker = Instant::now();
        self.ws.send(Message::text(text)).await.is_ok()
    }

    /// Sends a binary frame (which the protocol does not use).
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> bool {
        self.last_to_worker = Instant::now();
        self.ws.send(Message::Binary(bytes.into())).await.is_ok()
    }

    /// Closes the session with a close frame.
    pub async fn close(mut self, code: u16, reason: &str) {
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_string().into(),
            }))
            .await;
        // Read until the worker answers the close, briefly.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Drops the connection without a close frame, as a lost network would.
    pub fn drop_connection(self) {
        drop(self);
    }

    async fn answer_heartbeat(&mut self) {
        if self.answer_heartbeats {
            self.send_text(r#"{"type":"heartbeat"}"#.to_string()).await;
        }
    }

    /// Handles a text frame: heartbeats, `status` and `incoming` here; the rest for the rule.
    async fn take(&mut self, text: String, transcript: &mut Transcript) -> Option<Got> {
        let frame = match DeviceFrame::parse(&text) {
            Ok(it) => it,
            Err(_) => return Some(Got::Invalid(text)),
        };
        match &frame {
            DeviceFrame::Heartbeat(_) => {
                self.heartbeats.push(Instant::now());
                transcript.heartbeats += 1;
                self.answer_heartbeat().await;
                return None;
            }
            DeviceFrame::Status(_) => {
                transcript.statuses += 1;
                return None;
            }
            DeviceFrame::Incoming(incoming) => {
                // An SMS the phone really received: stored at once, as the hub would.
                let ack = HubFrame::Ack(Ack {
                    reports: vec![AckedReport {
                        id: incoming.id.clone(),
                        report: ReportKind::Incoming,
                    }],
                });
                self.send(&ack).await;
                return None;
            }
            DeviceFrame::Sent(_) | DeviceFrame::Failed(_) | DeviceFrame::Delivered(_) => {
                let id = report_id(&frame).unwrap_or_default().to_string();
                let kind = kind(&frame).unwrap_or(ReportKind::Unknown);
                self.reported.push((id.clone(), kind));
                transcript.reports.push((self.number, frame.clone()));
                if self.auto_ack {
                    self.ack(&id, kind).await;
                }
            }
            DeviceFrame::Rejected(_) => transcript.reports.push((self.number, frame.clone())),
            DeviceFrame::Hello(_) | DeviceFrame::Accepted(_) | DeviceFrame::UssdResult(_) => {}
        }
        Some(Got::Frame(frame))
    }

    /// Acknowledges one report.
    pub async fn ack(&mut self, id: &str, report: ReportKind) {
        let ack = HubFrame::Ack(Ack {
            reports: vec![AckedReport {
                id: id.to_string(),
                report,
            }],
        });
        self.send(&ack).await;
    }

    /// The next thing the worker did, within `wait`; `None` when it did nothing.
    pub async fn next(&mut self, wait: Duration, transcript: &mut Transcript) -> Option<Got> {
        if !self.pending.is_empty() {
            return Some(self.pending.remove(0));
        }
        let deadline = Instant::now() + wait;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Got::Closed(None)),
                Ok(Some(Err(err))) => {
                    return Some(Got::Closed(match err {
                        tokio_tungstenite::tungstenite::Error::Capacity(_) => Some(1009),
                        _ => None,
                    }));
                }
                Ok(Some(Ok(it))) => it,
            };
            match message {
                Message::Text(text) => {
                    self.last_from_worker = Instant::now();
                    if let Some(got) = self.take(text.to_string(), transcript).await {
                        return Some(got);
                    }
                }
                Message::Binary(_) => {
                    self.last_from_worker = Instant::now();
                    return Some(Got::Invalid("a binary frame".into()));
                }
                Message::Close(frame) => {
                    return Some(Got::Closed(frame.map(|it| u16::from(it.code))));
                }
                _ => {}
            }
        }
    }
}

/// Reads the next text frame within `wait`; `Err` says how the socket ended or timed out.
async fn read_text(ws: &mut Ws, wait: Duration) -> Result<String, String> {
    read_text_until(ws, Instant::now() + wait).await
}

async fn read_text_until(ws: &mut Ws, deadline: Instant) -> Result<String, String> {
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err("nothing in time".into()),
            Ok(None) | Ok(Some(Err(_))) => return Err("closed".into()),
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.to_string()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Err(format!(
                    "closed with {:?}",
                    frame.map(|it| u16::from(it.code))
                ));
            }
            Ok(Some(Ok(Message::Binary(_)))) => return Ok("<binary frame>".into()),
            Ok(Some(Ok(_))) => {}
        }
    }
}
