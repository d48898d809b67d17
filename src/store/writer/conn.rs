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
    Pool(DatabaseConnection),
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
             PRAGMA foreign_keys = ON; PRAGMA temp_store = memory; PRAGMA cache_size = -16384;"
        ))
        .map_err(err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Conn::Sqlite(conn))
    }

    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>, DbErr> {
        match self {
            Conn::Pool(db) => Ok(Tx::Pool(db.begin().await?)),
            Conn::Sqlite(conn) => {
                conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
                Ok(Tx::Sqlite(Open(conn)))
            }
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
                let mut prepared = conn.prepare_cached(&stmt.sql).map_err(err)?;
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
                let mut prepared = conn.prepare_cached(&stmt.sql).map_err(err)?;
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
