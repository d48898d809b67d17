//! Drops `idx_messages_device` (device, state): the index every message's write paid most for.
//!
//! Its entries are keyed by device first, so a group commit of messages spread over many
//! phones dirtied one leaf page per phone, and each state change moved the entry again. With
//! 100 phones it cost about a quarter of the hub's throughput (`smshub bench`, with and
//! without it). The indexes left on `messages` are keyed by time first (`created_at`, or a
//! state then `created_at`), so a commit's new entries land on a few pages at their ends.
//! Listing by device now walks `idx_messages_created` newest first and filters.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000004_hot_indexes"
    }
}

#[derive(Iden)]
enum Messages {
    Table,
    DeviceId,
    State,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_device")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_device")
                    .table(Messages::Table)
                    .col(Messages::DeviceId)
                    .col(Messages::State)
                    .to_owned(),
            )
            .await
    }
}
