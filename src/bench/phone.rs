//! The benchmark's phones: lean device-protocol v1 clients over real WebSockets that
//! timestamp every job they are offered and every report the hub acknowledges.
//!
//! They follow the protocol as the spec asks (accept, send only after `commit`, report
//! `sent`, then `delivered` when asked, heartbeat at the hub's pace) but keep no journal and
//! never reconnect: a dropped connection is counted as an error, because a benchmark run must
//! not hide one. Ids already waiting in the socket are answered in one `accepted` frame, which
//! the spec allows ("MAY collect several ids ... SHOULD NOT delay an answer").
//!
//! Phones record `(message id, microseconds since the run's origin)` pairs in plain vectors,
//! joined with the submit times only after the run, so no shared map sits on the hot path.
//! They must never talk to anything but the hub under test.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use rand::Rng;
use smshub_protocol::device::{
    Battery, Capabilities, Delivered, DeviceFrame, DeviceInfo, Heartbeat, Hello, HubFrame, JobIds,
    ReportKind, Sent, SimInfo, SimStatus, Status,
};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

use super::http::HttpConn;

/// A registered device: its id and its one-time token.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: String,
    pub token: String,
}

/// How every phone of the fleet behaves.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// `ws://host:port`, without a path.
    pub ws_base: String,
    /// Jobs the phone says it can hold at once.
    pub max_in_flight: u32,
    /// Time from `commit` to `sent`, and from `sent` to `delivered`.
    pub latency: Duration,
    /// Report `delivered` after `sent` for jobs that ask for it.
    pub delivery_reports: bool,
    /// Send a `status` this often (`None`: only at connect).
    pub status_every: Option<Duration>,
    /// Origin of every timestamp.
    pub origin: Instant,
}

/// Counters shared by the whole fleet, read while the run goes on.
#[derive(Debug, Default)]
pub struct FleetCounters {
    /// Phones that got `welcome`.
    pub connected: AtomicU64,
    pub connect_failures: AtomicU64,
    /// Connections that ended before the phone was told to stop.
    pub dropped: AtomicU64,
    pub offers: AtomicU64,
    /// `sent` reports the hub acknowledged (stored).
    pub sent_acked: AtomicU64,
    /// `delivered` reports the hub acknowledged (stored).
    pub delivered_acked: AtomicU64,
    pub error_frames: AtomicU64,
    pub revokes: AtomicU64,
    /// Offers of an id the phone had already been offered.
    pub duplicate_offers: AtomicU64,
    /// `commit` of an id this phone was never offered, or frames it could not read.
    pub protocol_errors: AtomicU64,
    pub heartbeats_sent: AtomicU64,
    pub heartbeats_answered: AtomicU64,
    pub status_sent: AtomicU64,
}

impl FleetCounters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What one phone saw: `(message id, µs since origin)` for each event.
#[derive(Debug, Default)]
pub struct PhoneLog {
    /// `send` offers received.
    pub offers: Vec<(u128, u64)>,
    /// `ack` of `sent` received: the hub had committed `sent`.
    pub sent_acked: Vec<(u128, u64)>,
    /// `ack` of `delivered` received: the hub had committed `delivered`.
    pub delivered_acked: Vec<(u128, u64)>,
}

/// Registers `count` devices named `{prefix}-{n}` through `POST /api/devices`, with
/// `concurrency` requests at a time.
pub async fn register(
    addr: SocketAddr,
    host: &str,
    api_key: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Credentials>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.clamp(1, count.max(1)) {
        let next = next.clone();
        let (host, api_key, prefix) = (host.to_string(), api_key.to_string(), prefix.to_string());
        workers.push(tokio::spawn(async move {
            let mut conn = HttpConn::new(addr, &host);
            let mut out = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= count {
                    return Ok::<_, anyhow::Error>(out);
                }
                let body = format!("{{\"name\":\"{prefix}-{}\"}}", n + 1);
                let headers = [
                    ("X-API-Key", api_key.as_str()),
                    ("Content-Type", "application/json"),
                ];
                let response = conn
                    .request("POST", "/api/devices", &headers, body.as_bytes())
                    .await?;
                if response.status != 201 {
                    anyhow::bail!(
                        "registering a device: HTTP {} {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    );
                }
                let value: serde_json::Value = serde_json::from_slice(&response.body)?;
                let field = |key: &str| {
                    value
                        .get(key)
                        .and_then(|it| it.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                out.push((
                    n,
                    Credentials {
                        id: field("id"),
                        token: field("token"),
                    },
                ));
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for worker in workers {
        all.extend(worker.await??);
    }
    all.sort_by_key(|(n, _)| *n);
    Ok(all.into_iter().map(|(_, it)| it).collect())
}

/// Deletes devices (used after a run against a hub the harness did not start).
pub async fn unregister(
    addr: SocketAddr,
    host: &str,
    api_key: &str,
    devices: &[Credentials],
) -> usize {
    let mut conn = HttpConn::new(addr, host);
    let mut failed = 0;
    for device in devices {
        let path = format!("/api/devices/{}", device.id);
        match conn
            .request("DELETE", &path, &[("X-API-Key", api_key)], b"")
            .await
        {
            Ok(it) if it.status == 204 => {}
            _ => failed += 1,
        }
    }
    failed
}

/// Starts one phone. It connects (holding a permit of `connecting` until `welcome`, so a
/// large fleet does not overrun the hub's accept queue), then runs until `stop` turns true.
pub fn spawn(
    config: Arc<PhoneConfig>,
    credentials: Credentials,
    counters: Arc<FleetCounters>,
    connecting: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<PhoneLog> {
    tokio::spawn(async move {
        let mut log = PhoneLog::default();
        if let Err(err) = run(
            &config,
            &credentials,
            &counters,
            &connecting,
            stop,
            &mut log,
        )
        .await
        {
            tracing::debug!(device = %credentials.id, error = %err, "bench phone ended");
        }
        log
    })
}

/// A report due at `due` (µs since origin).
struct Due {
    due: u64,
    id: u128,
    kind: ReportKind,
    parts: u32,
}

async fn run(
    config: &PhoneConfig,
    credentials: &Credentials,
    counters: &FleetCounters,
    connecting: &Semaphore,
    mut stop: watch::Receiver<bool>,
    log: &mut PhoneLog,
) -> anyhow::Result<()> {
    let permit = connecting.acquire().await?;
    let url = format!("{}/ws/device/{}", config.ws_base, credentials.id);
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", credentials.token).parse()?,
    );
    // A small read buffer: thousands of idle phones must not cost the machine much memory.
    // Frames are buffered until `flush`, so one burst of answers is one socket write (the
    // write buffer starts empty and grows only when used).
    let ws_config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (ws, _) =
        match tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true).await {
            Ok(it) => it,
            Err(err) => {
                counters.connect_failures.fetch_add(1, Ordering::Relaxed);
                return Err(err.into());
            }
        };
    let (mut sink, mut stream) = ws.split();
    sink.feed(Message::text(hello(config.max_in_flight).to_json()))
        .await?;
    sink.feed(Message::text(status().to_json())).await?;
    sink.flush().await?;
    let heartbeat_s = loop {
        let Some(message) = stream.next().await else {
            counters.connect_failures.fetch_add(1, Ordering::Relaxed);
            anyhow::bail!("closed before welcome");
        };
        if let Message::Text(text) = message?
            && let Ok(HubFrame::Welcome(welcome)) = serde_json::from_str::<HubFrame>(text.as_str())
        {
            break u64::from(welcome.heartbeat_s.max(1));
        }
    };
    drop(permit);
    counters.connected.fetch_add(1, Ordering::Relaxed);

    // Random phases, so a fleet does not heartbeat in lockstep.
    let (first_beat, first_status) = {
        let mut rng = rand::rng();
        (
            rng.random_range(0..heartbeat_s * 1000),
            rng.random_range(0..=60_000u64),
        )
    };
    let period = Duration::from_secs(heartbeat_s);
    let mut heartbeat =
        tokio::time::interval_at(Instant::now() + Duration::from_millis(first_beat), period);
    let status_every = config.status_every.unwrap_or(Duration::from_secs(3600));
    let status_phase = Duration::from_millis(first_status % status_every.as_millis().max(1) as u64);
    let mut status_tick = tokio::time::interval_at(Instant::now() + status_phase, status_every);

    let mut offered: HashSet<u128> = HashSet::new();
    let mut waiting_commit: HashMap<u128, u32> = HashMap::new();
    let mut due: VecDeque<Due> = VecDeque::new();
    let latency_us = config.latency.as_micros() as u64;
    let mut out: Vec<String> = Vec::new();
    let mut accepted: Vec<String> = Vec::new();

    loop {
        let next_due = due
            .front()
            .map(|it| config.origin + Duration::from_micros(it.due));
        tokio::select! {
            biased;
            _ = stop.changed() => {
                let _ = sink.send(Message::Close(None)).await;
                return Ok(());
            }
            message = stream.next() => {
                let mut message = message;
                loop {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            if !*stop.borrow() {
                                counters.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            return Ok(());
                        }
                        Some(Ok(_)) => {
                            message = match stream.next().now_or_never() { Some(it) => it, None => break };
                            continue;
                        }
                    };
                    let now = now_us(config);
                    match serde_json::from_str::<HubFrame>(text.as_str()) {
                        Ok(HubFrame::Send(job)) => {
                            counters.offers.fetch_add(1, Ordering::Relaxed);
                            match Uuid::parse_str(&job.id) {
                                Ok(id) => {
                                    let id = id.as_u128();
                                    if !offered.insert(id) {
                                        counters.duplicate_offers.fetch_add(1, Ordering::Relaxed);
                                    }
                                    log.offers.push((id, now));
                                    waiting_commit.insert(id, job.parts.max(1));
                                }
                                Err(_) => { counters.protocol_errors.fetch_add(1, Ordering::Relaxed); }
                            }
                            accepted.push(job.id);
                        }
                        Ok(HubFrame::Commit(JobIds { ids })) => {
                            for id in ids {
                                let parsed = Uuid::parse_str(&id).map(|it| it.as_u128());
                                match parsed.ok().and_then(|it| waiting_commit.remove(&it).map(|parts| (it, parts))) {
                                    Some((id, parts)) => {
                                        due.push_back(Due { due: now + latency_us, id, kind: ReportKind::Sent, parts });
                                    }
                                    None => { counters.protocol_errors.fetch_add(1, Ordering::Relaxed); }
                                }
                            }
                        }
                        Ok(HubFrame::Ack(ack)) => {
                            for report in ack.reports {
                                let Ok(id) = Uuid::parse_str(&report.id) else { continue };
                                match report.report {
                                    ReportKind::Sent => {
                                        log.sent_acked.push((id.as_u128(), now));
                                        counters.sent_acked.fetch_add(1, Ordering::Relaxed);
                                    }
                                    ReportKind::Delivered => {
                                        log.delivered_acked.push((id.as_u128(), now));
                                        counters.delivered_acked.fetch_add(1, Ordering::Relaxed);
                                    }
                                    _ => {}
                                }
                            }
                        }
                        Ok(HubFrame::Heartbeat(_)) => { counters.heartbeats_answered.fetch_add(1, Ordering::Relaxed); }
                        Ok(HubFrame::Revoke(_)) => { counters.revokes.fetch_add(1, Ordering::Relaxed); }
                        Ok(HubFrame::Error(error)) => {
                            tracing::warn!(code = %error.code, message = %error.message, "the hub sent an error frame");
                            counters.error_frames.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(HubFrame::Welcome(_) | HubFrame::Ussd(_)) => {}
                        Err(_) => { counters.protocol_errors.fetch_add(1, Ordering::Relaxed); }
                    }
                    // Frames already received are handled before answering, so one
                    // `accepted` names every job of a burst.
                    message = match stream.next().now_or_never() { Some(it) => it, None => break };
                }
                if !accepted.is_empty() {
                    out.push(DeviceFrame::Accepted(JobIds { ids: std::mem::take(&mut accepted) }).to_json());
                }
                emit_due(config, &mut due, &mut out, now_us(config));
                flush(&mut sink, &mut out).await?;
            }
            _ = sleep_until_opt(next_due) => {
                emit_due(config, &mut due, &mut out, now_us(config));
                flush(&mut sink, &mut out).await?;
            }
            _ = heartbeat.tick() => {
                counters.heartbeats_sent.fetch_add(1, Ordering::Relaxed);
                sink.send(Message::text(DeviceFrame::Heartbeat(Heartbeat {}).to_json())).await?;
            }
            _ = status_tick.tick(), if config.status_every.is_some() => {
                counters.status_sent.fetch_add(1, Ordering::Relaxed);
                sink.send(Message::text(status().to_json())).await?;
            }
        }
    }
}

/// Turns the reports that are due into frames; a `sent` that asked for a delivery report
/// schedules its `delivered`.
fn emit_due(config: &PhoneConfig, due: &mut VecDeque<Due>, out: &mut Vec<String>, now: u64) {
    let latency_us = config.latency.as_micros() as u64;
    while due.front().is_some_and(|it| it.due <= now) {
        let Some(item) = due.pop_front() else { break };
        let id = Uuid::from_u128(item.id).to_string();
        match item.kind {
            ReportKind::Sent => {
                out.push(
                    DeviceFrame::Sent(Sent {
                        id,
                        parts: item.parts,
                        at: None,
                    })
                    .to_json(),
                );
                if config.delivery_reports {
                    let next = Due {
                        due: now + latency_us,
                        id: item.id,
                        kind: ReportKind::Delivered,
                        parts: item.parts,
                    };
                    if latency_us == 0 {
                        // Due at once: keep it next, ahead of anything queued later.
                        due.push_front(next);
                    } else {
                        due.push_back(next);
                    }
                }
            }
            _ => out.push(DeviceFrame::Delivered(Delivered { id, at: None }).to_json()),
        }
    }
}

async fn flush<S>(sink: &mut S, out: &mut Vec<String>) -> anyhow::Result<()>
where
    S: SinkExt<Message> + Unpin,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    if out.is_empty() {
        return Ok(());
    }
    for frame in out.drain(..) {
        sink.feed(Message::text(frame)).await?;
    }
    sink.flush().await?;
    Ok(())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn now_us(config: &PhoneConfig) -> u64 {
    config.origin.elapsed().as_micros() as u64
}

fn hello(max_in_flight: u32) -> DeviceFrame {
    DeviceFrame::Hello(Hello {
        protocol: vec![1],
        app_version: Some(format!("smshub-bench/{}", env!("CARGO_PKG_VERSION"))),
        device: DeviceInfo {
            manufacturer: Some("smshub".into()),
            model: Some("Bench phone".into()),
            os: Some("Android 14".into()),
        },
        sims: vec![SimInfo {
            slot: 0,
            operator: Some("Bench Mobile".into()),
            mcc_mnc: Some("00101".into()),
            phone_number: None,
            iccid: None,
        }],
        capabilities: Capabilities {
            max_in_flight,
            ..Capabilities::default()
        },
        // This phone keeps no journal across connections: it never reconnects.
        jobs: Some(Vec::new()),
    })
}

fn status() -> DeviceFrame {
    DeviceFrame::Status(Status {
        battery: Some(Battery {
            level: 90,
            charging: true,
        }),
        sims: vec![SimStatus {
            slot: 0,
            signal_dbm: Some(-65),
            signal_level: Some(4),
            network: Some("lte".into()),
            registered: true,
            operator: Some("Bench Mobile".into()),
        }],
        connection: Some("wifi".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(latency_ms: u64, delivery_reports: bool) -> PhoneConfig {
        PhoneConfig {
            ws_base: String::new(),
            max_in_flight: 4,
            latency: Duration::from_millis(latency_ms),
            delivery_reports,
            status_every: None,
            origin: Instant::now(),
        }
    }

    fn kinds(out: &[String]) -> Vec<String> {
        out.iter()
            .map(|it| match DeviceFrame::parse(it) {
                Ok(DeviceFrame::Sent(_)) => "sent".to_string(),
                Ok(DeviceFrame::Delivered(_)) => "delivered".to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn due_reports_go_out_in_order_and_delivered_follows_sent() {
        let cases: &[(u64, bool, u64, &[&str], usize)] = &[
            // latency, delivery reports, now (µs), frames out, reports still due
            (0, false, 0, &["sent", "sent"], 0),
            (0, true, 0, &["sent", "delivered", "sent", "delivered"], 0),
            (10, true, 10_000, &["sent", "sent"], 2),
            (10, true, 5_000, &[], 2),
        ];
        for (latency, reports, now, expected, left) in cases {
            let config = config(*latency, *reports);
            let mut due: VecDeque<Due> = (1..=2)
                .map(|id| Due {
                    due: latency * 1000,
                    id,
                    kind: ReportKind::Sent,
                    parts: 1,
                })
                .collect();
            let mut out = Vec::new();
            emit_due(&config, &mut due, &mut out, *now);
            assert_eq!(
                kinds(&out),
                *expected,
                "latency {latency} reports {reports} now {now}"
            );
            assert_eq!(due.len(), *left);
        }
    }
}
