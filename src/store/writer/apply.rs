//! One change applied alone: [`apply`] sends each kind of [`Change`] to the function that
//! writes it. Message state changes are in `transitions.rs`; the rest (API keys, devices, new
//! messages, idempotency keys, received SMS) are here.
//!
//! Must never: change a message's `state` (only `transitions.rs` and `runs.rs` do, as
//! `MessageState::TRANSITIONS` says), or commit: every statement runs in the writer's open
//! transaction.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryTrait};
use uuid::Uuid;

use serde_json::json;

use super::super::entities::{api_key, device, idempotency_key, inbox, message};
use super::super::{EventType, NewEvent, NewMessage};
use super::plan::Kind;
use super::runs::apply_run;
use super::{Change, Exec, Outcome, Tx, log, transitions};
use crate::domain::{DeviceKind, MessageState, Millis};

/// Most rows per INSERT statement (SQLite allows 32766 bound values; a power of two).
const INSERT_CHUNK: usize = 256;

/// Applies one change in the writer's transaction.
pub(super) async fn apply(txn: &Tx<'_>, change: &Change, now: Millis) -> Result<Outcome, DbErr> {
    match change {
        Change::CreateApiKey(key) => {
            let outcome = super::super::access::create_api_key(txn, key, now).await?;
            let event = NewEvent {
                kind: EventType::KeyCreated,
                message_id: None,
                device_id: None,
                owner: Some(key.id),
                payload: Some(json!({ "name": key.name, "prefix": key.prefix })),
            };
            log::insert(txn, &[event], now).await?;
            Ok(outcome)
        }
        Change::Access(change) => super::super::access::apply(txn, change, now).await,
        Change::Probe => probe(txn).await,
        Change::RevokeApiKey { id, prefix } => revoke_api_key(txn, *id, prefix, now).await,
        Change::CreateDevice {
            id,
            name,
            kind,
            token_hash,
        } => create_device(txn, id, name, kind, token_hash, now).await,
        Change::DeleteDevice { id } => delete_device(txn, id, now).await,
        Change::SetDeviceToken { id, token_hash } => {
            set_device_token(txn, id, token_hash.as_deref()).await
        }
        Change::DeviceHello {
            id,
            model,
            app_version,
            sims,
        } => device_hello(txn, id, model, app_version, sims, now).await,
        Change::DeviceSeen { id, at } => device_seen(txn, id, *at).await,
        Change::Insert(messages) => {
            insert_messages(txn, messages).await?;
            Ok(Outcome::Applied)
        }
        Change::InsertIdempotent {
            api_key_id,
            key,
            fingerprint,
            messages,
        } => insert_idempotent(txn, *api_key_id, key, fingerprint, messages, now).await,
        Change::SetLimits { device, limits } => set_limits(txn, device, limits).await,
        Change::Dispatch {
            id,
            device,
            sim_slot,
        } => transitions::dispatch(txn, *id, device, *sim_slot, now).await,
        Change::Requeue {
            id,
            device,
            reason,
            refund,
        } => transitions::requeue(txn, *id, device, reason, *refund, now).await,
        Change::Accept { id, device } => transitions::accept(txn, *id, device, now).await,
        Change::Sent { id, device, parts } => {
            transitions::sent(txn, *id, device, *parts, now).await
        }
        // A run of one: a delivery takes two statements (from `accepted` and from `sent`),
        // written once, in `runs.rs`.
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
            if *temporary
                && let Some(retry) = retry
                && let Some(device) = device
                && transitions::retry(txn, *id, device, code.as_str(), reason, *retry, now).await?
            {
                return Ok(Outcome::Requeued);
            }
            let device = device.as_deref();
            transitions::fail(txn, *id, device, code.as_str(), reason, *temporary, now).await
        }
        Change::OutcomeUnknown { id, device, reason } => {
            transitions::outcome_unknown(txn, *id, device, reason, now).await
        }
        Change::Expire { id } => transitions::expire(txn, *id, now).await,
        Change::Cancel { id } => transitions::cancel(txn, *id, now).await,
        Change::ModemRefs(change) => super::super::modem_refs::apply(txn, change, now).await,
        Change::Template(change) => super::super::templates::apply(txn, change, now).await,
        Change::SimCards(change) => super::super::sim_cards::apply(txn, change, now).await,
        Change::Emit(events) => {
            log::insert(txn, events, now).await?;
            Ok(Outcome::Applied)
        }
        Change::Incoming {
            device,
            external_id,
            sim_slot,
            sender,
            text,
            received_at,
        } => {
            let row = inbox::ActiveModel {
                // Time-ordered, so the inbox's `after` cursor follows arrival.
                id: Set(Uuid::now_v7()),
                device_id: Set(device.to_string()),
                external_id: Set(external_id.clone()),
                sim_slot: Set(sim_slot.map(i16::from)),
                sender: Set(sender.clone()),
                body: Set(text.clone()),
                received_at: Set(*received_at),
                created_at: Set(now),
            };
            incoming(txn, row, now).await
        }
        Change::Webhook(change) => {
            let (outcome, events) = super::super::webhooks::apply(txn, change, now).await?;
            log::insert(txn, &events, now).await?;
            Ok(outcome)
        }
        Change::SetConsumerPosition { consumer, position } => {
            super::super::consumers::set(txn, consumer, *position, now).await
        }
    }
}

async fn create_device(
    txn: &Tx<'_>,
    id: &str,
    name: &str,
    kind: &DeviceKind,
    token_hash: &str,
    now: Millis,
) -> Result<Outcome, DbErr> {
    device::Entity::insert(device::ActiveModel {
        id: Set(id.to_string()),
        name: Set(name.to_string()),
        kind: Set(kind.as_str().to_string()),
        token_hash: Set(token_hash.to_string()),
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
    let payload = json!({ "name": name, "kind": kind.as_str() });
    let event = NewEvent::device(EventType::DeviceCreated, id, Some(payload));
    log::insert(txn, &[event], now).await?;
    Ok(Outcome::Applied)
}

/// `UPDATE seaql_migrations SET applied_at = applied_at`: changes nothing, but is written
/// and committed like any change (SQLite rewrites the row, PostgreSQL a new row version).
async fn probe(txn: &Tx<'_>) -> Result<Outcome, DbErr> {
    use sea_orm::sea_query::{Alias, Query};
    let applied_at = Alias::new("applied_at");
    let statement = Query::update()
        .table(Alias::new("seaql_migrations"))
        .value(applied_at.clone(), Expr::col(applied_at))
        .to_owned();
    txn.execute(&statement).await?;
    Ok(Outcome::Applied)
}

async fn revoke_api_key(
    txn: &Tx<'_>,
    id: Option<Uuid>,
    prefix: &Option<String>,
    now: Millis,
) -> Result<Outcome, DbErr> {
    if id.is_none() && prefix.is_none() {
        return Ok(Outcome::Unchanged);
    }
    let mut matching = sea_orm::Condition::any();
    if let Some(id) = id {
        matching = matching.add(api_key::Column::Id.eq(id));
    }
    if let Some(prefix) = prefix {
        matching = matching.add(api_key::Column::Prefix.eq(prefix.clone()));
    }
    let mut update = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now))
        .filter(api_key::Column::RevokedAt.is_null())
        .filter(matching)
        .into_query();
    update.returning(
        sea_orm::sea_query::Query::returning()
            .columns([api_key::Column::Id, api_key::Column::Prefix]),
    );
    let revoked: Vec<(Uuid, String)> = txn.query(&update).await?;
    let events: Vec<NewEvent> = revoked
        .iter()
        .map(|(id, prefix)| NewEvent {
            kind: EventType::KeyRevoked,
            message_id: None,
            device_id: None,
            owner: Some(*id),
            payload: Some(json!({ "prefix": prefix })),
        })
        .collect();
    log::insert(txn, &events, now).await?;
    Ok(outcome(revoked.len() as u64))
}

async fn delete_device(txn: &Tx<'_>, id: &str, now: Millis) -> Result<Outcome, DbErr> {
    let rows = device::Entity::delete_many()
        .filter(device::Column::Id.eq(id))
        .exec_in(txn)
        .await?;
    if rows > 0 {
        let event = NewEvent::device(EventType::DeviceDeleted, id, None);
        log::insert(txn, &[event], now).await?;
    }
    Ok(outcome(rows))
}

async fn set_device_token(
    txn: &Tx<'_>,
    id: &str,
    token_hash: Option<&str>,
) -> Result<Outcome, DbErr> {
    // A revoked token's "hash" is `revoked:<device id>`: no token hashes to it (hashes are
    // hex), and it is unique like every hash (two revoked devices must not collide).
    let stored = token_hash.map_or_else(|| format!("revoked:{id}"), str::to_string);
    let rows = device::Entity::update_many()
        .col_expr(device::Column::TokenHash, Expr::value(stored))
        .filter(device::Column::Id.eq(id))
        .exec_in(txn)
        .await?;
    Ok(outcome(rows))
}

async fn device_hello(
    txn: &Tx<'_>,
    id: &str,
    model: &Option<String>,
    app_version: &Option<String>,
    sims: &serde_json::Value,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let rows = device::Entity::update_many()
        .col_expr(device::Column::Model, Expr::value(model.clone()))
        .col_expr(device::Column::AppVersion, Expr::value(app_version.clone()))
        .col_expr(device::Column::Sims, Expr::value(sims.clone()))
        .col_expr(device::Column::LastSeenAt, Expr::value(now))
        .filter(device::Column::Id.eq(id))
        .exec_in(txn)
        .await?;
    if rows > 0 {
        let payload = json!({ "model": model, "app_version": app_version, "sims": sims });
        let event = NewEvent::device(EventType::DeviceOnline, id, Some(payload));
        log::insert(txn, &[event], now).await?;
    }
    Ok(outcome(rows))
}

async fn device_seen(txn: &Tx<'_>, id: &str, at: Millis) -> Result<Outcome, DbErr> {
    let rows = device::Entity::update_many()
        .col_expr(device::Column::LastSeenAt, Expr::value(at))
        .filter(device::Column::Id.eq(id))
        .exec_in(txn)
        .await?;
    Ok(outcome(rows))
}

async fn set_limits(
    txn: &Tx<'_>,
    device: &str,
    limits: &Option<serde_json::Value>,
) -> Result<Outcome, DbErr> {
    let rows = device::Entity::update_many()
        .col_expr(device::Column::Limits, Expr::value(limits.clone()))
        .filter(device::Column::Id.eq(device))
        .exec_in(txn)
        .await?;
    Ok(outcome(rows))
}

/// Takes the idempotency key, then inserts the messages; `Refused` if the key was taken.
async fn insert_idempotent(
    txn: &Tx<'_>,
    api_key_id: Uuid,
    key: &str,
    fingerprint: &str,
    messages: &[NewMessage],
    now: Millis,
) -> Result<Outcome, DbErr> {
    let row = idempotency_key::ActiveModel {
        api_key_id: Set(api_key_id),
        key: Set(key.to_string()),
        fingerprint: Set(fingerprint.to_string()),
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

/// Stores a received SMS once per (device, external id).
/// Its `sms.received` event carries the SMS.
async fn incoming(txn: &Tx<'_>, row: inbox::ActiveModel, now: Millis) -> Result<Outcome, DbErr> {
    let conflict = OnConflict::columns([inbox::Column::DeviceId, inbox::Column::ExternalId])
        .do_nothing()
        .to_owned();
    let payload = json!({
        "id": row.id.as_ref(),
        "sim_slot": row.sim_slot.as_ref(),
        "sender": row.sender.as_ref(),
        "text": row.body.as_ref(),
        "received_at": row.received_at.as_ref(),
    });
    let device = row.device_id.as_ref().clone();
    let rows = inbox::Entity::insert(row)
        .on_conflict(conflict)
        .exec_in(txn)
        .await?;
    if rows > 0 {
        let event = NewEvent::device(EventType::SmsReceived, &device, Some(payload));
        log::insert(txn, &[event], now).await?;
    }
    Ok(outcome(rows))
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
            recipient: Set(it.recipient.to_string()),
            body: Set(it.text.clone()),
            parts: Set(it.parts as i32),
            state: Set(MessageState::Queued.as_str().to_string()),
            requested_device_id: Set(it.requested_device_id.clone().map(String::from)),
            requested_sim_slot: Set(it.requested_sim_slot.map(i16::from)),
            delivery_report: Set(it.delivery_report),
            created_at: Set(it.created_at),
            updated_at: Set(it.created_at),
            priority: Set(it.priority),
            schedule_at: Set(it.schedule_at),
            valid_until: Set(it.valid_until),
            allowed_devices: Set(it.allowed_devices.clone()),
            ..Default::default()
        });
        message::Entity::insert_many(rows).exec_in(txn).await?;
        let ids: Vec<Uuid> = chunk.iter().map(|it| it.id).collect();
        transitions::events_for(txn, &ids, "queued", None).await?;
    }
    Ok(())
}

/// `Applied` if a statement changed a row, else `Unchanged`.
fn outcome(rows: u64) -> Outcome {
    if rows > 0 {
        Outcome::Applied
    } else {
        Outcome::Unchanged
    }
}
