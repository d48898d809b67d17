//! How the database is doing for writes: which write errors mean "cannot take writes now"
//! (a `503`, not a bug), and the recent outcomes of writes that readiness looks at.

use std::sync::atomic::{AtomicI64, Ordering};

use super::{Outcome, StoreError};
use crate::domain::now_millis;

impl StoreError {
    /// A write's error: [`StoreError::Unavailable`] when the database cannot take writes for a
    /// reason outside the hub (space, permissions, I/O, locks, connection), else `Db`.
    pub(crate) fn from_write(err: sea_orm::DbErr) -> StoreError {
        if matches!(
            err,
            sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_)
        ) {
            return StoreError::Unavailable(err.to_string());
        }
        let text = err.to_string().to_ascii_lowercase();
        const CANNOT_WRITE: &[&str] = &[
            "disk is full",
            "no space left",
            "could not extend file",
            "readonly database",
            "read-only",
            "disk i/o error",
            "database is locked",
            "unable to open database",
            "connection",
        ];
        if CANNOT_WRITE.iter().any(|it| text.contains(it)) {
            StoreError::Unavailable(err.to_string())
        } else {
            StoreError::Db(err)
        }
    }

    /// Whether the database could not take writes (or the writer is gone): a `503`, not a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::WriterGone)
    }
}

/// When writes last committed and last failed for want of a writable database.
#[derive(Default)]
pub(super) struct WriteHealth {
    last_success: AtomicI64,
    last_failure: AtomicI64,
}

/// A failure this recent, with no success since, keeps the hub not ready.
const FAILURE_MEMORY_MS: i64 = 5_000;

impl WriteHealth {
    pub(super) fn record(&self, result: &Result<Vec<Outcome>, StoreError>) {
        match result {
            Ok(_) => self.last_success.store(now_millis(), Ordering::Relaxed),
            Err(err) if err.is_unavailable() => {
                self.last_failure.store(now_millis(), Ordering::Relaxed)
            }
            Err(_) => {}
        }
    }

    /// Whether a recent write failed with no success since.
    pub(super) fn failing(&self) -> bool {
        let failure = self.last_failure.load(Ordering::Relaxed);
        failure > self.last_success.load(Ordering::Relaxed)
            && now_millis() - failure < FAILURE_MEMORY_MS
    }
}
