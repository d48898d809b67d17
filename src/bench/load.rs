//! The submitting side of the benchmark: `C` keep-alive HTTP connections posting
//! `POST /api/send-sms`, closed loop (each connection sends its next request when the last
//! answered) or open loop (`--rate`: request `i` is due at `i / rate` seconds, and its
//! latency counts from that instant, so a slow hub cannot hide queueing behind the load
//! generator's back).
//!
//! Each worker keeps its own histogram and list of `(message id, submit start)` pairs; they
//! are merged after the run. It must never retry a request: a retried submit could store a
//! message twice and would hide an error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;
use uuid::Uuid;

use super::http::HttpConn;

/// What to submit and how.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The hub's addresses (`addr`, `Host`): connection k uses the k-th, in turn.
    pub endpoints: Vec<(SocketAddr, String)>,
    pub api_key: String,
    /// Messages to submit.
    pub messages: usize,
    /// Recipients per request (`phone_numbers` when more than one).
    pub batch: usize,
    pub concurrency: usize,
    /// Requests per second offered (open loop); `None` for closed loop.
    pub rate: Option<f64>,
    pub delivery_report: bool,
    pub text: String,
    /// Number of the first recipient, so successive phases use distinct numbers.
    pub first_recipient: usize,
    /// Origin of every timestamp.
    pub origin: Instant,
    /// Give up after this instant.
    pub deadline: Instant,
}

impl LoadPlan {
    pub fn requests(&self) -> usize {
        self.messages.div_ceil(self.batch.max(1))
    }
}

/// Live counters, for the progress bar.
#[derive(Debug, Default)]
pub struct LoadCounters {
    /// Messages the hub answered 2xx for.
    pub accepted: AtomicU64,
    pub failed_requests: AtomicU64,
}

/// What the submitting side measured.
#[derive(Debug)]
pub struct LoadOutcome {
    /// Request latency, start to full response, in µs.
    pub submit_us: Histogram<u64>,
    /// `(message id, µs since origin when its request started)`.
    pub starts: Vec<(u128, u64)>,
    pub requests_ok: u64,
    pub messages_accepted: u64,
    /// Requests that failed: HTTP status (0 for a transport error or a bad body) → count.
    pub failures: BTreeMap<u16, u64>,
    /// First request start and last response end, µs since origin.
    pub first_start_us: u64,
    pub last_end_us: u64,
    pub timed_out: bool,
}

/// A histogram of µs from 1 µs to one hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // These bounds are valid (1 ≤ low, high ≥ 2·low, 3 significant digits), so this cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// E.164 number of the `n`-th recipient: French mobile numbers, all valid and distinct for
/// the first ten million. Scattered, as real recipients are (successive numbers would make
/// every index on the recipient an append).
pub fn recipient(n: usize) -> String {
    // 7_919_993 is coprime to 10^7, so this is a bijection on 0..10^7.
    format!("+3361{:07}", (n % 10_000_000) * 7_919_993 % 10_000_000)
}

#[derive(serde::Deserialize)]
struct Accepted {
    #[serde(default)]
    messages: Vec<AcceptedMessage>,
}

#[derive(serde::Deserialize)]
struct AcceptedMessage {
    id: String,
}

/// Runs the plan to the end (or the deadline) and returns what was measured.
pub async fn run(plan: LoadPlan, counters: Arc<LoadCounters>) -> LoadOutcome {
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicU64::new(0));
    let load_start = Instant::now();
    let workers: Vec<_> = (0..plan.concurrency.clamp(1, plan.requests().max(1)))
        .map(|k| {
            tokio::spawn(worker(
                k,
                plan.clone(),
                next.clone(),
                counters.clone(),
                load_start,
            ))
        })
        .collect();
    let mut total = LoadOutcome {
        submit_us: histogram(),
        starts: Vec::with_capacity(plan.messages),
        requests_ok: 0,
        messages_accepted: 0,
        failures: BTreeMap::new(),
        first_start_us: u64::MAX,
        last_end_us: 0,
        timed_out: false,
    };
    for worker in workers {
        let Ok(part) = worker.await else {
            *total.failures.entry(0).or_default() += 1;
            continue;
        };
        let _ = total.submit_us.add(&part.submit_us);
        total.starts.extend(part.starts);
        total.requests_ok += part.requests_ok;
        total.messages_accepted += part.messages_accepted;
        for (status, n) in part.failures {
            *total.failures.entry(status).or_default() += n;
        }
        total.first_start_us = total.first_start_us.min(part.first_start_us);
        total.last_end_us = total.last_end_us.max(part.last_end_us);
        total.timed_out |= part.timed_out;
    }
    if total.first_start_us == u64::MAX {
        total.first_start_us = 0;
    }
    total
}

async fn worker(
    k: usize,
    plan: Arc<LoadPlan>,
    next: Arc<AtomicU64>,
    counters: Arc<LoadCounters>,
    load_start: Instant,
) -> LoadOutcome {
    let mut out = LoadOutcome {
        submit_us: histogram(),
        starts: Vec::new(),
        requests_ok: 0,
        messages_accepted: 0,
        failures: BTreeMap::new(),
        first_start_us: u64::MAX,
        last_end_us: 0,
        timed_out: false,
    };
    let (addr, host) = &plan.endpoints[k % plan.endpoints.len().max(1)];
    let mut conn = HttpConn::new(*addr, host);
    let text = serde_json::to_string(&plan.text).unwrap_or_else(|_| "\"bench\"".into());
    let headers = [
        ("X-API-Key", plan.api_key.as_str()),
        ("Content-Type", "application/json"),
    ];
    let batch = plan.batch.max(1);
    let requests = plan.requests();
    let mut body = String::with_capacity(64 + batch * 16);
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed) as usize;
        if n >= requests {
            break;
        }
        let first = n * batch;
        let count = batch.min(plan.messages - first);
        body.clear();
        if batch == 1 {
            body.push_str("{\"phone_number\":\"");
            body.push_str(&recipient(plan.first_recipient + first));
            body.push('"');
        } else {
            body.push_str("{\"phone_numbers\":[");
            for k in 0..count {
                if k > 0 {
                    body.push(',');
                }
                body.push('"');
                body.push_str(&recipient(plan.first_recipient + first + k));
                body.push('"');
            }
            body.push(']');
        }
        body.push_str(",\"message\":");
        body.push_str(&text);
        body.push_str(if plan.delivery_report {
            ",\"delivery_report\":true}"
        } else {
            "}"
        });

        let start = match plan.rate {
            Some(rate) => {
                let due = load_start + Duration::from_secs_f64(n as f64 / rate.max(0.001));
                tokio::time::sleep_until(due).await;
                due
            }
            None => Instant::now(),
        };
        if start >= plan.deadline {
            out.timed_out = true;
            break;
        }
        let start_us = since(plan.origin, start);
        let result = tokio::time::timeout_at(
            plan.deadline,
            conn.request("POST", "/api/send-sms", &headers, body.as_bytes()),
        )
        .await;
        let end_us = since(plan.origin, Instant::now());
        out.first_start_us = out.first_start_us.min(start_us);
        out.last_end_us = out.last_end_us.max(end_us);
        let response = match result {
            Err(_) => {
                out.timed_out = true;
                *out.failures.entry(0).or_default() += 1;
                counters.failed_requests.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "a submit failed");
                *out.failures.entry(0).or_default() += 1;
                counters.failed_requests.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Ok(Ok(it)) => it,
        };
        if !(200..300).contains(&response.status) {
            tracing::warn!(status = response.status, body = %String::from_utf8_lossy(&response.body), "a submit was refused");
            *out.failures.entry(response.status).or_default() += 1;
            counters.failed_requests.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        out.submit_us
            .saturating_record(end_us.saturating_sub(start_us).max(1));
        let ids = serde_json::from_slice::<Accepted>(&response.body)
            .map(|it| it.messages)
            .unwrap_or_default();
        if ids.len() != count {
            *out.failures.entry(0).or_default() += 1;
            counters.failed_requests.fetch_add(1, Ordering::Relaxed);
        }
        out.requests_ok += 1;
        for message in ids {
            if let Ok(id) = Uuid::parse_str(&message.id) {
                out.starts.push((id.as_u128(), start_us));
                out.messages_accepted += 1;
            }
        }
        counters.accepted.fetch_add(count as u64, Ordering::Relaxed);
    }
    out
}

fn since(origin: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(origin).as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_valid_distinct_e164_numbers() {
        assert_eq!(recipient(0), "+33610000000");
        assert_eq!(recipient(1), "+33617919993");
        // Ten million distinct numbers, then the sequence repeats.
        assert_eq!(recipient(10_000_001), recipient(1));
        let numbers: Vec<String> = (0..100_000).map(recipient).collect();
        let distinct: std::collections::HashSet<&String> = numbers.iter().collect();
        assert_eq!(distinct.len(), numbers.len());
        for number in numbers.iter().step_by(997) {
            let parsed = crate::domain::PhoneNumber::parse(number, None);
            assert!(parsed.is_ok(), "{number}: {parsed:?}");
        }
        // Successive messages go to numbers far apart, as real traffic does.
        assert_ne!(&recipient(2)[..8], &recipient(1)[..8]);
    }
}
