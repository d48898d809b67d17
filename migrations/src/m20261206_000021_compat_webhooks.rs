//! Webhooks registered through capcom6's SMS Gateway API (`/3rdparty/v1/webhooks`, issue 21):
//! `compat_id` is the id that API shows for the webhook (the client's own, up to 36
//! characters, or one the hub made), `compat_event` the one event of that API it was
//! registered for (`sms:delivered`). A webhook with them is delivered in that app's envelope
//! and signature (`X-Signature`, `X-Timestamp`) instead of Standard Webhooks'.
//!
//! `compat_settings`: what that API's `/settings` keeps per tenant; only the webhooks'
//! signing key (`webhooks.signing_key`), which signs every webhook of the tenant there.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000021_compat_webhooks"
    }
}

#[derive(Iden)]
enum Webhooks {
    Table,
    CompatId,
    CompatEvent,
}

#[derive(Iden)]
enum CompatSettings {
    Table,
    OwnerId,
    SigningKey,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Webhooks::Table)
                    .add_column(ColumnDef::new(Webhooks::CompatId).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Webhooks::Table)
                    .add_column(ColumnDef::new(Webhooks::CompatEvent).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CompatSettings::Table)
                    .col(
                        ColumnDef::new(CompatSettings::OwnerId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(CompatSettings::SigningKey).string().null())
                    .col(
                        ColumnDef::new(CompatSettings::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CompatSettings::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Webhooks::Table)
                    .drop_column(Webhooks::CompatEvent)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Webhooks::Table)
                    .drop_column(Webhooks::CompatId)
                    .to_owned(),
            )
            .await
    }
}
