//! Modems attached through the API (table `modem_ports`), remembered so that the hub attaches
//! them again at its next start, as it does the ports given with `--modem`: a serial port path
//! or a HiLink stick's URL (never its credentials: secrets are not stored in the clear).
//!
//! Writes go through the store's single writer as [`super::ModemRefChange::RememberPort`] and
//! [`super::ModemRefChange::ForgetPort`] (what the store keeps for modems has one change kind);
//! reads go straight to the pool. Must never: be read or written outside `store`.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::entities::modem_port;
use super::writer::Exec;
use super::{Outcome, Store, StoreError};
use crate::domain::Millis;

impl Store {
    /// The modems attached through the API and not detached since, oldest first.
    pub async fn remembered_modems(&self) -> Result<Vec<String>, StoreError> {
        let rows = modem_port::Entity::find()
            .order_by_asc(modem_port::Column::CreatedAt)
            .order_by_asc(modem_port::Column::Port)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|it| it.port).collect())
    }
}

/// Remembers `port`; `Unchanged` when it already was.
pub(super) async fn remember(
    txn: &super::writer::Tx<'_>,
    port: &str,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let row = modem_port::ActiveModel {
        port: Set(port.to_string()),
        created_at: Set(now),
    };
    let rows = modem_port::Entity::insert(row)
        .on_conflict(
            OnConflict::column(modem_port::Column::Port)
                .do_nothing()
                .to_owned(),
        )
        .exec_in(txn)
        .await?;
    Ok(changed(rows))
}

/// Forgets `port`; `Unchanged` when it was not remembered.
pub(super) async fn forget(txn: &super::writer::Tx<'_>, port: &str) -> Result<Outcome, DbErr> {
    let rows = modem_port::Entity::delete_many()
        .filter(modem_port::Column::Port.eq(port))
        .exec_in(txn)
        .await?;
    Ok(changed(rows))
}

fn changed(rows: u64) -> Outcome {
    if rows > 0 {
        Outcome::Applied
    } else {
        Outcome::Unchanged
    }
}
