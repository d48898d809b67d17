//! One session of device protocol v1 on an open socket (spec §4): `hello` with the held jobs,
//! `welcome`, the first `status`, the outbox, then frames both ways until the socket closes or
//! goes quiet; heartbeats when nothing was sent or received for `heartbeat_s`, the link judged
//! dead after `2 × heartbeat_s` without a frame from the hub (§4.3); `status` on change (at
//! most every 5 s) and every 60 s (§4.2). What each frame does is [`super::jobs`].
//!
//! Must never: send a frame before `welcome` other than `hello`, or swallow a journal write
//! error (the worker stops rather than speak about a job it could not record).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use smshub_protocol::device::{
    Capabilities, DeviceFrame, DeviceInfo, Heartbeat, Hello, HubFrame, SUPPORTED_VERSIONS,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::dial::Ws;
use super::jobs::Jobs;
use super::modem::ModemEvent;

/// How long the hub may take to answer `hello`.
const WELCOME_WAIT: Duration = Duration::from_secs(30);
/// The fewest seconds between two `status` frames.
const STATUS_MIN: Duration = Duration::from_secs(5);
/// The most seconds between two `status` frames.
const STATUS_MAX: Duration = Duration::from_secs(60);

/// How a session ended.
#[derive(Debug)]
pub struct Ended {
    /// The close code the hub sent, if any.
    pub code: Option<u16>,
    /// Why, for the log.
    pub reason: String,
    /// How long it was open (from `welcome`); `None` if it never opened.
    pub lasted: Option<Duration>,
}

impl Ended {
    /// Whether the worker must stop reconnecting (§2.5: 4001 removed, 4002 unsupported
    /// version, 4004 token rotated or revoked).
    pub fn is_final(&self) -> bool {
        matches!(self.code, Some(4001 | 4002 | 4004))
    }
}

fn ended(code: Option<u16>, reason: impl Into<String>, opened: Option<Instant>) -> Ended {
    Ended {
        code,
        reason: reason.into(),
        lasted: opened.map(|it| it.elapsed()),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn write(ws: &mut Ws, frame: &DeviceFrame) -> Result<(), String> {
    ws.send(Message::text(frame.to_json()))
        .await
        .map_err(|err| format!("write failed: {err}"))
}

async fn write_all(ws: &mut Ws, jobs: &mut Jobs) -> Result<bool, String> {
    let frames = jobs.take_out();
    let any = !frames.is_empty();
    for frame in frames {
        write(ws, &frame).await?;
    }
    Ok(any)
}

/// Runs one session; an `Err` only for a journal that cannot be written.
pub async fn run(
    mut ws: Ws,
    jobs: &mut Jobs,
    events: &mut mpsc::Receiver<ModemEvent>,
    app_version: &str,
) -> std::io::Result<Ended> {
    let result = serve(&mut ws, jobs, events, app_version).await;
    jobs.close();
    if let Ok(it) = &result
        && it.code.is_none()
    {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    result
}

async fn serve(
    ws: &mut Ws,
    jobs: &mut Jobs,
    events: &mut mpsc::Receiver<ModemEvent>,
    app_version: &str,
) -> std::io::Result<Ended> {
    let hello = DeviceFrame::Hello(Hello {
        protocol: SUPPORTED_VERSIONS.to_vec(),
        app_version: Some(app_version.to_string()),
        device: DeviceInfo {
            manufacturer: None,
            model: Some("smshub worker".into()),
            os: Some(std::env::consts::OS.to_string() + " " + std::env::consts::ARCH),
        },
        sims: jobs.sims(),
        capabilities: Capabilities {
            max_in_flight: jobs.max_in_flight(),
            multipart: true,
            delivery_reports: true,
            incoming: true,
            ussd: true,
        },
        jobs: Some(jobs.held()),
    });
    if let Err(reason) = write(ws, &hello).await {
        return Ok(ended(None, reason, None));
    }

    // Wait for `welcome`; the modems go on meanwhile.
    let deadline = Instant::now() + WELCOME_WAIT;
    let heartbeat = loop {
        tokio::select! {
            message = ws.next() => match read(message) {
                Read::Frame(HubFrame::Welcome(welcome)) => {
                    let server = chrono::DateTime::parse_from_rfc3339(&welcome.server_time)
                        .map(|it| it.timestamp_millis())
                        .unwrap_or_else(|_| now_ms());
                    jobs.open(server - now_ms());
                    tracing::info!(device = %welcome.device_id, protocol = welcome.protocol, heartbeat_s = welcome.heartbeat_s, "connected to the hub");
                    break Duration::from_secs(u64::from(welcome.heartbeat_s.max(1)));
                }
                Read::Frame(HubFrame::Error(error)) => {
                    tracing::warn!(code = %error.code, message = %error.message, "the hub refused hello");
                }
                Read::Frame(other) => tracing::debug!(?other, "frame before welcome ignored"),
                Read::Nothing => {}
                Read::Closed(code, reason) => return Ok(ended(code, reason, None)),
            },
            event = events.recv() => {
                if let Some(event) = event {
                    jobs.on_modem(event, now_ms())?;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Ok(ended(None, "no welcome in time", None));
            }
        }
    };
    let opened = Instant::now();

    // The first status, then the outbox (§4, §5.6).
    let status = DeviceFrame::Status(jobs.status());
    if let Err(reason) = write(ws, &status).await {
        return Ok(ended(None, reason, Some(opened)));
    }
    jobs.flush_outbox();
    if let Err(reason) = write_all(ws, jobs).await {
        return Ok(ended(None, reason, Some(opened)));
    }

    let mut last_sent = Instant::now();
    let mut last_received = Instant::now();
    let mut last_status = Instant::now();
    let mut tick = tokio::time::interval(
        (heartbeat / 3).clamp(Duration::from_secs(1), Duration::from_secs(10)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    loop {
        tokio::select! {
            message = ws.next() => {
                last_received = Instant::now();
                match read(message) {
                    Read::Frame(frame) => jobs.on_hub(frame, now_ms())?,
                    Read::Nothing => {}
                    Read::Closed(code, reason) => return Ok(ended(code, reason, Some(opened))),
                }
            }
            event = events.recv() => {
                if let Some(event) = event {
                    jobs.on_modem(event, now_ms())?;
                }
            }
            _ = tick.tick() => {
                if last_received.elapsed() >= heartbeat * 2 {
                    return Ok(ended(None, "nothing from the hub for 2 × heartbeat_s", Some(opened)));
                }
                let status_due = last_status.elapsed() >= STATUS_MAX
                    || (jobs.status_changed() && last_status.elapsed() >= STATUS_MIN);
                if status_due {
                    let status = DeviceFrame::Status(jobs.status());
                    if let Err(reason) = write(ws, &status).await {
                        return Ok(ended(None, reason, Some(opened)));
                    }
                    last_status = Instant::now();
                    last_sent = last_status;
                }
                if last_sent.elapsed() >= heartbeat || last_received.elapsed() >= heartbeat {
                    if let Err(reason) = write(ws, &DeviceFrame::Heartbeat(Heartbeat {})).await {
                        return Ok(ended(None, reason, Some(opened)));
                    }
                    last_sent = Instant::now();
                }
            }
        }
        match write_all(ws, jobs).await {
            Ok(true) => last_sent = Instant::now(),
            Ok(false) => {}
            Err(reason) => return Ok(ended(None, reason, Some(opened))),
        }
    }
}

enum Read {
    Frame(HubFrame),
    Nothing,
    Closed(Option<u16>, String),
}

/// One message from the socket: a frame, something to ignore, or the end.
fn read(message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> Read {
    match message {
        None => Read::Closed(None, "the socket closed".into()),
        Some(Err(err)) => Read::Closed(None, format!("read failed: {err}")),
        Some(Ok(Message::Text(text))) => match HubFrame::parse(&text) {
            Ok(frame) => Read::Frame(frame),
            Err(err) => {
                // Unknown frame types from the hub are ignored (§11).
                tracing::info!(error = %err, "hub frame not understood; ignored");
                Read::Nothing
            }
        },
        Some(Ok(Message::Close(frame))) => {
            let (code, reason) = match frame {
                Some(CloseFrame { code, reason }) => (Some(u16::from(code)), reason.to_string()),
                None => (None, String::new()),
            };
            Read::Closed(code, format!("the hub closed the session: {reason}"))
        }
        Some(Ok(_)) => Read::Nothing,
    }
}
