//! Consumers' positions in the event log (`consumer_positions`): for each consumer that must
//! resume where it stopped (the MQTT bridge), the id of the last event it handed on for good.
//! One row per consumer name, rewritten as it moves on.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000010_mqtt"
    }
}

#[derive(Iden)]
enum ConsumerPositions {
    Table,
    Consumer,
    Position,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsumerPositions::Table)
                    .col(
                        ColumnDef::new(ConsumerPositions::Consumer)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ConsumerPositions::Position)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsumerPositions::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConsumerPositions::Table).to_owned())
            .await
    }
}
