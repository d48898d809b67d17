//! SIM cards as things an operator manages (`sim_cards`: identity by ICCID, or device and slot
//! when the ICCID is unknown; a label, a number, an enabled flag and sending limits), and the
//! routing rules that send numbers of a prefix through SIMs of an operator or label
//! (`routing_rules`).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000011_sims"
    }
}

#[derive(Iden)]
enum SimCards {
    Table,
    Id,
    Iccid,
    DeviceId,
    Slot,
    Label,
    PhoneNumber,
    Operator,
    Enabled,
    Limits,
    CreatedAt,
    UpdatedAt,
    LastSeenAt,
}

#[derive(Iden)]
enum RoutingRules {
    Table,
    Id,
    Name,
    Priority,
    Prefixes,
    ViaOperator,
    ViaLabel,
    Enabled,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SimCards::Table)
                    .col(ColumnDef::new(SimCards::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(SimCards::Iccid).string().null())
                    .col(ColumnDef::new(SimCards::DeviceId).string().null())
                    .col(ColumnDef::new(SimCards::Slot).small_integer().null())
                    .col(ColumnDef::new(SimCards::Label).string().null())
                    .col(ColumnDef::new(SimCards::PhoneNumber).string().null())
                    .col(ColumnDef::new(SimCards::Operator).string().null())
                    .col(ColumnDef::new(SimCards::Enabled).boolean().not_null())
                    .col(ColumnDef::new(SimCards::Limits).text().null())
                    .col(ColumnDef::new(SimCards::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(SimCards::UpdatedAt).big_integer().not_null())
                    .col(ColumnDef::new(SimCards::LastSeenAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sim_cards_iccid")
                    .table(SimCards::Table)
                    .col(SimCards::Iccid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sim_cards_device_slot")
                    .table(SimCards::Table)
                    .col(SimCards::DeviceId)
                    .col(SimCards::Slot)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoutingRules::Table)
                    .col(
                        ColumnDef::new(RoutingRules::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RoutingRules::Name).string().not_null())
                    .col(ColumnDef::new(RoutingRules::Priority).integer().not_null())
                    .col(ColumnDef::new(RoutingRules::Prefixes).text().not_null())
                    .col(ColumnDef::new(RoutingRules::ViaOperator).string().null())
                    .col(ColumnDef::new(RoutingRules::ViaLabel).string().null())
                    .col(ColumnDef::new(RoutingRules::Enabled).boolean().not_null())
                    .col(
                        ColumnDef::new(RoutingRules::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoutingRules::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SimCards::Table).to_owned())
            .await
    }
}
