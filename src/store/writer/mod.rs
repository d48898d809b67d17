//! The single writer: applies [`Change`]s in group commits.
//!
//! Callers send a job (a list of changes) and wait for its outcomes. The writer takes every
//! job already waiting, applies them all in one transaction and commits once, so the cost of
//! a commit (an fsync with `synchronous=FULL`) is shared by the whole burst. A batch of
//! changes that nobody waits on ([`Change::may_wait`]: offers, devices' reports) waits up to
//! [`LINGER`] for one that somebody does, so at phone pace an offer commits with its
//! acceptance and a report with the next message. If a batch fails, each job is retried
//! alone so one bad change cannot fail its neighbours.
//!
//! This file is the loop: take jobs, plan the batch ([`plan`]), apply each group (a run of
//! one kind as one statement, [`runs`]; any other change alone, [`apply`]), commit, reply.
//! The other files: [`change`] the vocabulary, [`transitions`] a message's state changes
//! (conditional updates built from `MessageState::TRANSITIONS`, so a late or repeated report
//! from a device can never move a message backwards), [`conn`] the connection, [`log`] the
//! event log's rows (written beside each change, in the same transaction; after each commit
//! the id of the last event is published to the log's consumers; old events are pruned every
//! [`PRUNE_EVERY`]).
//!
//! A writer that panics is restarted on the same connection (the open transaction rolls back
//! as it unwinds; the jobs of that batch get `WriterGone`, nothing of theirs was
//! acknowledged). More than [`MAX_CRASHES`] panics within [`CRASH_WINDOW`] and the process
//! exits with status 70 and one line on stderr, so a supervisor restarts it: never a hub that
//! looks up but refuses every write.
//!
//! Must never: reply to a job before its transaction committed, or let a failed batch fail
//! a job that succeeds alone.

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::DbErr;
use tokio::sync::{mpsc, oneshot, watch};

use super::{Durability, StoreError};
use crate::domain::now_millis;

mod apply;
mod change;
mod conn;
mod log;
mod plan;
mod runs;
mod transitions;

pub use change::{Change, Outcome, Retry};
pub(crate) use conn::{Conn, Exec, Tx};

/// Most changes applied in one transaction.
const MAX_BATCH: usize = 2048;

/// The longest a batch of changes that [`Change::may_wait`] waits for a change that may not,
/// to commit with it: one commit then records an offer and its acceptance, or a report and
/// the next message. Under load another change is always waiting and nothing lingers.
const LINGER: Duration = Duration::from_millis(25);

/// Panics of the writer tolerated within [`CRASH_WINDOW`]; one more ends the process.
const MAX_CRASHES: usize = 3;
const CRASH_WINDOW: Duration = Duration::from_secs(60);

/// How often the writer prunes events past their retention.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What the writer tells the event log's consumers, and how long it keeps events.
pub(super) struct Publish {
    /// The id of the last committed event.
    pub committed: watch::Sender<i64>,
    /// Retention in milliseconds.
    pub retention_ms: Arc<AtomicI64>,
}

/// A list of changes and where their outcomes go once committed.
pub(super) struct Job {
    /// Applied in this order.
    pub changes: Vec<Change>,
    /// Gets one outcome per change, or the error that failed the job.
    pub reply: oneshot::Sender<Result<Vec<Outcome>, StoreError>>,
    /// Fault injection for tests: the writer panics when it takes this job.
    pub crash: bool,
}

/// Starts the writer on a thread of its own (with a one-thread runtime), so that between its
/// statements it never waits behind HTTP and device tasks for a turn on the main runtime.
pub(super) fn spawn(mut db: Conn, durability: Durability, publish: Publish) -> mpsc::Sender<Job> {
    let (tx, mut rx) = mpsc::channel(8192);
    std::thread::Builder::new()
        .name("smshub-writer".into())
        .spawn(move || {
            let mut crashes: Vec<Instant> = Vec::new();
            loop {
                let turn = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("writer runtime");
                    rt.block_on(run(&mut db, &mut rx, durability, &publish));
                }));
                if turn.is_ok() {
                    // Every sender is gone: the store was dropped.
                    return;
                }
                let now = Instant::now();
                crashes.retain(|it| now.duration_since(*it) < CRASH_WINDOW);
                crashes.push(now);
                if crashes.len() > MAX_CRASHES {
                    tracing::error!(
                        crashes = crashes.len(),
                        "the database writer keeps failing; exiting so a supervisor restarts the hub"
                    );
                    let _ = writeln!(
                        std::io::stderr(),
                        "smshub: the database writer failed {} times within {}s; exiting (status 70) so a supervisor restarts the hub",
                        crashes.len(),
                        CRASH_WINDOW.as_secs()
                    );
                    std::process::exit(70);
                }
                tracing::error!(
                    crashes = crashes.len(),
                    "the database writer panicked; restarting it (the jobs of its batch were not committed or not answered)"
                );
            }
        })
        .expect("writer thread");
    tx
}

/// Takes jobs until every sender is gone, as many as are waiting (up to [`MAX_BATCH`]
/// changes) per commit.
async fn run(
    db: &mut Conn,
    rx: &mut mpsc::Receiver<Job>,
    durability: Durability,
    publish: &Publish,
) {
    // Checkpoints run beside the writer while it runs.
    let _checkpoints = db.start_checkpoints();
    let mut batch: Vec<Job> = Vec::new();
    // Prune once before the first change, so a restart prunes at once and the first change
    // waits behind it (never beside it), then every period.
    prune_events(db, publish).await;
    let mut prune =
        tokio::time::interval_at(tokio::time::Instant::now() + PRUNE_EVERY, PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let job = tokio::select! {
            job = rx.recv() => job,
            _ = prune.tick() => {
                prune_events(db, publish).await;
                continue;
            }
        };
        let Some(job) = job else {
            return;
        };
        if job.crash {
            panic!("writer crash requested (fault injection)");
        }
        let mut n_changes = job.changes.len();
        batch.push(job);
        take_waiting(rx, &mut batch, &mut n_changes);
        if batch.iter().all(may_wait) {
            let until = tokio::time::Instant::now() + LINGER;
            while n_changes < MAX_BATCH && batch.iter().all(may_wait) {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(job)) => {
                        n_changes += job.changes.len();
                        batch.push(job);
                        take_waiting(rx, &mut batch, &mut n_changes);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        if commit(db, &mut batch, &publish.committed).await {
            db.reopen(durability);
        }
    }
}

/// Adds the jobs already waiting to `batch`, up to [`MAX_BATCH`] changes.
fn take_waiting(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, n_changes: &mut usize) {
    while *n_changes < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => {
                *n_changes += job.changes.len();
                batch.push(job);
            }
            Err(_) => break,
        }
    }
}

/// Whether a whole job may wait for the next commit ([`LINGER`]).
fn may_wait(job: &Job) -> bool {
    !job.crash && !job.changes.is_empty() && job.changes.iter().all(Change::may_wait)
}

/// Deletes the events past their retention, and the finished webhook deliveries of events no
/// longer kept, a chunk per transaction, until none is left.
async fn prune_events(db: &mut Conn, publish: &Publish) {
    let before = now_millis() - publish.retention_ms.load(Ordering::Relaxed);
    loop {
        let pruned = async {
            let txn = db.begin().await?;
            let n = log::prune(&txn, before).await? + super::webhooks::prune_finished(&txn).await?;
            txn.commit().await?;
            Ok::<u64, DbErr>(n)
        }
        .await;
        match pruned {
            Ok(0) => return,
            Ok(n) => tracing::debug!(rows = n, "pruned events and deliveries past retention"),
            Err(error) => {
                tracing::warn!(%error, "could not prune events; trying again later");
                return;
            }
        }
    }
}

/// Applies and commits a batch, replying to each job; if a batch of several jobs fails, each
/// job is applied alone. Whether the database refused to be written as read-only (the
/// connection is then opened again, to see a permission fixed since).
async fn commit(db: &mut Conn, batch: &mut Vec<Job>, committed: &watch::Sender<i64>) -> bool {
    let mut read_only = false;
    let started = std::time::Instant::now();
    let result = apply_jobs(db, batch.iter().map(|it| it.changes.as_slice())).await;
    match result {
        Ok((outcomes, last_event)) => {
            publish_last(committed, last_event);
            let changes = batch.iter().map(|it| it.changes.len()).sum();
            crate::telemetry::record_commit(changes, started.elapsed());
            for (job, outcomes) in batch.drain(..).zip(outcomes) {
                let _ = job.reply.send(Ok(outcomes));
            }
        }
        Err(err) if batch.len() > 1 => {
            tracing::warn!(error = %err, jobs = batch.len(), "group commit failed; retrying each job alone");
            read_only = is_read_only(&err);
            for job in batch.drain(..) {
                let result = apply_jobs(db, std::iter::once(job.changes.as_slice())).await;
                read_only |= result.as_ref().is_err_and(is_read_only);
                if let Ok((_, last_event)) = &result {
                    publish_last(committed, *last_event);
                }
                let _ = job.reply.send(
                    result
                        .map(|(mut it, _)| it.pop().unwrap_or_default())
                        .map_err(StoreError::from_write),
                );
            }
        }
        Err(err) => {
            read_only = is_read_only(&err);
            tracing::error!(error = %err, "database write failed");
            for job in batch.drain(..) {
                let _ = job
                    .reply
                    .send(Err(StoreError::from_write(DbErr::Custom(err.to_string()))));
            }
        }
    }
    read_only
}

/// Wakes the event log's consumers if the commit wrote events.
fn publish_last(committed: &watch::Sender<i64>, last_event: i64) {
    committed.send_if_modified(|it| {
        let newer = last_event > *it;
        if newer {
            *it = last_event;
        }
        newer
    });
}

fn is_read_only(err: &DbErr) -> bool {
    err.to_string().contains("readonly")
}

/// Applies jobs' changes in one transaction and commits it: one outcome per change, per job,
/// and the id of the last event in the log.
async fn apply_jobs<'a>(
    db: &mut Conn,
    jobs: impl Iterator<Item = &'a [Change]>,
) -> Result<(Vec<Vec<Outcome>>, i64), DbErr> {
    let txn = db.begin().await?;
    let now = now_millis();
    let jobs: Vec<&[Change]> = jobs.collect();
    let mut results: Vec<Vec<Outcome>> = jobs
        .iter()
        .map(|it| vec![Outcome::Unchanged; it.len()])
        .collect();
    // Every change in commit order, with where its outcome goes.
    let flat: Vec<(usize, usize, &Change)> = jobs
        .iter()
        .enumerate()
        .flat_map(|(job, changes)| {
            changes
                .iter()
                .enumerate()
                .map(move |(idx, change)| (job, idx, change))
        })
        .collect();

    for group in plan::plan(&flat) {
        let outcomes = match group.kind {
            Some(kind) if group.items.len() > 1 => {
                let run: Vec<&Change> = group.items.iter().map(|it| flat[*it].2).collect();
                runs::apply_run(&txn, kind, &run, now).await?
            }
            _ => vec![apply::apply(&txn, flat[group.items[0]].2, now).await?],
        };
        for (item, outcome) in group.items.iter().zip(outcomes) {
            let (job, idx, _) = flat[*item];
            results[job][idx] = outcome;
        }
    }
    let last_event = log::last_id(&txn).await?;
    txn.commit().await?;
    count_transitions(&flat, &results);
    Ok((results, last_event))
}

#[cfg(test)]
mod tests;

/// Counts the committed message state changes for `/metrics`, one counter update per state
/// reached in the batch (not per change).
fn count_transitions(flat: &[(usize, usize, &Change)], results: &[Vec<Outcome>]) {
    let mut reached: [(&'static str, u64); 11] = [
        ("queued", 0),
        ("dispatched", 0),
        ("accepted", 0),
        ("sent", 0),
        ("delivered", 0),
        ("failed", 0),
        ("outcome_unknown", 0),
        ("expired", 0),
        ("cancelled", 0),
        ("requeued", 0),
        ("retry", 0),
    ];
    for (job, idx, change) in flat {
        let outcome = results[*job][*idx];
        let (to, n) = match (change, outcome) {
            (Change::Insert(messages), Outcome::Applied) => ("queued", messages.len()),
            (Change::InsertIdempotent { messages, .. }, Outcome::Applied) => {
                ("queued", messages.len())
            }
            (Change::Dispatch { .. }, Outcome::Applied) => ("dispatched", 1),
            (Change::Requeue { .. }, Outcome::Applied) => ("requeued", 1),
            (Change::Accept { .. }, Outcome::Applied) => ("accepted", 1),
            (Change::Sent { .. }, Outcome::Applied) => ("sent", 1),
            (Change::Delivered { .. }, Outcome::Applied) => ("delivered", 1),
            (Change::Failed { .. }, Outcome::Applied) => ("failed", 1),
            (Change::Failed { .. }, Outcome::Requeued) => ("retry", 1),
            (Change::OutcomeUnknown { .. }, Outcome::Applied) => ("outcome_unknown", 1),
            (Change::Expire { .. }, Outcome::Applied) => ("expired", 1),
            (Change::Cancel { .. }, Outcome::Applied) => ("cancelled", 1),
            _ => continue,
        };
        if let Some(slot) = reached.iter_mut().find(|it| it.0 == to) {
            slot.1 += n as u64;
        }
    }
    for (to, n) in reached {
        if n > 0 {
            crate::telemetry::record_transition(to, n);
        }
    }
}
