//! Message templates (`/api/templates`): a text with `{{name}}` fields that `send-sms` and the
//! CLI's bulk sender fill in. One row per template, owned by the API key (tenant) that made it.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000009_templates"
    }
}

#[derive(Iden)]
enum Templates {
    Table,
    Id,
    Owner,
    Name,
    Body,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Templates::Table)
                    .col(
                        ColumnDef::new(Templates::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Templates::Owner).uuid().not_null())
                    .col(ColumnDef::new(Templates::Name).string().not_null())
                    .col(ColumnDef::new(Templates::Body).text().not_null())
                    .col(
                        ColumnDef::new(Templates::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Templates::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("templates_owner")
                    .table(Templates::Table)
                    .col(Templates::Owner)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Templates::Table).to_owned())
            .await
    }
}
