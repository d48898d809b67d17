//! When API keys were last used, without a write per request: the time is kept in memory and
//! flushed through the store's writer at most once a minute per key (and at shutdown).

use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;
use uuid::Uuid;

use crate::domain::Millis;
use crate::store::{AccessChange, Change, Store};

/// How often a key's last use is written at most.
pub const FLUSH_EVERY_MS: Millis = 60_000;

#[derive(Default)]
struct Used {
    last: AtomicI64,
    flushed: AtomicI64,
}

/// Last uses of API keys seen by this process.
#[derive(Default)]
pub struct KeyUsage {
    keys: DashMap<Uuid, Used>,
}

impl KeyUsage {
    /// Notes a use of `key` at `now`; whether it is due to be written (then it counts as
    /// written).
    pub fn touch(&self, key: Uuid, now: Millis) -> bool {
        let used = match self.keys.get(&key) {
            Some(it) => it,
            None => self.keys.entry(key).or_default().downgrade(),
        };
        used.last.fetch_max(now, Ordering::Relaxed);
        let flushed = used.flushed.load(Ordering::Relaxed);
        now - flushed >= FLUSH_EVERY_MS
            && used
                .flushed
                .compare_exchange(flushed, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The last use this process saw of `key`.
    pub fn last(&self, key: Uuid) -> Option<Millis> {
        self.keys
            .get(&key)
            .map(|it| it.last.load(Ordering::Relaxed))
    }

    /// Uses not yet written, marked as written.
    fn pending(&self) -> Vec<(Uuid, Millis)> {
        self.keys
            .iter()
            .filter_map(|it| {
                let last = it.last.load(Ordering::Relaxed);
                (it.flushed.swap(last, Ordering::Relaxed) < last).then_some((*it.key(), last))
            })
            .collect()
    }

    /// Writes every use not yet written (every minute and at shutdown).
    pub async fn flush(&self, store: &Store) {
        let pending = self.pending();
        if !pending.is_empty() {
            let _ = store
                .apply(Change::Access(AccessChange::TouchKeys(pending)))
                .await;
        }
    }

    /// Writes one key's use without waiting for the commit.
    pub async fn write(&self, store: &Store, key: Uuid, at: Millis) {
        let _ = store
            .submit(vec![Change::Access(AccessChange::TouchKeys(vec![(
                key, at,
            )]))])
            .await;
    }
}
