//! The event log (issue 17): every change a client may care about, written by the store's
//! writer in the transaction of the change itself. One row per event; ids only grow (SQLite
//! `AUTOINCREMENT`, a PostgreSQL sequence), so a consumer's position is an id. No index but the
//! primary key: consumers read ranges of ids, and the writer prunes the oldest ids.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000007_events"
    }
}

#[derive(Iden)]
enum Events {
    Table,
    Id,
    At,
    Type,
    MessageId,
    DeviceId,
    OwnerId,
    Payload,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(
                        ColumnDef::new(Events::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Events::At).big_integer().not_null())
                    .col(ColumnDef::new(Events::Type).string().not_null())
                    .col(ColumnDef::new(Events::MessageId).uuid().null())
                    .col(ColumnDef::new(Events::DeviceId).string().null())
                    .col(ColumnDef::new(Events::OwnerId).uuid().null())
                    .col(ColumnDef::new(Events::Payload).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}
