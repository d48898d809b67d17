//! The database: the source of truth for API keys, devices, messages and received SMS.
//!
//! `store` is the only module that imports sea-orm. Every write goes through one writer, on a
//! thread of its own (`writer`), that commits many changes per transaction (group commit),
//! so a burst of requests costs one commit, and SQLite never sees two writers. Reads go
//! straight to the connection pool. Callers get plain records, never entities.
//!
//! Invariant: a write future resolves only after its transaction committed. Where a message
//! may go from each state is `MessageState::TRANSITIONS`; the writer's conditional updates
//! are built from it. Must never: write other than through the writer, or hand a caller an
//! entity.

pub mod access;
pub mod cluster;
mod compat;
mod consumers;
mod entities;
mod event_tail;
mod events;
mod health;
mod inbox_feed;
mod keys;
mod modem_ports;
mod modem_refs;
mod sim_cards;
mod statistics;
mod templates;
pub mod webhooks;
mod writer;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Order};
use sea_orm::{
    ColumnTrait, Condition, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use smshub_migrations::{Migrator, MigratorTrait};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::domain::{DeviceId, DeviceKind, MessageState, Millis, PhoneNumber};
pub use access::{AccessChange, AuditEntry, AuditFilter, NewKeyRow, SessionRecord, UserRecord};
pub use compat::SendGroup;
use entities::{device, idempotency_key, inbox, message, message_event};
pub use events::{Event, EventLog, EventType, NewEvent};
use health::WriteHealth;
pub use modem_refs::{ModemRef, ModemRefChange};
pub use sim_cards::{RoutingRuleRecord, SeenSim, SimCardChange, SimCardRecord, SimCounters};
pub use statistics::{DayCounts, SimCounts, Statistics};
pub use templates::{TemplateChange, TemplateRecord};
pub use webhooks::{
    Attempt, DeliveryRecord, NewDelivery, WebhookChange, WebhookRecord, status as delivery_status,
};
pub use writer::{Change, Outcome, Retry};

/// Database errors, as seen by the rest of the hub.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("the database writer has stopped")]
    WriterGone,
    /// The database cannot take writes now (disk full, read-only, I/O error, locked,
    /// unreachable): the hub answers `503` and recovers when it can write again.
    #[error("the database cannot take writes now: {0}")]
    Unavailable(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
}

/// How hard SQLite works to keep a commit across a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// WAL with `synchronous=FULL`: a commit survives a power cut or kernel crash.
    Full,
    /// WAL with `synchronous=NORMAL`: a commit survives a process crash; a power cut may lose
    /// the last commits (never corrupts).
    Normal,
}

/// An API key, without its secret.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created_at: Millis,
    pub revoked: bool,
    pub revoked_at: Option<Millis>,
    /// Its scopes, space-separated (`messages:send inbox:read`).
    pub scopes: String,
    pub expires_at: Option<Millis>,
    /// When it was last used, as last flushed (coalesced: at most once a minute).
    pub last_used_at: Option<Millis>,
    /// The devices it may send through (`DEVICE[:SLOT],…`); `None`: any.
    pub devices: Option<String>,
    /// Its rate-limit overrides (JSON); `None`: the hub's defaults.
    pub rate_limits: Option<String>,
    /// Who created it (a principal's label), if known.
    pub created_by: Option<String>,
}

/// A registered device and its stored history.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub id: DeviceId,
    pub name: String,
    pub kind: DeviceKind,
    pub token_hash: String,
    pub created_at: Millis,
    pub last_seen_at: Option<Millis>,
    pub model: Option<String>,
    pub app_version: Option<String>,
    pub sims: Option<serde_json::Value>,
    pub sent_count: i64,
    pub failed_count: i64,
    /// Per-device sending limits (JSON), overriding the hub's defaults.
    pub limits: Option<serde_json::Value>,
}

/// A device's stored counters (see [`Store::device_counters`]).
#[derive(Debug, Clone)]
pub struct DeviceCounters {
    pub id: DeviceId,
    pub created_at: Millis,
    pub sent_count: i64,
    pub failed_count: i64,
}

/// A message to be inserted.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub recipient: PhoneNumber,
    pub text: String,
    pub parts: u32,
    pub requested_device_id: Option<DeviceId>,
    pub requested_sim_slot: Option<u8>,
    pub delivery_report: bool,
    pub created_at: Millis,
    pub priority: i32,
    /// Not dispatched before this instant.
    pub schedule_at: Option<Millis>,
    /// Expires if not sent by this instant.
    pub valid_until: Option<Millis>,
    /// The devices it may go through (its key's restriction, `DEVICE[:SLOT],…`); `None`: any.
    pub allowed_devices: Option<String>,
}

/// Why a message failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    pub code: String,
    pub message: String,
    pub temporary: bool,
}

/// A stored outgoing message.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    pub id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub recipient: String,
    pub text: String,
    pub parts: u32,
    pub state: MessageState,
    pub requested_device_id: Option<DeviceId>,
    pub requested_sim_slot: Option<u8>,
    pub device_id: Option<DeviceId>,
    pub sim_slot: Option<u8>,
    pub delivery_report: bool,
    pub error: Option<MessageError>,
    pub attempts: u32,
    pub created_at: Millis,
    pub dispatched_at: Option<Millis>,
    pub accepted_at: Option<Millis>,
    pub sent_at: Option<Millis>,
    pub delivered_at: Option<Millis>,
    pub failed_at: Option<Millis>,
    pub updated_at: Millis,
    pub priority: i32,
    pub schedule_at: Option<Millis>,
    pub valid_until: Option<Millis>,
    /// Earliest next offer after a temporary failure (retry backoff).
    pub not_before: Option<Millis>,
    pub expired_at: Option<Millis>,
    pub cancelled_at: Option<Millis>,
    /// How many temporary failures were retried.
    pub retried: u32,
    /// The devices it may go through (`DEVICE[:SLOT],…`); `None`: any.
    pub allowed_devices: Option<String>,
}

/// One entry of a message's history beyond its state times: requeues, retries, expiry...
#[derive(Debug, Clone)]
pub struct MessageEvent {
    pub at: Millis,
    pub event: String,
    pub device_id: Option<String>,
    pub detail: Option<String>,
}

/// A stored idempotency key: the request's fingerprint and the messages it created.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    pub message_ids: Vec<Uuid>,
}

/// One recent offer of a SIM, to rebuild quota windows and sticky routes at start.
#[derive(Debug, Clone)]
pub struct RecentSend {
    pub device_id: DeviceId,
    pub sim_slot: Option<u8>,
    pub recipient: String,
    pub parts: u32,
    pub dispatched_at: Millis,
}

/// A received SMS.
#[derive(Debug, Clone)]
pub struct InboxRecord {
    pub id: Uuid,
    pub device_id: String,
    pub sim_slot: Option<u8>,
    pub sender: String,
    pub text: String,
    pub received_at: Millis,
    pub created_at: Millis,
}

/// Filters for listing messages. `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub state: Option<MessageState>,
    /// Only messages that went out (`sent` or `delivered`), newest send first.
    pub outbox: bool,
    pub device_id: Option<String>,
    pub recipient: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// Only messages sent under this tenant (API key or user).
    pub owner: Option<Uuid>,
    /// Only messages sent with this API key (or by this user): a filter the caller chose,
    /// applied on top of `owner`.
    pub api_key_id: Option<Uuid>,
}

/// The outcomes of submitted changes, available once their transaction committed.
pub struct Committed(
    oneshot::Receiver<Result<Vec<Outcome>, StoreError>>,
    Arc<WriteHealth>,
);

impl std::future::Future for Committed {
    type Output = Result<Vec<Outcome>, StoreError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|it| it.unwrap_or(Err(StoreError::WriterGone)))
            .map(|it| {
                self.1.record(&it);
                it
            })
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    writer: mpsc::Sender<writer::Job>,
    keys: keys::KeyLookup,
    /// The last readiness probe: when, and whether it committed.
    probe: Arc<tokio::sync::Mutex<Option<(std::time::Instant, bool)>>>,
    /// Outcomes of real writes (the probe's aside), for readiness.
    health: Arc<WriteHealth>,
    events: EventLog,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`, and starts the writer.
    pub async fn open(url: &str, durability: Durability) -> Result<Store, StoreError> {
        Store::open_fenced(url, durability, None).await
    }

    /// Migrates the database at `url` (under the migration lock, for PostgreSQL), and nothing
    /// else: a cluster node does so before it takes the lead.
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        let db = Database::connect(url).await?;
        let out = cluster::with_migration_lock(url, async {
            Migrator::up(&db, None).await.map_err(StoreError::from)
        })
        .await;
        let _ = db.close().await;
        out
    }

    /// [`Store::open`] for the leader of a cluster: with `fence`, the epoch it took, each of
    /// the writer's transactions checks the lead is still its own (PostgreSQL only).
    pub async fn open_fenced(
        url: &str,
        durability: Durability,
        fence: Option<i64>,
    ) -> Result<Store, StoreError> {
        let mut options = ConnectOptions::new(url.to_string());
        options
            .sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10));
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            let synchronous = match durability {
                Durability::Full => sea_orm::sqlx::sqlite::SqliteSynchronous::Full,
                Durability::Normal => sea_orm::sqlx::sqlite::SqliteSynchronous::Normal,
            };
            options
                .max_connections(4)
                .min_connections(1)
                .map_sqlx_sqlite_opts(move |it| {
                    it.create_if_missing(true)
                        .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                        .synchronous(synchronous)
                        .busy_timeout(Duration::from_secs(10))
                        .pragma("temp_store", "memory")
                        .pragma("cache_size", "-16384")
                        .statement_cache_capacity(256)
                });
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            options.max_connections(16);
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        let db = Database::connect(options.clone()).await?;
        if sqlite {
            Migrator::up(&db, None).await?;
        } else {
            // Nodes of a cluster may start together: one migrates, the others wait and find
            // nothing to do. A node older than the database (a migration it does not know was
            // applied) stops here with sea-orm-migration's error: one version per cluster.
            cluster::with_migration_lock(url, async {
                Migrator::up(&db, None).await.map_err(StoreError::from)
            })
            .await?;
        }
        // SQLite: the writer keeps one connection of its own, driven from its own thread
        // (`writer::Conn`), so its page cache stays valid between commits (a connection drops
        // its cache when another one wrote) and no statement waits for a hand-over.
        let (writer_db, keys) =
            if sqlite && !url.contains(":memory:") && !url.contains("mode=memory") {
                let path = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(|it| StoreError::Db(sea_orm::DbErr::Custom(it.to_string())))?
                    .get_filename()
                    .to_path_buf();
                (
                    writer::Conn::sqlite(&path, durability)?,
                    keys::KeyLookup::sqlite(&path)?,
                )
            } else {
                (writer::Conn::Pool(db.clone(), fence), keys::KeyLookup::Pool)
            };
        let last_event = events::last_id(&db).await?;
        let (committed, watching) = tokio::sync::watch::channel(last_event);
        let retention_ms = Arc::new(std::sync::atomic::AtomicI64::new(
            events::DEFAULT_RETENTION_MS,
        ));
        let publish = writer::Publish {
            committed,
            retention_ms: retention_ms.clone(),
        };
        let writer = writer::spawn(writer_db, durability, publish);
        Ok(Store {
            events: EventLog::new(db.clone(), watching, retention_ms),
            db,
            writer,
            keys,
            probe: Default::default(),
            health: Default::default(),
        })
    }

    /// The event log: its rows by position, and the signal of new ones.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Applies one change in the next group commit.
    pub async fn apply(&self, change: Change) -> Result<Outcome, StoreError> {
        let mut outcomes = self.apply_all(vec![change]).await?;
        Ok(outcomes.pop().unwrap_or(Outcome::Unchanged))
    }

    /// Applies changes together in the next group commit, one outcome per change in order.
    pub async fn apply_all(&self, changes: Vec<Change>) -> Result<Vec<Outcome>, StoreError> {
        let keys_changed = changes.iter().any(Change::changes_keys);
        let outcomes = self.send(changes).await?.await;
        if keys_changed {
            // Whether or not it committed: a needless bump only costs a lookup.
            self.keys.changed();
        }
        outcomes
    }

    /// Queues changes for the writer now and returns a future of their outcomes. Changes
    /// submitted one after another by the same task are applied in that order, which lets a
    /// caller keep going while earlier changes commit.
    ///
    /// A change to an API key goes through [`Store::apply`] instead, which tells the key
    /// caches when it committed.
    pub async fn submit(&self, changes: Vec<Change>) -> Result<Committed, StoreError> {
        debug_assert!(
            !changes.iter().any(Change::changes_keys),
            "key changes go through `apply`"
        );
        self.send(changes).await
    }

    async fn send(&self, changes: Vec<Change>) -> Result<Committed, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(writer::Job {
                changes,
                reply,
                crash: false,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Committed(rx, self.health.clone()))
    }

    /// Fault injection for tests: the writer panics when it takes this request (it is
    /// restarted; see `writer`).
    #[doc(hidden)]
    pub async fn crash_writer(&self) {
        let (reply, _rx) = oneshot::channel();
        let _ = self
            .writer
            .send(writer::Job {
                changes: Vec::new(),
                reply,
                crash: true,
            })
            .await;
    }

    /// Whether the writer thread runs (liveness).
    pub fn writer_alive(&self) -> bool {
        !self.writer.is_closed()
    }

    /// Whether a write can commit now (readiness): no write failed for want of a writable
    /// database in the last seconds without one succeeding since, and a real write through
    /// the writer commits (at most one per second whoever asks: the result is shared; failed
    /// after 3 s without answer).
    pub async fn can_commit(&self) -> bool {
        if self.health.failing() {
            return false;
        }
        let mut last = self.probe.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < Duration::from_secs(1)
        {
            return ok;
        }
        let probe = async {
            let (reply, rx) = oneshot::channel();
            let job = writer::Job {
                changes: vec![Change::Probe],
                reply,
                crash: false,
            };
            self.writer.send(job).await.ok()?;
            rx.await.ok()?.ok()
        };
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(3), probe).await,
            Ok(Some(_))
        );
        *last = Some((std::time::Instant::now(), ok));
        ok
    }

    /// Waits until every change sent before this call is committed (used at shutdown). The
    /// writer keeps running and takes changes sent after it.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.apply_all(Vec::new()).await.map(|_| ())
    }

    /// The API key whose secret hashes to `key_hash`, revoked or not.
    /// Looked up afresh each time (never cached), so a revocation counts at once.
    pub async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.keys.find(&self.db, key_hash).await
    }

    /// The device with this id.
    pub async fn find_device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(device::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .map(device_record))
    }

    /// The device whose token hashes to `token_hash` (a device that names itself by its token
    /// alone, as capcom6's app does).
    pub async fn find_device_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(device::Entity::find()
            .filter(device::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
            .map(device_record))
    }

    /// Every device, oldest registration first.
    pub async fn list_devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = device::Entity::find()
            .order_by_asc(device::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(device_record).collect())
    }

    /// Every device's counters, for the console's history sampler: (id, created_at,
    /// sent_count, failed_count), four columns and no JSON to parse.
    pub async fn device_counters(&self) -> Result<Vec<DeviceCounters>, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = device::Entity::find()
            .select_only()
            .column(device::Column::Id)
            .column(device::Column::CreatedAt)
            .column(device::Column::SentCount)
            .column(device::Column::FailedCount)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, created_at, sent_count, failed_count)| DeviceCounters {
                    id: DeviceId::stored(id),
                    created_at,
                    sent_count,
                    failed_count,
                },
            )
            .collect())
    }

    /// The message with this id.
    pub async fn get_message(&self, id: Uuid) -> Result<Option<MessageRecord>, StoreError> {
        Ok(message::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(message_record))
    }

    /// Messages matching `filter`, newest first, and how many match in all.
    pub async fn list_messages(
        &self,
        filter: &MessageFilter,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<MessageRecord>, u64), StoreError> {
        // The database counts in a signed 64-bit integer: a larger offset would not bind.
        let offset = std::cmp::Ord::min(offset, i64::MAX as u64);
        let mut query = message::Entity::find();
        if let Some(state) = filter.state {
            query = query.filter(message::Column::State.eq(state.as_str()));
        }
        if filter.outbox {
            query = query.filter(message::Column::State.is_in([
                MessageState::Sent.as_str(),
                MessageState::Delivered.as_str(),
            ]));
        }
        if let Some(device) = &filter.device_id {
            query = query.filter(message::Column::DeviceId.eq(device.as_str()));
        }
        if let Some(recipient) = &filter.recipient {
            query = query.filter(message::Column::Recipient.eq(recipient.as_str()));
        }
        if let Some(owner) = filter.owner {
            query = query.filter(message::Column::ApiKeyId.eq(owner));
        }
        if let Some(key) = filter.api_key_id {
            query = query.filter(message::Column::ApiKeyId.eq(key));
        }
        if let Some(since) = filter.since {
            query = query.filter(message::Column::CreatedAt.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(message::Column::CreatedAt.lt(until));
        }
        let total = query.clone().count(&self.db).await?;
        let newest = if filter.outbox {
            message::Column::SentAt
        } else {
            message::Column::CreatedAt
        };
        let rows = query
            .order_by(newest, Order::Desc)
            .order_by(message::Column::Id, Order::Desc)
            .limit(limit)
            .offset(offset)
            .all(&self.db)
            .await?;
        Ok((rows.into_iter().map(message_record).collect(), total))
    }

    /// Number of messages in each state.
    pub async fn count_by_state(&self) -> Result<HashMap<MessageState, u64>, StoreError> {
        let rows: Vec<(String, i64)> = message::Entity::find()
            .select_only()
            .column(message::Column::State)
            .column_as(Expr::col(message::Column::Id).count(), "n")
            .group_by(message::Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(state, n)| {
                MessageState::parse(&state).map(|it| (it, u64::try_from(n).unwrap_or(0)))
            })
            .collect())
    }

    /// Messages not yet final that a device holds or waits for: what the dispatcher rebuilds
    /// its queues from at start, oldest first.
    pub async fn open_messages(&self) -> Result<Vec<MessageRecord>, StoreError> {
        let rows = message::Entity::find()
            .filter(message::Column::State.is_in([
                MessageState::Queued.as_str(),
                MessageState::Dispatched.as_str(),
                MessageState::Accepted.as_str(),
            ]))
            .order_by_asc(message::Column::CreatedAt)
            .order_by_asc(message::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(message_record).collect())
    }

    /// The history entries of a message, oldest first.
    pub async fn message_events(&self, id: Uuid) -> Result<Vec<MessageEvent>, StoreError> {
        let rows = message_event::Entity::find()
            .filter(message_event::Column::MessageId.eq(id))
            .order_by_asc(message_event::Column::At)
            .order_by_asc(message_event::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|it| MessageEvent {
                at: it.at,
                event: it.event,
                device_id: it.device_id,
                detail: it.detail,
            })
            .collect())
    }

    /// The messages with these ids, in the given order (missing ones skipped).
    pub async fn get_messages(&self, ids: &[Uuid]) -> Result<Vec<MessageRecord>, StoreError> {
        let rows = message::Entity::find()
            .filter(message::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?;
        let mut by_id: HashMap<Uuid, MessageRecord> = rows
            .into_iter()
            .map(|it| (it.id, message_record(it)))
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// What an API key's idempotency key stands for, if it was used.
    pub async fn find_idempotency(
        &self,
        api_key_id: Uuid,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = idempotency_key::Entity::find_by_id((api_key_id, key.to_string()))
            .one(&self.db)
            .await?;
        Ok(row.map(|it| IdempotencyRecord {
            fingerprint: it.fingerprint,
            message_ids: it
                .message_ids
                .split(',')
                .filter_map(|id| Uuid::parse_str(id).ok())
                .collect(),
        }))
    }

    /// Offers made since `since` (any state after dispatch), oldest first: the input for
    /// quota windows and sticky routes.
    pub async fn recent_sends(&self, since: Millis) -> Result<Vec<RecentSend>, StoreError> {
        type Row = (Option<String>, Option<i16>, String, i32, Option<i64>);
        let rows: Vec<Row> = message::Entity::find()
            .select_only()
            .column(message::Column::DeviceId)
            .column(message::Column::SimSlot)
            .column(message::Column::Recipient)
            .column(message::Column::Parts)
            .column(message::Column::DispatchedAt)
            .filter(message::Column::DispatchedAt.gte(since))
            .filter(message::Column::DeviceId.is_not_null())
            .order_by_asc(message::Column::DispatchedAt)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(device, sim, recipient, parts, at)| {
                Some(RecentSend {
                    device_id: DeviceId::stored(device?),
                    sim_slot: sim.and_then(|it| u8::try_from(it).ok()),
                    recipient,
                    parts: u32::try_from(parts).unwrap_or(1),
                    dispatched_at: at?,
                })
            })
            .collect())
    }

    /// Received SMS, newest first, and how many match in all.
    pub async fn list_inbox(
        &self,
        device_id: Option<&str>,
        sender: Option<&str>,
        search: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<InboxRecord>, u64), StoreError> {
        let mut query = inbox::Entity::find();
        if let Some(device) = device_id {
            query = query.filter(inbox::Column::DeviceId.eq(device));
        }
        if let Some(sender) = sender {
            query = query.filter(inbox::Column::Sender.eq(sender));
        }
        if let Some(search) = search {
            // A substring of the sender or the text, its own `%` and `_` taken literally;
            // lowered on both sides, so case-blind alike on SQLite and PostgreSQL (for the
            // letters both databases lower: ASCII on SQLite).
            let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
            let like = |column: inbox::Column| {
                Expr::from(Func::lower(Expr::col(column)))
                    .like(LikeExpr::new(pattern.clone()).escape('\\'))
            };
            query = query.filter(
                Condition::any()
                    .add(like(inbox::Column::Sender))
                    .add(like(inbox::Column::Body)),
            );
        }
        let total = query.clone().count(&self.db).await?;
        let rows = query
            .order_by(inbox::Column::ReceivedAt, Order::Desc)
            .order_by(inbox::Column::Id, Order::Desc)
            .limit(limit)
            .offset(std::cmp::Ord::min(offset, i64::MAX as u64))
            .all(&self.db)
            .await?;
        // Two reads: an SMS stored between them is on the page but not in the count. SMS are
        // never deleted, so the total is at least what the page shows.
        let total = std::cmp::Ord::max(total, offset.saturating_add(rows.len() as u64));
        let records = rows
            .into_iter()
            .map(|it| InboxRecord {
                id: it.id,
                device_id: it.device_id,
                sim_slot: it.sim_slot.map(|s| s as u8),
                sender: it.sender,
                text: it.body,
                received_at: it.received_at,
                created_at: it.created_at,
            })
            .collect();
        Ok((records, total))
    }

    /// Whether the database answers (for health probes).
    pub async fn ping(&self) -> bool {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres | DbBackend::Sqlite => "SELECT 1",
            _ => "SELECT 1",
        };
        self.db
            .execute_raw(Statement::from_string(backend, sql))
            .await
            .is_ok()
    }
}

fn device_record(it: device::Model) -> DeviceRecord {
    DeviceRecord {
        id: DeviceId::stored(it.id),
        name: it.name,
        // Only the hub writes the column, always a `DeviceKind` name.
        kind: DeviceKind::parse(&it.kind).unwrap_or(DeviceKind::Android),
        token_hash: it.token_hash,
        created_at: it.created_at,
        last_seen_at: it.last_seen_at,
        model: it.model,
        app_version: it.app_version,
        sims: it.sims,
        sent_count: it.sent_count,
        failed_count: it.failed_count,
        limits: it.limits,
    }
}

fn message_record(it: message::Model) -> MessageRecord {
    let error = it.error_code.map(|code| MessageError {
        code,
        message: it.error_message.unwrap_or_default(),
        temporary: it.error_temporary.unwrap_or(false),
    });
    MessageRecord {
        id: it.id,
        api_key_id: it.api_key_id,
        recipient: it.recipient,
        text: it.body,
        parts: u32::try_from(it.parts).unwrap_or(0),
        state: MessageState::parse(&it.state).unwrap_or(MessageState::Failed),
        requested_device_id: it.requested_device_id.map(DeviceId::stored),
        requested_sim_slot: it.requested_sim_slot.map(|s| s as u8),
        device_id: it.device_id.map(DeviceId::stored),
        sim_slot: it.sim_slot.map(|s| s as u8),
        delivery_report: it.delivery_report,
        error,
        attempts: u32::try_from(it.attempts).unwrap_or(0),
        created_at: it.created_at,
        dispatched_at: it.dispatched_at,
        accepted_at: it.accepted_at,
        sent_at: it.sent_at,
        delivered_at: it.delivered_at,
        failed_at: it.failed_at,
        updated_at: it.updated_at,
        priority: it.priority,
        schedule_at: it.schedule_at,
        valid_until: it.valid_until,
        not_before: it.not_before,
        expired_at: it.expired_at,
        cancelled_at: it.cancelled_at,
        retried: u32::try_from(it.retried).unwrap_or(0),
        allowed_devices: it.allowed_devices,
    }
}

/// `text` for a `LIKE … ESCAPE '\'` pattern: its `%`, `_` and `\` match themselves.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
