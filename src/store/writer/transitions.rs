//! A message's state changes, applied one change at a time: one function per transition.
//!
//! Each is a conditional update, `... WHERE id = ? [AND device_id = ?] AND state IN (...)`,
//! whose states and target come from the transition's row of `MessageState::TRANSITIONS`, and
//! whose outcome when it matches nothing is that row's `otherwise` ([`missed`]). So a late or
//! repeated report from a device can never move a message backwards. Must never: write a
//! message's `state` other than through such an update, or decide an outcome that the table
//! does not say.

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    UpdateMany,
};
use uuid::Uuid;

use serde_json::json;

use super::super::entities::{device, message, message_event};
use super::super::events::EventType;
use super::{Exec, Outcome, Retry, Tx, log};
use crate::domain::{MessageState, Millis, Otherwise, Rule, Transition, retry_delay};
use message::Column as M;

/// queued → dispatched to `device` ([`Transition::Dispatch`]).
pub(super) async fn dispatch(
    txn: &Tx<'_>,
    id: Uuid,
    device: &str,
    sim_slot: Option<u8>,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let rule = Transition::Dispatch.rule();
    let rows = guarded(&rule, id, None, now)
        .col_expr(M::DeviceId, Expr::value(device))
        .col_expr(M::SimSlot, Expr::value(sim_slot.map(i16::from)))
        .col_expr(M::DispatchedAt, Expr::value(now))
        .col_expr(M::Attempts, Expr::col(M::Attempts).add(1))
        .exec_in(txn)
        .await?;
    settle(txn, &rule, id, Some(device), rows, now, "dispatched", None).await
}

/// dispatched to `device` → queued, its offer lost ([`Transition::Requeue`]); `refund`: the
/// hub lost it, so the attempt its dispatch counted is given back.
pub(super) async fn requeue(
    txn: &Tx<'_>,
    id: Uuid,
    device: &str,
    reason: &str,
    refund: bool,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let rule = Transition::Requeue.rule();
    let mut update = guarded(&rule, id, Some(device), now)
        .col_expr(M::DeviceId, Expr::value(Option::<String>::None))
        .col_expr(M::SimSlot, Expr::value(Option::<i16>::None));
    if refund {
        // A dispatched row counted its dispatch, so it holds at least one attempt.
        update = update.col_expr(M::Attempts, Expr::col(M::Attempts).sub(1));
    }
    let rows = update.exec_in(txn).await?;
    settle(
        txn,
        &rule,
        id,
        Some(device),
        rows,
        now,
        "requeued",
        Some(reason),
    )
    .await
}

/// dispatched to `device` → accepted ([`Transition::Accept`]).
pub(super) async fn accept(
    txn: &Tx<'_>,
    id: Uuid,
    device: &str,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let rule = Transition::Accept.rule();
    let rows = guarded(&rule, id, Some(device), now)
        .col_expr(M::AcceptedAt, Expr::value(now))
        .exec_in(txn)
        .await?;
    settle(txn, &rule, id, Some(device), rows, now, "accepted", None).await
}

/// accepted by `device` → sent, counted on the device ([`Transition::Sent`]).
pub(super) async fn sent(
    txn: &Tx<'_>,
    id: Uuid,
    device: &str,
    parts: u32,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let rule = Transition::Sent.rule();
    let rows = guarded(&rule, id, Some(device), now)
        .col_expr(M::Parts, Expr::value(parts as i32))
        .col_expr(M::SentAt, Expr::value(now))
        .exec_in(txn)
        .await?;
    if rows > 0 {
        bump_device_count(txn, device, device::Column::SentCount).await?;
        event(txn, id, now, "sent", Some(device), None).await?;
        log::for_message(txn, id, EventType::MessageSent, Some(device), None, now).await?;
        return Ok(Outcome::Applied);
    }
    resolve_or_missed(txn, &rule, id, device, Some(parts), now).await
}

/// The conditional update of a transition: to `rule.to`, only from `rule`'s states, only
/// while `device` (when given) holds the message. Callers add the columns the transition sets.
fn guarded(
    rule: &Rule,
    id: Uuid,
    device: Option<&str>,
    now: Millis,
) -> UpdateMany<message::Entity> {
    let update = message::Entity::update_many()
        .col_expr(M::State, Expr::value(rule.to.as_str()))
        .col_expr(M::UpdatedAt, Expr::value(now))
        .filter(M::Id.eq(id))
        .filter(state_in(rule));
    match device {
        Some(device) => update.filter(M::DeviceId.eq(device)),
        None => update,
    }
}

/// What a transition's update did: `Applied`, with the history entry `name`, when it matched a
/// row; otherwise what the rule's `otherwise` says ([`missed`]).
#[allow(clippy::too_many_arguments)]
async fn settle(
    txn: &Tx<'_>,
    rule: &Rule,
    id: Uuid,
    device: Option<&str>,
    rows: u64,
    now: Millis,
    name: &str,
    detail: Option<&str>,
) -> Result<Outcome, DbErr> {
    if rows > 0 {
        event(txn, id, now, name, device, detail).await?;
        let payload = match (name, detail) {
            ("outcome_unknown", reason) => {
                Some(json!({ "code": "outcome_unknown", "message": reason }))
            }
            (_, Some(reason)) => Some(json!({ "reason": reason })),
            (_, None) => None,
        };
        if let Some(kind) = EventType::of_history(name) {
            log::for_message(txn, id, kind, device, payload, now).await?;
        }
        return Ok(Outcome::Applied);
    }
    missed(txn, rule, id, device).await
}

/// A device's report (`sent` or `delivered`) whose conditional update matched nothing: if the
/// message is `failed` with the code `rule` resolves (`outcome_unknown`) and `device` held it,
/// the report resolves it, moving it to `rule.to` with a `resolved` entry in its history
/// ([`Rule::resolves`]); otherwise what the row's `otherwise` says ([`missed`]).
pub(super) async fn resolve_or_missed(
    txn: &Tx<'_>,
    rule: &Rule,
    id: Uuid,
    device: &str,
    parts: Option<u32>,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let Some(code) = rule.resolves else {
        return missed(txn, rule, id, Some(device)).await;
    };
    let mut update = message::Entity::update_many()
        .col_expr(M::State, Expr::value(rule.to.as_str()))
        .col_expr(M::SentAt, Expr::col(M::SentAt).if_null(now))
        .col_expr(M::UpdatedAt, Expr::value(now));
    if rule.to == MessageState::Delivered {
        update = update.col_expr(M::DeliveredAt, Expr::value(now));
    }
    if let Some(parts) = parts {
        update = update.col_expr(M::Parts, Expr::value(parts as i32));
    }
    let rows = update
        .filter(M::Id.eq(id))
        .filter(M::DeviceId.eq(device))
        .filter(M::State.eq(MessageState::Failed.as_str()))
        .filter(M::ErrorCode.eq(code.as_str()))
        .exec_in(txn)
        .await?;
    if rows == 0 {
        return missed(txn, rule, id, Some(device)).await;
    }
    bump_device_count(txn, device, device::Column::SentCount).await?;
    let detail = format!("the device reported {} after {}", rule.to, code.as_str());
    event(txn, id, now, "resolved", Some(device), Some(&detail)).await?;
    let kind = match rule.to {
        MessageState::Delivered => EventType::MessageDelivered,
        _ => EventType::MessageSent,
    };
    let payload = Some(json!({ "resolved": code.as_str() }));
    log::for_message(txn, id, kind, Some(device), payload, now).await?;
    Ok(Outcome::Applied)
}

/// With a temporary failure reported by `device` and attempts left: back to the queue, not
/// offered again before the backoff ([`Transition::Retry`]). Whether it did; when it did not,
/// the failure is recorded instead ([`fail`]), as the transition's row says.
pub(super) async fn retry(
    txn: &Tx<'_>,
    id: Uuid,
    device: &str,
    code: &str,
    reason: &str,
    retry: Retry,
    now: Millis,
) -> Result<bool, DbErr> {
    let rule = Transition::Retry.rule();
    // Nothing was sent: back to the queue while attempts remain.
    let attempts: Vec<(i32,)> = txn
        .query(
            message::Entity::find_by_id(id)
                .select_only()
                .column(M::Attempts)
                .as_query(),
        )
        .await?;
    let attempts = attempts.first().map_or(1, |it| it.0);
    let attempts = u32::try_from(attempts).unwrap_or(1);
    let not_before = now + retry_delay(attempts, retry.base_ms, retry.cap_ms);
    let rows = guarded(&rule, id, Some(device), now)
        .col_expr(M::DeviceId, Expr::value(Option::<String>::None))
        .col_expr(M::SimSlot, Expr::value(Option::<i16>::None))
        .col_expr(M::ErrorCode, Expr::value(code))
        .col_expr(M::ErrorMessage, Expr::value(reason))
        .col_expr(M::ErrorTemporary, Expr::value(true))
        .col_expr(M::NotBefore, Expr::value(not_before))
        .col_expr(M::Retried, Expr::col(M::Retried).add(1))
        .filter(M::Attempts.lt(retry.max_attempts as i32))
        .exec_in(txn)
        .await?;
    if rows == 0 {
        return Ok(false);
    }
    bump_device_count(txn, device, device::Column::FailedCount).await?;
    event(
        txn,
        id,
        now,
        "retry",
        Some(device),
        Some(&format!("{code}: {reason}")),
    )
    .await?;
    let payload = json!({ "code": code, "message": reason, "not_before": not_before });
    log::for_message(
        txn,
        id,
        EventType::MessageRetried,
        Some(device),
        Some(payload),
        now,
    )
    .await?;
    Ok(true)
}

/// → failed: reported by `device`, which must hold the message ([`Transition::Failed`]), or,
/// without a device, by the hub itself ([`Transition::FailedByHub`]).
pub(super) async fn fail(
    txn: &Tx<'_>,
    id: Uuid,
    device: Option<&str>,
    code: &str,
    reason: &str,
    temporary: bool,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let rule = match device {
        Some(_) => Transition::Failed.rule(),
        None => Transition::FailedByHub.rule(),
    };
    let mut update = message::Entity::update_many()
        .col_expr(M::State, Expr::value(rule.to.as_str()))
        .col_expr(M::ErrorCode, Expr::value(code))
        .col_expr(M::ErrorMessage, Expr::value(reason))
        .col_expr(M::ErrorTemporary, Expr::value(temporary))
        .col_expr(M::FailedAt, Expr::value(now))
        .col_expr(M::UpdatedAt, Expr::value(now))
        .filter(M::Id.eq(id))
        .filter(state_in(&rule));
    if let Some(device) = device {
        update = update.filter(M::DeviceId.eq(device));
    }
    let rows = update.exec_in(txn).await?;
    if rows > 0 {
        if let Some(device) = device {
            bump_device_count(txn, device, device::Column::FailedCount).await?;
        }
        event(
            txn,
            id,
            now,
            "failed",
            device,
            Some(&format!("{code}: {reason}")),
        )
        .await?;
        let payload = json!({ "code": code, "message": reason, "temporary": temporary });
        log::for_message(
            txn,
            id,
            EventType::MessageFailed,
            device,
            Some(payload),
            now,
        )
        .await?;
        return Ok(Outcome::Applied);
    }
    missed(txn, &rule, id, device).await
}

/// accepted by `device` → failed `outcome_unknown`, never resent
/// ([`Transition::OutcomeUnknown`]).
pub(super) async fn outcome_unknown(
    txn: &Tx<'_>,
    id: Uuid,
    device: &str,
    reason: &str,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let rule = Transition::OutcomeUnknown.rule();
    let rows = guarded(&rule, id, Some(device), now)
        .col_expr(M::ErrorCode, Expr::value("outcome_unknown"))
        .col_expr(M::ErrorMessage, Expr::value(reason))
        .col_expr(M::ErrorTemporary, Expr::value(false))
        .col_expr(M::FailedAt, Expr::value(now))
        .exec_in(txn)
        .await?;
    settle(
        txn,
        &rule,
        id,
        Some(device),
        rows,
        now,
        "outcome_unknown",
        Some(reason),
    )
    .await
}

/// Not accepted in time → expired ([`Transition::Expire`]).
pub(super) async fn expire(txn: &Tx<'_>, id: Uuid, now: Millis) -> Result<Outcome, DbErr> {
    let rule = Transition::Expire.rule();
    if end_unaccepted(txn, id, &rule, M::ExpiredAt, now).await? {
        let detail = Some("valid_until passed before it was sent");
        event(txn, id, now, "expired", None, detail).await?;
        log::for_message(txn, id, EventType::MessageExpired, None, None, now).await?;
        return Ok(Outcome::Applied);
    }
    missed(txn, &rule, id, None).await
}

/// Not accepted yet → cancelled ([`Transition::Cancel`]).
pub(super) async fn cancel(txn: &Tx<'_>, id: Uuid, now: Millis) -> Result<Outcome, DbErr> {
    let rule = Transition::Cancel.rule();
    if end_unaccepted(txn, id, &rule, M::CancelledAt, now).await? {
        event(txn, id, now, "cancelled", None, None).await?;
        log::for_message(txn, id, EventType::MessageCancelled, None, None, now).await?;
        return Ok(Outcome::Applied);
    }
    missed(txn, &rule, id, None).await
}

/// Ends a message no device has accepted yet as `rule` says, stamping `at_column`; whether
/// it did.
async fn end_unaccepted(
    txn: &Tx<'_>,
    id: Uuid,
    rule: &Rule,
    at_column: message::Column,
    now: Millis,
) -> Result<bool, DbErr> {
    let rows = guarded(rule, id, None, now)
        .col_expr(at_column, Expr::value(now))
        .exec_in(txn)
        .await?;
    Ok(rows > 0)
}

/// `state = ?` or `state IN (?, ...)`: the states `rule` moves a message from, bound as
/// parameters (the statement's text depends only on the transition, so it is prepared once).
fn state_in(rule: &Rule) -> Expr {
    match rule.from {
        [one] => M::State.eq(one.as_str()),
        from => M::State.is_in(from.iter().map(|it| it.as_str())),
    }
}

/// The outcome of a transition whose conditional update matched nothing, as its row's
/// `otherwise` says; `device` is the device that asked, if any.
pub(super) async fn missed(
    txn: &Tx<'_>,
    rule: &Rule,
    id: Uuid,
    device: Option<&str>,
) -> Result<Outcome, DbErr> {
    match rule.otherwise {
        Otherwise::Refused => Ok(Outcome::Refused),
        Otherwise::Unchanged => Ok(Outcome::Unchanged),
        Otherwise::UnchangedIfHeldIn(states) => match device {
            Some(device) => held_in(txn, id, device, states).await,
            None => Ok(Outcome::Refused),
        },
        // The caller applies the other transition itself (only a retry has one: `fail`).
        Otherwise::Instead(other) => Err(DbErr::Custom(format!(
            "{:?} missed: apply {other:?} instead",
            rule.transition
        ))),
    }
}

/// `Unchanged` when `device` holds the message in one of `states` (the report repeats one
/// already stored, or was overtaken), `Refused` otherwise.
async fn held_in(
    txn: &Tx<'_>,
    id: Uuid,
    device: &str,
    states: &[MessageState],
) -> Result<Outcome, DbErr> {
    let rows: Vec<(Option<String>, String)> = txn
        .query(
            message::Entity::find_by_id(id)
                .select_only()
                .column(M::DeviceId)
                .column(M::State)
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

/// Appends the entry `name` to the history of each message of `ids` (duplicates count once),
/// and its event to the log,
/// with the message's device as it is now, at `now`, or at the message's creation when `now`
/// is `None`: one statement, `INSERT ... SELECT ... WHERE id IN (...)`, so that a padded list
/// keeps the statement's shape.
pub(super) async fn events_for(
    txn: &Tx<'_>,
    ids: &[Uuid],
    name: &str,
    now: Option<Millis>,
) -> Result<(), DbErr> {
    use message_event::Column as E;
    if ids.is_empty() {
        return Ok(());
    }
    let mut select = Query::select();
    select.column(M::Id);
    match now {
        Some(now) => select.expr(Expr::val(now)),
        None => select.column(M::CreatedAt),
    };
    select
        .expr(Expr::val(name))
        .column(M::DeviceId)
        .from(message::Entity)
        .and_where(Expr::col(M::Id).is_in(ids.iter().copied()));
    let mut insert = Query::insert();
    insert
        .into_table(message_event::Entity)
        .columns([E::MessageId, E::At, E::Event, E::DeviceId])
        .select_from(select)
        .map_err(|it| DbErr::Custom(it.to_string()))?;
    txn.execute(&insert).await?;
    if let Some(kind) = EventType::of_history(name) {
        log::for_messages(txn, ids, kind, now).await?;
    }
    Ok(())
}

/// Adds one to a device's counter (`sent_count` or `failed_count`).
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

/// Appends an entry to a message's history (every transition does: the history is read from
/// these rows only, and never loses an attempt).
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
