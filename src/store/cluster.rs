//! PostgreSQL's side of a cluster: the leader lock, and where the leader can be reached.
//!
//! The leader is whichever node holds a session-level advisory lock on a connection of its
//! own (never a pooled one: a pool may close or reuse it). Its address rides on that same
//! session as its `application_name`, so the lock and the address are one fact: when the
//! session ends (the node died, or PostgreSQL gave up on its network) both go at once.
//! Advisory locks belong to one database, so clusters on different databases of one server
//! never meet.
//!
//! Must never: hand the lock's connection to anything else, or keep serving as leader after a
//! check of the lock failed.

use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, ConnectOptions, Connection};

use super::StoreError;

/// The advisory lock the leader holds ("smshub", key 1).
const LEADER_KEY: i64 = 0x736d_7368_7562_0001;
/// The advisory lock migrations run under (key 2).
pub(super) const MIGRATION_KEY: i64 = 0x736d_7368_7562_0002;
/// `application_name` of the leader's lock session: this prefix, the version, the address.
const NAME_PREFIX: &str = "smshub-leader";

/// Whether `url` names a PostgreSQL database (the only backend that can hold a cluster).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// The leader as its lock session announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The leader's version (nodes of one version only serve together).
    pub version: String,
    /// Where other nodes reach it; `None` while it is still starting.
    pub address: Option<String>,
}

/// A connection of its own for the leader lock: try to take it, check it is still held, say
/// where the leader is.
pub struct LeaderLock {
    conn: PgConnection,
    held: bool,
}

impl LeaderLock {
    /// Connects. PostgreSQL is asked to notice a dead peer within about ten seconds (TCP
    /// keepalives and a user timeout on the server's side of this session), so the lock of a
    /// node cut off from the database is freed in bounded time, after that node stopped
    /// itself (it checks every second and stops after two).
    pub async fn connect(url: &str) -> Result<LeaderLock, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|it: sqlx::Error| StoreError::Unavailable(it.to_string()))?;
        let options = options.application_name(NAME_PREFIX);
        let mut conn = tokio::time::timeout(Duration::from_secs(10), options.connect())
            .await
            .map_err(|_| StoreError::Unavailable("connecting to PostgreSQL timed out".into()))?
            .map_err(unavailable)?;
        for setting in [
            "SET tcp_keepalives_idle = 3",
            "SET tcp_keepalives_interval = 2",
            "SET tcp_keepalives_count = 3",
            "SET tcp_user_timeout = 9000",
        ] {
            sqlx::query(setting)
                .execute(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(LeaderLock { conn, held: false })
    }

    /// Takes the leader lock if nobody holds it; true when this session holds it now.
    pub async fn try_acquire(&mut self) -> Result<bool, StoreError> {
        if !self.held {
            let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                .bind(LEADER_KEY)
                .fetch_one(&mut self.conn)
                .await
                .map_err(unavailable)?;
            self.held = got;
        }
        Ok(self.held)
    }

    /// Raises the cluster's epoch (the fence, see `writer::conn::check_fence`) and returns
    /// it: called by a node that just took the lock, before it rebuilds anything. It waits
    /// for the old leader's last transaction, and fails every later one.
    pub async fn take_epoch(&mut self) -> Result<i64, StoreError> {
        let (epoch,): (i64,) = sqlx::query_as(
            "UPDATE cluster_epoch SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch",
        )
        .fetch_one(&mut self.conn)
        .await
        .map_err(unavailable)?;
        Ok(epoch)
    }

    /// Tells the other nodes where to reach this leader, now that it serves.
    pub async fn announce(&mut self, version: &str, address: &str) -> Result<(), StoreError> {
        let name = format!("{NAME_PREFIX} {version} {address}");
        sqlx::query("SELECT set_config('application_name', $1, false)")
            .bind(name)
            .execute(&mut self.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Checks, on the lock's own session, that the lock is still held by it.
    pub async fn still_held(&mut self) -> Result<bool, StoreError> {
        let (held,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND pid = pg_backend_pid() AND database = (SELECT oid FROM pg_database \
             WHERE datname = current_database()) AND ((classid::bigint << 32) | objid::bigint) = $1)",
        )
        .bind(LEADER_KEY)
        .fetch_one(&mut self.conn)
        .await
        .map_err(unavailable)?;
        Ok(held)
    }

    /// The leader now, if any node holds the lock.
    pub async fn leader(&mut self) -> Result<Option<Leader>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM \
             pg_database WHERE datname = current_database()) \
             AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
        )
        .bind(LEADER_KEY)
        .fetch_optional(&mut self.conn)
        .await
        .map_err(unavailable)?;
        Ok(row.map(|(name,)| parse_name(&name)))
    }
}

/// `smshub-leader VERSION ADDRESS` (or just the prefix while starting) into a [`Leader`].
fn parse_name(name: &str) -> Leader {
    let mut words = name.split_whitespace().skip(1);
    Leader {
        version: words.next().unwrap_or_default().to_string(),
        address: words.next().map(str::to_string),
    }
}

/// Holds the migration lock on a connection of its own while `migrate` runs, so nodes
/// starting together migrate once, one after the other (the second finds nothing to do).
pub(super) async fn with_migration_lock<T>(
    url: &str,
    migrate: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut conn = PgConnection::connect(url).await.map_err(unavailable)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_KEY)
        .execute(&mut conn)
        .await
        .map_err(unavailable)?;
    let out = migrate.await;
    // Closing the session frees the lock, whatever happened.
    let _ = conn.close().await;
    out
}

fn unavailable(err: sqlx::Error) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_names_its_version_and_address_or_only_that_it_starts() {
        assert_eq!(
            parse_name("smshub-leader 0.1.0 10.0.0.5:8080"),
            Leader {
                version: "0.1.0".into(),
                address: Some("10.0.0.5:8080".into())
            }
        );
        assert_eq!(
            parse_name("smshub-leader"),
            Leader {
                version: String::new(),
                address: None
            }
        );
        assert!(is_postgres("postgres://u@h/db") && is_postgres("postgresql://h/db"));
        assert!(!is_postgres("sqlite://x.db"));
    }
}
