//! [`Clock`], the time the dispatcher keeps its deadlines by.
//!
//! Wall time is read once, at start; after that only tokio's monotonic (and, in tests,
//! pausable) clock advances it. It must never read the wall clock again, or deadlines would
//! jump when the system's time is set.

use std::time::Duration;

use crate::domain::{Millis, now_millis};

/// The hub's clock for deadlines: wall time at start plus tokio's monotonic time since, so
/// deadlines follow tokio's (pausable) clock and never jump with the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin_wall: Millis,
    origin: tokio::time::Instant,
}

impl Clock {
    /// A clock that starts at the wall time of now.
    pub fn new() -> Clock {
        Clock {
            origin_wall: now_millis(),
            origin: tokio::time::Instant::now(),
        }
    }

    /// The current time, in milliseconds since the epoch.
    pub fn now(&self) -> Millis {
        self.origin_wall + i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// The tokio instant of `at`, to sleep until; a past `at` is the clock's origin.
    pub(super) fn instant(&self, at: Millis) -> tokio::time::Instant {
        self.origin + Duration::from_millis(u64::try_from(at - self.origin_wall).unwrap_or(0))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
