//! Modems attached through `POST /api/modems/connect`, so that the hub attaches them again
//! after a restart, as it does the ports named with `--modem`: one row per serial port path or
//! HiLink stick URL (without credentials). A row goes away when the modem is disconnected
//! through the API.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000005_modem_ports"
    }
}

#[derive(Iden)]
enum ModemPorts {
    Table,
    Port,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ModemPorts::Table)
                    .col(
                        ColumnDef::new(ModemPorts::Port)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ModemPorts::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ModemPorts::Table).to_owned())
            .await
    }
}
