//! Per-SIM sending limits (carriers block SIMs that send too fast) and the usage windows that
//! enforce them. Pure: time comes in as a parameter.

use std::collections::VecDeque;

use super::FastMap as HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Millis;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

/// Sending limits of one SIM. `None` means unlimited. Counted in SMS parts, over rolling
/// windows; distinct recipients over a rolling day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"min_interval_ms": 2000, "jitter_ms": 500, "per_hour": 60, "per_day": 500}))]
pub struct Limits {
    /// Minimum time between two sends of the SIM, in milliseconds.
    #[serde(default)]
    pub min_interval_ms: u64,
    /// A random extra wait of up to this many milliseconds after each send.
    #[serde(default)]
    pub jitter_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
    /// Most distinct recipients per rolling day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_per_day: Option<u32>,
}

impl Limits {
    /// Whether no limit is set at all.
    pub fn is_unlimited(&self) -> bool {
        *self == Limits::default()
    }
}

/// A rolling window of (time, parts, message) entries with a running sum.
#[derive(Debug, Default)]
struct Window {
    entries: VecDeque<(Millis, u32, Uuid)>,
    sum: u64,
}

impl Window {
    fn evict(&mut self, now: Millis, span: Millis) {
        while let Some(&(at, parts, _)) = self.entries.front() {
            if at > now - span {
                break;
            }
            self.sum -= u64::from(parts);
            self.entries.pop_front();
        }
    }

    fn push(&mut self, at: Millis, parts: u32, id: Uuid) {
        self.entries.push_back((at, parts, id));
        self.sum += u64::from(parts);
    }

    fn remove(&mut self, id: Uuid) {
        if let Some(pos) = self.entries.iter().position(|it| it.2 == id)
            && let Some((_, parts, _)) = self.entries.remove(pos)
        {
            self.sum -= u64::from(parts);
        }
    }

    fn fits(&self, cap: Option<u32>, parts: u32) -> bool {
        match cap {
            None => true,
            // A message larger than the whole cap may go when the window is empty.
            Some(cap) => self.sum + u64::from(parts) <= u64::from(cap) || self.sum == 0,
        }
    }
}

/// What one SIM has sent recently.
#[derive(Debug, Default)]
pub struct SimUsage {
    minute: Window,
    hour: Window,
    day: Window,
    recipients: HashMap<String, Millis>,
    /// Size of `recipients` after its last sweep: it is swept again when it has doubled.
    recipients_swept: usize,
    /// No send before this instant (pacing).
    pub next_at: Millis,
}

/// How much of its quota a SIM has used at one instant: parts sent in the rolling minute,
/// hour and day, and distinct recipients in the rolling day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Used {
    pub minute: u64,
    pub hour: u64,
    pub day: u64,
    pub recipients_day: u64,
}

/// Why a SIM cannot take a message now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    Pacing { until: Millis },
    Cap { window: &'static str, cap: u32 },
    Recipients { cap: u32 },
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::Pacing { until } => {
                write!(f, "pacing until {}", crate::domain::format_millis(*until))
            }
            Blocked::Cap { window, cap } => write!(f, "at its cap of {cap} parts per {window}"),
            Blocked::Recipients { cap } => {
                write!(f, "at its cap of {cap} distinct recipients per day")
            }
        }
    }
}

impl SimUsage {
    fn evict(&mut self, now: Millis) {
        self.minute.evict(now, MINUTE);
        self.hour.evict(now, HOUR);
        self.day.evict(now, DAY);
        if self.recipients.len() > 64.max(2 * self.recipients_swept) {
            self.recipients.retain(|_, at| *at > now - DAY);
            self.recipients_swept = self.recipients.len();
        }
    }

    /// What it has used of its windows at `now` (offers count from the moment they are made,
    /// and leave again when they are refunded).
    pub fn used(&mut self, now: Millis) -> Used {
        self.evict(now);
        Used {
            minute: self.minute.sum,
            hour: self.hour.sum,
            day: self.day.sum,
            recipients_day: self
                .recipients
                .values()
                .filter(|at| **at > now - DAY)
                .count() as u64,
        }
    }

    /// Whether this SIM may send `parts` parts to `recipient` now under `limits`.
    pub fn check(
        &mut self,
        limits: &Limits,
        now: Millis,
        parts: u32,
        recipient: &str,
    ) -> Result<(), Blocked> {
        if limits.is_unlimited() {
            return Ok(());
        }
        self.evict(now);
        if now < self.next_at {
            return Err(Blocked::Pacing {
                until: self.next_at,
            });
        }
        for (window, cap, name) in [
            (&self.minute, limits.per_minute, "minute"),
            (&self.hour, limits.per_hour, "hour"),
            (&self.day, limits.per_day, "day"),
        ] {
            if !window.fits(cap, parts) {
                return Err(Blocked::Cap {
                    window: name,
                    cap: cap.unwrap_or(0),
                });
            }
        }
        if let Some(cap) = limits.recipients_per_day {
            let known = self
                .recipients
                .get(recipient)
                .is_some_and(|at| *at > now - DAY);
            let distinct = self
                .recipients
                .values()
                .filter(|at| **at > now - DAY)
                .count();
            if !known && distinct >= cap as usize {
                return Err(Blocked::Recipients { cap });
            }
        }
        Ok(())
    }

    /// Records a send; `extra_wait` is the random part of the pacing interval.
    pub fn record(
        &mut self,
        limits: &Limits,
        now: Millis,
        parts: u32,
        recipient: &str,
        id: Uuid,
        extra_wait: u64,
    ) {
        // Evicted here too, not only in `check` (skipped for an unlimited SIM), so what a
        // SIM remembers stays bounded by one day of sends whatever its limits.
        self.evict(now);
        self.minute.push(now, parts, id);
        self.hour.push(now, parts, id);
        self.day.push(now, parts, id);
        self.recipients.insert(recipient.to_string(), now);
        let wait = limits.min_interval_ms.saturating_add(extra_wait);
        self.next_at = now.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX));
    }

    /// Takes back a send that never happened (the offer was lost).
    pub fn refund(&mut self, id: Uuid) {
        self.minute.remove(id);
        self.hour.remove(id);
        self.day.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_parts_over_rolling_windows() {
        let limits = Limits {
            per_minute: Some(3),
            per_day: Some(5),
            ..Limits::default()
        };
        let mut usage = SimUsage::default();
        let t0 = 1_000_000;
        assert!(usage.check(&limits, t0, 2, "a").is_ok());
        usage.record(&limits, t0, 2, "a", Uuid::new_v4(), 0);
        assert_eq!(
            usage.check(&limits, t0, 2, "a"),
            Err(Blocked::Cap {
                window: "minute",
                cap: 3
            })
        );
        assert!(usage.check(&limits, t0, 1, "a").is_ok());
        // A minute later the minute window is free again, the day window is not.
        usage.record(&limits, t0 + 1, 1, "a", Uuid::new_v4(), 0);
        assert!(usage.check(&limits, t0 + MINUTE + 2, 2, "a").is_ok());
        usage.record(&limits, t0 + MINUTE + 2, 2, "a", Uuid::new_v4(), 0);
        assert_eq!(
            usage.check(&limits, t0 + 2 * MINUTE, 1, "a"),
            Err(Blocked::Cap {
                window: "day",
                cap: 5
            })
        );
        assert!(usage.check(&limits, t0 + DAY + MINUTE + 3, 1, "a").is_ok());
    }

    #[test]
    fn pacing_and_distinct_recipients() {
        let limits = Limits {
            min_interval_ms: 1000,
            jitter_ms: 500,
            recipients_per_day: Some(2),
            ..Limits::default()
        };
        let mut usage = SimUsage::default();
        usage.record(&limits, 0, 1, "a", Uuid::new_v4(), 200);
        assert_eq!(
            usage.check(&limits, 1199, 1, "b"),
            Err(Blocked::Pacing { until: 1200 })
        );
        assert!(usage.check(&limits, 1200, 1, "b").is_ok());
        usage.record(&limits, 1200, 1, "b", Uuid::new_v4(), 0);
        assert_eq!(
            usage.check(&limits, 5000, 1, "c"),
            Err(Blocked::Recipients { cap: 2 })
        );
        assert!(
            usage.check(&limits, 5000, 1, "a").is_ok(),
            "a known recipient is not a new one"
        );
    }

    #[test]
    fn an_unlimited_sim_remembers_one_day_at_most() {
        let limits = Limits::default();
        let mut usage = SimUsage::default();
        for n in 0..1000 {
            usage.record(
                &limits,
                n * HOUR / 10,
                1,
                &format!("+3361{n:07}"),
                Uuid::new_v4(),
                0,
            );
        }
        // One send every 6 minutes: a day holds 240 of them.
        assert_eq!(usage.day.entries.len(), 240);
        assert_eq!(usage.minute.entries.len(), 1);
        assert!(
            usage.recipients.len() <= 2 * 240 + 1,
            "{}",
            usage.recipients.len()
        );
        // Limits set later still see the day's sends.
        let capped = Limits {
            per_day: Some(240),
            ..Limits::default()
        };
        assert!(
            usage
                .check(&capped, 999 * HOUR / 10 + 1, 1, "+33610000000")
                .is_err()
        );
    }

    #[test]
    fn used_counts_what_the_windows_hold_now() {
        let limits = Limits::default();
        let mut usage = SimUsage::default();
        usage.record(&limits, 0, 2, "a", Uuid::new_v4(), 0);
        usage.record(&limits, 30 * MINUTE, 1, "b", Uuid::new_v4(), 0);
        usage.record(&limits, 30 * MINUTE + 1, 1, "a", Uuid::new_v4(), 0);
        let used = |usage: &mut SimUsage, now| {
            let it = usage.used(now);
            (it.minute, it.hour, it.day, it.recipients_day)
        };
        assert_eq!(used(&mut usage, 30 * MINUTE + 2), (2, 4, 4, 2));
        assert_eq!(used(&mut usage, HOUR + 1), (0, 2, 4, 2));
        assert_eq!(used(&mut usage, DAY + 1), (0, 0, 2, 2));
        assert_eq!(used(&mut usage, DAY + 31 * MINUTE), (0, 0, 0, 0));
    }

    #[test]
    fn refunds_free_the_window() {
        let limits = Limits {
            per_minute: Some(1),
            ..Limits::default()
        };
        let mut usage = SimUsage::default();
        let id = Uuid::new_v4();
        usage.record(&limits, 10, 1, "a", id, 0);
        assert!(usage.check(&limits, 20, 1, "a").is_err());
        usage.refund(id);
        assert!(usage.check(&limits, 20, 1, "a").is_ok());
    }
}
