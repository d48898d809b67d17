//! API key lookups: one per request, so a key revoked by any process (`smshub keys revoke`
//! while the hub runs) is refused from the next request on.
//!
//! For a SQLite file the lookup runs on a read connection of its own, in the calling task
//! (a primary-key-like probe of a small table on a prepared statement: microseconds, no
//! hand-over to a pool thread); otherwise it goes through the pool.
//!
//! Must never: cache a key's validity beyond one lookup.

use std::path::Path;
use std::sync::{Arc, Mutex};

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::api_key;
use super::{ApiKeyRecord, StoreError};

/// Where API keys are looked up.
#[derive(Clone)]
pub(super) enum KeyLookup {
    Pool,
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
}

impl KeyLookup {
    /// A read connection on the SQLite file at `path`.
    pub(super) fn sqlite(path: &Path) -> Result<KeyLookup, StoreError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        Ok(KeyLookup::Sqlite(Arc::new(Mutex::new(conn))))
    }

    /// The API key whose secret hashes to `key_hash`, revoked or not.
    pub(super) async fn find(
        &self,
        pool: &DatabaseConnection,
        key_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        match self {
            KeyLookup::Pool => {
                let row = api_key::Entity::find()
                    .filter(api_key::Column::KeyHash.eq(key_hash))
                    .one(pool)
                    .await?;
                Ok(row.map(api_key_record))
            }
            KeyLookup::Sqlite(conn) => {
                let conn = conn.lock().unwrap_or_else(|it| it.into_inner());
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
    }
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
