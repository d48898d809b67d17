//! The inbox read as a feed: received SMS stored after a given one (`after`) or since a time
//! (`since`), oldest first, so a client that polls with a cursor misses nothing and sees
//! nothing twice.

use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entities::inbox;
use super::{InboxRecord, Store, StoreError};
use crate::domain::Millis;

impl Store {
    /// Up to `limit` received SMS stored after the one with id `after` (`None` if that one is
    /// unknown) or, without `after`, received since `since`; oldest first (by when the hub
    /// stored them, then id).
    pub async fn inbox_feed(
        &self,
        after: Option<Uuid>,
        since: Option<Millis>,
        device_id: Option<&str>,
        limit: u64,
    ) -> Result<Option<Vec<InboxRecord>>, StoreError> {
        use inbox::Column as I;
        let mut query = inbox::Entity::find();
        if let Some(after) = after {
            let Some(from) = inbox::Entity::find_by_id(after).one(&self.db).await? else {
                return Ok(None);
            };
            query = query.filter(
                Condition::any()
                    .add(Expr::col(I::CreatedAt).gt(from.created_at))
                    .add(
                        Expr::col(I::CreatedAt)
                            .eq(from.created_at)
                            .and(Expr::col(I::Id).gt(from.id)),
                    ),
            );
        } else if let Some(since) = since {
            query = query.filter(I::ReceivedAt.gte(since));
        }
        if let Some(device) = device_id {
            query = query.filter(I::DeviceId.eq(device));
        }
        let rows = query
            .order_by_asc(I::CreatedAt)
            .order_by_asc(I::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(Some(
            rows.into_iter()
                .map(|it| InboxRecord {
                    id: it.id,
                    device_id: it.device_id,
                    sim_slot: it.sim_slot.map(|s| s as u8),
                    sender: it.sender,
                    text: it.body,
                    received_at: it.received_at,
                    created_at: it.created_at,
                })
                .collect(),
        ))
    }
}
