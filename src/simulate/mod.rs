//! Simulated phones: real device-protocol clients over real WebSockets, for the demo, the
//! tests and the benchmark.
//!
//! A simulated phone behaves as the spec asks of a real one: it journals every job it
//! accepts, sends only after `commit`, never sends the same id twice, re-reports outcomes
//! until acknowledged, and reconnects with backoff and jitter, listing its held jobs in
//! `hello`. Counters ([`SimStats`]) record what phones saw, so tests can prove nothing was
//! lost or sent twice. [`app`] simulates phones running capcom6's SMS Gateway app on its
//! own mobile API instead; they count into the same [`SimStats`].

pub mod app;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smshub_protocol::device::{
    Battery, Capabilities, Delivered, DeviceFrame, DeviceInfo, Failed, Heartbeat, HeldJob,
    HeldPhase, Hello, HubFrame, Incoming, JobIds, Rejected, ReportKind, Sent, SimInfo, SimStatus,
    Status,
};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How simulated phones behave.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Time from `commit` to `sent`, and from `sent` to `delivered`.
    pub latency: Duration,
    /// Share of jobs that fail (with a temporary error code).
    pub fail_rate: f64,
    /// Share of sent jobs with a delivery report requested that report `delivered`.
    pub delivery_rate: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            latency: Duration::from_millis(300),
            fail_rate: 0.0,
            delivery_rate: 1.0,
        }
    }
}

/// A phone's health, as it reports it in `status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub battery: u8,
    pub charging: bool,
    pub signal_dbm: i32,
    pub max_in_flight: u32,
}

impl Profile {
    /// A varied but healthy profile for the `n`-th phone of a fleet.
    pub fn varied(n: usize) -> Profile {
        const BATTERY: [u8; 7] = [96, 81, 64, 47, 88, 33, 72];
        const SIGNAL: [i32; 7] = [-63, -71, -79, -88, -67, -95, -75];
        Profile {
            battery: BATTERY[n % BATTERY.len()],
            charging: n.is_multiple_of(3),
            signal_dbm: SIGNAL[n % SIGNAL.len()],
            max_in_flight: 4,
        }
    }
}

/// Credentials of a registered device.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub id: String,
    pub name: String,
    pub token: String,
}

/// What every simulated phone saw, added up.
#[derive(Debug, Default)]
pub struct SimStats {
    /// `send` offers received.
    pub offers: AtomicU64,
    /// Jobs committed for the first time and sent.
    pub sends: AtomicU64,
    /// Commits repeated for an id this phone already finished (after a reconnect). The phone
    /// does not send again; this only shows how often the hub re-confirmed.
    pub duplicate_commits: AtomicU64,
    /// Ids sent by more than one phone (counted by the shared ledger).
    pub cross_device_duplicates: AtomicU64,
    pub reported_sent: AtomicU64,
    pub reported_delivered: AtomicU64,
    pub reported_failed: AtomicU64,
    pub acks: AtomicU64,
    pub connects: AtomicU64,
    pub errors: AtomicU64,
    /// Commits of one id received by a second phone: two phones asked to send one message.
    pub cross_device_commits: AtomicU64,
    /// Every id sent, by any phone, to detect an id sent by two phones.
    ledger: std::sync::Mutex<HashSet<String>>,
    /// Which phone each id was first committed to.
    committed_to: std::sync::Mutex<HashMap<String, String>>,
}

impl SimStats {
    fn record_send(&self, id: &str) {
        self.sends.fetch_add(1, Ordering::Relaxed);
        let fresh = self
            .ledger
            .lock()
            .map(|mut it| it.insert(id.to_string()))
            .unwrap_or(true);
        if !fresh {
            self.cross_device_duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record_commit(&self, id: &str, phone: &str) {
        let first = self
            .committed_to
            .lock()
            .map(|mut it| {
                it.entry(id.to_string())
                    .or_insert_with(|| phone.to_string())
                    .clone()
            })
            .unwrap_or_default();
        if first != phone {
            self.cross_device_commits.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Distinct message ids sent so far.
    pub fn distinct_sent(&self) -> usize {
        self.ledger.lock().map(|it| it.len()).unwrap_or(0)
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Something a test or the demo asks a phone to do.
#[derive(Debug)]
pub enum Control {
    /// Drop the connection abruptly; the phone reconnects after its backoff.
    Drop,
    /// Report a new health profile.
    Status(Profile),
    /// Report an incoming SMS.
    Receive { from: String, text: String },
    /// Disconnect and stop for good.
    Stop,
}

/// Handle to one running phone.
#[derive(Clone)]
pub struct Phone {
    pub credentials: Credentials,
    control: mpsc::Sender<Control>,
    /// Jobs this phone sent, in order.
    pub sent: Arc<Mutex<Vec<String>>>,
}

impl Phone {
    pub async fn control(&self, control: Control) {
        let _ = self.control.send(control).await;
    }
}

/// Registers `count` devices named `{prefix}-{n}` through the REST API.
pub async fn register_devices(
    hub: &str,
    api_key: &str,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<Credentials>> {
    let client = reqwest::Client::new();
    let mut out = Vec::with_capacity(count);
    for n in 1..=count {
        let name = format!("{prefix}-{n}");
        let response = client
            .post(format!("{hub}/api/devices"))
            .header("X-API-Key", api_key)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .context("registering a simulated device")?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .context("reading the device registration answer")?;
        if !status.is_success() {
            anyhow::bail!("registering {name}: {status} {body}");
        }
        let field = |key: &str| {
            body.get(key)
                .and_then(|it| it.as_str())
                .map(str::to_string)
                .unwrap_or_default()
        };
        out.push(Credentials {
            id: field("id"),
            name,
            token: field("token"),
        });
    }
    Ok(out)
}

/// Starts a phone for `credentials` against the hub at `hub` (`http://host:port`; or several
/// nodes of a cluster separated by commas, tried in turn, one per connection).
pub fn spawn_phone(
    hub: &str,
    credentials: Credentials,
    profile: Profile,
    behaviour: Behaviour,
    stats: Arc<SimStats>,
    seed: u64,
) -> Phone {
    let (control_tx, control_rx) = mpsc::channel(64);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let ws_urls = hub
        .split(',')
        .map(|hub| {
            format!(
                "{}/ws/device/{}",
                hub.trim().replacen("http", "ws", 1),
                credentials.id
            )
        })
        .collect();
    let phone = PhoneTask {
        ws_urls,
        connections: 0,
        credentials: credentials.clone(),
        profile,
        behaviour,
        stats,
        rng: StdRng::seed_from_u64(seed),
        journal: HashMap::new(),
        done: HashMap::new(),
        unacked: HashMap::new(),
        delivering: HashSet::new(),
        sent: sent.clone(),
    };
    tokio::spawn(phone.run(control_rx));
    Phone {
        credentials,
        control: control_tx,
        sent,
    }
}

/// Registers `count` phones with varied profiles and starts them.
pub async fn start_fleet(
    hub: &str,
    api_key: &str,
    prefix: &str,
    count: usize,
    behaviour: Behaviour,
    stats: Arc<SimStats>,
) -> anyhow::Result<Vec<Phone>> {
    let credentials = register_devices(hub, api_key, prefix, count).await?;
    Ok(start_phones(hub, credentials, behaviour, stats))
}

/// Starts phones with varied profiles for devices already registered.
pub fn start_phones(
    hub: &str,
    credentials: Vec<Credentials>,
    behaviour: Behaviour,
    stats: Arc<SimStats>,
) -> Vec<Phone> {
    credentials
        .into_iter()
        .enumerate()
        .map(|(n, it)| {
            spawn_phone(
                hub,
                it,
                Profile::varied(n),
                behaviour.clone(),
                stats.clone(),
                n as u64 + 1,
            )
        })
        .collect()
}

/// A journaled job.
#[derive(Debug, Clone)]
struct Job {
    phase: HeldPhase,
    delivery_report: bool,
    parts: u32,
}

struct PhoneTask {
    /// Where to connect: one hub, or the nodes of a cluster, one per connection in turn.
    ws_urls: Vec<String>,
    connections: usize,
    credentials: Credentials,
    profile: Profile,
    behaviour: Behaviour,
    stats: Arc<SimStats>,
    rng: StdRng,
    /// Jobs accepted or committed, not yet finished.
    journal: HashMap<String, Job>,
    /// Ids ever sent (or failed) by this phone, with the outcome reported: never sent again;
    /// a repeated commit gets the known outcome instead (spec 5.7).
    done: HashMap<String, DeviceFrame>,
    /// Reports sent and not yet acknowledged, re-sent after a reconnect.
    unacked: HashMap<(String, ReportKind), DeviceFrame>,
    /// Sent jobs whose delivery report is still to come; like a real phone's, it arrives
    /// whether or not the hub is connected, and is reported in the next session.
    delivering: HashSet<String>,
    sent: Arc<Mutex<Vec<String>>>,
}

/// A timer firing inside a session.
enum Timer {
    Finish(String),
    Deliver(String),
}

/// How a simulated device's session ended.
enum SessionEnd {
    Dropped,
    Stopped,
}

/// What a session that ended as `ended` does to the count of failures in a row, and the
/// wait before the next try: exponential backoff with full jitter, 0..min(5 s, 100 ms·2^n).
fn reconnect_wait(
    ended: &anyhow::Result<SessionEnd>,
    failures: &mut u32,
    rng: &mut StdRng,
) -> Duration {
    match ended {
        Ok(_) => *failures = 0,
        Err(_) => *failures = failures.saturating_add(1),
    }
    let cap_ms = (100u64 << (*failures).min(6)).min(5_000);
    Duration::from_millis(rng.random_range(0..=cap_ms))
}

impl PhoneTask {
    async fn run(mut self, mut control: mpsc::Receiver<Control>) {
        let mut failures: u32 = 0;
        loop {
            let ended = self.session(&mut control).await;
            match &ended {
                Ok(SessionEnd::Stopped) => return,
                Ok(SessionEnd::Dropped) => {}
                Err(err) => {
                    tracing::debug!(device = %self.credentials.name, error = %err, "simulated phone session ended");
                }
            }
            let wait = reconnect_wait(&ended, &mut failures, &mut self.rng);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                command = control.recv() => match command {
                    Some(Control::Stop) | None => return,
                    Some(Control::Status(profile)) => self.profile = profile,
                    Some(_) => {}
                },
            }
        }
    }

    fn hello(&self) -> DeviceFrame {
        let jobs = self
            .journal
            .iter()
            .map(|(id, job)| HeldJob {
                id: id.clone(),
                phase: job.phase,
            })
            .collect();
        DeviceFrame::Hello(Hello {
            protocol: vec![1],
            app_version: Some(format!("smshub-simulator/{}", env!("CARGO_PKG_VERSION"))),
            device: DeviceInfo {
                manufacturer: Some("smshub".into()),
                model: Some("Simulated phone".into()),
                os: Some("Android 14".into()),
            },
            sims: vec![SimInfo {
                slot: 0,
                operator: Some("Simulated Mobile".into()),
                mcc_mnc: Some("00101".into()),
                phone_number: None,
                iccid: None,
            }],
            capabilities: Capabilities {
                max_in_flight: self.profile.max_in_flight,
                ..Capabilities::default()
            },
            jobs: Some(jobs),
        })
    }

    fn status(&self) -> DeviceFrame {
        let level = match self.profile.signal_dbm {
            dbm if dbm >= -75 => 4,
            dbm if dbm >= -85 => 3,
            dbm if dbm >= -95 => 2,
            dbm if dbm >= -105 => 1,
            _ => 0,
        };
        DeviceFrame::Status(Status {
            battery: Some(Battery {
                level: self.profile.battery,
                charging: self.profile.charging,
            }),
            sims: vec![SimStatus {
                slot: 0,
                signal_dbm: Some(self.profile.signal_dbm),
                signal_level: Some(level),
                network: Some("lte".into()),
                registered: true,
                operator: Some("Simulated Mobile".into()),
            }],
            connection: Some("wifi".into()),
        })
    }

    async fn session(
        &mut self,
        control: &mut mpsc::Receiver<Control>,
    ) -> anyhow::Result<SessionEnd> {
        let url = &self.ws_urls[self.connections % self.ws_urls.len()];
        self.connections += 1;
        let mut request = url.as_str().into_client_request()?;
        request.headers_mut().insert(
            "Authorization",
            format!("Bearer {}", self.credentials.token).parse()?,
        );
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        let (mut sink, mut stream) = ws.split();
        // Spec 10.2: after hello nothing goes out before welcome; then status and the
        // reports the hub has not acknowledged yet (4.2, 5.6).
        sink.send(Message::text(self.hello().to_json())).await?;
        let mut welcomed = false;
        let mut heartbeat_s = 30u64;

        let (timer_tx, mut timers) = mpsc::unbounded_channel::<Timer>();
        // Committed jobs from an earlier session whose outcome is not yet decided finish now,
        // and delivery reports that came in meanwhile are reported.
        for (id, job) in &self.journal {
            if job.phase == HeldPhase::Committed && !self.done.contains_key(id) {
                let _ = timer_tx.send(Timer::Finish(id.clone()));
            }
        }
        for id in &self.delivering {
            let _ = timer_tx.send(Timer::Deliver(id.clone()));
        }
        let mut heartbeat = tokio::time::interval(Duration::from_secs(heartbeat_s));
        heartbeat.tick().await;
        // Spec 4.3: nothing from the hub for 2 × heartbeat_s means the link is dead.
        let mut last_heard = tokio::time::Instant::now();
        let mut watchdog = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                frame = stream.next() => {
                    let Some(frame) = frame else { return Ok(SessionEnd::Dropped) };
                    let frame = frame?;
                    last_heard = tokio::time::Instant::now();
                    if frame.is_close() {
                        return Ok(SessionEnd::Dropped);
                    }
                    let Ok(text) = frame.to_text() else { continue };
                    let frame = match HubFrame::parse(text) {
                        Ok(it) => it,
                        Err(_) => {
                            self.stats.errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    };
                    if let HubFrame::Welcome(welcome) = &frame {
                        heartbeat_s = u64::from(welcome.heartbeat_s.max(1));
                        heartbeat = tokio::time::interval(Duration::from_secs(heartbeat_s));
                        heartbeat.tick().await;
                        if !welcomed {
                            welcomed = true;
                            sink.send(Message::text(self.status().to_json())).await?;
                            for frame in self.unacked.values() {
                                sink.send(Message::text(frame.to_json())).await?;
                            }
                        }
                    }
                    for reply in self.on_frame(frame, &timer_tx) {
                        sink.send(Message::text(reply.to_json())).await?;
                    }
                }
                Some(timer) = timers.recv() => {
                    // Before welcome a report waits among the unacknowledged ones.
                    if let Some(report) = self.on_timer(timer, &timer_tx)
                        && welcomed
                    {
                        sink.send(Message::text(report.to_json())).await?;
                    }
                }
                command = control.recv() => match command {
                    Some(Control::Drop) => return Ok(SessionEnd::Dropped),
                    Some(Control::Stop) | None => {
                        let _ = sink.send(Message::Close(None)).await;
                        return Ok(SessionEnd::Stopped);
                    }
                    Some(Control::Status(profile)) => {
                        self.profile = profile;
                        if welcomed {
                            sink.send(Message::text(self.status().to_json())).await?;
                        }
                    }
                    Some(Control::Receive { from, text }) => {
                        let id = format!("{:032x}", self.rng.random::<u128>());
                        let frame = DeviceFrame::Incoming(Incoming { id: id.clone(), from, text, sim_slot: Some(0), received_at: None });
                        self.unacked.insert((id, ReportKind::Incoming), frame.clone());
                        if welcomed {
                            sink.send(Message::text(frame.to_json())).await?;
                        }
                    }
                },
                _ = heartbeat.tick(), if welcomed => {
                    sink.send(Message::text(DeviceFrame::Heartbeat(Heartbeat {}).to_json())).await?;
                }
                _ = watchdog.tick(), if welcomed => {
                    if last_heard.elapsed() >= Duration::from_secs(2 * heartbeat_s) {
                        let _ = sink.send(Message::Close(None)).await;
                        anyhow::bail!("nothing from the hub for 2 × heartbeat_s");
                    }
                }
            }
        }
    }

    fn on_frame(
        &mut self,
        frame: HubFrame,
        timers: &mpsc::UnboundedSender<Timer>,
    ) -> Vec<DeviceFrame> {
        match frame {
            HubFrame::Send(job) => {
                self.stats.offers.fetch_add(1, Ordering::Relaxed);
                if !self.journal.contains_key(&job.id) && !self.done.contains_key(&job.id) {
                    // A new offer: refused past valid_until (10.7) or beyond max_in_flight (6).
                    let expired = job
                        .valid_until
                        .as_deref()
                        .and_then(|it| chrono::DateTime::parse_from_rfc3339(it).ok())
                        .is_some_and(|it| it < chrono::Utc::now());
                    let outstanding = self
                        .journal
                        .keys()
                        .filter(|id| !self.done.contains_key(*id))
                        .count();
                    let refusal = if expired {
                        Some("expired")
                    } else if outstanding >= self.profile.max_in_flight as usize {
                        Some("busy")
                    } else {
                        None
                    };
                    if let Some(reason) = refusal {
                        return vec![DeviceFrame::Rejected(Rejected {
                            ids: vec![job.id],
                            reason: Some(reason.into()),
                        })];
                    }
                }
                self.journal.entry(job.id.clone()).or_insert(Job {
                    phase: HeldPhase::Accepted,
                    delivery_report: job.delivery_report,
                    parts: job.parts,
                });
                vec![DeviceFrame::Accepted(JobIds { ids: vec![job.id] })]
            }
            HubFrame::Commit(JobIds { ids }) => {
                let mut replies = Vec::new();
                let mut unknown = Vec::new();
                for id in ids {
                    if !self.journal.contains_key(&id) && !self.done.contains_key(&id) {
                        // Spec 5.4: it did not and will not send a job it does not hold.
                        unknown.push(id);
                        continue;
                    }
                    self.stats.record_commit(&id, &self.credentials.id);
                    if let Some(outcome) = self.done.get(&id) {
                        // Already sent: never again; report what happened instead.
                        self.stats.duplicate_commits.fetch_add(1, Ordering::Relaxed);
                        replies.push(outcome.clone());
                        continue;
                    }
                    if let Some(job) = self.journal.get_mut(&id)
                        && job.phase == HeldPhase::Accepted
                    {
                        job.phase = HeldPhase::Committed;
                        let timers = timers.clone();
                        let latency = self.jitter(self.behaviour.latency);
                        tokio::spawn(async move {
                            tokio::time::sleep(latency).await;
                            let _ = timers.send(Timer::Finish(id));
                        });
                    }
                }
                if !unknown.is_empty() {
                    replies.push(DeviceFrame::Rejected(Rejected {
                        ids: unknown,
                        reason: Some("unknown_job".into()),
                    }));
                }
                replies
            }
            HubFrame::Revoke(revoke) => {
                // Spec 5.4: dropped unsent, and confirmed.
                let mut dropped = Vec::new();
                for id in revoke.ids {
                    if self
                        .journal
                        .get(&id)
                        .is_some_and(|it| it.phase == HeldPhase::Accepted)
                    {
                        self.journal.remove(&id);
                        dropped.push(id);
                    }
                }
                if dropped.is_empty() {
                    return Vec::new();
                }
                vec![DeviceFrame::Rejected(Rejected {
                    ids: dropped,
                    reason: Some("revoked".into()),
                })]
            }
            HubFrame::Ack(ack) => {
                for report in ack.reports {
                    self.stats.acks.fetch_add(1, Ordering::Relaxed);
                    self.unacked.remove(&(report.id.clone(), report.report));
                    let finished = match report.report {
                        ReportKind::Failed | ReportKind::Delivered => true,
                        ReportKind::Sent => self
                            .journal
                            .get(&report.id)
                            .is_some_and(|it| !it.delivery_report),
                        ReportKind::Incoming | ReportKind::Unknown => false,
                    };
                    if finished {
                        self.journal.remove(&report.id);
                    }
                }
                Vec::new()
            }
            HubFrame::Error(_) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            }
            // Simulated phones announce no USSD, so the hub never asks.
            HubFrame::Welcome(_) | HubFrame::Heartbeat(_) | HubFrame::Ussd(_) => Vec::new(),
        }
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        timers: &mpsc::UnboundedSender<Timer>,
    ) -> Option<DeviceFrame> {
        match timer {
            Timer::Finish(id) => {
                let job = self.journal.get(&id)?.clone();
                if self.done.contains_key(&id) {
                    return None;
                }
                let report = if self
                    .rng
                    .random_bool(self.behaviour.fail_rate.clamp(0.0, 1.0))
                {
                    self.stats.reported_failed.fetch_add(1, Ordering::Relaxed);
                    self.journal.remove(&id);
                    DeviceFrame::Failed(Failed {
                        id: id.clone(),
                        code: "no_service".into(),
                        temporary: Some(true),
                        reason: Some("simulated: no service".into()),
                    })
                } else {
                    self.stats.record_send(&id);
                    if let Ok(mut sent) = self.sent.try_lock() {
                        sent.push(id.clone());
                    }
                    self.stats.reported_sent.fetch_add(1, Ordering::Relaxed);
                    let delivering = job.delivery_report
                        && self
                            .rng
                            .random_bool(self.behaviour.delivery_rate.clamp(0.0, 1.0));
                    if let Some(held) = self.journal.get_mut(&id) {
                        // No report will come: the job is finished once `sent` is acknowledged.
                        held.delivery_report = delivering;
                    }
                    if delivering {
                        self.delivering.insert(id.clone());
                        let timers = timers.clone();
                        let latency = self.jitter(self.behaviour.latency);
                        let id = id.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(latency).await;
                            let _ = timers.send(Timer::Deliver(id));
                        });
                    }
                    DeviceFrame::Sent(Sent {
                        id: id.clone(),
                        parts: job.parts.max(1),
                        at: None,
                    })
                };
                let kind = if matches!(report, DeviceFrame::Failed(_)) {
                    ReportKind::Failed
                } else {
                    ReportKind::Sent
                };
                self.done.insert(id.clone(), report.clone());
                self.unacked.insert((id, kind), report.clone());
                Some(report)
            }
            Timer::Deliver(id) => {
                if !self.delivering.remove(&id) {
                    return None;
                }
                self.stats
                    .reported_delivered
                    .fetch_add(1, Ordering::Relaxed);
                let report = DeviceFrame::Delivered(Delivered {
                    id: id.clone(),
                    at: None,
                });
                self.unacked
                    .insert((id, ReportKind::Delivered), report.clone());
                Some(report)
            }
        }
    }

    /// `base` ± 20 %, so phones do not move in lockstep.
    fn jitter(&mut self, base: Duration) -> Duration {
        if base.is_zero() {
            return base;
        }
        let factor = self.rng.random_range(0.8..1.2);
        base.mul_f64(factor)
    }
}
