//! The core tables: API keys, devices, outgoing messages and received messages.
//!
//! Times are stored as Unix milliseconds (UTC), which order and compare the same on every backend; message states as lowercase text so the database reads
//! the same as the API.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000001_core"
    }
}

#[derive(Iden)]
enum ApiKeys {
    Table,
    Id,
    Name,
    Prefix,
    KeyHash,
    CreatedAt,
    RevokedAt,
}

#[derive(Iden)]
enum Devices {
    Table,
    Id,
    Name,
    Kind,
    TokenHash,
    CreatedAt,
    LastSeenAt,
    Model,
    AppVersion,
    Sims,
    SentCount,
    FailedCount,
}

#[derive(Iden)]
enum Messages {
    Table,
    Id,
    ApiKeyId,
    Recipient,
    Body,
    Parts,
    State,
    RequestedDeviceId,
    RequestedSimSlot,
    DeviceId,
    SimSlot,
    DeliveryReport,
    ErrorCode,
    ErrorMessage,
    ErrorTemporary,
    Attempts,
    CreatedAt,
    DispatchedAt,
    AcceptedAt,
    SentAt,
    DeliveredAt,
    FailedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum Inbox {
    Table,
    Id,
    DeviceId,
    ExternalId,
    SimSlot,
    Sender,
    Body,
    ReceivedAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(ColumnDef::new(ApiKeys::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(ApiKeys::Name).string().not_null())
                    .col(ColumnDef::new(ApiKeys::Prefix).string().not_null())
                    .col(
                        ColumnDef::new(ApiKeys::KeyHash)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(ApiKeys::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(ApiKeys::RevokedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(
                        ColumnDef::new(Devices::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Devices::Name).string().not_null())
                    .col(ColumnDef::new(Devices::Kind).string().not_null())
                    .col(
                        ColumnDef::new(Devices::TokenHash)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Devices::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Devices::LastSeenAt).big_integer().null())
                    .col(ColumnDef::new(Devices::Model).string().null())
                    .col(ColumnDef::new(Devices::AppVersion).string().null())
                    .col(ColumnDef::new(Devices::Sims).json().null())
                    .col(
                        ColumnDef::new(Devices::SentCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Devices::FailedCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(ColumnDef::new(Messages::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Messages::ApiKeyId).uuid().null())
                    .col(ColumnDef::new(Messages::Recipient).string().not_null())
                    .col(ColumnDef::new(Messages::Body).text().not_null())
                    .col(ColumnDef::new(Messages::Parts).integer().not_null())
                    .col(ColumnDef::new(Messages::State).string().not_null())
                    .col(ColumnDef::new(Messages::RequestedDeviceId).string().null())
                    .col(
                        ColumnDef::new(Messages::RequestedSimSlot)
                            .small_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(Messages::DeviceId).string().null())
                    .col(ColumnDef::new(Messages::SimSlot).small_integer().null())
                    .col(
                        ColumnDef::new(Messages::DeliveryReport)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Messages::ErrorCode).string().null())
                    .col(ColumnDef::new(Messages::ErrorMessage).string().null())
                    .col(ColumnDef::new(Messages::ErrorTemporary).boolean().null())
                    .col(
                        ColumnDef::new(Messages::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Messages::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Messages::DispatchedAt).big_integer().null())
                    .col(ColumnDef::new(Messages::AcceptedAt).big_integer().null())
                    .col(ColumnDef::new(Messages::SentAt).big_integer().null())
                    .col(ColumnDef::new(Messages::DeliveredAt).big_integer().null())
                    .col(ColumnDef::new(Messages::FailedAt).big_integer().null())
                    .col(ColumnDef::new(Messages::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_messages_state",
                vec![Messages::State, Messages::CreatedAt],
            ),
            (
                "idx_messages_device",
                vec![Messages::DeviceId, Messages::State],
            ),
            ("idx_messages_created", vec![Messages::CreatedAt]),
            (
                "idx_messages_recipient",
                vec![Messages::Recipient, Messages::CreatedAt],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Messages::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Inbox::Table)
                    .col(ColumnDef::new(Inbox::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Inbox::DeviceId).string().not_null())
                    .col(ColumnDef::new(Inbox::ExternalId).string().not_null())
                    .col(ColumnDef::new(Inbox::SimSlot).small_integer().null())
                    .col(ColumnDef::new(Inbox::Sender).string().not_null())
                    .col(ColumnDef::new(Inbox::Body).text().not_null())
                    .col(ColumnDef::new(Inbox::ReceivedAt).big_integer().not_null())
                    .col(ColumnDef::new(Inbox::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_inbox_external")
                    .table(Inbox::Table)
                    .col(Inbox::DeviceId)
                    .col(Inbox::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_inbox_received")
                    .table(Inbox::Table)
                    .col(Inbox::ReceivedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Inbox::Table.to_string(),
            Messages::Table.to_string(),
            Devices::Table.to_string(),
            ApiKeys::Table.to_string(),
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
