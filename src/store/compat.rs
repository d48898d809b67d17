//! Reads for capcom6's SMS Gateway API (`api::compat`): a message of that API is the group of
//! smshub messages one send created, named by the send's idempotency key (the client's `id`,
//! or one the hub made). These are the lookups between the two: the groups of a tenant, newest
//! or oldest first, and the group a stored message belongs to.
//!
//! Must never: write (the groups are written by the send's `Change::InsertIdempotent`).

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::idempotency_key;
use super::{Store, StoreError};
use crate::domain::Millis;

/// One send's group of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendGroup {
    /// The idempotency key: the message id capcom6's API shows.
    pub key: String,
    /// The tenant that sent it.
    pub owner: Uuid,
    /// Its messages, one per recipient, in request order.
    pub message_ids: Vec<Uuid>,
    pub created_at: Millis,
}

fn group(row: idempotency_key::Model) -> SendGroup {
    SendGroup {
        key: row.key,
        owner: row.api_key_id,
        message_ids: row
            .message_ids
            .split(',')
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect(),
        created_at: row.created_at,
    }
}

impl Store {
    /// The send groups of `owner` (of every tenant with `None`) made in `[since, until]`, by
    /// creation time (`newest` first or oldest first), from `offset`, at most `limit`; and how
    /// many there are in all.
    pub async fn list_send_groups(
        &self,
        owner: Option<Uuid>,
        (since, until): (Option<Millis>, Option<Millis>),
        newest: bool,
        (limit, offset): (u64, u64),
    ) -> Result<(Vec<SendGroup>, u64), StoreError> {
        use idempotency_key::Column as K;
        let mut condition = Condition::all();
        if let Some(owner) = owner {
            condition = condition.add(K::ApiKeyId.eq(owner));
        }
        if let Some(since) = since {
            condition = condition.add(K::CreatedAt.gte(since));
        }
        if let Some(until) = until {
            condition = condition.add(K::CreatedAt.lte(until));
        }
        let total = idempotency_key::Entity::find()
            .filter(condition.clone())
            .count(&self.db)
            .await?;
        let query = idempotency_key::Entity::find().filter(condition);
        let query = if newest {
            query.order_by_desc(K::CreatedAt).order_by_desc(K::Key)
        } else {
            query.order_by_asc(K::CreatedAt).order_by_asc(K::Key)
        };
        let rows = query.offset(offset).limit(limit).all(&self.db).await?;
        Ok((rows.into_iter().map(group).collect(), total))
    }

    /// The send group of `owner` named `key`.
    pub async fn send_group(
        &self,
        owner: Uuid,
        key: &str,
    ) -> Result<Option<SendGroup>, StoreError> {
        Ok(
            idempotency_key::Entity::find_by_id((owner, key.to_string()))
                .one(&self.db)
                .await?
                .map(group),
        )
    }

    /// The send group of `owner` that holds message `message`, if it was sent with a key.
    /// Looks only at that tenant's groups.
    pub async fn send_group_of(
        &self,
        owner: Uuid,
        message: Uuid,
    ) -> Result<Option<SendGroup>, StoreError> {
        use idempotency_key::Column as K;
        let rows = idempotency_key::Entity::find()
            .filter(K::ApiKeyId.eq(owner))
            .filter(K::MessageIds.contains(message.to_string()))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(group)
            .find(|it| it.message_ids.contains(&message)))
    }
}
