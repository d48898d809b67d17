//! Set-based runs: a group of changes of one [`Kind`] (inserts, or dispatches, acceptances,
//! sends or deliveries of distinct messages) applied with one statement per state the
//! transition starts from, instead of one statement per change.
//!
//! The states come from the transition's row of `MessageState::TRANSITIONS`, as for a change
//! applied alone (`transitions.rs`). Must never: give an outcome or leave a row different from
//! applying the same changes one at a time (`tests.rs` checks it), or build statements of
//! other lengths than the padded powers of two (each new length is a new statement to
//! prepare).

use std::collections::{BTreeMap, HashSet};

use sea_orm::sea_query::{CaseStatement, Condition, Expr, ExprTrait, Query, ReturningClause};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::super::entities::{device, message};
use super::super::{NewEvent, NewMessage};
use super::apply::insert_messages;
use super::plan::{Kind, change_target};
use super::transitions::{events_for, resolve_or_missed};
use super::{Change, Exec, Outcome, Tx, log};
use crate::domain::{MessageState, Millis, Transition};

/// Applies a run of changes of one [`Kind`] (to distinct messages) with one statement, with
/// the same outcomes as applying them one by one.
pub(super) async fn apply_run(
    txn: &Tx<'_>,
    key: Kind,
    run: &[&Change],
    now: Millis,
) -> Result<Vec<Outcome>, DbErr> {
    use MessageState as S;
    use message::Column as M;
    let rule = match key {
        Kind::Insert => {
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
        Kind::Emit => {
            let events: Vec<NewEvent> = run
                .iter()
                .flat_map(|it| match it {
                    Change::Emit(events) => events.clone(),
                    _ => Vec::new(),
                })
                .collect();
            log::insert(txn, &events, now).await?;
            return Ok(vec![Outcome::Applied; run.len()]);
        }
        Kind::Dispatch => Transition::Dispatch.rule(),
        Kind::Accept => Transition::Accept.rule(),
        Kind::Sent => Transition::Sent.rule(),
        Kind::Delivered => Transition::Delivered.rule(),
    };
    // The run repeats its last change up to a few fixed lengths, so that its statements
    // come in a few shapes whose prepared statements are reused: preparing a statement of a
    // hundred terms costs more than running it. A repeated change is the same term twice.
    let wanted = run.len();
    let run = padded(run);
    let run = run.as_slice();
    let targets: Vec<(Uuid, &str)> = run.iter().map(|it| change_target(it)).collect();
    // Which (message, device) pairs changed, and those whose send this run counts: the same
    // message may appear for two devices in one run, and only its owner's change applies.
    let mut applied: HashSet<(Uuid, String)> = HashSet::new();
    let mut counted: HashSet<(Uuid, String)> = HashSet::new();
    // One statement per state the transition starts from, in the table's order.
    for &from in rule.from {
        let mut update = Query::update();
        update
            .table(message::Entity)
            .returning(returning_id_and_device())
            .value(M::State, rule.to.as_str());
        let counts_send = match key {
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
                    .value(M::DeviceId, devices)
                    .value(M::SimSlot, sims)
                    .value(M::DispatchedAt, now)
                    .value(M::Attempts, Expr::col(M::Attempts).add(1))
                    .value(M::UpdatedAt, now)
                    .and_where(Expr::col(M::Id).is_in(targets.iter().map(|it| it.0)));
                false
            }
            Kind::Accept => {
                update
                    .value(M::AcceptedAt, now)
                    .value(M::UpdatedAt, now)
                    .cond_where(owned_by(&targets));
                false
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
                    .value(M::Parts, parts)
                    .value(M::SentAt, now)
                    .value(M::UpdatedAt, now)
                    .cond_where(owned_by(&targets));
                true
            }
            Kind::Delivered => {
                // A report of delivery may overtake the report of sending (both re-sent after
                // a reconnect): from `accepted` it also records and counts the send.
                let skipped_sent = from == S::Accepted;
                if skipped_sent {
                    update.value(M::SentAt, now);
                }
                update
                    .value(M::DeliveredAt, now)
                    .value(M::UpdatedAt, now)
                    .cond_where(owned_by(&targets));
                skipped_sent
            }
            Kind::Insert | Kind::Emit => unreachable!("inserted above"),
        };
        update.and_where(state_is(from));
        let rows: Vec<(Uuid, String)> = txn.query(&update).await?;
        for hit in rows {
            if counts_send {
                counted.insert(hit.clone());
            }
            applied.insert(hit);
        }
    }
    if !counted.is_empty() {
        count_sends(txn, &targets, counted).await?;
    }
    // Every change that applied appends its entry to the message's history.
    let hits: Vec<Uuid> = applied.iter().map(|it| it.0).collect();
    let name = match key {
        Kind::Dispatch => "dispatched",
        Kind::Accept => "accepted",
        Kind::Sent => "sent",
        Kind::Delivered => "delivered",
        Kind::Insert | Kind::Emit => unreachable!("inserted above"),
    };
    events_for(txn, &padded(&hits), name, Some(now)).await?;
    let mut outcomes = Vec::with_capacity(wanted);
    for ((id, device), change) in targets.into_iter().zip(run).take(wanted) {
        outcomes.push(if applied.contains(&(id, device.to_string())) {
            Outcome::Applied
        } else {
            let parts = match change {
                Change::Sent { parts, .. } => Some(*parts),
                _ => None,
            };
            resolve_or_missed(txn, &rule, id, device, parts, now).await?
        });
    }
    Ok(outcomes)
}

/// Adds the sends of `counted` (message, device) pairs to their devices' sent counters, with
/// one statement for every device.
async fn count_sends(
    txn: &Tx<'_>,
    targets: &[(Uuid, &str)],
    mut counted: HashSet<(Uuid, String)>,
) -> Result<(), DbErr> {
    let mut per_device: BTreeMap<&str, i64> = BTreeMap::new();
    for (id, device) in targets {
        if counted.remove(&(*id, device.to_string())) {
            *per_device.entry(device).or_default() += 1;
        }
    }
    let per_device = padded(&per_device.into_iter().collect::<Vec<_>>());
    let mut case = CaseStatement::new();
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
    Ok(())
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
    let mut case = CaseStatement::new();
    for ((id, _), value) in targets.iter().zip(values) {
        case = case.case(Expr::col(message::Column::Id).eq(*id), value);
    }
    case.into()
}

/// `state = ?` written so that it cannot use an index: a run's rows are found by primary key.
/// SQLite has no statistics on an unanalysed database and would rather scan every message
/// in the state (`idx_messages_state`), testing each against the whole list of targets.
fn state_is(state: MessageState) -> Expr {
    Expr::cust("(\"state\" || '')").eq(state.as_str())
}

/// `RETURNING id, device_id` (one clause: `returning_col` replaces, it does not add).
fn returning_id_and_device() -> ReturningClause {
    Query::returning().columns([message::Column::Id, message::Column::DeviceId])
}

/// `(id = ? AND device_id = ?) OR ...` for every target.
fn owned_by(targets: &[(Uuid, &str)]) -> Condition {
    let mut any = Condition::any();
    for (id, device) in targets {
        any = any.add(
            Expr::col(message::Column::Id)
                .eq(*id)
                .and(Expr::col(message::Column::DeviceId).eq(*device)),
        );
    }
    any
}
