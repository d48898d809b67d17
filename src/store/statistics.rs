//! Counts for `GET /api/statistics` (the Flask gateway's statistics): the database's size,
//! messages out and in, per SIM and per day. The SQL is written once for SQLite and
//! PostgreSQL; only the day of an instant and the database size differ between them.
//!
//! Reads only, straight from the pool. Must never: write, or be called on a request path that
//! needs to be fast (it scans the message tables).

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, TryGetable, Value};

use super::{Store, StoreError};
use crate::domain::Millis;

/// Messages of one SIM: `(device, slot)` with counts by state (outgoing) and received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimCounts {
    pub device_id: String,
    pub sim_slot: Option<i16>,
    /// Outgoing messages given to this SIM, by state.
    pub outgoing: std::collections::BTreeMap<String, u64>,
    pub incoming: u64,
}

/// Messages of one UTC day (`YYYY-MM-DD`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub day: String,
    pub outgoing: u64,
    pub incoming: u64,
}

/// Everything `GET /api/statistics` counts in the database.
#[derive(Debug, Clone, Default)]
pub struct Statistics {
    /// Bytes the database takes (SQLite: pages × page size; PostgreSQL: `pg_database_size`).
    pub database_bytes: Option<u64>,
    pub outgoing: u64,
    pub incoming: u64,
    pub per_sim: Vec<SimCounts>,
    /// The last `days` days that had messages, oldest first.
    pub per_day: Vec<DayCounts>,
}

impl Store {
    /// Counts of messages out and in, per SIM, and per day since `since`.
    pub async fn statistics(&self, since: Millis) -> Result<Statistics, StoreError> {
        let backend = self.db.get_database_backend();
        let day = match backend {
            DbBackend::Postgres => {
                "to_char(to_timestamp(created_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            }
            _ => "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')",
        };
        let inbox_day = day.replace("created_at", "received_at");
        let size_sql = match backend {
            DbBackend::Postgres => "SELECT pg_database_size(current_database())",
            _ => "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        };
        let database_bytes = self
            .rows(size_sql, vec![])
            .await
            .ok()
            .and_then(|rows| {
                rows.first()
                    .and_then(|it| it.try_get_by_index::<i64>(0).ok())
            })
            .and_then(|it| u64::try_from(it).ok());
        let count = |rows: Vec<QueryResult>| {
            rows.first()
                .and_then(|it| it.try_get_by_index::<i64>(0).ok())
                .and_then(|it| u64::try_from(it).ok())
                .unwrap_or(0)
        };
        let outgoing = count(self.rows("SELECT COUNT(*) FROM messages", vec![]).await?);
        let incoming = count(self.rows("SELECT COUNT(*) FROM inbox", vec![]).await?);

        let mut per_sim: Vec<SimCounts> = Vec::new();
        let mut sim = |device: String, slot: Option<i16>| -> usize {
            match per_sim
                .iter()
                .position(|it| it.device_id == device && it.sim_slot == slot)
            {
                Some(at) => at,
                None => {
                    per_sim.push(SimCounts {
                        device_id: device,
                        sim_slot: slot,
                        ..SimCounts::default()
                    });
                    per_sim.len() - 1
                }
            }
        };
        let out_rows = self
            .rows(
                "SELECT device_id, sim_slot, state, COUNT(*) FROM messages \
                 WHERE device_id IS NOT NULL GROUP BY device_id, sim_slot, state",
                vec![],
            )
            .await?;
        let mut out_counts = Vec::new();
        for row in &out_rows {
            let device: String = get(row, 0)?;
            let slot: Option<i16> = get(row, 1)?;
            let state: String = get(row, 2)?;
            let n: i64 = get(row, 3)?;
            out_counts.push((device, slot, state, u64::try_from(n).unwrap_or(0)));
        }
        let in_rows = self
            .rows(
                "SELECT device_id, sim_slot, COUNT(*) FROM inbox GROUP BY device_id, sim_slot",
                vec![],
            )
            .await?;
        let mut in_counts = Vec::new();
        for row in &in_rows {
            let device: String = get(row, 0)?;
            let slot: Option<i16> = get(row, 1)?;
            let n: i64 = get(row, 2)?;
            in_counts.push((device, slot, u64::try_from(n).unwrap_or(0)));
        }
        let mut at_of = Vec::new();
        for (device, slot, state, n) in out_counts {
            let at = sim(device, slot);
            at_of.push((at, Some(state), n));
        }
        for (device, slot, n) in in_counts {
            let at = sim(device, slot);
            at_of.push((at, None, n));
        }
        for (at, state, n) in at_of {
            match state {
                Some(state) => *per_sim[at].outgoing.entry(state).or_default() += n,
                None => per_sim[at].incoming += n,
            }
        }
        per_sim.sort_by(|a, b| (&a.device_id, a.sim_slot).cmp(&(&b.device_id, b.sim_slot)));

        let mut per_day: std::collections::BTreeMap<String, DayCounts> = Default::default();
        let out_days = self
            .rows(
                &format!("SELECT {day}, COUNT(*) FROM messages WHERE created_at >= $1 GROUP BY 1"),
                vec![since.into()],
            )
            .await?;
        for row in &out_days {
            let day: String = get(row, 0)?;
            let n: i64 = get(row, 1)?;
            per_day
                .entry(day.clone())
                .or_insert_with(|| DayCounts {
                    day,
                    ..DayCounts::default()
                })
                .outgoing = u64::try_from(n).unwrap_or(0);
        }
        let in_days = self
            .rows(
                &format!(
                    "SELECT {inbox_day}, COUNT(*) FROM inbox WHERE received_at >= $1 GROUP BY 1"
                ),
                vec![since.into()],
            )
            .await?;
        for row in &in_days {
            let day: String = get(row, 0)?;
            let n: i64 = get(row, 1)?;
            per_day
                .entry(day.clone())
                .or_insert_with(|| DayCounts {
                    day,
                    ..DayCounts::default()
                })
                .incoming = u64::try_from(n).unwrap_or(0);
        }
        Ok(Statistics {
            database_bytes,
            outgoing,
            incoming,
            per_sim,
            per_day: per_day.into_values().collect(),
        })
    }

    /// Runs one read; `$1`-style placeholders are turned into `?` for SQLite.
    async fn rows(&self, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>, StoreError> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => sql.to_string(),
            _ => sql.replace("$1", "?"),
        };
        Ok(self
            .db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?)
    }
}

/// Column `at` of a row.
fn get<T: TryGetable>(row: &QueryResult, at: usize) -> Result<T, StoreError> {
    row.try_get_by_index(at).map_err(StoreError::Db)
}
