//! Rate limits per principal: requests per minute, messages per minute, hour and day.
//!
//! Counted in memory, in this process, with `governor`'s keyed limiters (GCRA: a limit of N
//! per minute lets N through at once, then one every minute/N). One keyed limiter per
//! (window, limit) pair, keyed by the principal's tenant, so a key with its own limits gets
//! its own buckets while keys on the defaults share one limiter. A limit of 0 is no limit, and
//! costs nothing per request. Several hub processes each count on their own (see README).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// A keyed limiter that says how much is left after each check.
type Keyed =
    RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock, StateInformationMiddleware>;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Limits of one principal; 0 is no limit. Overrides are `Option`s over the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_day: Option<u32>,
}

impl KeyLimits {
    pub fn is_empty(&self) -> bool {
        *self == KeyLimits::default()
    }

    /// The stored form (JSON), `None` when nothing is overridden.
    pub fn to_stored(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    /// Read back from the stored form; a row that does not parse overrides nothing.
    pub fn from_stored(text: Option<&str>) -> KeyLimits {
        text.and_then(|it| serde_json::from_str(it).ok())
            .unwrap_or_default()
    }

    /// Each limit of `self`, else of `defaults`.
    fn over(&self, defaults: &KeyLimits) -> KeyLimits {
        KeyLimits {
            requests_per_minute: self.requests_per_minute.or(defaults.requests_per_minute),
            messages_per_minute: self.messages_per_minute.or(defaults.messages_per_minute),
            messages_per_hour: self.messages_per_hour.or(defaults.messages_per_hour),
            messages_per_day: self.messages_per_day.or(defaults.messages_per_day),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Window {
    RequestsMinute,
    MessagesMinute,
    MessagesHour,
    MessagesDay,
}

impl Window {
    fn period(self) -> Duration {
        match self {
            Window::RequestsMinute | Window::MessagesMinute => Duration::from_secs(60),
            Window::MessagesHour => Duration::from_secs(3600),
            Window::MessagesDay => Duration::from_secs(86_400),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Window::RequestsMinute => "requests per minute",
            Window::MessagesMinute => "messages per minute",
            Window::MessagesHour => "messages per hour",
            Window::MessagesDay => "messages per day",
        }
    }
}

/// The state of a principal's request limit after a request: what `X-RateLimit-*` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the full limit is available again.
    pub reset_s: u64,
}

/// A refusal: which limit, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub what: &'static str,
    pub limit: u32,
    pub retry_after_s: u64,
}

/// Every principal's buckets.
pub struct RateLimits {
    defaults: KeyLimits,
    limiters: DashMap<(Window, NonZeroU32), Arc<Keyed>>,
    clock: DefaultClock,
}

impl RateLimits {
    /// `defaults`: the hub's limits (`Some(0)` or `None`: no limit).
    pub fn new(defaults: KeyLimits) -> RateLimits {
        RateLimits {
            defaults,
            limiters: DashMap::new(),
            clock: DefaultClock::default(),
        }
    }

    fn limiter(&self, window: Window, limit: NonZeroU32) -> Arc<Keyed> {
        if let Some(it) = self.limiters.get(&(window, limit)) {
            return it.clone();
        }
        self.limiters
            .entry((window, limit))
            .or_insert_with(|| {
                let every = window.period() / limit.get();
                let quota = Quota::with_period(every.max(Duration::from_nanos(1)))
                    .unwrap_or_else(|| Quota::per_second(limit))
                    .allow_burst(limit);
                Arc::new(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
            })
            .clone()
    }

    /// Counts one request of `owner` (with its own `limits` over the defaults). `Ok(None)`
    /// when no request limit applies.
    pub fn request(
        &self,
        owner: Uuid,
        limits: &KeyLimits,
    ) -> Result<Option<RateState>, (Limited, RateState)> {
        let limit = limits
            .requests_per_minute
            .or(self.defaults.requests_per_minute);
        let Some(limit) = limit.and_then(NonZeroU32::new) else {
            return Ok(None);
        };
        let window = Window::RequestsMinute;
        let per = window.period().as_secs_f64() / f64::from(limit.get());
        match self.limiter(window, limit).check_key(&owner) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset_s = (f64::from(limit.get() - remaining.min(limit.get())) * per).ceil();
                Ok(Some(RateState {
                    limit: limit.get(),
                    remaining,
                    reset_s: reset_s as u64,
                }))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry_after_s = wait.as_secs_f64().ceil().max(1.0) as u64;
                let state = RateState {
                    limit: limit.get(),
                    remaining: 0,
                    reset_s: (f64::from(limit.get()) * per).ceil() as u64,
                };
                Err((
                    Limited {
                        what: window.name(),
                        limit: limit.get(),
                        retry_after_s,
                    },
                    state,
                ))
            }
        }
    }

    /// Counts `count` messages of `owner` in each message window; the first window that
    /// cannot take them refuses (the windows checked before it keep the count).
    pub fn messages(&self, owner: Uuid, limits: &KeyLimits, count: u32) -> Result<(), Limited> {
        let limits = limits.over(&self.defaults);
        let Some(count) = NonZeroU32::new(count) else {
            return Ok(());
        };
        for (window, limit) in [
            (Window::MessagesDay, limits.messages_per_day),
            (Window::MessagesHour, limits.messages_per_hour),
            (Window::MessagesMinute, limits.messages_per_minute),
        ] {
            let Some(limit) = limit.and_then(NonZeroU32::new) else {
                continue;
            };
            let refused = |retry_after_s| Limited {
                what: window.name(),
                limit: limit.get(),
                retry_after_s,
            };
            match self.limiter(window, limit).check_key_n(&owner, count) {
                Ok(Ok(_)) => {}
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    return Err(refused(wait.as_secs_f64().ceil().max(1.0) as u64));
                }
                // More at once than the window ever allows.
                Err(_) => return Err(refused(window.period().as_secs())),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_limit_counts_down_then_refuses() {
        let limits = RateLimits::new(KeyLimits {
            requests_per_minute: Some(3),
            ..KeyLimits::default()
        });
        let owner = Uuid::new_v4();
        let none = KeyLimits::default();
        let states: Vec<u32> = (0..3)
            .map(|_| limits.request(owner, &none).unwrap().unwrap().remaining)
            .collect();
        assert_eq!(states, [2, 1, 0]);
        let (limited, state) = limits.request(owner, &none).unwrap_err();
        assert_eq!((limited.limit, state.remaining), (3, 0));
        assert!(limited.retry_after_s >= 1);
        // Another tenant has its own bucket; an override of 0 lifts the limit.
        assert!(limits.request(Uuid::new_v4(), &none).unwrap().is_some());
        let unlimited = KeyLimits {
            requests_per_minute: Some(0),
            ..KeyLimits::default()
        };
        assert_eq!(limits.request(owner, &unlimited).unwrap(), None);
    }

    #[test]
    fn message_limits_take_counts() {
        let limits = RateLimits::new(KeyLimits::default());
        let owner = Uuid::new_v4();
        let own = KeyLimits {
            messages_per_hour: Some(5),
            ..KeyLimits::default()
        };
        assert!(limits.messages(owner, &own, 4).is_ok());
        let refused = limits.messages(owner, &own, 2).unwrap_err();
        assert_eq!(refused.what, "messages per hour");
        assert!(limits.messages(owner, &own, 9).is_err());
        assert!(limits.messages(owner, &KeyLimits::default(), 1000).is_ok());
    }
}
