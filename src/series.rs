//! The hub's last day, minute by minute, in memory: messages that reached each state, how
//! long accepted messages took from submission to `sent`, how many waited in the queue and
//! how many devices were online. What the console draws as charts (`GET /api/series`);
//! `/metrics` is the place for long-term history (Prometheus keeps it).
//!
//! One ring of [`MINUTES`] minutes, process-wide like the metrics recorder, fed where the
//! facts are known: the writer's committed transitions (`telemetry::record_transition`),
//! the dispatcher's finished jobs (the submit-to-sent latency), and a sampler that reads the
//! queue depth and the devices online every few seconds. It starts empty at each start.
//! Latencies are counted in [`LATENCY_BOUNDS`] buckets, so percentiles are bucket bounds.
//!
//! Must never: grow with traffic (a fixed ring of fixed-size minutes), or block a writer
//! (one short mutex, never held across an `.await`).

use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Millis;

/// Minutes kept: a day.
pub const MINUTES: usize = 24 * 60;
/// Upper bounds (milliseconds) of the latency buckets; past the last, the last bucket.
pub const LATENCY_BOUNDS: [u64; 20] = [
    5, 10, 20, 50, 100, 200, 300, 500, 750, 1_000, 2_000, 3_000, 5_000, 10_000, 20_000, 30_000,
    60_000, 300_000, 900_000, 3_600_000,
];

/// The states a message may reach, in the order their counts are kept.
const STATES: [&str; 8] = [
    "queued",
    "accepted",
    "sent",
    "delivered",
    "failed",
    "expired",
    "cancelled",
    "retry",
];

#[derive(Clone, Copy)]
struct Minute {
    /// Minutes since the Unix epoch this slot holds; another minute's slot is stale.
    at: i64,
    states: [u64; STATES.len()],
    latency: [u32; LATENCY_BOUNDS.len()],
    queue_depth_max: u64,
    devices_online_max: u64,
    sampled: bool,
}

impl Minute {
    const EMPTY: Minute = Minute {
        at: i64::MIN,
        states: [0; STATES.len()],
        latency: [0; LATENCY_BOUNDS.len()],
        queue_depth_max: 0,
        devices_online_max: 0,
        sampled: false,
    };
}

struct Ring {
    minutes: Vec<Minute>,
}

impl Ring {
    /// The slot of `minute`, emptied first if it held an older one.
    fn slot(&mut self, minute: i64) -> &mut Minute {
        let index = usize::try_from(minute.rem_euclid(MINUTES as i64)).unwrap_or(0);
        let slot = &mut self.minutes[index];
        if slot.at != minute {
            *slot = Minute {
                at: minute,
                ..Minute::EMPTY
            };
        }
        slot
    }

    fn get(&self, minute: i64) -> Option<&Minute> {
        let index = usize::try_from(minute.rem_euclid(MINUTES as i64)).unwrap_or(0);
        self.minutes.get(index).filter(|it| it.at == minute)
    }
}

fn ring() -> &'static Mutex<Ring> {
    static RING: OnceLock<Mutex<Ring>> = OnceLock::new();
    RING.get_or_init(|| {
        Mutex::new(Ring {
            minutes: vec![Minute::EMPTY; MINUTES],
        })
    })
}

fn with<T>(f: impl FnOnce(&mut Ring) -> T) -> T {
    let mut ring = ring().lock().unwrap_or_else(|it| it.into_inner());
    f(&mut ring)
}

fn minute_of(at: Millis) -> i64 {
    at.div_euclid(60_000)
}

/// `n` messages reached state `to` at `at` (states not charted are ignored).
pub fn record_state(to: &str, n: u64, at: Millis) {
    let Some(index) = STATES.iter().position(|it| *it == to) else {
        return;
    };
    with(|ring| ring.slot(minute_of(at)).states[index] += n);
}

/// A message was sent `latency_ms` after it was submitted, at `at`.
pub fn record_sent_latency(latency_ms: u64, at: Millis) {
    let bucket = LATENCY_BOUNDS
        .iter()
        .position(|bound| latency_ms <= *bound)
        .unwrap_or(LATENCY_BOUNDS.len() - 1);
    with(|ring| {
        let slot = &mut ring.slot(minute_of(at)).latency[bucket];
        *slot = slot.saturating_add(1);
    });
}

/// The queue depth and the devices online at `at` (the minute keeps the highest).
pub fn sample(queue_depth: u64, devices_online: u64, at: Millis) {
    with(|ring| {
        let slot = ring.slot(minute_of(at));
        slot.queue_depth_max = slot.queue_depth_max.max(queue_depth);
        slot.devices_online_max = slot.devices_online_max.max(devices_online);
        slot.sampled = true;
    });
}

/// One point of a chart: `step_s` seconds from `t`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Point {
    /// Start of the step, RFC 3339.
    pub t: String,
    pub queued: u64,
    pub accepted: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub expired: u64,
    pub cancelled: u64,
    /// Temporary failures sent back to the queue.
    pub retried: u64,
    /// Submission to `sent`, in milliseconds (bucket bounds), of the messages sent in the
    /// step; `None` when none was.
    pub sent_p50_ms: Option<u64>,
    pub sent_p95_ms: Option<u64>,
    pub sent_p99_ms: Option<u64>,
    /// Most messages waiting for a device, and most devices online, seen in the step;
    /// `None` before the hub was sampling.
    pub queue_depth: Option<u64>,
    pub devices_online: Option<u64>,
}

/// The last `minutes` minutes up to `now`, `step` minutes per point, oldest first.
pub fn points(minutes: usize, step: usize, now: Millis) -> Vec<Point> {
    let minutes = minutes.clamp(1, MINUTES);
    let step = step.clamp(1, minutes);
    let last = minute_of(now);
    let first = last - minutes as i64 + 1;
    with(|ring| {
        let mut out = Vec::with_capacity(minutes / step + 1);
        let mut start = first;
        while start <= last {
            let end = (start + step as i64 - 1).min(last);
            let mut states = [0u64; STATES.len()];
            let mut latency = [0u64; LATENCY_BOUNDS.len()];
            let (mut depth, mut online): (Option<u64>, Option<u64>) = (None, None);
            for minute in start..=end {
                let Some(slot) = ring.get(minute) else {
                    continue;
                };
                for (sum, n) in states.iter_mut().zip(slot.states) {
                    *sum += n;
                }
                for (sum, n) in latency.iter_mut().zip(slot.latency) {
                    *sum += u64::from(n);
                }
                if slot.sampled {
                    depth = Some(depth.unwrap_or(0).max(slot.queue_depth_max));
                    online = Some(online.unwrap_or(0).max(slot.devices_online_max));
                }
            }
            out.push(Point {
                t: crate::domain::format_millis(start * 60_000),
                queued: states[0],
                accepted: states[1],
                sent: states[2],
                delivered: states[3],
                failed: states[4],
                expired: states[5],
                cancelled: states[6],
                retried: states[7],
                sent_p50_ms: percentile(&latency, 0.50),
                sent_p95_ms: percentile(&latency, 0.95),
                sent_p99_ms: percentile(&latency, 0.99),
                queue_depth: depth,
                devices_online: online,
            });
            start = end + 1;
        }
        out
    })
}

/// The bucket bound at quantile `q` of `counts`.
fn percentile(counts: &[u64], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (n, bound) in counts.iter().zip(LATENCY_BOUNDS) {
        seen += n;
        if seen >= rank {
            return Some(bound);
        }
    }
    LATENCY_BOUNDS.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_add_up_into_steps_and_latency_into_bucket_bounds() {
        // Far from now, so other tests' records (the ring is process-wide) do not mix in.
        let base: Millis = 1_000 * 60_000;
        record_state("sent", 3, base);
        record_state("sent", 2, base + 60_000);
        record_state("delivered", 4, base + 90_000);
        record_state("not-a-state", 9, base);
        for latency in [8, 9, 40, 400, 4_000] {
            record_sent_latency(latency, base + 60_000);
        }
        sample(7, 2, base);
        sample(3, 5, base + 30_000);
        let points = points(3, 2, base + 2 * 60_000);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].sent, 5);
        assert_eq!(points[0].delivered, 4);
        assert_eq!(points[0].queue_depth, Some(7));
        assert_eq!(points[0].devices_online, Some(5));
        assert_eq!(points[0].sent_p50_ms, Some(50));
        assert_eq!(points[0].sent_p99_ms, Some(5_000));
        assert_eq!(points[1].sent, 0);
        assert_eq!(points[1].sent_p50_ms, None);
        assert_eq!(points[1].queue_depth, None);
        // A day later the same slots hold new minutes: the old counts are gone.
        let later = base + (MINUTES as i64) * 60_000;
        record_state("sent", 1, later);
        assert_eq!(points_at(later)[0].sent, 1);
    }

    fn points_at(at: Millis) -> Vec<Point> {
        points(1, 1, at)
    }
}
