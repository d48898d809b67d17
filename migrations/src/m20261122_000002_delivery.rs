//! Delivery guarantees: priorities, schedules, validity, retries, cancel, idempotency keys,
//! the event history of each message, and per-device sending limits.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000002_delivery"
    }
}

#[derive(Iden)]
enum Messages {
    Table,
    Priority,
    ScheduleAt,
    ValidUntil,
    NotBefore,
    ExpiredAt,
    CancelledAt,
    Retried,
}

#[derive(Iden)]
enum Devices {
    Table,
    Limits,
}

#[derive(Iden)]
enum IdempotencyKeys {
    Table,
    ApiKeyId,
    Key,
    Fingerprint,
    MessageIds,
    CreatedAt,
}

#[derive(Iden)]
enum MessageEvents {
    Table,
    Id,
    MessageId,
    At,
    Event,
    DeviceId,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ColumnDef::new(Messages::Priority)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Messages::ScheduleAt)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Messages::ValidUntil)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Messages::NotBefore)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Messages::ExpiredAt)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Messages::CancelledAt)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Messages::Retried)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
        ];
        // SQLite adds one column per ALTER TABLE.
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .add_column(ColumnDef::new(Devices::Limits).json().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(ColumnDef::new(IdempotencyKeys::ApiKeyId).uuid().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Key).string().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::Fingerprint)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::MessageIds)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::ApiKeyId)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MessageEvents::Table)
                    .col(
                        ColumnDef::new(MessageEvents::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(MessageEvents::MessageId).uuid().not_null())
                    .col(ColumnDef::new(MessageEvents::At).big_integer().not_null())
                    .col(ColumnDef::new(MessageEvents::Event).string().not_null())
                    .col(ColumnDef::new(MessageEvents::DeviceId).string().null())
                    .col(ColumnDef::new(MessageEvents::Detail).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_message_events_message")
                    .table(MessageEvents::Table)
                    .col(MessageEvents::MessageId)
                    .col(MessageEvents::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .drop_column(Devices::Limits)
                    .to_owned(),
            )
            .await?;
        for column in [
            Messages::Priority,
            Messages::ScheduleAt,
            Messages::ValidUntil,
            Messages::NotBefore,
            Messages::ExpiredAt,
            Messages::CancelledAt,
            Messages::Retried,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
