//! What the store keeps for access control: API keys (listing and coalesced last-used
//! times), people (`users`), their sessions, the audit log and secrets the hub generates once
//! (the JWT signing key).
//!
//! Writes go through the store's single writer as [`super::Change::Access`] (and
//! [`super::Change::CreateApiKey`] / `RevokeApiKey`); reads go straight to the pool. The
//! per-request key lookup is `keys.rs`. Must never: be read or written outside `store`.

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entities::{api_key, audit, hub_secret, session, user};
use super::writer::Exec;
use super::{ApiKeyRecord, Outcome, Store, StoreError};
use crate::domain::Millis;

/// A new API key row (its secret's hash, never the secret).
#[derive(Debug, Clone)]
pub struct NewKeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub scopes: String,
    pub expires_at: Option<Millis>,
    pub devices: Option<String>,
    pub rate_limits: Option<String>,
    pub created_by: Option<String>,
}

/// A person who can log in.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    pub created_at: Millis,
}

/// A login session (its id's hash is the key).
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user: UserRecord,
    pub csrf_token: String,
    pub expires_at: Millis,
}

/// One line of the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: Millis,
    /// The principal's label (a key's prefix, `user:NAME`), or who tried.
    pub actor: String,
    /// `login`, `key.create`, `user.add`, ...
    pub action: String,
    pub target: Option<String>,
    pub ok: bool,
    pub detail: Option<String>,
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<Millis>,
    pub limit: u64,
}

/// A write of access control.
#[derive(Debug, Clone)]
pub enum AccessChange {
    /// Last-used times of API keys, coalesced in memory (never earlier than what is stored).
    TouchKeys(Vec<(Uuid, Millis)>),
    /// A new user; `Unchanged` if the username is taken.
    AddUser {
        id: Uuid,
        username: String,
        password_hash: String,
        role: String,
    },
    /// Removes a user and ends its sessions; `Unchanged` if there is none, or (with
    /// `keep_an_admin`) if it is the last admin.
    RemoveUser {
        username: String,
        keep_an_admin: bool,
    },
    /// A new role; `Unchanged` if there is no such user, or if it would demote the last admin.
    SetRole {
        username: String,
        role: String,
    },
    /// A new password; ends the user's sessions. `Unchanged` if there is no such user.
    SetPassword {
        username: String,
        password_hash: String,
    },
    CreateSession {
        id_hash: String,
        user_id: Uuid,
        csrf_token: String,
        expires_at: Millis,
    },
    /// Ends a session (logout).
    RevokeSession {
        id_hash: String,
    },
    Audit(AuditEntry),
    /// Stores a secret under `name` unless one is stored already.
    PutSecret {
        name: String,
        value: String,
    },
}

/// Applies one access change in the writer's transaction.
pub(super) async fn apply(
    txn: &super::writer::Tx<'_>,
    change: &AccessChange,
    now: Millis,
) -> Result<Outcome, DbErr> {
    let rows = match change {
        AccessChange::TouchKeys(uses) => {
            let mut rows = 0;
            for (id, at) in uses {
                rows += api_key::Entity::update_many()
                    .col_expr(api_key::Column::LastUsedAt, Expr::value(*at))
                    .filter(api_key::Column::Id.eq(*id))
                    .filter(
                        Condition::any()
                            .add(api_key::Column::LastUsedAt.is_null())
                            .add(api_key::Column::LastUsedAt.lt(*at)),
                    )
                    .exec_in(txn)
                    .await?;
            }
            rows
        }
        AccessChange::AddUser {
            id,
            username,
            password_hash,
            role,
        } => {
            let row = user::ActiveModel {
                id: Set(*id),
                username: Set(username.clone()),
                password_hash: Set(password_hash.clone()),
                role: Set(role.clone()),
                created_at: Set(now),
            };
            user::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(user::Column::Username)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_in(txn)
                .await?
        }
        AccessChange::RemoveUser {
            username,
            keep_an_admin,
        } => {
            let mut delete =
                user::Entity::delete_many().filter(user::Column::Username.eq(username.as_str()));
            if *keep_an_admin {
                delete = delete.filter(not_the_last_admin(username));
            }
            end_sessions_of(txn, username, *keep_an_admin, now).await?;
            delete.exec_in(txn).await?
        }
        AccessChange::SetRole { username, role } => {
            let mut update = user::Entity::update_many()
                .col_expr(user::Column::Role, Expr::value(role.clone()))
                .filter(user::Column::Username.eq(username.as_str()));
            if role != "admin" {
                update = update.filter(not_the_last_admin(username));
            }
            update.exec_in(txn).await?
        }
        AccessChange::SetPassword {
            username,
            password_hash,
        } => {
            end_sessions_of(txn, username, false, now).await?;
            user::Entity::update_many()
                .col_expr(
                    user::Column::PasswordHash,
                    Expr::value(password_hash.clone()),
                )
                .filter(user::Column::Username.eq(username.as_str()))
                .exec_in(txn)
                .await?
        }
        AccessChange::CreateSession {
            id_hash,
            user_id,
            csrf_token,
            expires_at,
        } => {
            session::Entity::insert(session::ActiveModel {
                id_hash: Set(id_hash.clone()),
                user_id: Set(*user_id),
                csrf_token: Set(csrf_token.clone()),
                created_at: Set(now),
                expires_at: Set(*expires_at),
                revoked_at: Set(None),
            })
            .exec_in(txn)
            .await?
        }
        AccessChange::RevokeSession { id_hash } => {
            session::Entity::update_many()
                .col_expr(session::Column::RevokedAt, Expr::value(now))
                .filter(session::Column::IdHash.eq(id_hash.as_str()))
                .filter(session::Column::RevokedAt.is_null())
                .exec_in(txn)
                .await?
        }
        AccessChange::Audit(entry) => {
            audit::Entity::insert(audit::ActiveModel {
                id: NotSet,
                at: Set(entry.at),
                actor: Set(entry.actor.clone()),
                action: Set(entry.action.clone()),
                target: Set(entry.target.clone()),
                ok: Set(entry.ok),
                detail: Set(entry.detail.clone()),
            })
            .exec_in(txn)
            .await?
        }
        AccessChange::PutSecret { name, value } => {
            hub_secret::Entity::insert(hub_secret::ActiveModel {
                name: Set(name.clone()),
                value: Set(value.clone()),
            })
            .on_conflict(
                OnConflict::column(hub_secret::Column::Name)
                    .do_nothing()
                    .to_owned(),
            )
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

/// True of `username`'s row unless it is the only admin: it is not an admin, or another
/// user is. Checked in the writer's transaction, so two requests cannot both pass it.
fn not_the_last_admin(username: &str) -> Condition {
    let other_admin = Query::select()
        .column(user::Column::Id)
        .from(user::Entity)
        .and_where(user::Column::Role.eq("admin"))
        .and_where(user::Column::Username.ne(username))
        .to_owned();
    Condition::any()
        .add(user::Column::Role.ne("admin"))
        .add(Expr::exists(other_admin))
}

/// Ends every open session of `username` (a removed user, a changed password); with
/// `keep_an_admin`, not if it is the last admin (who is then not removed either).
async fn end_sessions_of(
    txn: &super::writer::Tx<'_>,
    username: &str,
    keep_an_admin: bool,
    now: Millis,
) -> Result<u64, DbErr> {
    let mut of_user = Query::select()
        .column(user::Column::Id)
        .from(user::Entity)
        .and_where(user::Column::Username.eq(username))
        .to_owned();
    if keep_an_admin {
        of_user.cond_where(not_the_last_admin(username));
    }
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::UserId.in_subquery(of_user))
        .exec_in(txn)
        .await
}

/// Inserts a new API key row.
pub(super) async fn create_api_key(
    txn: &super::writer::Tx<'_>,
    key: &NewKeyRow,
    now: Millis,
) -> Result<Outcome, DbErr> {
    api_key::Entity::insert(api_key::ActiveModel {
        id: Set(key.id),
        name: Set(key.name.clone()),
        prefix: Set(key.prefix.clone()),
        key_hash: Set(key.key_hash.clone()),
        created_at: Set(now),
        revoked_at: Set(None),
        scopes: Set(key.scopes.clone()),
        expires_at: Set(key.expires_at),
        last_used_at: Set(None),
        devices: Set(key.devices.clone()),
        rate_limits: Set(key.rate_limits.clone()),
        created_by: Set(key.created_by.clone()),
    })
    .exec_in(txn)
    .await?;
    Ok(Outcome::Applied)
}

fn user_record(it: user::Model) -> UserRecord {
    UserRecord {
        id: it.id,
        username: it.username,
        password_hash: it.password_hash,
        role: it.role,
        created_at: it.created_at,
    }
}

impl Store {
    /// Every API key, newest first, revoked ones too.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = api_key::Entity::find()
            .order_by_desc(api_key::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(super::keys::api_key_record).collect())
    }

    /// The API keys with this id or this prefix (`shk_` and 6 characters).
    pub async fn find_api_keys(
        &self,
        id: Option<Uuid>,
        prefix: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut matching = Condition::any();
        if let Some(id) = id {
            matching = matching.add(api_key::Column::Id.eq(id));
        }
        if let Some(prefix) = prefix {
            matching = matching.add(api_key::Column::Prefix.eq(prefix));
        }
        if id.is_none() && prefix.is_none() {
            return Ok(Vec::new());
        }
        let rows = api_key::Entity::find()
            .filter(matching)
            .order_by_desc(api_key::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(super::keys::api_key_record).collect())
    }

    pub async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.db)
            .await?
            .map(user_record))
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = user::Entity::find()
            .order_by_asc(user::Column::Username)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(user_record).collect())
    }

    /// When each user last signed in (their newest session), by user id.
    pub async fn last_logins(&self) -> Result<std::collections::HashMap<Uuid, Millis>, StoreError> {
        let rows: Vec<(Uuid, Option<i64>)> = session::Entity::find()
            .select_only()
            .column(session::Column::UserId)
            .column_as(session::Column::CreatedAt.max(), "last")
            .group_by(session::Column::UserId)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, at)| Some((id, at?)))
            .collect())
    }

    pub async fn count_users(&self) -> Result<u64, StoreError> {
        Ok(user::Entity::find().count(&self.db).await?)
    }

    /// The open, unexpired session whose id hashes to `id_hash`, with its user.
    pub async fn find_session(
        &self,
        id_hash: &str,
        now: Millis,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let Some(row) = session::Entity::find_by_id(id_hash.to_string())
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = user::Entity::find_by_id(row.user_id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(Some(SessionRecord {
            user: user_record(user),
            csrf_token: row.csrf_token,
            expires_at: row.expires_at,
        }))
    }

    /// Audit entries matching `filter`, newest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut query = audit::Entity::find();
        if let Some(actor) = &filter.actor {
            query = query.filter(audit::Column::Actor.eq(actor.as_str()));
        }
        if let Some(action) = &filter.action {
            query = query.filter(audit::Column::Action.eq(action.as_str()));
        }
        if let Some(since) = filter.since {
            query = query.filter(audit::Column::At.gte(since));
        }
        let rows = query
            .order_by_desc(audit::Column::At)
            .order_by_desc(audit::Column::Id)
            .limit(filter.limit)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|it| AuditEntry {
                at: it.at,
                actor: it.actor,
                action: it.action,
                target: it.target,
                ok: it.ok,
                detail: it.detail,
            })
            .collect())
    }

    /// The secret stored under `name`, if any.
    pub async fn secret(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(hub_secret::Entity::find_by_id(name.to_string())
            .one(&self.db)
            .await?
            .map(|it| it.value))
    }
}
