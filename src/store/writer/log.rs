//! The event log's writes: events inserted in the writer's transaction, beside the change they
//! tell of, in multi-row statements (never one round trip per event); the last id, published
//! after the commit; the pruning of events past their retention.
//!
//! Must never: commit, or insert an event for a change that did not apply.

use sea_orm::DbErr;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query, SimpleExpr};
use uuid::Uuid;

use super::super::entities::{event, message};
use super::super::events::{EventType, NewEvent};
use super::Tx;
use crate::domain::Millis;
use event::Column as E;

/// Most rows per INSERT (a power of two; 7 values a row).
const INSERT_CHUNK: usize = 256;

/// Events pruned per statement, so a prune never holds the writer long.
const PRUNE_CHUNK: u64 = 5000;

const COLUMNS: [E; 6] = [
    E::At,
    E::Kind,
    E::MessageId,
    E::DeviceId,
    E::OwnerId,
    E::Payload,
];

/// Inserts `events` at `now`, in chunks of a power of two rows (a few statement shapes).
pub(super) async fn insert(txn: &Tx<'_>, events: &[NewEvent], now: Millis) -> Result<(), DbErr> {
    let mut rest = events;
    while !rest.is_empty() {
        let n = rest.len().min(INSERT_CHUNK);
        let (chunk, tail) = rest.split_at(1 << n.ilog2());
        rest = tail;
        let mut insert = Query::insert();
        insert.into_table(event::Entity).columns(COLUMNS);
        for it in chunk {
            insert
                .values([
                    Expr::val(now),
                    Expr::val(it.kind.as_str()),
                    Expr::val(it.message_id),
                    Expr::val(it.device_id.clone()),
                    Expr::val(it.owner),
                    Expr::val(it.payload.as_ref().map(|it| it.to_string())),
                ])
                .map_err(|it| DbErr::Custom(it.to_string()))?;
        }
        txn.execute(&insert).await?;
    }
    Ok(())
}

/// One event of `kind` for each message of `ids` (duplicates count once), with the message's
/// owner and device as they are now, at `now` or, when `None`, at the message's creation.
/// One statement: `INSERT ... SELECT ... FROM messages WHERE id IN (...)`.
pub(super) async fn for_messages(
    txn: &Tx<'_>,
    ids: &[Uuid],
    kind: EventType,
    now: Option<Millis>,
) -> Result<(), DbErr> {
    use message::Column as M;
    if ids.is_empty() {
        return Ok(());
    }
    let mut select = Query::select();
    match now {
        Some(now) => select.expr(Expr::val(now)),
        None => select.column(M::CreatedAt),
    };
    select
        .expr(Expr::val(kind.as_str()))
        .column(M::Id)
        .column(M::DeviceId)
        .column(M::ApiKeyId)
        .expr(Expr::val(Option::<String>::None))
        .from(message::Entity)
        .and_where(Expr::col(M::Id).is_in(ids.iter().copied()));
    insert_select(txn, select).await
}

/// One event of `kind` for the message `id`, naming `device` (the message may no longer
/// hold it, after a retry) and carrying `payload`.
pub(super) async fn for_message(
    txn: &Tx<'_>,
    id: Uuid,
    kind: EventType,
    device: Option<&str>,
    payload: Option<serde_json::Value>,
    now: Millis,
) -> Result<(), DbErr> {
    use message::Column as M;
    let mut select = Query::select();
    select
        .expr(Expr::val(now))
        .expr(Expr::val(kind.as_str()))
        .column(M::Id)
        .expr(Expr::val(device.map(str::to_string)))
        .column(M::ApiKeyId)
        .expr(Expr::val(payload.map(|it| it.to_string())))
        .from(message::Entity)
        .and_where(Expr::col(M::Id).eq(id));
    insert_select(txn, select).await
}

async fn insert_select(
    txn: &Tx<'_>,
    select: sea_orm::sea_query::SelectStatement,
) -> Result<(), DbErr> {
    let mut insert = Query::insert();
    insert
        .into_table(event::Entity)
        .columns(COLUMNS)
        .select_from(select)
        .map_err(|it| DbErr::Custom(it.to_string()))?;
    txn.execute(&insert).await?;
    Ok(())
}

/// The id of the last event written (0 for none).
pub(super) async fn last_id(txn: &Tx<'_>) -> Result<i64, DbErr> {
    let mut select = Query::select();
    select
        .expr(SimpleExpr::from(Func::max(Expr::col(E::Id))))
        .from(event::Entity);
    let rows: Vec<(Option<i64>,)> = txn.query(&select).await?;
    Ok(rows.first().and_then(|it| it.0).unwrap_or(0))
}

/// Deletes up to [`PRUNE_CHUNK`] of the oldest events from before `before`; how many.
pub(super) async fn prune(txn: &Tx<'_>, before: Millis) -> Result<u64, DbErr> {
    let mut oldest = Query::select();
    oldest
        .column(E::Id)
        .from(event::Entity)
        .and_where(Expr::col(E::At).lt(before))
        .order_by(E::Id, sea_orm::sea_query::Order::Asc)
        .limit(PRUNE_CHUNK);
    let mut delete = Query::delete();
    delete
        .from_table(event::Entity)
        .and_where(Expr::col(E::Id).in_subquery(oldest));
    txn.execute(&delete).await
}
