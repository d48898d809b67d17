//! Webhooks (issue 17): the endpoints applications register, and one durable row per delivery
//! of an event to an endpoint. A webhook's `cursor` is the last event id fanned out to it, so
//! the sender resumes from the log after a restart; a delivery is unique per (webhook, event),
//! so fanning out again after a crash adds nothing twice.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000008_webhooks"
    }
}

#[derive(Iden)]
enum Webhooks {
    Table,
    Id,
    OwnerId,
    Scopes,
    Url,
    Types,
    DeviceId,
    Secret,
    OldSecret,
    OldSecretUntil,
    Enabled,
    DisabledReason,
    FailingSince,
    Cursor,
    CreatedAt,
}

#[derive(Iden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    EventId,
    EventType,
    MessageId,
    Body,
    Status,
    Attempts,
    NextAttemptAt,
    LastAttemptAt,
    ResponseCode,
    LatencyMs,
    Error,
    CreatedAt,
    DeliveredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use WebhookDeliveries as D;
        use Webhooks as W;
        manager
            .create_table(
                Table::create()
                    .table(W::Table)
                    .col(ColumnDef::new(W::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(W::OwnerId).uuid().not_null())
                    .col(ColumnDef::new(W::Scopes).string().not_null())
                    .col(ColumnDef::new(W::Url).text().not_null())
                    .col(ColumnDef::new(W::Types).text().not_null())
                    .col(ColumnDef::new(W::DeviceId).string().null())
                    .col(ColumnDef::new(W::Secret).string().not_null())
                    .col(ColumnDef::new(W::OldSecret).string().null())
                    .col(ColumnDef::new(W::OldSecretUntil).big_integer().null())
                    .col(ColumnDef::new(W::Enabled).boolean().not_null())
                    .col(ColumnDef::new(W::DisabledReason).text().null())
                    .col(ColumnDef::new(W::FailingSince).big_integer().null())
                    .col(ColumnDef::new(W::Cursor).big_integer().not_null())
                    .col(ColumnDef::new(W::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(ColumnDef::new(D::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(D::WebhookId).uuid().not_null())
                    .col(ColumnDef::new(D::EventId).big_integer().not_null())
                    .col(ColumnDef::new(D::EventType).string().not_null())
                    .col(ColumnDef::new(D::MessageId).uuid().null())
                    .col(ColumnDef::new(D::Body).text().not_null())
                    .col(ColumnDef::new(D::Status).string().not_null())
                    .col(ColumnDef::new(D::Attempts).integer().not_null())
                    .col(ColumnDef::new(D::NextAttemptAt).big_integer().null())
                    .col(ColumnDef::new(D::LastAttemptAt).big_integer().null())
                    .col(ColumnDef::new(D::ResponseCode).integer().null())
                    .col(ColumnDef::new(D::LatencyMs).big_integer().null())
                    .col(ColumnDef::new(D::Error).text().null())
                    .col(ColumnDef::new(D::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(D::DeliveredAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_by_event")
                    .table(D::Table)
                    .col(D::WebhookId)
                    .col(D::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_by_status")
                    .table(D::Table)
                    .col(D::WebhookId)
                    .col(D::Status)
                    .col(D::EventId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Webhooks::Table).to_owned())
            .await
    }
}
