//! Message references of SMS sent through modems, so that a status report (`+CDS`/`+CDSI`)
//! that arrives after a hub restart or a modem reopen still finds its message.
//!
//! One row per sent part that asked for a status report: the modem (device), the TP-MR the
//! modem gave the part (`+CMGS: <mr>`, 0-255, wraps), the recipient the report will name, the
//! message, the part's number, and until when a report can still come (`expires_at`, from the
//! SMS validity). Reports are matched by (device, mr, recipient), newest first; a row goes away
//! when its report is final or it expires.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000003_modem_refs"
    }
}

#[derive(Iden)]
enum ModemRefs {
    Table,
    Id,
    DeviceId,
    Mr,
    Recipient,
    MessageId,
    Part,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ModemRefs::Table)
                    .col(
                        ColumnDef::new(ModemRefs::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ModemRefs::DeviceId).string().not_null())
                    .col(ColumnDef::new(ModemRefs::Mr).small_integer().not_null())
                    .col(ColumnDef::new(ModemRefs::Recipient).string().not_null())
                    .col(ColumnDef::new(ModemRefs::MessageId).uuid().not_null())
                    .col(ColumnDef::new(ModemRefs::Part).integer().not_null())
                    .col(
                        ColumnDef::new(ModemRefs::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ModemRefs::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_modem_refs_device_mr")
                    .table(ModemRefs::Table)
                    .col(ModemRefs::DeviceId)
                    .col(ModemRefs::Mr)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_modem_refs_message")
                    .table(ModemRefs::Table)
                    .col(ModemRefs::MessageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ModemRefs::Table).to_owned())
            .await
    }
}
