//! [`Reader`]: one consumer's position in the event log, reading what its principal may see
//! and its filter asks for, waiting for the writer's signal when it has read everything.
//!
//! A reader holds no queue: a slow consumer is only further behind in the table, so it costs
//! no memory however far it falls behind (within retention).

use tokio::sync::watch;

use super::access::{Filter, visible};
use crate::auth::Principal;
use crate::store::{Event, EventLog, StoreError};

/// Events read per query.
const PAGE: u64 = 256;

/// A position in the log and what to read from it.
pub struct Reader {
    log: EventLog,
    principal: Principal,
    filter: Filter,
    /// The id of the last event read (or skipped).
    cursor: i64,
    woken: watch::Receiver<i64>,
}

impl Reader {
    /// A reader after event `after` (`None`: from now on).
    pub fn new(log: EventLog, principal: Principal, filter: Filter, after: Option<i64>) -> Reader {
        let woken = log.subscribe();
        let cursor = after.unwrap_or_else(|| log.last_id());
        Reader {
            log,
            principal,
            filter,
            cursor,
            woken,
        }
    }

    /// The id of the last event read.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The next events to deliver, oldest first: waits until there is at least one.
    /// `Err` when the database fails; `Ok(empty)` never.
    pub async fn next(&mut self) -> Result<Vec<Event>, StoreError> {
        loop {
            let last = *self.woken.borrow_and_update();
            if last <= self.cursor {
                if self.woken.changed().await.is_err() {
                    // The writer is gone: nothing new will come.
                    std::future::pending::<()>().await;
                }
                continue;
            }
            let rows = self
                .log
                .after(
                    self.cursor,
                    PAGE,
                    self.filter.message_id,
                    self.filter.device_id.as_deref(),
                )
                .await?;
            match rows.last() {
                Some(it) => self.cursor = it.id,
                // Nothing up to `last` matches the subject filter.
                None => self.cursor = last,
            }
            let wanted: Vec<Event> = rows
                .into_iter()
                .filter(|it| self.filter.matches(it) && visible(&self.principal, it))
                .collect();
            if !wanted.is_empty() {
                return Ok(wanted);
            }
        }
    }
}
