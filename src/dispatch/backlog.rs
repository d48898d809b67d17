//! [`Backlog`], the counters the API reads for back-pressure: how many messages wait, in
//! all and per API key, and how many the API has let through that the dispatcher has not
//! seen yet.
//!
//! Only the dispatcher publishes the waiting counts, and only the API reserves and releases.
//! It never blocks and never decides anything about a message: it only counts.

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use uuid::Uuid;

/// Messages waiting, as the API sees them for back-pressure.
#[derive(Default)]
pub struct Backlog {
    total: AtomicUsize,
    by_key: DashMap<Option<Uuid>, usize>,
    /// Accepted by the API but not yet seen by the dispatcher.
    in_transit: AtomicUsize,
    in_transit_by_key: DashMap<Option<Uuid>, usize>,
}

impl Backlog {
    /// Reserves room for `n` messages of `key`, or says no when a limit would be passed.
    pub fn reserve(
        &self,
        key: Option<Uuid>,
        n: usize,
        max_total: usize,
        max_per_key: usize,
    ) -> bool {
        let total = self.total.load(Ordering::Relaxed) + self.in_transit.load(Ordering::Relaxed);
        let for_key = self.by_key.get(&key).map_or(0, |it| *it)
            + self.in_transit_by_key.get(&key).map_or(0, |it| *it);
        if total + n > max_total || for_key + n > max_per_key {
            return false;
        }
        self.in_transit.fetch_add(n, Ordering::Relaxed);
        *self.in_transit_by_key.entry(key).or_default() += n;
        true
    }

    /// Gives back a reservation that was not used (the request failed).
    pub fn release(&self, key: Option<Uuid>, n: usize) {
        let _ = self
            .in_transit
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |it| {
                Some(it.saturating_sub(n))
            });
        if let Some(mut it) = self.in_transit_by_key.get_mut(&key) {
            *it = it.saturating_sub(n);
        }
    }

    /// The messages waiting for a device, as last published by the dispatcher.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Starts counting the waiting messages of `key` (published from then on).
    pub(super) fn count_key(&self, key: Option<Uuid>) {
        self.by_key.entry(key).or_default();
    }

    /// Publishes the dispatcher's waiting counts: `total`, and `for_key` of every key counted.
    pub(super) fn publish(&self, total: usize, for_key: impl Fn(Option<Uuid>) -> usize) {
        self.total.store(total, Ordering::Relaxed);
        let keys: Vec<Option<Uuid>> = self.by_key.iter().map(|it| *it.key()).collect();
        for key in keys {
            self.by_key.insert(key, for_key(key));
        }
    }
}
