//! Connection pools: how many connections of one class (not yet identified, API, device) are
//! open, with a cap, and which one to close to make room.
//!
//! A pool holds its members weakly, oldest first (connection ids grow). When it is full, a
//! pool that may evict closes its oldest *idle* member (no request in progress) to admit a
//! new one; a pool that may not (devices: a connected phone is never dropped for a newcomer)
//! refuses the newcomer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use super::ConnState;

pub(super) struct Pool {
    cap: usize,
    evicts: bool,
    members: Mutex<BTreeMap<u64, Weak<ConnState>>>,
}

impl Pool {
    pub(super) fn new(cap: usize, evicts: bool) -> Pool {
        Pool {
            cap: cap.max(1),
            evicts,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// Admits `conn`, closing the oldest idle member if the pool is full and may evict;
    /// `false` if there is no room.
    pub(super) fn join(&self, conn: &Arc<ConnState>) -> bool {
        let victim = {
            let mut members = self.members.lock().unwrap_or_else(|it| it.into_inner());
            let mut victim = None;
            if members.len() >= self.cap {
                if !self.evicts {
                    return false;
                }
                let oldest_idle = members
                    .iter()
                    .find(|(_, it)| it.upgrade().is_none_or(|it| it.is_idle()))
                    .map(|(id, _)| *id);
                let Some(id) = oldest_idle else {
                    return false;
                };
                victim = members.remove(&id).and_then(|it| it.upgrade());
            }
            members.insert(conn.id, Arc::downgrade(conn));
            victim
        };
        if let Some(victim) = victim {
            victim.evict();
        }
        true
    }

    /// Closes the oldest idle member, if any (to free a file descriptor).
    pub(super) fn evict_oldest(&self) -> bool {
        let victim = {
            let mut members = self.members.lock().unwrap_or_else(|it| it.into_inner());
            let oldest_idle = members
                .iter()
                .find(|(_, it)| it.upgrade().is_none_or(|it| it.is_idle()))
                .map(|(id, _)| *id);
            oldest_idle.and_then(|id| members.remove(&id))
        };
        victim
            .and_then(|it| it.upgrade())
            .map(|it| it.evict())
            .is_some()
    }

    pub(super) fn leave(&self, id: u64) {
        self.members
            .lock()
            .unwrap_or_else(|it| it.into_inner())
            .remove(&id);
    }

    pub(super) fn len(&self) -> usize {
        self.members
            .lock()
            .unwrap_or_else(|it| it.into_inner())
            .len()
    }

    pub(super) fn is_full(&self) -> bool {
        self.len() >= self.cap
    }
}
