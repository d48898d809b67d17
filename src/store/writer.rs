//! The single writer: applies [`Change`]s in group commits.
//!
//! Callers send a job (a list of changes) and wait for its outcomes. The writer takes every
//! job already waiting, applies them all in one transaction and commits once, so the cost of
//! a commit (an fsync with `synchronous=FULL`) is shared by the whole burst. If a batch
//! fails, each job is retried alone so one bad change cannot fail its neighbours.
//!
//! State changes are conditional updates (`... WHERE state IN (...)`), so a late or repeated
//! report from a device can never move a message backwards.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::entities::{api_key, device, idempotency_key, inbox, message, message_event};
use super::{NewMessage, StoreError};
use crate::domain::{MessageState, Millis, now_millis, retry_delay};

mod conn;
pub(crate) use conn::{Conn, Exec, Tx};

/// Most changes applied in one transaction.
const MAX_BATCH: usize = 2048;
/// Most rows per INSERT statement (SQLite allows 32766 bound values; a power of two).
const INSERT_CHUNK: usize = 256;
/// Changes per set-based statement: each adds an `(id AND device) OR` term, and SQLite
/// refuses expressions deeper than 1000.
const MAX_RUN: usize = 128;

/// One write.
#[derive(Debug, Clone)]
pub enum Change {
    CreateApiKey {
        id: Uuid,
        name: String,
        prefix: String,
        key_hash: String,
    },
    CreateDevice {
        id: String,
        name: String,
        kind: String,
        token_hash: String,
    },
    /// Removes a device; its messages keep their history.
    DeleteDevice {
        id: String,
    },
    /// What a device said about itself at `hello`.
    DeviceHello {
        id: String,
        model: Option<String>,
        app_version: Option<String>,
        sims: serde_json::Value,
    },
    DeviceSeen {
        id: String,
        at: Millis,
    },
    Insert(Vec<NewMessage>),
    /// Inserts messages under an idempotency key; `Refused` if the key is already taken
    /// (the caller then looks up what it stands for).
    InsertIdempotent {
        api_key_id: Uuid,
        key: String,
        fingerprint: String,
        messages: Vec<NewMessage>,
    },
    /// Sets (or clears) a device's sending limits.
    SetLimits {
        device: String,
        limits: Option<serde_json::Value>,
    },
    /// queued → dispatched to `device`.
    Dispatch {
        id: Uuid,
        device: String,
        sim_slot: Option<u8>,
    },
    /// dispatched to `device` → queued: the offer was lost before it was committed.
    Requeue {
        id: Uuid,
        device: String,
        reason: String,
    },
    /// dispatched to `device` → accepted. `Unchanged` if `device` already owns it.
    Accept {
        id: Uuid,
        device: String,
    },
    /// accepted → sent, by the owning device.
    Sent {
        id: Uuid,
        device: String,
        parts: u32,
    },
    /// accepted or sent → delivered, by the owning device.
    Delivered {
        id: Uuid,
        device: String,
    },
    /// → failed. With a device, only by the owning device; without, by the hub itself.
    /// A temporary failure with `retry` and attempts left goes back to `queued` instead
    /// (outcome `Requeued`): nothing was sent, so trying again is safe.
    Failed {
        id: Uuid,
        device: Option<String>,
        code: String,
        message: String,
        temporary: bool,
        retry: Option<Retry>,
    },
    /// accepted by `device` → failed `outcome_unknown`: the device never reported, and the SMS
    /// may have gone out, so it is never resent.
    OutcomeUnknown {
        id: Uuid,
        device: String,
        reason: String,
    },
    /// queued or dispatched → expired.
    Expire {
        id: Uuid,
    },
    /// queued or dispatched → cancelled; `Refused` once a device accepted it.
    Cancel {
        id: Uuid,
    },
    /// Message references of parts sent through a modem, kept to match status reports
    /// (`super::modem_refs`).
    ModemRefs(super::ModemRefChange),
    /// A received SMS; a repeat of the same (device, external id) is stored once.
    Incoming {
        device: String,
        external_id: String,
        sim_slot: Option<u8>,
        sender: String,
        body: String,
        received_at: Millis,
    },
}

/// The retry policy applied to a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Offers allowed in all; a message offered this many times fails instead.
    pub max_attempts: u32,
    /// Backoff before the next offer: `base × 2^(attempts−1)`, at most `cap`.
    pub base_ms: Millis,
    pub cap_ms: Millis,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A temporary failure sent the message back to the queue for another attempt.
    Requeued,
    /// The change was made.
    Applied,
    /// Nothing to do: the change was already made (a repeat) or has been overtaken.
    Unchanged,
    /// Not allowed: the message is not in a state, or not with the device, that permits it.
    Refused,
}

pub(super) struct Job {
    pub changes: Vec<Change>,
    pub reply: oneshot::Sender<Result<Vec<Outcome>, StoreError>>,
}

/// Starts the writer on a thread of its own (with a one-thread runtime), so that between its
/// statements it never waits behind HTTP and device tasks for a turn on the main runtime.
pub(super) fn spawn(db: Conn) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel(8192);
    std::thread::Builder::new()
        .name("smshub-writer".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("writer runtime");
            rt.block_on(run(db, rx));
        })
        .expect("writer thread");
    tx
}

async fn run(mut db: Conn, mut rx: mpsc::Receiver<Job>) {
    // Checkpoints run beside the writer while it runs.
    let _checkpoints = db.start_checkpoints();
    let mut batch: Vec<Job> = Vec::new();
    while let Some(job) = rx.recv().await {
        let mut n_changes = job.changes.len();
        batch.push(job);
        while n_changes < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    n_changes += job.changes.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        commit(&mut db, &mut batch).await;
    }
}

async fn commit(db: &mut Conn, batch: &mut Vec<Job>) {
    let result = apply_jobs(db, batch.iter().map(|it| it.changes.as_slice())).await;
    match result {
        Ok(outcomes) => {
            for (job, outcomes) in batch.drain(..).zip(outcomes) {
                let _ = job.reply.send(Ok(outcomes));
            }
        }
        Err(err) if batch.len() > 1 => {
            tracing::warn!(error = %err, jobs = batch.len(), "group commit failed; retrying each job alone");
            for job in batch.drain(..) {
                let result = apply_jobs(db, std::iter::once(job.changes.as_slice())).await;
                let _ = job.reply.send(
                    result
                        .map(|mut it| it.pop().unwrap_or_default())
                        .map_err(StoreError::from),
                );
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "database write failed");
            for job in batch.drain(..) {
                let _ = job
                    .reply
                    .send(Err(StoreError::Db(DbErr::Custom(err.to_string()))));
            }
        }
    }
}

async fn apply_jobs<'a>(
    db: &mut Conn,
    jobs: impl Iterator<Item = &'a [Change]>,
) -> Result<Vec<Vec<Outcome>>, DbErr> {
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

    for group in plan(&flat) {
        let outcomes = match group.kind {
            Some(kind) if group.items.len() > 1 => {
                let run: Vec<&Change> = group.items.iter().map(|it| flat[*it].2).collect();
                apply_run(&txn, kind, &run, now).await?
            }
            _ => vec![apply(&txn, flat[group.items[0]].2, now).await?],
        };
        for (item, outcome) in group.items.iter().zip(outcomes) {
            let (job, idx, _) = flat[*item];
            results[job][idx] = outcome;
        }
    }
    txn.commit().await?;
    Ok(results)
}

/// Changes that can be applied together as one set-based statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Insert,
    Dispatch,
    Accept,
    Sent,
    Delivered,
}

impl Kind {
    fn of(change: &Change) -> Option<Kind> {
        match change {
            Change::Insert(_) => Some(Kind::Insert),
            Change::Dispatch { .. } => Some(Kind::Dispatch),
            Change::Accept { .. } => Some(Kind::Accept),
            Change::Sent { .. } => Some(Kind::Sent),
            Change::Delivered { .. } => Some(Kind::Delivered),
            _ => None,
        }
    }
}

/// Changes applied together, in the order of the groups.
struct Group {
    /// `None`: a change applied on its own, which nothing is moved across.
    kind: Option<Kind>,
    /// Indexes into the batch's changes, in submission order.
    items: Vec<usize>,
}

/// Orders a batch's changes into groups of one kind, so a burst from many devices becomes a
/// few set-based statements rather than one per device.
///
/// A change may join an earlier group of its kind only when it moves past nothing it could
/// depend on: never past an earlier change to the same message (each message's changes keep
/// their order), and never past a change that is not groupable (device edits, failures,
/// requeues, expiry: those act as barriers). Changes to different messages commute (the only
/// shared row they touch is a device's sent counter, an addition), so the result is the same
/// as applying the batch one change at a time.
fn plan(flat: &[(usize, usize, &Change)]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    // The first group a groupable change may join.
    let mut floor = 0;
    let mut last_group: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
    for (item, (_, _, change)) in flat.iter().enumerate() {
        let Some(kind) = Kind::of(change) else {
            groups.push(Group {
                kind: None,
                items: vec![item],
            });
            floor = groups.len();
            continue;
        };
        let touched = touched_messages(change);
        let earliest = touched
            .iter()
            .filter_map(|id| last_group.get(id).map(|it| it + 1))
            .fold(floor, usize::max);
        let found = (earliest..groups.len())
            .find(|it| groups[*it].kind == Some(kind) && groups[*it].items.len() < MAX_RUN);
        let at = match found {
            Some(it) => {
                groups[it].items.push(item);
                it
            }
            None => {
                groups.push(Group {
                    kind: Some(kind),
                    items: vec![item],
                });
                groups.len() - 1
            }
        };
        for id in touched {
            last_group.insert(id, at);
        }
    }
    groups
}

/// The messages a groupable change touches.
fn touched_messages(change: &Change) -> Vec<Uuid> {
    match change {
        Change::Insert(messages) => messages.iter().map(|it| it.id).collect(),
        other => vec![change_target(other).0],
    }
}

/// The message and device of a per-device state change.
fn change_target(change: &Change) -> (Uuid, &str) {
    match change {
        Change::Dispatch { id, device, .. }
        | Change::Accept { id, device }
        | Change::Sent { id, device, .. }
        | Change::Delivered { id, device } => (*id, device.as_str()),
        _ => (Uuid::nil(), ""),
    }
}

/// Applies a run of changes of one [`Kind`] (to distinct messages) with one statement, with
/// the same outcomes as applying them one by one.
async fn apply_run(
    txn: &Tx<'_>,
    key: Kind,
    run: &[&Change],
    now: Millis,
) -> Result<Vec<Outcome>, DbErr> {
    use MessageState as S;
    use message::Column as M;
    if key == Kind::Insert {
        let messages: Vec<NewMessage> = run
            .iter()
            .flat_map(|it| match it {
                Change::Insert(messages) => messages.clone(),
                _ => Vec::new(),
            })
            .collect();
        insert_messages(txn, &messages).await?;
        return Ok(vec![Outcome::Applied; run.len()]);
    }
    // The run repeats its last change up to a few fixed lengths, so that its statements
    // come in a few shapes whose prepared statements are reused: preparing a statement of a
    // hundred terms costs more than running it. A repeated change is the same term twice.
    let wanted = run.len();
    let run = padded(run);
    let run = run.as_slice();
    let targets: Vec<(Uuid, &str)> = run.iter().map(|it| change_target(it)).collect();
    // (message, device) pairs whose send this run counts, and those delivered straight from
    // `accepted`.
    let mut counted: std::collections::HashSet<(Uuid, String)> = std::collections::HashSet::new();
    let mut early: std::collections::HashSet<(Uuid, String)> = std::collections::HashSet::new();
    let mut update = sea_orm::sea_query::Query::update();
    update
        .table(message::Entity)
        .returning(returning_id_and_device());
    let owned_states: &[MessageState] = match key {
        Kind::Dispatch => {
            let devices = per_message(
                &targets,
                |it| match it {
                    Change::Dispatch { device, .. } => Expr::val(device.as_str()),
                    _ => Expr::val(""),
                },
                run,
            );
            let sims = per_message(
                &targets,
                |it| match it {
                    Change::Dispatch { sim_slot, .. } => Expr::val(sim_slot.map(i16::from)),
                    _ => Expr::val(Option::<i16>::None),
                },
                run,
            );
            update
                .value(M::State, S::Dispatched.as_str())
                .value(M::DeviceId, devices)
                .value(M::SimSlot, sims)
                .value(M::DispatchedAt, now)
                .value(M::Attempts, Expr::col(M::Attempts).add(1))
                .value(M::UpdatedAt, now)
                .and_where(Expr::col(M::Id).is_in(targets.iter().map(|it| it.0)))
                .and_where(state_is(S::Queued));
            &[]
        }
        Kind::Accept => {
            update
                .value(M::State, S::Accepted.as_str())
                .value(M::AcceptedAt, now)
                .value(M::UpdatedAt, now)
                .cond_where(owned_by(&targets))
                .and_where(state_is(S::Dispatched));
            &[S::Accepted, S::Sent, S::Delivered, S::Failed]
        }
        Kind::Sent => {
            let parts = per_message(
                &targets,
                |it| match it {
                    Change::Sent { parts, .. } => Expr::val(*parts as i32),
                    _ => Expr::val(1i32),
                },
                run,
            );
            update
                .value(M::State, S::Sent.as_str())
                .value(M::Parts, parts)
                .value(M::SentAt, now)
                .value(M::UpdatedAt, now)
                .cond_where(owned_by(&targets))
                .and_where(state_is(S::Accepted));
            &[S::Sent, S::Delivered, S::Failed]
        }
        Kind::Delivered => {
            // A report of delivery may overtake the report of sending (both re-sent after a
            // reconnect): from `accepted` it also counts as a send.
            let mut skipped = sea_orm::sea_query::Query::update();
            skipped
                .table(message::Entity)
                .returning(returning_id_and_device())
                .value(M::State, S::Delivered.as_str())
                .value(M::SentAt, now)
                .value(M::DeliveredAt, now)
                .value(M::UpdatedAt, now)
                .cond_where(owned_by(&targets))
                .and_where(state_is(S::Accepted));
            let rows: Vec<(Uuid, String)> = txn.query(&skipped).await?;
            for hit in rows {
                counted.insert(hit.clone());
                early.insert(hit);
            }
            update
                .value(M::State, S::Delivered.as_str())
                .value(M::DeliveredAt, now)
                .value(M::UpdatedAt, now)
                .cond_where(owned_by(&targets))
                .and_where(state_is(S::Sent));
            &[S::Delivered, S::Failed]
        }
        Kind::Insert => unreachable!("handled above"),
    };
    // Which (message, device) pairs changed: the same message may appear for two devices
    // in one run, and only its owner's change applies.
    let rows: Vec<(Uuid, String)> = txn.query(&update).await?;
    let mut applied = early;
    for hit in rows {
        if key == Kind::Sent {
            counted.insert(hit.clone());
        }
        applied.insert(hit);
    }
    if !counted.is_empty() {
        // One statement for every device's sent counter.
        let mut per_device: std::collections::BTreeMap<&str, i64> =
            std::collections::BTreeMap::new();
        for (id, device) in &targets {
            if counted.remove(&(*id, device.to_string())) {
                *per_device.entry(device).or_default() += 1;
            }
        }
        let per_device = padded(&per_device.into_iter().collect::<Vec<_>>());
        let mut case = sea_orm::sea_query::CaseStatement::new();
        for (device, n) in &per_device {
            case = case.case(Expr::col(device::Column::Id).eq(*device), Expr::val(*n));
        }
        let case: Expr = case.finally(Expr::val(0i64)).into();
        device::Entity::update_many()
            .col_expr(
                device::Column::SentCount,
                Expr::col(device::Column::SentCount).add(case),
            )
            .filter(device::Column::Id.is_in(per_device.iter().map(|it| it.0)))
            .exec_in(txn)
            .await?;
    }
    let mut outcomes = Vec::with_capacity(wanted);
    for (id, device) in targets.into_iter().take(wanted) {
        outcomes.push(if applied.contains(&(id, device.to_string())) {
            Outcome::Applied
        } else if owned_states.is_empty() {
            Outcome::Refused
        } else {
            owned_already(txn, id, device, owned_states).await?
        });
    }
    Ok(outcomes)
}

/// `items` with its last item repeated up to the next power of two (at least 1 item).
fn padded<T: Clone>(items: &[T]) -> Vec<T> {
    let mut out = items.to_vec();
    if let Some(last) = items.last() {
        out.resize(items.len().next_power_of_two(), last.clone());
    }
    out
}

/// The value each change of a run sets: a plain value when they all agree, else
/// `CASE WHEN id = ? THEN ? ... END`.
fn per_message(targets: &[(Uuid, &str)], value: impl Fn(&Change) -> Expr, run: &[&Change]) -> Expr {
    let values: Vec<Expr> = run.iter().map(|it| value(it)).collect();
    if values.windows(2).all(|it| it[0] == it[1]) {
        return values
            .into_iter()
            .next()
            .unwrap_or(Expr::val(Option::<i32>::None));
    }
    let mut case = sea_orm::sea_query::CaseStatement::new();
    for ((id, _), value) in targets.iter().zip(values) {
        case = case.case(Expr::col(message::Column::Id).eq(*id), value);
    }
    case.into()
}

/// `state = ?` written so that it cannot use an index: a run's rows are found by primary key.
/// SQLite has no statistics on an unanalysed database and would rather scan every message
/// in the state (`idx_messages_state`), testing each against the whole list of targets.
fn state_is(state: MessageState) -> sea_orm::sea_query::SimpleExpr {
    Expr::cust("(\"state\" || '')").eq(state.as_str())
}

/// `RETURNING id, device_id` (one clause: `returning_col` replaces, it does not add).
fn returning_id_and_device() -> sea_orm::sea_query::ReturningClause {
    sea_orm::sea_query::Query::returning().columns([message::Column::Id, message::Column::DeviceId])
}

/// `(id = ? AND device_id = ?) OR ...` for every target.
fn owned_by(targets: &[(Uuid, &str)]) -> sea_orm::sea_query::Condition {
    let mut any = sea_orm::sea_query::Condition::any();
    for (id, device) in targets {
        any = any.add(
            Expr::col(message::Column::Id)
                .eq(*id)
                .and(Expr::col(message::Column::DeviceId).eq(*device)),
        );
    }
    any
}

fn outcome(rows: u64) -> Outcome {
    if rows > 0 {
        Outcome::Applied
    } else {
        Outcome::Unchanged
    }
}

async fn apply(txn: &Tx<'_>, change: &Change, now: Millis) -> Result<Outcome, DbErr> {
    use MessageState as S;
    use message::Column as M;
    match change {
        Change::CreateApiKey {
            id,
            name,
            prefix,
            key_hash,
        } => {
            api_key::Entity::insert(api_key::ActiveModel {
                id: Set(*id),
                name: Set(name.clone()),
                prefix: Set(prefix.clone()),
                key_hash: Set(key_hash.clone()),
                created_at: Set(now),
                revoked_at: Set(None),
            })
            .exec_in(txn)
            .await?;
            Ok(Outcome::Applied)
        }
        Change::CreateDevice {
            id,
            name,
            kind,
            token_hash,
        } => {
            device::Entity::insert(device::ActiveModel {
                id: Set(id.clone()),
                name: Set(name.clone()),
                kind: Set(kind.clone()),
                token_hash: Set(token_hash.clone()),
                created_at: Set(now),
                last_seen_at: Set(None),
                model: Set(None),
                app_version: Set(None),
                sims: Set(None),
                sent_count: Set(0),
                failed_count: Set(0),
                limits: Set(None),
            })
            .exec_in(txn)
            .await?;
            Ok(Outcome::Applied)
        }
        Change::DeleteDevice { id } => {
            let rows = device::Entity::delete_many()
                .filter(device::Column::Id.eq(id.as_str()))
                .exec_in(txn)
                .await?;
            Ok(outcome(rows))
        }
        Change::DeviceHello {
            id,
            model,
            app_version,
            sims,
        } => {
            let rows = device::Entity::update_many()
                .col_expr(device::Column::Model, Expr::value(model.clone()))
                .col_expr(device::Column::AppVersion, Expr::value(app_version.clone()))
                .col_expr(device::Column::Sims, Expr::value(sims.clone()))
                .col_expr(device::Column::LastSeenAt, Expr::value(now))
                .filter(device::Column::Id.eq(id.as_str()))
                .exec_in(txn)
                .await?;
            Ok(outcome(rows))
        }
        Change::DeviceSeen { id, at } => {
            let rows = device::Entity::update_many()
                .col_expr(device::Column::LastSeenAt, Expr::value(*at))
                .filter(device::Column::Id.eq(id.as_str()))
                .exec_in(txn)
                .await?;
            Ok(outcome(rows))
        }
        Change::Insert(messages) => {
            insert_messages(txn, messages).await?;
            Ok(Outcome::Applied)
        }
        Change::InsertIdempotent {
            api_key_id,
            key,
            fingerprint,
            messages,
        } => {
            let row = idempotency_key::ActiveModel {
                api_key_id: Set(*api_key_id),
                key: Set(key.clone()),
                fingerprint: Set(fingerprint.clone()),
                message_ids: Set(messages
                    .iter()
                    .map(|it| it.id.to_string())
                    .collect::<Vec<_>>()
                    .join(",")),
                created_at: Set(now),
            };
            let conflict = OnConflict::columns([
                idempotency_key::Column::ApiKeyId,
                idempotency_key::Column::Key,
            ])
            .do_nothing()
            .to_owned();
            let rows = idempotency_key::Entity::insert(row)
                .on_conflict(conflict)
                .exec_in(txn)
                .await?;
            if rows == 0 {
                return Ok(Outcome::Refused);
            }
            insert_messages(txn, messages).await?;
            Ok(Outcome::Applied)
        }
        Change::SetLimits { device, limits } => {
            let rows = device::Entity::update_many()
                .col_expr(device::Column::Limits, Expr::value(limits.clone()))
                .filter(device::Column::Id.eq(device.as_str()))
                .exec_in(txn)
                .await?;
            Ok(outcome(rows))
        }
        Change::Dispatch {
            id,
            device,
            sim_slot,
        } => {
            let rows = message::Entity::update_many()
                .col_expr(M::State, Expr::value(S::Dispatched.as_str()))
                .col_expr(M::DeviceId, Expr::value(device.as_str()))
                .col_expr(M::SimSlot, Expr::value(sim_slot.map(i16::from)))
                .col_expr(M::DispatchedAt, Expr::value(now))
                .col_expr(M::Attempts, Expr::col(M::Attempts).add(1))
                .col_expr(M::UpdatedAt, Expr::value(now))
                .filter(M::Id.eq(*id))
                .filter(M::State.eq(S::Queued.as_str()))
                .exec_in(txn)
                .await?;
            Ok(if rows > 0 {
                Outcome::Applied
            } else {
                Outcome::Refused
            })
        }
        Change::Requeue { id, device, reason } => {
            let rows = message::Entity::update_many()
                .col_expr(M::State, Expr::value(S::Queued.as_str()))
                .col_expr(M::DeviceId, Expr::value(Option::<String>::None))
                .col_expr(M::SimSlot, Expr::value(Option::<i16>::None))
                .col_expr(M::UpdatedAt, Expr::value(now))
                .filter(M::Id.eq(*id))
                .filter(M::DeviceId.eq(device.as_str()))
                .filter(M::State.eq(S::Dispatched.as_str()))
                .exec_in(txn)
                .await?;
            if rows > 0 {
                event(txn, *id, now, "requeued", Some(device), Some(reason)).await?;
            }
            Ok(outcome(rows))
        }
        Change::Accept { id, device } => {
            let rows = message::Entity::update_many()
                .col_expr(M::State, Expr::value(S::Accepted.as_str()))
                .col_expr(M::AcceptedAt, Expr::value(now))
                .col_expr(M::UpdatedAt, Expr::value(now))
                .filter(M::Id.eq(*id))
                .filter(M::DeviceId.eq(device.as_str()))
                .filter(M::State.eq(S::Dispatched.as_str()))
                .exec_in(txn)
                .await?;
            if rows > 0 {
                return Ok(Outcome::Applied);
            }
            owned_already(
                txn,
                *id,
                device,
                &[S::Accepted, S::Sent, S::Delivered, S::Failed],
            )
            .await
        }
        Change::Sent { id, device, parts } => {
            let rows = message::Entity::update_many()
                .col_expr(M::State, Expr::value(S::Sent.as_str()))
                .col_expr(M::Parts, Expr::value(*parts as i32))
                .col_expr(M::SentAt, Expr::value(now))
                .col_expr(M::UpdatedAt, Expr::value(now))
                .filter(M::Id.eq(*id))
                .filter(M::DeviceId.eq(device.as_str()))
                .filter(M::State.eq(S::Accepted.as_str()))
                .exec_in(txn)
                .await?;
            if rows > 0 {
                bump_device_count(txn, device, device::Column::SentCount).await?;
                return Ok(Outcome::Applied);
            }
            owned_already(txn, *id, device, &[S::Sent, S::Delivered, S::Failed]).await
        }
        Change::Delivered { .. } => {
            let outcomes = apply_run(txn, Kind::Delivered, &[change], now).await?;
            Ok(outcomes.first().copied().unwrap_or(Outcome::Unchanged))
        }
        Change::Failed {
            id,
            device,
            code,
            message: reason,
            temporary,
            retry,
        } => {
            let from: &[&str] = match device {
                Some(_) => &[
                    S::Dispatched.as_str(),
                    S::Accepted.as_str(),
                    S::Sent.as_str(),
                ],
                None => &[
                    S::Queued.as_str(),
                    S::Dispatched.as_str(),
                    S::Accepted.as_str(),
                    S::Sent.as_str(),
                ],
            };
            if *temporary
                && let Some(retry) = retry
                && let Some(device) = device
            {
                // Nothing was sent: back to the queue while attempts remain.
                let attempts: Vec<(i32,)> = txn
                    .query(
                        message::Entity::find_by_id(*id)
                            .select_only()
                            .column(M::Attempts)
                            .as_query(),
                    )
                    .await?;
                let attempts = attempts.first().map_or(1, |it| it.0);
                let attempts = u32::try_from(attempts).unwrap_or(1);
                let not_before = now + retry_delay(attempts, retry.base_ms, retry.cap_ms);
                let rows = message::Entity::update_many()
                    .col_expr(M::State, Expr::value(S::Queued.as_str()))
                    .col_expr(M::DeviceId, Expr::value(Option::<String>::None))
                    .col_expr(M::SimSlot, Expr::value(Option::<i16>::None))
                    .col_expr(M::ErrorCode, Expr::value(code.as_str()))
                    .col_expr(M::ErrorMessage, Expr::value(reason.as_str()))
                    .col_expr(M::ErrorTemporary, Expr::value(true))
                    .col_expr(M::NotBefore, Expr::value(not_before))
                    .col_expr(M::Retried, Expr::col(M::Retried).add(1))
                    .col_expr(M::UpdatedAt, Expr::value(now))
                    .filter(M::Id.eq(*id))
                    .filter(M::DeviceId.eq(device.as_str()))
                    .filter(M::State.is_in([S::Dispatched.as_str(), S::Accepted.as_str()]))
                    .filter(M::Attempts.lt(retry.max_attempts as i32))
                    .exec_in(txn)
                    .await?;
                if rows > 0 {
                    bump_device_count(txn, device, device::Column::FailedCount).await?;
                    event(
                        txn,
                        *id,
                        now,
                        "retry",
                        Some(device),
                        Some(&format!("{code}: {reason}")),
                    )
                    .await?;
                    return Ok(Outcome::Requeued);
                }
            }
            let mut update = message::Entity::update_many()
                .col_expr(M::State, Expr::value(S::Failed.as_str()))
                .col_expr(M::ErrorCode, Expr::value(code.as_str()))
                .col_expr(M::ErrorMessage, Expr::value(reason.as_str()))
                .col_expr(M::ErrorTemporary, Expr::value(*temporary))
                .col_expr(M::FailedAt, Expr::value(now))
                .col_expr(M::UpdatedAt, Expr::value(now))
                .filter(M::Id.eq(*id))
                .filter(M::State.is_in(from.iter().copied()));
            if let Some(device) = device {
                update = update.filter(M::DeviceId.eq(device.as_str()));
            }
            let rows = update.exec_in(txn).await?;
            if rows > 0 {
                if let Some(device) = device {
                    bump_device_count(txn, device, device::Column::FailedCount).await?;
                }
                event(
                    txn,
                    *id,
                    now,
                    "failed",
                    device.as_deref(),
                    Some(&format!("{code}: {reason}")),
                )
                .await?;
                return Ok(Outcome::Applied);
            }
            match device {
                Some(device) => owned_already(txn, *id, device, &[S::Delivered, S::Failed]).await,
                None => Ok(Outcome::Unchanged),
            }
        }
        Change::OutcomeUnknown { id, device, reason } => {
            let rows = message::Entity::update_many()
                .col_expr(M::State, Expr::value(S::Failed.as_str()))
                .col_expr(M::ErrorCode, Expr::value("outcome_unknown"))
                .col_expr(M::ErrorMessage, Expr::value(reason.as_str()))
                .col_expr(M::ErrorTemporary, Expr::value(false))
                .col_expr(M::FailedAt, Expr::value(now))
                .col_expr(M::UpdatedAt, Expr::value(now))
                .filter(M::Id.eq(*id))
                .filter(M::DeviceId.eq(device.as_str()))
                .filter(M::State.eq(S::Accepted.as_str()))
                .exec_in(txn)
                .await?;
            if rows > 0 {
                event(txn, *id, now, "outcome_unknown", Some(device), Some(reason)).await?;
            }
            Ok(outcome(rows))
        }
        Change::Expire { id } => {
            let applied = end_unaccepted(txn, *id, S::Expired, M::ExpiredAt, now).await?;
            if applied {
                let detail = Some("valid_until passed before it was sent");
                event(txn, *id, now, "expired", None, detail).await?;
            }
            Ok(if applied {
                Outcome::Applied
            } else {
                Outcome::Unchanged
            })
        }
        Change::Cancel { id } => {
            let applied = end_unaccepted(txn, *id, S::Cancelled, M::CancelledAt, now).await?;
            Ok(if applied {
                Outcome::Applied
            } else {
                Outcome::Refused
            })
        }
        Change::ModemRefs(change) => super::modem_refs::apply(txn, change, now).await,
        Change::Incoming {
            device,
            external_id,
            sim_slot,
            sender,
            body,
            received_at,
        } => {
            let row = inbox::ActiveModel {
                id: Set(Uuid::new_v4()),
                device_id: Set(device.clone()),
                external_id: Set(external_id.clone()),
                sim_slot: Set(sim_slot.map(i16::from)),
                sender: Set(sender.clone()),
                body: Set(body.clone()),
                received_at: Set(*received_at),
                created_at: Set(now),
            };
            let conflict =
                OnConflict::columns([inbox::Column::DeviceId, inbox::Column::ExternalId])
                    .do_nothing()
                    .to_owned();
            let rows = inbox::Entity::insert(row)
                .on_conflict(conflict)
                .exec_in(txn)
                .await?;
            Ok(outcome(rows))
        }
    }
}

/// Ends a message no device has accepted yet (queued or dispatched) in `state`, stamping
/// `at_column`; whether it did.
async fn end_unaccepted(
    txn: &Tx<'_>,
    id: Uuid,
    state: MessageState,
    at_column: message::Column,
    now: Millis,
) -> Result<bool, DbErr> {
    use MessageState as S;
    use message::Column as M;
    let rows = message::Entity::update_many()
        .col_expr(M::State, Expr::value(state.as_str()))
        .col_expr(at_column, Expr::value(now))
        .col_expr(M::UpdatedAt, Expr::value(now))
        .filter(M::Id.eq(id))
        .filter(M::State.is_in([S::Queued.as_str(), S::Dispatched.as_str()]))
        .exec_in(txn)
        .await?;
    Ok(rows > 0)
}

/// After a conditional update matched nothing: `Unchanged` when `device` holds the message
/// in one of `states` (the report repeats one already stored), `Refused` otherwise.
async fn owned_already(
    txn: &Tx<'_>,
    id: Uuid,
    device: &str,
    states: &[MessageState],
) -> Result<Outcome, DbErr> {
    let rows: Vec<(Option<String>, String)> = txn
        .query(
            message::Entity::find_by_id(id)
                .select_only()
                .column(message::Column::DeviceId)
                .column(message::Column::State)
                .as_query(),
        )
        .await?;
    Ok(match rows.into_iter().next() {
        Some((Some(owner), state))
            if owner == device
                && MessageState::parse(&state).is_some_and(|it| states.contains(&it)) =>
        {
            Outcome::Unchanged
        }
        _ => Outcome::Refused,
    })
}

async fn bump_device_count(
    txn: &Tx<'_>,
    device: &str,
    column: device::Column,
) -> Result<(), DbErr> {
    device::Entity::update_many()
        .col_expr(column, Expr::col(column).add(1))
        .filter(device::Column::Id.eq(device))
        .exec_in(txn)
        .await?;
    Ok(())
}

async fn insert_messages(txn: &Tx<'_>, messages: &[NewMessage]) -> Result<(), DbErr> {
    // Chunks of a power of two rows (37 = 32 + 4 + 1): a few statement shapes, each prepared once.
    let mut rest = messages;
    while !rest.is_empty() {
        let n = rest.len().min(INSERT_CHUNK);
        let (chunk, tail) = rest.split_at(1 << n.ilog2());
        rest = tail;
        // Only the columns a new message sets: the rest are NULL or their default (fewer
        // values to build and bind per row).
        let rows = chunk.iter().map(|it| message::ActiveModel {
            id: Set(it.id),
            api_key_id: Set(it.api_key_id),
            recipient: Set(it.recipient.clone()),
            body: Set(it.body.clone()),
            parts: Set(it.parts as i32),
            state: Set(MessageState::Queued.as_str().to_string()),
            requested_device_id: Set(it.requested_device_id.clone()),
            requested_sim_slot: Set(it.requested_sim_slot.map(i16::from)),
            delivery_report: Set(it.delivery_report),
            created_at: Set(it.created_at),
            updated_at: Set(it.created_at),
            priority: Set(it.priority),
            schedule_at: Set(it.schedule_at),
            valid_until: Set(it.valid_until),
            ..Default::default()
        });
        message::Entity::insert_many(rows).exec_in(txn).await?;
    }
    Ok(())
}

/// Appends an entry to a message's history.
async fn event(
    txn: &Tx<'_>,
    id: Uuid,
    at: Millis,
    name: &str,
    device: Option<&str>,
    detail: Option<&str>,
) -> Result<(), DbErr> {
    message_event::Entity::insert(message_event::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        message_id: Set(id),
        at: Set(at),
        event: Set(name.to_string()),
        device_id: Set(device.map(str::to_string)),
        detail: Set(detail.map(str::to_string)),
    })
    .exec_in(txn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
