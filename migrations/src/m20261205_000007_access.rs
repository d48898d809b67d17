//! Access control (issue 16): scoped API keys with expiry, device restrictions and rate-limit
//! overrides; the devices a message may go through; people (users) with their sessions; the
//! audit log; secrets the hub generates once (the JWT signing key).
//!
//! Keys made before this migration keep every scope (`admin`), as they had.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000007_access"
    }
}

#[derive(Iden)]
enum ApiKeys {
    Table,
    /// Space-separated scopes (`messages:send inbox:read`).
    Scopes,
    ExpiresAt,
    LastUsedAt,
    /// Devices the key may send through, comma-separated, each `DEVICE` or `DEVICE:SLOT`;
    /// NULL: any.
    Devices,
    /// Rate-limit overrides (JSON object); NULL: the hub's defaults.
    RateLimits,
    /// The user who created it, if a person did.
    CreatedBy,
}

#[derive(Iden)]
enum Messages {
    Table,
    /// The devices (and SIMs) the message may go through, as `api_keys.devices`; NULL: any.
    AllowedDevices,
}

#[derive(Iden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    CreatedAt,
}

#[derive(Iden)]
enum Sessions {
    Table,
    /// SHA-256 of the session id (the cookie's value is never stored).
    IdHash,
    UserId,
    CsrfToken,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(Iden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    Target,
    Ok,
    Detail,
}

#[derive(Iden)]
enum HubSecrets {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let add = |column: ColumnDef| {
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(column)
                .to_owned()
        };
        manager
            .alter_table(add(ColumnDef::new(ApiKeys::Scopes)
                .string()
                .not_null()
                .default("admin")
                .to_owned()))
            .await?;
        for column in [
            ColumnDef::new(ApiKeys::ExpiresAt)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(ApiKeys::LastUsedAt)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(ApiKeys::Devices).string().null().to_owned(),
            ColumnDef::new(ApiKeys::RateLimits)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(ApiKeys::CreatedBy)
                .string()
                .null()
                .to_owned(),
        ] {
            manager.alter_table(add(column)).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(ColumnDef::new(Messages::AllowedDevices).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Users::Username)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Users::PasswordHash).string().not_null())
                    .col(ColumnDef::new(Users::Role).string().not_null())
                    .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(
                        ColumnDef::new(Sessions::IdHash)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Sessions::UserId).uuid().not_null())
                    .col(ColumnDef::new(Sessions::CsrfToken).string().not_null())
                    .col(ColumnDef::new(Sessions::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Sessions::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(Sessions::RevokedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(
                        ColumnDef::new(AuditLog::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditLog::At).big_integer().not_null())
                    .col(ColumnDef::new(AuditLog::Actor).string().not_null())
                    .col(ColumnDef::new(AuditLog::Action).string().not_null())
                    .col(ColumnDef::new(AuditLog::Target).string().null())
                    .col(ColumnDef::new(AuditLog::Ok).boolean().not_null())
                    .col(ColumnDef::new(AuditLog::Detail).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_at")
                    .table(AuditLog::Table)
                    .col(AuditLog::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HubSecrets::Table)
                    .col(
                        ColumnDef::new(HubSecrets::Name)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(HubSecrets::Value).string().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            HubSecrets::Table.into_iden(),
            AuditLog::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::AllowedDevices)
                    .to_owned(),
            )
            .await?;
        for column in [
            ApiKeys::CreatedBy,
            ApiKeys::RateLimits,
            ApiKeys::Devices,
            ApiKeys::LastUsedAt,
            ApiKeys::ExpiresAt,
            ApiKeys::Scopes,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
