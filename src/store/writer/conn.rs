//! The writer's connection: a SQLite file opened in the writer's own thread, or the pool.
//!
//! The writer builds its statements with sea-orm and sea-query either way; this module runs
//! them. Through sqlx, every statement is a round trip to the connection's worker thread and
//! back, and under load each hand-over waits for a core: those waits, not SQLite, were most of
//! a group commit's time. A SQLite file is therefore opened a second time with rusqlite and
//! driven from the writer's thread, with no hand-over at all; values are bound exactly as
//! sqlx binds them (UUIDs as 16-byte blobs, JSON as text, booleans as integers), so the
//! pool reads back what the writer wrote. PostgreSQL and in-memory SQLite (one database per
//! connection) go through the pool.
//!
//! Must never: bind a value otherwise than sqlx would (the pool must read back what the writer
//! wrote), or leave a transaction open when its [`Tx`] is dropped uncommitted.

use std::path::Path;

use rusqlite::types::{FromSql, ToSqlOutput, Value as Lite};
use sea_orm::sea_query::Value;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, QueryResult,
    StatementBuilder, TransactionTrait, TryGetable,
};

use crate::store::Durability;

/// Prepared statements kept per connection: the writer's statements come in a few dozen
/// shapes (runs are padded to powers of two).
const STATEMENT_CACHE: usize = 256;

pub(crate) enum Conn {
    /// A pool (PostgreSQL, or SQLite in memory); with the epoch of a cluster's leader, every
    /// transaction first checks the lead is still its own ([`check_fence`]).
    Pool(DatabaseConnection, Option<i64>),
    Sqlite(rusqlite::Connection),
}

impl Conn {
    /// Opens the SQLite database file at `path` (already created and migrated by the pool)
    /// for the writer, with the pool's settings.
    pub(crate) fn sqlite(path: &Path, durability: Durability) -> Result<Conn, DbErr> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(err)?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        // The same pragmas sqlx sets on the pool's connections (foreign keys on is sqlx's
        // default).
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
             PRAGMA foreign_keys = ON; PRAGMA temp_store = memory; PRAGMA cache_size = -16384; \
             PRAGMA wal_autocheckpoint = {CHECKPOINT_BACKSTOP_PAGES};"
        ))
        .map_err(err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Conn::Sqlite(conn))
    }

    /// For a SQLite file, starts the thread that copies the WAL back into the database
    /// ([`checkpoints`]); it stops when the returned guard is dropped.
    pub(crate) fn start_checkpoints(&self) -> Option<std::sync::mpsc::Sender<()>> {
        let Conn::Sqlite(conn) = self else {
            return None;
        };
        let path = conn.path().filter(|it| !it.is_empty())?.to_string();
        let (guard, stop) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("smshub-checkpoint".into())
            .spawn(move || checkpoints(&path, &stop))
            .ok()?;
        Some(guard)
    }

    /// Opens a SQLite file again (after it refused writes as read-only: SQLite opens a file it
    /// may not write read-only and stays so, so a fixed permission needs a new connection).
    /// Keeps the current connection if the file cannot be opened.
    pub(crate) fn reopen(&mut self, durability: Durability) {
        let Conn::Sqlite(conn) = self else {
            return;
        };
        let Some(path) = conn.path().filter(|it| !it.is_empty()).map(Path::new) else {
            return;
        };
        match Conn::sqlite(path, durability) {
            Ok(fresh) => *self = fresh,
            Err(error) => tracing::warn!(%error, "could not reopen the database"),
        }
    }

    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>, DbErr> {
        match self {
            Conn::Pool(db, fence) => {
                let txn = db.begin().await?;
                if let Some(epoch) = fence {
                    check_fence(&txn, *epoch).await?;
                }
                Ok(Tx::Pool(txn))
            }
            Conn::Sqlite(conn) => {
                conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
                Ok(Tx::Sqlite(Open(conn)))
            }
        }
    }
}

/// The exit code of a leader whose writer found another node leading (the same as a leader
/// that lost its lock, `cluster::LOST_LOCK_EXIT`).
const LOST_LEAD_EXIT: i32 = 75;

/// Fails the transaction unless the cluster's epoch is still `epoch`, and holds the epoch's
/// row `FOR SHARE` until the transaction ends: a node taking the lead raises the epoch, which
/// waits for this transaction, and the old leader's next one finds it and stops the process.
/// So a leader that lost the lead commits nothing more, and answers no `202`.
async fn check_fence(txn: &DatabaseTransaction, epoch: i64) -> Result<(), DbErr> {
    let row = txn
        .query_one_raw(sea_orm::Statement::from_string(
            txn.get_database_backend(),
            "SELECT epoch FROM cluster_epoch WHERE id = 1 FOR SHARE",
        ))
        .await?;
    let now: Option<i64> = row.map(|it| it.try_get_by_index(0)).transpose()?;
    if now == Some(epoch) {
        return Ok(());
    }
    // Another node leads: this one stops at once, before it offers more work it can no
    // longer record (a supervisor restarts it as a follower).
    tracing::error!(epoch, ?now, "another node took the lead: stopping");
    std::process::exit(LOST_LEAD_EXIT);
}

/// WAL pages after which the writer checkpoints itself, should the checkpoint thread fall
/// behind (SQLite's default is 1000; the thread normally keeps the WAL far below this).
const CHECKPOINT_BACKSTOP_PAGES: u32 = 8000;

/// How often the checkpoint thread looks for new WAL frames.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Copies committed WAL frames back into the database file, on a connection and thread of
/// its own, until `stop` is dropped.
///
/// SQLite runs these checkpoints inside the commit that crosses `wal_autocheckpoint`, on the
/// writer's thread: that commit then also writes and syncs the database file, and every
/// reply waiting for it is late (p99 latency). A passive checkpoint here never blocks the
/// writer; the writer's own checkpoint at [`CHECKPOINT_BACKSTOP_PAGES`] remains as a
/// backstop, and finds most of the WAL already copied.
fn checkpoints(path: &str, stop: &std::sync::mpsc::Receiver<()>) {
    let open = || -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(1))?;
        Ok(conn)
    };
    let conn = match open() {
        Ok(it) => it,
        Err(error) => {
            tracing::warn!(%error, "no checkpoint thread; the writer checkpoints itself");
            return;
        }
    };
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(%error, "checkpoint failed; retrying later");
        }
    }
}

/// An open transaction; rolled back if dropped before [`Tx::commit`].
pub(crate) enum Tx<'a> {
    Pool(DatabaseTransaction),
    Sqlite(Open<'a>),
}

/// A SQLite connection inside `BEGIN`.
pub(crate) struct Open<'a>(&'a rusqlite::Connection);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

impl Tx<'_> {
    fn backend(&self) -> DbBackend {
        match self {
            Tx::Pool(txn) => txn.get_database_backend(),
            Tx::Sqlite(_) => DbBackend::Sqlite,
        }
    }

    /// Runs a statement; the number of rows it changed.
    pub(crate) async fn execute(&self, stmt: &impl StatementBuilder) -> Result<u64, DbErr> {
        let stmt = stmt.build(&self.backend());
        match self {
            Tx::Pool(txn) => Ok(txn.execute_raw(stmt).await?.rows_affected()),
            Tx::Sqlite(Open(conn)) => {
                let mut prepared = conn.prepare_cached(&or_fail(&stmt.sql)).map_err(err)?;
                bind(&mut prepared, stmt.values.as_ref())?;
                prepared.raw_execute().map(|it| it as u64).map_err(err)
            }
        }
    }

    /// Runs a query (a SELECT, or a change with RETURNING); its rows.
    pub(crate) async fn query<R: Row>(
        &self,
        stmt: &impl StatementBuilder,
    ) -> Result<Vec<R>, DbErr> {
        let stmt = stmt.build(&self.backend());
        match self {
            Tx::Pool(txn) => txn
                .query_all_raw(stmt)
                .await?
                .iter()
                .map(R::from_pool)
                .collect(),
            Tx::Sqlite(Open(conn)) => {
                let mut prepared = conn.prepare_cached(&or_fail(&stmt.sql)).map_err(err)?;
                bind(&mut prepared, stmt.values.as_ref())?;
                let mut rows = prepared.raw_query();
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(err)? {
                    out.push(R::from_sqlite(row).map_err(err)?);
                }
                Ok(out)
            }
        }
    }

    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        match self {
            Tx::Pool(txn) => txn.commit().await,
            // A failed COMMIT leaves the transaction open: `Open` rolls it back when dropped.
            Tx::Sqlite(open) => open.0.execute_batch("COMMIT").map_err(err),
        }
    }
}

/// A row of a query's result, read by position.
pub(crate) trait Row: Sized {
    fn from_pool(row: &QueryResult) -> Result<Self, DbErr>;
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// A column type both connections can read.
pub(crate) trait Column: TryGetable + FromSql {}
impl<T: TryGetable + FromSql> Column for T {}

impl<A: Column> Row for (A,) {
    fn from_pool(row: &QueryResult) -> Result<Self, DbErr> {
        Ok((row.try_get_by_index(0)?,))
    }
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?,))
    }
}

impl<A: Column, B: Column> Row for (A, B) {
    fn from_pool(row: &QueryResult) -> Result<Self, DbErr> {
        Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?))
    }
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

/// `INSERT` and `UPDATE` as `INSERT OR FAIL` and `UPDATE OR FAIL`.
///
/// A failed statement fails the writer's whole transaction (it is rolled back, and a group
/// is retried job by job), so no statement needs to undo its own earlier rows. With the
/// default `ABORT` SQLite must be ready to: a statement that may change several rows first
/// copies every page it touches to a statement journal. `FAIL` keeps the rows already
/// changed and needs no such copy. Upserts (`ON CONFLICT`) are left as written.
fn or_fail(sql: &str) -> std::borrow::Cow<'_, str> {
    if let Some(rest) = sql.strip_prefix("INSERT INTO ")
        && !sql.contains(" ON CONFLICT ")
    {
        format!("INSERT OR FAIL INTO {rest}").into()
    } else if let Some(rest) = sql.strip_prefix("UPDATE ") {
        format!("UPDATE OR FAIL {rest}").into()
    } else {
        sql.into()
    }
}

fn err(error: rusqlite::Error) -> DbErr {
    DbErr::Custom(format!("sqlite: {error}"))
}

/// Binds `values` as sqlx would.
fn bind(
    stmt: &mut rusqlite::CachedStatement<'_>,
    values: Option<&sea_orm::sea_query::Values>,
) -> Result<(), DbErr> {
    // The SQL text has one placeholder per value, so a cached statement's every parameter is
    // bound again here: nothing of its last use remains.
    for (at, value) in values.into_iter().flat_map(|it| it.iter()).enumerate() {
        stmt.raw_bind_parameter(at + 1, ToSqlOutput::Owned(lite(value)?))
            .map_err(err)?;
    }
    Ok(())
}

fn lite(value: &Value) -> Result<Lite, DbErr> {
    fn int<T: Into<i64> + Copy>(it: &Option<T>) -> Lite {
        it.map_or(Lite::Null, |it| Lite::Integer(it.into()))
    }
    Ok(match value {
        Value::Bool(it) => int(it),
        Value::TinyInt(it) => int(it),
        Value::SmallInt(it) => int(it),
        Value::Int(it) => int(it),
        Value::BigInt(it) => int(it),
        Value::TinyUnsigned(it) => int(it),
        Value::SmallUnsigned(it) => int(it),
        Value::Unsigned(it) => int(it),
        Value::BigUnsigned(it) => match it {
            None => Lite::Null,
            Some(it) => Lite::Integer(
                i64::try_from(*it).map_err(|_| DbErr::Custom(format!("{it} overflows i64")))?,
            ),
        },
        Value::Float(it) => it.map_or(Lite::Null, |it| Lite::Real(f64::from(it))),
        Value::Double(it) => it.map_or(Lite::Null, Lite::Real),
        Value::String(it) => it.clone().map_or(Lite::Null, Lite::Text),
        Value::Char(it) => it.map_or(Lite::Null, |it| Lite::Text(it.to_string())),
        Value::Bytes(it) => it.clone().map_or(Lite::Null, Lite::Blob),
        Value::Json(it) => it
            .as_ref()
            .map_or(Lite::Null, |it| Lite::Text(it.to_string())),
        Value::Uuid(it) => it.map_or(Lite::Null, |it| Lite::Blob(it.as_bytes().to_vec())),
        other => {
            return Err(DbErr::Custom(format!(
                "the writer cannot bind {other:?} for SQLite"
            )));
        }
    })
}

/// Runs a sea-orm query (an insert, update or delete) in a writer transaction.
pub(crate) trait Exec {
    /// The number of rows the statement changed.
    async fn exec_in(&self, txn: &Tx<'_>) -> Result<u64, DbErr>;
}

impl<Q> Exec for Q
where
    Q: sea_orm::QueryTrait,
    Q::QueryStatement: StatementBuilder,
{
    async fn exec_in(&self, txn: &Tx<'_>) -> Result<u64, DbErr> {
        txn.execute(self.as_query()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_and_updates_fail_without_a_statement_journal() {
        assert_eq!(
            or_fail(r#"INSERT INTO "messages" ("id") VALUES (?)"#),
            r#"INSERT OR FAIL INTO "messages" ("id") VALUES (?)"#
        );
        assert_eq!(
            or_fail(r#"UPDATE "messages" SET "state" = ?"#),
            r#"UPDATE OR FAIL "messages" SET "state" = ?"#
        );
        let upsert = r#"INSERT INTO "inbox" ("id") VALUES (?) ON CONFLICT ("id") DO NOTHING"#;
        assert_eq!(or_fail(upsert), upsert);
        assert_eq!(or_fail("SELECT 1"), "SELECT 1");
    }

    /// The data reaches the database file without the writer checkpointing (its own
    /// checkpoint waits for thousands of WAL pages).
    #[tokio::test]
    async fn the_checkpoint_thread_copies_the_wal_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = crate::store::Store::open(&url, Durability::Full)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let before = std::fs::metadata(&path).unwrap().len();
        let messages = (0..2000)
            .map(|n| crate::store::NewMessage {
                id: uuid::Uuid::now_v7(),
                api_key_id: None,
                recipient: crate::domain::PhoneNumber::from_e164_unchecked(format!("+3361{n:07}")),
                text: "a message long enough to fill some pages of the database".into(),
                parts: 1,
                requested_device_id: None,
                requested_sim_slot: None,
                delivery_report: false,
                created_at: n,
                priority: 0,
                schedule_at: None,
                valid_until: None,
                allowed_devices: None,
            })
            .collect();
        store
            .apply(crate::store::Change::Insert(messages))
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut after = before;
        while after < before + 100 * 4096 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            after = std::fs::metadata(&path).unwrap().len();
        }
        assert!(
            after >= before + 100 * 4096,
            "database file {before} → {after} bytes"
        );
    }
}
