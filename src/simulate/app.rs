//! Simulated phones running capcom6's "SMS Gateway for Android" app in private-server mode
//! with the "SSE only" channel, on the app's mobile API exactly as the app calls it (read
//! from the app's source: `GatewayApi.kt` for the calls and their JSON, `GatewayService.kt`
//! for what a pull does with each message, `SSEManager.kt` and `SSEForegroundService.kt` for
//! the stream (a pull when it opens and on each `MessageEnqueued`), `SendStateWorker.kt` for
//! the state reports, `PayloadSingingPlugin.kt` for the signed webhooks).
//!
//! Like the app, a simulated one keeps every message it pulled in its own database, by id:
//! a message listed again is not sent again, its state is reported again instead. What it
//! sends goes on while its connection is down (the app's workers keep running) and is
//! reported once it can reach the hub. It pings its health as the `system:ping` webhook and
//! posts received SMS as `sms:received`, signed with the key its settings gave it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use super::{
    Behaviour, Control, Credentials, Phone, Profile, SessionEnd as End, SimStats, reconnect_wait,
};
use crate::domain::{format_millis, now_millis};

/// The app's user agent (its version is what smshub shows).
const USER_AGENT: &str = "me.capcom.smsgateway/1.66.0";

/// Registers a phone running the app, as the app does in private-server mode: the server's
/// private token (here an API key with `devices:write`) as `Authorization: Bearer`.
pub async fn register_app(
    hub: &str,
    private_token: &str,
    name: &str,
) -> anyhow::Result<Credentials> {
    let response = client()
        .post(format!("{hub}/mobile/v1/device"))
        .bearer_auth(private_token)
        .json(&json!({"name": name, "pushToken": null, "simCards": sim_cards()}))
        .send()
        .await
        .context("registering a simulated app")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the registration")?;
    if !status.is_success() {
        anyhow::bail!("registering {name}: {status} {body}");
    }
    let field = |key: &str| body[key].as_str().unwrap_or_default().to_string();
    Ok(Credentials {
        id: field("id"),
        name: name.to_string(),
        token: field("token"),
    })
}

/// Registers `count` apps named `{prefix}-{n}` and starts them.
pub async fn start_apps(
    hub: &str,
    private_token: &str,
    prefix: &str,
    count: usize,
    behaviour: Behaviour,
    stats: Arc<SimStats>,
) -> anyhow::Result<Vec<Phone>> {
    let mut apps = Vec::with_capacity(count);
    for n in 1..=count {
        let credentials = register_app(hub, private_token, &format!("{prefix}-{n}")).await?;
        apps.push(spawn_app(
            hub,
            credentials,
            Profile::varied(n),
            behaviour.clone(),
            stats.clone(),
            1000 + n as u64,
        ));
    }
    Ok(apps)
}

/// Starts an app for a registered device.
pub fn spawn_app(
    hub: &str,
    credentials: Credentials,
    profile: Profile,
    behaviour: Behaviour,
    stats: Arc<SimStats>,
    seed: u64,
) -> Phone {
    let (control_tx, control_rx) = mpsc::channel(64);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let app = AppTask {
        hub: hub.trim_end_matches('/').to_string(),
        client: client(),
        credentials: credentials.clone(),
        profile,
        behaviour,
        stats,
        rng: StdRng::seed_from_u64(seed),
        db: HashMap::new(),
        unreported: HashSet::new(),
        signing_key: None,
        hook_url: None,
        ping_every: Duration::from_secs(30),
        progress_tx,
        progress_rx,
        sent: sent.clone(),
    };
    tokio::spawn(app.run(control_rx));
    Phone {
        credentials,
        control: control_tx,
        sent,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

fn sim_cards() -> Value {
    json!([{"slotIndex": 0, "simNumber": 1, "phoneNumber": null,
            "carrierName": "Simulated Mobile", "iccid": null}])
}

/// A message in the app's database.
struct Local {
    state: &'static str,
    recipient: String,
    error: Option<String>,
}

/// A state a message reached on the phone.
struct Progress {
    id: String,
    state: &'static str,
    error: Option<String>,
}

struct AppTask {
    hub: String,
    client: reqwest::Client,
    credentials: Credentials,
    profile: Profile,
    behaviour: Behaviour,
    stats: Arc<SimStats>,
    rng: StdRng,
    /// The app's database: every message it pulled, by id.
    db: HashMap<String, Local>,
    /// Messages whose state the hub has not taken yet.
    unreported: HashSet<String>,
    signing_key: Option<String>,
    hook_url: Option<String>,
    ping_every: Duration,
    progress_tx: mpsc::UnboundedSender<Progress>,
    progress_rx: mpsc::UnboundedReceiver<Progress>,
    sent: Arc<Mutex<Vec<String>>>,
}

impl AppTask {
    async fn run(mut self, mut control: mpsc::Receiver<Control>) {
        let mut failures: u32 = 0;
        loop {
            let ended = self.session(&mut control).await;
            match &ended {
                Ok(End::Stopped) => return,
                Ok(End::Dropped) => {}
                Err(err) => {
                    tracing::debug!(device = %self.credentials.name, error = %err, "simulated app session ended");
                }
            }
            // The app waits 5 s, then 30 s, then a minute; shorter here, as the phones.
            let wait = reconnect_wait(&ended, &mut failures, &mut self.rng);
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    // Sending goes on while the connection is down.
                    Some(progress) = self.progress_rx.recv() => self.progress(progress),
                    command = control.recv() => match command {
                        Some(Control::Stop) | None => return,
                        Some(Control::Status(profile)) => self.profile = profile,
                        Some(_) => {}
                    },
                }
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/mobile/v1{path}", self.hub)
    }

    async fn session(&mut self, control: &mut mpsc::Receiver<Control>) -> anyhow::Result<End> {
        let token = self.credentials.token.clone();
        // What the app's workers fetch: its settings (the signing key, the ping interval)
        // and its webhooks; and its SIM cards, as on every start.
        let settings: Value = self
            .client
            .get(self.url("/settings"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        self.signing_key = settings["webhooks"]["signing_key"]
            .as_str()
            .map(str::to_string);
        if let Some(seconds) = settings["ping"]["interval_seconds"].as_u64() {
            self.ping_every = Duration::from_secs(seconds.max(1));
        }
        let hooks: Value = self
            .client
            .get(self.url("/webhooks"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        self.hook_url = hooks
            .as_array()
            .and_then(|it| it.iter().find(|hook| hook["event"] == "system:ping"))
            .and_then(|it| it["url"].as_str())
            .map(str::to_string);
        self.client
            .patch(self.url("/device"))
            .bearer_auth(&token)
            .json(&json!({"id": self.credentials.id, "pushToken": null, "simCards": sim_cards()}))
            .send()
            .await?
            .error_for_status()?;
        let mut stream = self
            .client
            .get(self.url("/events"))
            .bearer_auth(&token)
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await?
            .error_for_status()?;
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        // The app pulls as soon as the stream opens.
        self.pull().await?;
        self.ping().await;
        let mut buffer = String::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut ping = tokio::time::interval(self.ping_every);
        ping.tick().await;
        loop {
            tokio::select! {
                chunk = stream.chunk() => {
                    let Some(chunk) = chunk? else { return Ok(End::Dropped) };
                    buffer.push_str(&String::from_utf8_lossy(&chunk));
                    let mut enqueued = false;
                    while let Some(at) = buffer.find("\n\n") {
                        let block: String = buffer.drain(..at + 2).collect();
                        // `event:` and its value, a space after the colon or not (as the
                        // SSE format allows).
                        enqueued |= block.lines().any(|it| {
                            it.strip_prefix("event:").map(str::trim) == Some("MessageEnqueued")
                        });
                    }
                    if enqueued {
                        self.pull().await?;
                    }
                }
                Some(progress) = self.progress_rx.recv() => {
                    self.progress(progress);
                    self.report().await;
                }
                _ = tick.tick() => self.report().await,
                _ = ping.tick() => self.ping().await,
                command = control.recv() => match command {
                    Some(Control::Drop) => return Ok(End::Dropped),
                    Some(Control::Stop) | None => return Ok(End::Stopped),
                    Some(Control::Status(profile)) => {
                        self.profile = profile;
                        self.ping().await;
                    }
                    Some(Control::Receive { from, text }) => {
                        let payload = json!({
                            "messageId": format!("{:032x}", self.rng.random::<u128>()),
                            "message": text,
                            "phoneNumber": from,
                            "sender": from,
                            "simNumber": 1,
                            "receivedAt": format_millis(now_millis()),
                        });
                        self.hook("sms:received", payload).await;
                    }
                },
            }
        }
    }

    /// `GET /mobile/v1/message`, and what the app does with each message listed.
    async fn pull(&mut self) -> anyhow::Result<()> {
        let messages: Vec<Value> = self
            .client
            .get(self.url("/message?order=fifo"))
            .bearer_auth(&self.credentials.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for message in messages {
            let Some(id) = message["id"].as_str().map(str::to_string) else {
                continue;
            };
            if !matches!(message["state"].as_str(), None | Some("Pending")) {
                continue;
            }
            if self.db.contains_key(&id) {
                // Known already: never sent again, its state is reported again.
                self.stats.duplicate_commits.fetch_add(1, Ordering::Relaxed);
                self.unreported.insert(id);
                continue;
            }
            self.stats.offers.fetch_add(1, Ordering::Relaxed);
            self.stats.record_commit(&id, &self.credentials.id);
            let recipient = message["phoneNumbers"][0]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let delivery_report = message["withDeliveryReport"].as_bool().unwrap_or(true);
            self.db.insert(
                id.clone(),
                Local {
                    state: "Pending",
                    recipient,
                    error: None,
                },
            );
            self.start_sending(id, delivery_report);
        }
        Ok(())
    }

    /// The app's send: handed to the radio (`Processed`), then `Sent`, then `Delivered`.
    fn start_sending(&mut self, id: String, delivery_report: bool) {
        let latency = self.jitter(self.behaviour.latency);
        let fails = self
            .rng
            .random_bool(self.behaviour.fail_rate.clamp(0.0, 1.0));
        let delivers = delivery_report
            && self
                .rng
                .random_bool(self.behaviour.delivery_rate.clamp(0.0, 1.0));
        let progress = self.progress_tx.clone();
        tokio::spawn(async move {
            let step = |state, error: Option<&str>| Progress {
                id: id.clone(),
                state,
                error: error.map(str::to_string),
            };
            tokio::time::sleep(latency / 2).await;
            if fails {
                let _ = progress.send(step("Failed", Some("RESULT_ERROR_GENERIC_FAILURE")));
                return;
            }
            let _ = progress.send(step("Processed", None));
            tokio::time::sleep(latency / 2).await;
            let _ = progress.send(step("Sent", None));
            if delivers {
                tokio::time::sleep(latency).await;
                let _ = progress.send(step("Delivered", None));
            }
        });
    }

    fn progress(&mut self, progress: Progress) {
        let Some(local) = self.db.get_mut(&progress.id) else {
            return;
        };
        match progress.state {
            "Processed" => {
                self.stats.record_send(&progress.id);
                if let Ok(mut sent) = self.sent.try_lock() {
                    sent.push(progress.id.clone());
                }
            }
            "Sent" => {
                self.stats.reported_sent.fetch_add(1, Ordering::Relaxed);
            }
            "Delivered" => {
                self.stats
                    .reported_delivered
                    .fetch_add(1, Ordering::Relaxed);
            }
            "Failed" => {
                self.stats.reported_failed.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        local.state = progress.state;
        local.error = progress.error;
        self.unreported.insert(progress.id);
    }

    /// `PATCH /mobile/v1/message` with the current state of every message not yet reported.
    async fn report(&mut self) {
        if self.unreported.is_empty() {
            return;
        }
        let now = format_millis(now_millis());
        let ids: Vec<String> = self.unreported.iter().cloned().collect();
        let body: Vec<Value> = ids
            .iter()
            .filter_map(|id| {
                let local = self.db.get(id)?;
                Some(json!({
                    "id": id,
                    "state": local.state,
                    "recipients": [{"phoneNumber": local.recipient, "state": local.state, "error": local.error}],
                    "states": {local.state: now},
                }))
            })
            .collect();
        let done = self
            .client
            .patch(self.url("/message"))
            .bearer_auth(&self.credentials.token)
            .json(&body)
            .send()
            .await
            .is_ok_and(|it| it.status().is_success());
        if done {
            for id in ids {
                self.unreported.remove(&id);
                self.stats.acks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The `system:ping` webhook with the phone's health.
    async fn ping(&mut self) {
        let health = json!({"status": "pass", "checks": {
            "battery:level": {"status": "pass", "observedValue": self.profile.battery, "observedUnit": "percent", "description": "Battery level in percent"},
            "battery:charging": {"status": "pass", "observedValue": u8::from(self.profile.charging), "observedUnit": "flags", "description": "Is the phone charging?"},
            "connection:status": {"status": "pass", "observedValue": 1, "observedUnit": "boolean", "description": "Internet connection status"},
            "connection:transport": {"status": "pass", "observedValue": 4, "observedUnit": "flags", "description": "Network transport type"},
        }});
        self.hook("system:ping", json!({"health": health})).await;
    }

    /// Posts a webhook to smshub, signed as the app signs: hex HMAC-SHA256 of the body
    /// followed by the timestamp.
    async fn hook(&mut self, event: &str, payload: Value) {
        let (Some(url), Some(key)) = (self.hook_url.clone(), self.signing_key.clone()) else {
            return;
        };
        let body = json!({
            "id": format!("{:021x}", self.rng.random::<u128>()),
            "webhookId": format!("smshub-{}", event.replace(':', "-")),
            "event": event,
            "deviceId": self.credentials.id,
            "payload": payload,
        })
        .to_string();
        let timestamp = now_millis() / 1000;
        let signature = crate::webhooks::compat::signature(&key, body.as_bytes(), timestamp);
        let sent = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Timestamp", timestamp.to_string())
            .header("X-Signature", signature)
            .body(body)
            .send()
            .await;
        if !sent.is_ok_and(|it| it.status().is_success()) {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `base` ± 20 %.
    fn jitter(&mut self, base: Duration) -> Duration {
        if base.is_zero() {
            return base;
        }
        base.mul_f64(self.rng.random_range(0.8..1.2))
    }
}
