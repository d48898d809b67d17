//! Consumers' positions in the event log (table `consumer_positions`): the id of the last
//! event a consumer (the MQTT bridge) handed on for good, so that it resumes there after a
//! restart rather than from now (losing events) or from the start (repeating a week).
//!
//! Writes go through the store's single writer as [`super::Change::SetConsumerPosition`];
//! reads go straight to the pool. Must never: move a position back.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, DbErr, EntityTrait};

use super::entities::consumer_position;
use super::writer::Exec;
use super::{Outcome, Store, StoreError};
use crate::domain::Millis;

impl Store {
    /// The stored position of consumer `name`; `None` if it never stored one.
    pub async fn consumer_position(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(consumer_position::Entity::find_by_id(name.to_string())
            .one(&self.db)
            .await?
            .map(|it| it.position))
    }
}

/// Stores `position` for `consumer`, unless a later one is stored already.
pub(super) async fn set(
    txn: &super::writer::Tx<'_>,
    consumer: &str,
    position: i64,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let row = consumer_position::ActiveModel {
        consumer: Set(consumer.to_string()),
        position: Set(position),
        updated_at: Set(now),
    };
    let column = consumer_position::Column::Position;
    let rows = consumer_position::Entity::insert(row)
        .on_conflict(
            OnConflict::column(consumer_position::Column::Consumer)
                .update_columns([column, consumer_position::Column::UpdatedAt])
                .action_and_where(Expr::col((consumer_position::Entity, column)).lt(position))
                .to_owned(),
        )
        .exec_in(txn)
        .await?;
    Ok(if rows > 0 {
        Outcome::Applied
    } else {
        Outcome::Unchanged
    })
}
