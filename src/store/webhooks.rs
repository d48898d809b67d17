//! What the store keeps for webhooks: the endpoints (`webhooks`: URL, filters, secrets, whether
//! enabled, the last event fanned out to it) and one durable row per delivery of an event to
//! an endpoint (`webhook_deliveries`: its body, status, attempts, next attempt).
//!
//! Writes go through the store's single writer as [`super::Change::Webhook`]; reads go
//! straight to the pool. Must never: be read or written outside `store`, or send anything.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::writer::Exec;
use super::{EventType, NewEvent, Outcome, Store, StoreError};
use crate::domain::Millis;

/// The tables' rows (sea-orm models, private to the store).
mod rows {
    pub mod webhook {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "webhooks")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: Uuid,
            pub owner_id: Uuid,
            pub scopes: String,
            pub url: String,
            pub types: String,
            pub device_id: Option<String>,
            pub secret: String,
            pub old_secret: Option<String>,
            pub old_secret_until: Option<i64>,
            pub enabled: bool,
            pub disabled_reason: Option<String>,
            pub failing_since: Option<i64>,
            pub cursor: i64,
            pub created_at: i64,
            pub compat_id: Option<String>,
            pub compat_event: Option<String>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod delivery {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "webhook_deliveries")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: Uuid,
            pub webhook_id: Uuid,
            pub event_id: i64,
            pub event_type: String,
            pub message_id: Option<Uuid>,
            pub body: String,
            pub status: String,
            pub attempts: i32,
            pub next_attempt_at: Option<i64>,
            pub last_attempt_at: Option<i64>,
            pub response_code: Option<i32>,
            pub latency_ms: Option<i64>,
            pub error: Option<String>,
            pub created_at: i64,
            pub delivered_at: Option<i64>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod compat_settings {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "compat_settings")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub owner_id: Uuid,
            pub signing_key: Option<String>,
            pub updated_at: i64,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use rows::{compat_settings, delivery, webhook};

/// A registered endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: Uuid,
    /// The tenant it belongs to (the creating key's id, a user's id).
    pub owner: Uuid,
    /// The creator's scopes, as text: what events it may be sent.
    pub scopes: String,
    pub url: String,
    /// Comma-separated type filters (`message.*`); empty: every type.
    pub types: String,
    pub device_id: Option<String>,
    pub secret: String,
    /// The secret before the last rotation, valid until `old_secret_until`.
    pub old_secret: Option<String>,
    pub old_secret_until: Option<Millis>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// When its deliveries started failing (cleared by a success).
    pub failing_since: Option<Millis>,
    /// The last event fanned out to it.
    pub cursor: i64,
    pub created_at: Millis,
    /// Its id in capcom6's SMS Gateway API, when registered there: then it is delivered in
    /// that app's envelope and signature, and `secret` is that app's signing key.
    pub compat_id: Option<String>,
    /// The event of that API it was registered for (`sms:delivered`).
    pub compat_event: Option<String>,
}

/// Where a delivery stands.
pub mod status {
    /// Not yet acknowledged; sent when due.
    pub const PENDING: &str = "pending";
    /// The endpoint answered 2xx.
    pub const DELIVERED: &str = "delivered";
    /// Every attempt failed within the retry window.
    pub const FAILED: &str = "failed";
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: i64,
    pub event_type: String,
    pub message_id: Option<Uuid>,
    /// The JSON body sent (kept, so a delivery outlives its event's retention).
    pub body: String,
    /// [`status`]: `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Option<Millis>,
    pub last_attempt_at: Option<Millis>,
    pub response_code: Option<u16>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
    pub created_at: Millis,
    pub delivered_at: Option<Millis>,
}

/// A delivery to create (by the fan-out, or a replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub webhook_id: Uuid,
    pub event_id: i64,
    pub event_type: String,
    pub message_id: Option<Uuid>,
    pub body: String,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivery: Uuid,
    pub webhook: Uuid,
    /// The delivery's status after it ([`status`]).
    pub status: &'static str,
    pub next_attempt_at: Option<Millis>,
    pub response_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// Disables the endpoint for this reason (a `410`, failing too long); its owner and URL
    /// go into the `webhook.disabled` event.
    pub disable: Option<(String, Uuid, String)>,
}

/// A write of webhooks.
#[derive(Debug, Clone)]
pub enum WebhookChange {
    Create(WebhookRecord),
    /// Removes an endpoint and its deliveries; `Unchanged` if there is none.
    Delete {
        id: Uuid,
    },
    /// The current secret becomes the old one, valid until `old_until`; `secret` is current.
    Rotate {
        id: Uuid,
        secret: String,
        old_until: Millis,
    },
    /// Enables an endpoint again: its failure clock restarts, its pending deliveries are due.
    Enable {
        id: Uuid,
    },
    /// New deliveries (one per webhook and event: a repeat adds nothing) and each webhook's
    /// new position in the log.
    FanOut {
        deliveries: Vec<NewDelivery>,
        cursors: Vec<(Uuid, i64)>,
    },
    /// An attempt's result.
    Attempted(Attempt),
    /// Makes one delivery pending and due now; `Unchanged` if there is none.
    Retry {
        webhook: Uuid,
        delivery: Uuid,
    },
    /// Makes these deliveries pending and due now, creating the missing ones.
    Replay {
        deliveries: Vec<NewDelivery>,
    },
    /// Sets the signing key of a tenant's webhooks of capcom6's API (its `/settings`
    /// `webhooks.signing_key`): kept for the ones to come, and the key of those that exist.
    SigningKey {
        owner: Uuid,
        key: String,
    },
}

/// Most deliveries per INSERT (15 values a row).
const INSERT_CHUNK: usize = 256;

/// Applies one webhook change in the writer's transaction; the events it tells of.
pub(super) async fn apply(
    txn: &super::writer::Tx<'_>,
    change: &WebhookChange,
    now: Millis,
) -> Result<(Outcome, Vec<NewEvent>), DbErr> {
    use delivery::Column as D;
    use webhook::Column as W;
    let mut events = Vec::new();
    let rows = match change {
        WebhookChange::Create(record) => {
            webhook::Entity::insert(active(record)).exec_in(txn).await?
        }
        WebhookChange::Delete { id } => {
            delivery::Entity::delete_many()
                .filter(D::WebhookId.eq(*id))
                .exec_in(txn)
                .await?;
            webhook::Entity::delete_many()
                .filter(W::Id.eq(*id))
                .exec_in(txn)
                .await?
        }
        WebhookChange::Rotate {
            id,
            secret,
            old_until,
        } => {
            webhook::Entity::update_many()
                .col_expr(W::OldSecret, Expr::col(W::Secret))
                .col_expr(W::OldSecretUntil, Expr::value(*old_until))
                .col_expr(W::Secret, Expr::value(secret.clone()))
                .filter(W::Id.eq(*id))
                .exec_in(txn)
                .await?
        }
        WebhookChange::Enable { id } => {
            delivery::Entity::update_many()
                .col_expr(D::NextAttemptAt, Expr::value(now))
                .filter(D::WebhookId.eq(*id))
                .filter(D::Status.eq(status::PENDING))
                .exec_in(txn)
                .await?;
            webhook::Entity::update_many()
                .col_expr(W::Enabled, Expr::value(true))
                .col_expr(W::DisabledReason, Expr::value(Option::<String>::None))
                .col_expr(W::FailingSince, Expr::value(Option::<i64>::None))
                .filter(W::Id.eq(*id))
                .exec_in(txn)
                .await?
        }
        WebhookChange::FanOut {
            deliveries,
            cursors,
        } => {
            insert_deliveries(txn, deliveries, now, false).await?;
            for (id, cursor) in cursors {
                webhook::Entity::update_many()
                    .col_expr(W::Cursor, Expr::value(*cursor))
                    .filter(W::Id.eq(*id))
                    .filter(W::Cursor.lt(*cursor))
                    .exec_in(txn)
                    .await?;
            }
            1
        }
        WebhookChange::Attempted(attempt) => attempted(txn, attempt, now, &mut events).await?,
        WebhookChange::Retry { webhook, delivery } => {
            delivery::Entity::update_many()
                .col_expr(D::Status, Expr::value(status::PENDING))
                .col_expr(D::NextAttemptAt, Expr::value(now))
                .filter(D::Id.eq(*delivery))
                .filter(D::WebhookId.eq(*webhook))
                .exec_in(txn)
                .await?
        }
        WebhookChange::Replay { deliveries } => {
            insert_deliveries(txn, deliveries, now, true).await?;
            1
        }
        WebhookChange::SigningKey { owner, key } => {
            use compat_settings::Column as S;
            let row = compat_settings::ActiveModel {
                owner_id: Set(*owner),
                signing_key: Set(Some(key.clone())),
                updated_at: Set(now),
            };
            compat_settings::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(S::OwnerId)
                        .update_columns([S::SigningKey, S::UpdatedAt])
                        .to_owned(),
                )
                .exec_in(txn)
                .await?;
            webhook::Entity::update_many()
                .col_expr(W::Secret, Expr::value(key.clone()))
                .filter(W::OwnerId.eq(*owner))
                .filter(W::CompatId.is_not_null())
                .exec_in(txn)
                .await?;
            1
        }
    };
    let outcome = if rows > 0 {
        Outcome::Applied
    } else {
        Outcome::Unchanged
    };
    Ok((outcome, events))
}

/// Most finished deliveries deleted per transaction.
const PRUNE_CHUNK: u64 = 5000;

/// Deletes up to [`PRUNE_CHUNK`] finished deliveries (delivered or failed) whose event has
/// left the event log (its retention); how many. Pending ones stay whatever their age. Reads
/// each endpoint's `(webhook_id, status, event_id)` index, so the table is never scanned.
pub(super) async fn prune_finished(txn: &super::writer::Tx<'_>) -> Result<u64, DbErr> {
    use delivery::Column as D;
    use sea_orm::sea_query::Query;
    use webhook::Column as W;
    let mut endpoints = Query::select();
    endpoints.column(W::Id).from(webhook::Entity);
    let mut finished = Query::select();
    finished
        .column(D::Id)
        .from(delivery::Entity)
        .and_where(Expr::col(D::WebhookId).in_subquery(endpoints))
        .and_where(Expr::col(D::Status).is_in([status::DELIVERED, status::FAILED]))
        .and_where(Expr::col(D::EventId).lt(Expr::cust(
            "(SELECT COALESCE(MIN(id), 9223372036854775807) FROM events)",
        )))
        .limit(PRUNE_CHUNK);
    let mut delete = Query::delete();
    delete
        .from_table(delivery::Entity)
        .and_where(Expr::col(D::Id).in_subquery(finished));
    txn.execute(&delete).await
}

async fn attempted(
    txn: &super::writer::Tx<'_>,
    attempt: &Attempt,
    now: Millis,
    events: &mut Vec<NewEvent>,
) -> Result<u64, DbErr> {
    use delivery::Column as D;
    use webhook::Column as W;
    let delivered = attempt.status == status::DELIVERED;
    let rows = delivery::Entity::update_many()
        .col_expr(D::Status, Expr::value(attempt.status))
        .col_expr(D::Attempts, Expr::col(D::Attempts).add(1))
        .col_expr(D::NextAttemptAt, Expr::value(attempt.next_attempt_at))
        .col_expr(D::LastAttemptAt, Expr::value(now))
        .col_expr(
            D::ResponseCode,
            Expr::value(attempt.response_code.map(i32::from)),
        )
        .col_expr(D::LatencyMs, Expr::value(attempt.latency_ms))
        .col_expr(D::Error, Expr::value(attempt.error.clone()))
        .col_expr(D::DeliveredAt, Expr::value(delivered.then_some(now)))
        .filter(D::Id.eq(attempt.delivery))
        .filter(D::Status.eq(status::PENDING))
        .exec_in(txn)
        .await?;
    if delivered {
        webhook::Entity::update_many()
            .col_expr(W::FailingSince, Expr::value(Option::<i64>::None))
            .filter(W::Id.eq(attempt.webhook))
            .exec_in(txn)
            .await?;
    } else {
        webhook::Entity::update_many()
            .col_expr(W::FailingSince, Expr::value(now))
            .filter(W::Id.eq(attempt.webhook))
            .filter(W::FailingSince.is_null())
            .exec_in(txn)
            .await?;
    }
    if let Some((reason, owner, url)) = &attempt.disable {
        let disabled = webhook::Entity::update_many()
            .col_expr(W::Enabled, Expr::value(false))
            .col_expr(W::DisabledReason, Expr::value(reason.clone()))
            .filter(W::Id.eq(attempt.webhook))
            .filter(W::Enabled.eq(true))
            .exec_in(txn)
            .await?;
        if disabled > 0 {
            events.push(NewEvent {
                kind: EventType::WebhookDisabled,
                message_id: None,
                device_id: None,
                owner: Some(*owner),
                payload: Some(json!({
                    "webhook_id": attempt.webhook,
                    "url": url,
                    "reason": reason,
                })),
            });
        }
    }
    Ok(rows)
}

/// Inserts deliveries, pending and due now; a delivery that exists is left alone or, with
/// `replay`, made pending and due again.
async fn insert_deliveries(
    txn: &super::writer::Tx<'_>,
    deliveries: &[NewDelivery],
    now: Millis,
    replay: bool,
) -> Result<(), DbErr> {
    use delivery::Column as D;
    for chunk in deliveries.chunks(INSERT_CHUNK) {
        let rows = chunk.iter().map(|it| delivery::ActiveModel {
            id: Set(Uuid::now_v7()),
            webhook_id: Set(it.webhook_id),
            event_id: Set(it.event_id),
            event_type: Set(it.event_type.clone()),
            message_id: Set(it.message_id),
            body: Set(it.body.clone()),
            status: Set(status::PENDING.to_string()),
            attempts: Set(0),
            next_attempt_at: Set(Some(now)),
            last_attempt_at: Set(None),
            response_code: Set(None),
            latency_ms: Set(None),
            error: Set(None),
            created_at: Set(now),
            delivered_at: Set(None),
        });
        let mut conflict = OnConflict::columns([D::WebhookId, D::EventId]);
        if replay {
            conflict.update_columns([D::Status, D::NextAttemptAt]);
        } else {
            conflict.do_nothing();
        }
        delivery::Entity::insert_many(rows)
            .on_conflict(conflict.to_owned())
            .exec_in(txn)
            .await?;
    }
    Ok(())
}

fn active(record: &WebhookRecord) -> webhook::ActiveModel {
    webhook::ActiveModel {
        id: Set(record.id),
        owner_id: Set(record.owner),
        scopes: Set(record.scopes.clone()),
        url: Set(record.url.clone()),
        types: Set(record.types.clone()),
        device_id: Set(record.device_id.clone()),
        secret: Set(record.secret.clone()),
        old_secret: Set(record.old_secret.clone()),
        old_secret_until: Set(record.old_secret_until),
        enabled: Set(record.enabled),
        disabled_reason: Set(record.disabled_reason.clone()),
        failing_since: Set(record.failing_since),
        cursor: Set(record.cursor),
        created_at: Set(record.created_at),
        compat_id: Set(record.compat_id.clone()),
        compat_event: Set(record.compat_event.clone()),
    }
}

fn webhook_record(row: webhook::Model) -> WebhookRecord {
    WebhookRecord {
        id: row.id,
        owner: row.owner_id,
        scopes: row.scopes,
        url: row.url,
        types: row.types,
        device_id: row.device_id,
        secret: row.secret,
        old_secret: row.old_secret,
        old_secret_until: row.old_secret_until,
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
        failing_since: row.failing_since,
        cursor: row.cursor,
        created_at: row.created_at,
        compat_id: row.compat_id,
        compat_event: row.compat_event,
    }
}

fn delivery_record(row: delivery::Model) -> DeliveryRecord {
    DeliveryRecord {
        id: row.id,
        webhook_id: row.webhook_id,
        event_id: row.event_id,
        event_type: row.event_type,
        message_id: row.message_id,
        body: row.body,
        status: row.status,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        next_attempt_at: row.next_attempt_at,
        last_attempt_at: row.last_attempt_at,
        response_code: row.response_code.and_then(|it| u16::try_from(it).ok()),
        latency_ms: row.latency_ms,
        error: row.error,
        created_at: row.created_at,
        delivered_at: row.delivered_at,
    }
}

impl Store {
    /// Every webhook, or those of `owner`, oldest first.
    pub async fn list_webhooks(
        &self,
        owner: Option<Uuid>,
    ) -> Result<Vec<WebhookRecord>, StoreError> {
        let mut query = webhook::Entity::find();
        if let Some(owner) = owner {
            query = query.filter(webhook::Column::OwnerId.eq(owner));
        }
        let rows = query
            .order_by_asc(webhook::Column::CreatedAt)
            .order_by_asc(webhook::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(webhook_record).collect())
    }

    /// The enabled webhooks.
    pub async fn enabled_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = webhook::Entity::find()
            .filter(webhook::Column::Enabled.eq(true))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(webhook_record).collect())
    }

    pub async fn get_webhook(&self, id: Uuid) -> Result<Option<WebhookRecord>, StoreError> {
        Ok(webhook::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(webhook_record))
    }

    /// Up to `limit` pending deliveries of a webhook, oldest event first.
    pub async fn pending_deliveries(
        &self,
        webhook: Uuid,
        limit: u64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = delivery::Entity::find()
            .filter(delivery::Column::WebhookId.eq(webhook))
            .filter(delivery::Column::Status.eq(status::PENDING))
            .order_by_asc(delivery::Column::EventId)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(delivery_record).collect())
    }

    /// A webhook's delivery log, newest event first: up to `limit` deliveries before event
    /// `before`, optionally of one status.
    pub async fn list_deliveries(
        &self,
        webhook: Uuid,
        status: Option<&str>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut condition = Condition::all().add(delivery::Column::WebhookId.eq(webhook));
        if let Some(status) = status {
            condition = condition.add(delivery::Column::Status.eq(status));
        }
        if let Some(before) = before {
            condition = condition.add(delivery::Column::EventId.lt(before));
        }
        let rows = delivery::Entity::find()
            .filter(condition)
            .order_by_desc(delivery::Column::EventId)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(delivery_record).collect())
    }

    /// The signing key a tenant set for its webhooks of capcom6's API, if it set one.
    pub async fn compat_signing_key(&self, owner: Uuid) -> Result<Option<String>, StoreError> {
        Ok(compat_settings::Entity::find_by_id(owner)
            .one(&self.db)
            .await?
            .and_then(|it| it.signing_key))
    }

    pub async fn get_delivery(&self, id: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
        Ok(delivery::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(delivery_record))
    }
}
