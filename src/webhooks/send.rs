//! The sender: finds due deliveries of enabled webhooks, sends each as one signed POST, and
//! commits what became of it: `delivered` on a 2xx; otherwise a next attempt after a backoff
//! with jitter, or `failed` once the retry window is over. A `410` disables the endpoint, and
//! so does failing for `--webhook-disable-after`; the writer then records a
//! `webhook.disabled` event.
//!
//! Order per message: of one endpoint's pending deliveries of one message, only the oldest
//! is sent; the next waits until it is acknowledged or given up. A delivery stays pending
//! while in flight, so a hub killed mid-request sends it again after its restart, with the
//! same `webhook-id`.
//!
//! Sleeps until the earliest due attempt, a wake-up (new deliveries, a retry, an attempt
//! done); never polls.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use uuid::Uuid;

use super::{Webhooks, sign, target};
use crate::domain::{Millis, now_millis};
use crate::store::{
    Attempt, Change, DeliveryRecord, Store, StoreError, WebhookChange, WebhookRecord,
    delivery_status as status,
};
use crate::telemetry::record_webhook;

/// Pending deliveries looked at per endpoint and round (oldest first).
const LOOK_AHEAD: u64 = 512;
/// Requests in flight per endpoint.
const PER_ENDPOINT: usize = 16;
/// The most of a response body read (the rest is not waited for).
const BODY_CAP: usize = 64 * 1024;
/// The longest sleep without a wake-up (a safety net, not the way work is found).
const IDLE: Millis = 60_000;

pub(super) struct Sender {
    store: Store,
    config: Arc<super::WebhookConfig>,
    policy: target::Policy,
    client: reqwest::Client,
    wake: Arc<Notify>,
    /// Deliveries being sent, and those whose attempt was recorded during this round.
    in_flight: Arc<Mutex<InFlight>>,
}

/// What the sender holds between its rounds.
#[derive(Default)]
struct InFlight {
    /// Deliveries being sent, and their endpoint.
    sending: HashMap<Uuid, Uuid>,
    /// Deliveries whose attempt was committed since this round began reading: the round's
    /// rows may show them still pending, and must not send them again.
    settled: HashSet<Uuid>,
}

impl Sender {
    pub(super) fn new(store: Store, hooks: &Webhooks) -> Result<Arc<Sender>, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(hooks.config.timeout)
            .connect_timeout(hooks.config.timeout)
            .no_proxy()
            .dns_resolver(target::Guard::shared(hooks.policy))
            .user_agent(concat!("smshub-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(Sender {
            store,
            config: hooks.config.clone(),
            policy: hooks.policy,
            client,
            wake: hooks.sender.clone(),
            in_flight: Arc::default(),
        }))
    }

    pub(super) async fn run(self: Arc<Sender>) {
        loop {
            let next = match self.round().await {
                Ok(next) => next,
                Err(err) => {
                    tracing::warn!(error = %err, "webhook sender cannot read its deliveries");
                    Some(now_millis() + 1000)
                }
            };
            let wait = next.map_or(IDLE, |at| (at - now_millis()).clamp(0, IDLE));
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())) => {}
            }
        }
    }

    /// Starts every due delivery that may go now; when the next one not yet due is.
    async fn round(self: &Arc<Sender>) -> Result<Option<Millis>, StoreError> {
        let mut next: Option<Millis> = None;
        // Attempts committed before this point show in the rows read below.
        self.in_flight
            .lock()
            .unwrap_or_else(|it| it.into_inner())
            .settled
            .clear();
        for hook in self.store.enabled_webhooks().await? {
            let pending = self.store.pending_deliveries(hook.id, LOOK_AHEAD).await?;
            let now = now_millis();
            let hook = Arc::new(hook);
            let mut messages = HashSet::new();
            for delivery in pending {
                // An earlier delivery of this message is pending: it goes first.
                if let Some(message) = delivery.message_id
                    && !messages.insert(message)
                {
                    continue;
                }
                let due = delivery.next_attempt_at.unwrap_or(now);
                if due > now {
                    next = Some(next.map_or(due, |it| it.min(due)));
                    continue;
                }
                {
                    let mut in_flight = self.in_flight.lock().unwrap_or_else(|it| it.into_inner());
                    if in_flight.sending.contains_key(&delivery.id)
                        || in_flight.settled.contains(&delivery.id)
                    {
                        continue;
                    }
                    let busy = in_flight.sending.values().filter(|it| **it == hook.id);
                    if busy.count() >= PER_ENDPOINT {
                        break;
                    }
                    in_flight.sending.insert(delivery.id, hook.id);
                }
                let sender = self.clone();
                let hook = hook.clone();
                tokio::spawn(async move {
                    let id = delivery.id;
                    let attempt = sender.attempt(&hook, &delivery).await;
                    let change = Change::Webhook(WebhookChange::Attempted(attempt));
                    if let Err(err) = sender.store.apply(change).await {
                        tracing::warn!(error = %err, "cannot record a webhook attempt");
                    }
                    {
                        let mut in_flight =
                            sender.in_flight.lock().unwrap_or_else(|it| it.into_inner());
                        in_flight.sending.remove(&id);
                        in_flight.settled.insert(id);
                    }
                    sender.wake.notify_one();
                });
            }
        }
        Ok(next)
    }

    /// Sends one delivery; what became of it.
    async fn attempt(&self, hook: &WebhookRecord, delivery: &DeliveryRecord) -> Attempt {
        let now = now_millis();
        let started = Instant::now();
        let result = self.post(hook, delivery, now).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (code, error) = match result {
            Ok(code) => (Some(code), None),
            Err(error) => (None, Some(error)),
        };
        let mut attempt = Attempt {
            delivery: delivery.id,
            webhook: hook.id,
            status: status::DELIVERED,
            next_attempt_at: None,
            response_code: code,
            latency_ms,
            error,
            disable: None,
        };
        if code.is_some_and(|it| (200..300).contains(&it)) {
            record_webhook("delivered");
            return attempt;
        }
        if let Some(code) = code {
            attempt.error = Some(match code {
                300..=399 => format!("HTTP {code}: redirects are not followed"),
                _ => format!("HTTP {code}"),
            });
        }
        let delay = self
            .config
            .delay(delivery.attempts + 1, rand::random::<f64>());
        let next = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        let window = i64::try_from(self.config.retry_for.as_millis()).unwrap_or(i64::MAX / 2);
        if next - delivery.created_at > window {
            attempt.status = status::FAILED;
            record_webhook("failed");
        } else {
            attempt.status = status::PENDING;
            attempt.next_attempt_at = Some(next);
            record_webhook("retrying");
        }
        let disable_after =
            i64::try_from(self.config.disable_after.as_millis()).unwrap_or(i64::MAX / 2);
        let reason = if code == Some(410) {
            Some("the endpoint answered 410 Gone".to_string())
        } else if hook
            .failing_since
            .is_some_and(|since| now - since >= disable_after)
        {
            Some(format!(
                "every attempt failed for {}s",
                self.config.disable_after.as_secs()
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            tracing::warn!(webhook = %hook.id, url = %hook.url, %reason, "webhook disabled");
            record_webhook("disabled");
            attempt.disable = Some((reason, hook.owner, hook.url.clone()));
        }
        attempt
    }

    /// One signed POST; the response's status, or why there was none.
    async fn post(
        &self,
        hook: &WebhookRecord,
        delivery: &DeliveryRecord,
        now: Millis,
    ) -> Result<u16, String> {
        let url = self.policy.parse(&hook.url).map_err(|it| it.to_string())?;
        // Addresses written in the URL skip the resolver: check them here.
        if url.host_str().is_some_and(|it| {
            it.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok()
        }) {
            self.policy.check(&url).await.map_err(|it| it.to_string())?;
        }
        let timestamp = now / 1000;
        if hook.compat_id.is_some() {
            return self.post_compat(hook, delivery, url, timestamp).await;
        }
        let id = sign::message_id(hook.id, delivery.event_id);
        let mut secrets = vec![hook.secret.as_str()];
        if let (Some(old), Some(until)) = (&hook.old_secret, hook.old_secret_until)
            && until > now
        {
            secrets.push(old);
        }
        let signature = sign::header(&secrets, &id, timestamp, delivery.body.as_bytes());
        let mut response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(describe)?;
        Ok(answered(&mut response).await)
    }

    /// One POST of a webhook of capcom6's API, signed as that app signs
    /// (`X-Signature`, `X-Timestamp`: [`super::compat`]).
    async fn post_compat(
        &self,
        hook: &WebhookRecord,
        delivery: &DeliveryRecord,
        url: reqwest::Url,
        timestamp: i64,
    ) -> Result<u16, String> {
        let signature = super::compat::signature(&hook.secret, delivery.body.as_bytes(), timestamp);
        let mut response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("x-signature", signature)
            .header("x-timestamp", timestamp.to_string())
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(describe)?;
        Ok(answered(&mut response).await)
    }
}

/// The response's status, after reading a little of its body so the connection can be
/// reused (never all of a flood).
async fn answered(response: &mut reqwest::Response) -> u16 {
    let code = response.status().as_u16();
    let mut read = 0;
    while read < BODY_CAP {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    code
}

/// An error with its causes (reqwest's own text is often only "error sending request").
fn describe(err: reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_string()
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
