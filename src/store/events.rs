//! The event log: what the writer recorded (`writer/log.rs`), read by position.
//!
//! Every change a client may care about is a row of `events`, written in the transaction of
//! the change. Consumers (streams, webhooks, MQTT) hold a position (the last id they handled),
//! read the rows after it, and wait on [`EventLog::subscribe`] (the id of the last committed
//! event, sent by the writer after each commit) when they have read everything: nobody polls
//! the table in a loop, and a consumer that falls behind only reads more rows, holding no
//! queue in memory. Readers that follow the log closely share one in-memory tail of it
//! (`event_tail.rs`): one query per commit, however many streams are open.
//!
//! Must never: be written other than by the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use super::StoreError;
use super::entities::event;
use super::event_tail::Tail;
use crate::domain::Millis;

/// Every kind of event, by its dotted name (the README's table lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    MessageQueued,
    MessageDispatched,
    MessageAccepted,
    MessageSent,
    MessageDelivered,
    MessageFailed,
    MessageExpired,
    MessageCancelled,
    MessageRetried,
    MessageRequeued,
    SmsReceived,
    DeviceOnline,
    DeviceOffline,
    DeviceRested,
    DeviceStatus,
    DeviceCreated,
    DeviceDeleted,
    ModemAttached,
    ModemDetached,
    KeyCreated,
    KeyRevoked,
    WebhookDisabled,
}

impl EventType {
    pub const ALL: [EventType; 22] = [
        EventType::MessageQueued,
        EventType::MessageDispatched,
        EventType::MessageAccepted,
        EventType::MessageSent,
        EventType::MessageDelivered,
        EventType::MessageFailed,
        EventType::MessageExpired,
        EventType::MessageCancelled,
        EventType::MessageRetried,
        EventType::MessageRequeued,
        EventType::SmsReceived,
        EventType::DeviceOnline,
        EventType::DeviceOffline,
        EventType::DeviceRested,
        EventType::DeviceStatus,
        EventType::DeviceCreated,
        EventType::DeviceDeleted,
        EventType::ModemAttached,
        EventType::ModemDetached,
        EventType::KeyCreated,
        EventType::KeyRevoked,
        EventType::WebhookDisabled,
    ];

    /// The dotted name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        use EventType as T;
        match self {
            T::MessageQueued => "message.queued",
            T::MessageDispatched => "message.dispatched",
            T::MessageAccepted => "message.accepted",
            T::MessageSent => "message.sent",
            T::MessageDelivered => "message.delivered",
            T::MessageFailed => "message.failed",
            T::MessageExpired => "message.expired",
            T::MessageCancelled => "message.cancelled",
            T::MessageRetried => "message.retried",
            T::MessageRequeued => "message.requeued",
            T::SmsReceived => "sms.received",
            T::DeviceOnline => "device.online",
            T::DeviceOffline => "device.offline",
            T::DeviceRested => "device.rested",
            T::DeviceStatus => "device.status",
            T::DeviceCreated => "device.created",
            T::DeviceDeleted => "device.deleted",
            T::ModemAttached => "modem.attached",
            T::ModemDetached => "modem.detached",
            T::KeyCreated => "key.created",
            T::KeyRevoked => "key.revoked",
            T::WebhookDisabled => "webhook.disabled",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|it| it.as_str() == name)
    }

    /// The message event a history entry of `message_events` stands for.
    pub fn of_history(name: &str) -> Option<EventType> {
        Some(match name {
            "queued" => EventType::MessageQueued,
            "dispatched" => EventType::MessageDispatched,
            "accepted" => EventType::MessageAccepted,
            "sent" => EventType::MessageSent,
            "delivered" => EventType::MessageDelivered,
            "failed" | "outcome_unknown" => EventType::MessageFailed,
            "expired" => EventType::MessageExpired,
            "cancelled" => EventType::MessageCancelled,
            "retry" => EventType::MessageRetried,
            "requeued" => EventType::MessageRequeued,
            _ => return None,
        })
    }
}

/// An event to record, in the transaction of the change it tells of.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventType,
    pub message_id: Option<Uuid>,
    pub device_id: Option<String>,
    /// Whose it is: the API key a message was sent under, a key's own id.
    pub owner: Option<Uuid>,
    pub payload: Option<serde_json::Value>,
}

impl NewEvent {
    /// An event about a device.
    pub fn device(kind: EventType, device: &str, payload: Option<serde_json::Value>) -> NewEvent {
        NewEvent {
            kind,
            message_id: None,
            device_id: Some(device.to_string()),
            owner: None,
            payload,
        }
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    /// The dotted type name (`message.sent`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Milliseconds since the epoch.
    pub at: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing)]
    pub owner: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

/// Read access to the log, and the writer's signal of new events; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    db: DatabaseConnection,
    committed: watch::Receiver<i64>,
    /// Events older than this many milliseconds are pruned by the writer.
    pub(super) retention_ms: Arc<AtomicI64>,
    /// The newest events, shared by the readers of this process.
    tail: Arc<tokio::sync::Mutex<Tail>>,
}

/// Rows read per query when the shared tail catches up with the writer.
const TAIL_PAGE: u64 = 1024;

/// Default retention: 7 days.
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

impl EventLog {
    pub(super) fn new(
        db: DatabaseConnection,
        committed: watch::Receiver<i64>,
        retention_ms: Arc<AtomicI64>,
    ) -> EventLog {
        let last = *committed.borrow();
        EventLog {
            db,
            committed,
            retention_ms,
            tail: Arc::new(tokio::sync::Mutex::new(Tail::new(last))),
        }
    }

    /// The id of the last committed event, changing after each commit that wrote events.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.committed.clone()
    }

    /// The id of the last committed event (0 for none yet).
    pub fn last_id(&self) -> i64 {
        *self.committed.borrow()
    }

    /// Sets how long events are kept.
    pub fn set_retention(&self, retention: std::time::Duration) {
        let ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        self.retention_ms.store(ms.max(1000), Ordering::Relaxed);
    }

    /// Up to `limit` events after `after`, oldest first, optionally only those of one message
    /// or device.
    pub async fn after(
        &self,
        after: i64,
        limit: u64,
        message: Option<Uuid>,
        device: Option<&str>,
    ) -> Result<Vec<Event>, StoreError> {
        let last = self.last_id();
        let mut tail = self.tail.lock().await;
        if tail.covers(after) {
            // One query per commit for every reader: the first to find the tail behind
            // reads what is missing.
            while tail.top() < last {
                let rows = self.read(tail.top(), TAIL_PAGE, None, None).await?;
                let full = rows.len() as u64 == TAIL_PAGE;
                tail.extend(rows, (!full).then_some(last));
            }
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            return Ok(tail.after(after, limit, message, device));
        }
        drop(tail);
        self.read(after, limit, message, device).await
    }

    async fn read(
        &self,
        after: i64,
        limit: u64,
        message: Option<Uuid>,
        device: Option<&str>,
    ) -> Result<Vec<Event>, StoreError> {
        let mut query = event::Entity::find().filter(event::Column::Id.gt(after));
        if let Some(message) = message {
            query = query.filter(event::Column::MessageId.eq(message));
        }
        if let Some(device) = device {
            query = query.filter(event::Column::DeviceId.eq(device));
        }
        let rows = query
            .order_by_asc(event::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(record).collect())
    }

    /// The event with this id, if still kept.
    pub async fn get(&self, id: i64) -> Result<Option<Event>, StoreError> {
        Ok(event::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(record))
    }
}

fn record(row: event::Model) -> Event {
    Event {
        id: row.id,
        kind: row.kind,
        at: row.at,
        message_id: row.message_id,
        device_id: row.device_id,
        owner: row.owner_id,
        payload: row.payload.and_then(|it| serde_json::from_str(&it).ok()),
    }
}

/// The id of the last event stored (0 for none), read at start.
pub(super) async fn last_id(db: &DatabaseConnection) -> Result<i64, StoreError> {
    let last = event::Entity::find()
        .order_by_desc(event::Column::Id)
        .one(db)
        .await?;
    Ok(last.map_or(0, |it| it.id))
}
