//! One change applied alone: [`apply`] writes any [`Change`] with its own statements (a
//! delivery goes through a run of one, `runs.rs`), and the helpers both share.
//!
//! Must never: commit: every statement runs in the writer's open transaction.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::super::NewMessage;
use super::super::entities::{api_key, device, idempotency_key, inbox, message, message_event};
use super::plan::Kind;
use super::runs::apply_run;
use super::{Change, Exec, Outcome, Tx};
use crate::domain::{MessageState, Millis, retry_delay};

/// Most rows per INSERT statement (SQLite allows 32766 bound values; a power of two).
const INSERT_CHUNK: usize = 256;

/// `Applied` if a statement changed a row, else `Unchanged`.
fn outcome(rows: u64) -> Outcome {
    if rows > 0 {
        Outcome::Applied
    } else {
        Outcome::Unchanged
    }
}

/// Applies one change in the writer's transaction.
pub(super) async fn apply(txn: &Tx<'_>, change: &Change, now: Millis) -> Result<Outcome, DbErr> {
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
        Change::ModemRefs(change) => super::super::modem_refs::apply(txn, change, now).await,
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
pub(super) async fn owned_already(
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

/// Inserts new messages, `queued`, in chunks of a power of two rows.
pub(super) async fn insert_messages(txn: &Tx<'_>, messages: &[NewMessage]) -> Result<(), DbErr> {
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
