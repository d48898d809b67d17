//! Message templates (table `templates`): a named text with `{{name}}` fields, owned by the
//! tenant (API key owner) that made it.
//!
//! Writes go through the store's single writer as [`TemplateChange`]s; reads go straight to
//! the pool. Must never: fill in a template (that is the API's `templates` module) or be read
//! or written outside `store`.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::entities::template;
use super::writer::Exec;
use super::{Outcome, Store, StoreError};
use crate::domain::Millis;

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    pub id: Uuid,
    pub owner: Uuid,
    pub name: String,
    pub body: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A write to the templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateChange {
    /// A new template.
    Create {
        id: Uuid,
        owner: Uuid,
        name: String,
        body: String,
    },
    /// Replaces the name and text of the owner's template; `Unchanged` if it has none by `id`.
    Update {
        id: Uuid,
        owner: Uuid,
        name: String,
        body: String,
    },
    /// Deletes the owner's template; `Unchanged` if it has none by `id`.
    Delete { id: Uuid, owner: Uuid },
}

impl From<template::Model> for TemplateRecord {
    fn from(it: template::Model) -> Self {
        TemplateRecord {
            id: it.id,
            owner: it.owner,
            name: it.name,
            body: it.body,
            created_at: it.created_at,
            updated_at: it.updated_at,
        }
    }
}

impl Store {
    /// The templates of `owner` (every template with `None`), oldest first.
    pub async fn list_templates(
        &self,
        owner: Option<Uuid>,
    ) -> Result<Vec<TemplateRecord>, StoreError> {
        let mut query = template::Entity::find();
        if let Some(owner) = owner {
            query = query.filter(template::Column::Owner.eq(owner));
        }
        let rows = query
            .order_by_asc(template::Column::CreatedAt)
            .order_by_asc(template::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One template, if `owner` may see it (`None`: any owner).
    pub async fn find_template(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> Result<Option<TemplateRecord>, StoreError> {
        let row = template::Entity::find_by_id(id).one(&self.db).await?;
        Ok(row
            .filter(|it| owner.is_none_or(|owner| it.owner == owner))
            .map(Into::into))
    }
}

pub(super) async fn apply(
    txn: &super::writer::Tx<'_>,
    change: &TemplateChange,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let rows = match change {
        TemplateChange::Create {
            id,
            owner,
            name,
            body,
        } => {
            let row = template::ActiveModel {
                id: Set(*id),
                owner: Set(*owner),
                name: Set(name.clone()),
                body: Set(body.clone()),
                created_at: Set(now),
                updated_at: Set(now),
            };
            template::Entity::insert(row).exec_in(txn).await?
        }
        TemplateChange::Update {
            id,
            owner,
            name,
            body,
        } => {
            template::Entity::update_many()
                .col_expr(template::Column::Name, Expr::value(name.clone()))
                .col_expr(template::Column::Body, Expr::value(body.clone()))
                .col_expr(template::Column::UpdatedAt, Expr::value(now))
                .filter(template::Column::Id.eq(*id))
                .filter(template::Column::Owner.eq(*owner))
                .exec_in(txn)
                .await?
        }
        TemplateChange::Delete { id, owner } => {
            template::Entity::delete_many()
                .filter(template::Column::Id.eq(*id))
                .filter(template::Column::Owner.eq(*owner))
                .exec_in(txn)
                .await?
        }
    };
    Ok(if rows > 0 {
        Outcome::Applied
    } else {
        Outcome::Unchanged
    })
}
