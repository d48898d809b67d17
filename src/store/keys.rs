//! API key lookups, cached in memory, with a cache that no change to a key outlives: a key
//! revoked by any process (`smshub keys revoke` while the hub runs, or the hub's own API) is
//! refused from the next request on.
//!
//! How the cache learns of a change: every key change made through a [`Store`](super::Store)
//! (in this process or another) bumps an epoch when it commits: in memory for this process,
//! and, for a SQLite file, by appending one byte to the file beside the database
//! (`<database>-keys`). A lookup compares the in-memory epoch and that file's length (one
//! `stat`, about a microsecond) with those an entry was read under, and uses the entry only
//! while both are unchanged. An entry is tagged with what it saw *before* its database
//! lookup, so a lookup racing a revocation caches nothing
//! that outlives it. Only found keys are cached (a guessed key cannot fill the cache), and at
//! most [`MAX_CACHED`] of them.
//!
//! Why: the writer commits all the time, and each of its commits makes any other connection
//! drop its page cache, so a lookup on every request cost as much as a good part of a send.
//!
//! On PostgreSQL there is no cache yet: other nodes could not bump this process's epoch
//! (they will with the event log's notifications); every request looks its key up.
//!
//! Must never: answer from an entry read before the last committed key change.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::api_key;
use super::{ApiKeyRecord, StoreError};

/// Most keys held in the cache; when full it starts again empty.
const MAX_CACHED: usize = 10_000;

/// Where API keys are looked up.
#[derive(Clone)]
pub(super) enum KeyLookup {
    Pool,
    Sqlite(Arc<SqliteKeys>),
}

/// A SQLite database's keys: its read connection and the cache in front of it.
pub(super) struct SqliteKeys {
    conn: Mutex<rusqlite::Connection>,
    /// `<database>-keys`: one byte appended per committed key change, by any process.
    changes: PathBuf,
    /// Bumped by this process's key changes.
    epoch: AtomicU64,
    /// Found keys, with the epoch and the length of `changes` before they were read.
    cache: RwLock<HashMap<String, (Version, ApiKeyRecord)>>,
}

impl KeyLookup {
    /// A read connection on the SQLite file at `path`, with its cache.
    pub(super) fn sqlite(path: &Path) -> Result<KeyLookup, StoreError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let mut changes = path.as_os_str().to_owned();
        changes.push("-keys");
        let changes = PathBuf::from(changes);
        Ok(KeyLookup::Sqlite(Arc::new(SqliteKeys {
            conn: Mutex::new(conn),
            changes,
            epoch: AtomicU64::new(0),
            cache: RwLock::new(HashMap::new()),
        })))
    }

    /// Tells every lookup, here and in other processes, that a key change committed.
    pub(super) fn changed(&self) {
        let KeyLookup::Sqlite(keys) = self else {
            return;
        };
        keys.epoch.fetch_add(1, Ordering::SeqCst);
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&keys.changes)
            .and_then(|mut file| file.write_all(b"."));
        if let Err(error) = appended {
            tracing::error!(
                file = %keys.changes.display(),
                %error,
                "cannot record a key change for other processes: a hub running on this \
                 database may accept a changed key until it restarts"
            );
        }
    }

    /// The API key whose secret hashes to `key_hash`, revoked or not.
    pub(super) async fn find(
        &self,
        pool: &DatabaseConnection,
        key_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        match self {
            KeyLookup::Sqlite(keys) => keys.find(key_hash),
            KeyLookup::Pool => {
                let row = api_key::Entity::find()
                    .filter(api_key::Column::KeyHash.eq(key_hash))
                    .one(pool)
                    .await?;
                Ok(row.map(api_key_record))
            }
        }
    }
}

/// Where the keys stood when an entry was read: it is good while they still stand there.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Version {
    epoch: u64,
    changes: u64,
}

impl SqliteKeys {
    fn find(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let now = Version {
            epoch: self.epoch.load(Ordering::SeqCst),
            changes: length(&self.changes),
        };
        let cache = self.cache.read().unwrap_or_else(|it| it.into_inner());
        if let Some((read_at, record)) = cache.get(key_hash)
            && *read_at == now
        {
            return Ok(Some(record.clone()));
        }
        drop(cache);
        let found = self.read(key_hash)?;
        if let Some(record) = &found {
            let mut cache = self.cache.write().unwrap_or_else(|it| it.into_inner());
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(key_hash.to_string(), (now, record.clone()));
        }
        Ok(found)
    }

    fn read(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|it| it.into_inner());
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, name, prefix, created_at, revoked_at, scopes, expires_at, \
                 last_used_at, devices, rate_limits, created_by FROM api_keys \
                 WHERE key_hash = ?1",
            )
            .map_err(err)?;
        let mut rows = stmt.query([key_hash]).map_err(err)?;
        let Some(row) = rows.next().map_err(err)? else {
            return Ok(None);
        };
        let revoked_at = row.get::<_, Option<i64>>(4).map_err(err)?;
        Ok(Some(ApiKeyRecord {
            id: row.get::<_, Uuid>(0).map_err(err)?,
            name: row.get(1).map_err(err)?,
            prefix: row.get(2).map_err(err)?,
            created_at: row.get(3).map_err(err)?,
            revoked: revoked_at.is_some(),
            revoked_at,
            scopes: row.get(5).map_err(err)?,
            expires_at: row.get(6).map_err(err)?,
            last_used_at: row.get(7).map_err(err)?,
            devices: row.get(8).map_err(err)?,
            rate_limits: row.get(9).map_err(err)?,
            created_by: row.get(10).map_err(err)?,
        }))
    }
}

/// The length of the file at `path`; 0 when there is none (no key changed yet).
fn length(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |it| it.len())
}

/// The record of a stored key row.
pub(super) fn api_key_record(it: api_key::Model) -> ApiKeyRecord {
    ApiKeyRecord {
        id: it.id,
        name: it.name,
        prefix: it.prefix,
        created_at: it.created_at,
        revoked: it.revoked_at.is_some(),
        revoked_at: it.revoked_at,
        scopes: it.scopes,
        expires_at: it.expires_at,
        last_used_at: it.last_used_at,
        devices: it.devices,
        rate_limits: it.rate_limits,
        created_by: it.created_by,
    }
}

fn err(error: rusqlite::Error) -> StoreError {
    StoreError::Db(DbErr::Custom(format!("sqlite: {error}")))
}

#[cfg(test)]
mod tests {
    use crate::auth::{create_api_key, revoke_api_key};
    use crate::domain::hash_secret;
    use crate::store::{Durability, Store};

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("keys.db").display());
        Store::open(&url, Durability::Normal).await.unwrap()
    }

    /// A key seen (and cached) before its revocation is refused right after it, whether the
    /// revocation came through this store or through another process's.
    #[tokio::test]
    async fn no_cached_key_outlives_a_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let hub = store(&dir).await;
        let other = store(&dir).await; // another process, as `smshub keys revoke` is
        for (revoker, name) in [(&hub, "here"), (&other, "elsewhere")] {
            let key = create_api_key(&hub, name).await.unwrap();
            let hash = hash_secret(&key.secret);
            for _ in 0..2 {
                let found = hub.find_api_key(&hash).await.unwrap().unwrap();
                assert!(!found.revoked, "{name}");
            }
            assert!(revoke_api_key(revoker, &key.id.to_string()).await.unwrap());
            let found = hub.find_api_key(&hash).await.unwrap().unwrap();
            assert!(found.revoked, "revoked {name}, still valid in the cache");
        }
        assert!(hub.find_api_key("nothing").await.unwrap().is_none());
    }
}
