//! The cluster's fence: `cluster_epoch` holds one row whose `epoch` a node raises when it
//! takes the lead. Every transaction of the leader's writer first reads the row `FOR SHARE`
//! and goes on only if the epoch is still the one it took, so a leader that lost the lead
//! commits nothing more (and answers no `202`) from the moment the next one took it.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000022_cluster"
    }
}

#[derive(Iden)]
enum ClusterEpoch {
    Table,
    Id,
    Epoch,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClusterEpoch::Table)
                    .col(
                        ColumnDef::new(ClusterEpoch::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ClusterEpoch::Epoch)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ClusterEpoch::Table)
                    .columns([ClusterEpoch::Id, ClusterEpoch::Epoch])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ClusterEpoch::Table).to_owned())
            .await
    }
}
