//! smshub's database schema, as sea-orm migrations that run on SQLite and PostgreSQL.
//!
//! The hub runs [`Migrator::up`] at start, so a new database file needs no setup step.
//! Migrations are append-only: a released migration is never edited, only followed.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_core;
mod m20261122_000002_delivery;
mod m20261122_000003_modem_refs;
mod m20261122_000004_hot_indexes;
mod m20261204_000005_modem_ports;
mod m20261204_000006_history_rows;
mod m20261205_000007_access;
mod m20261205_000007_events;
mod m20261205_000008_webhooks;
mod m20261205_000009_templates;
mod m20261205_000010_mqtt;
mod m20261205_000011_sims;
mod m20261206_000021_compat_webhooks;
mod m20261206_000022_cluster;

/// All migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_core::Migration),
            Box::new(m20261122_000002_delivery::Migration),
            Box::new(m20261122_000003_modem_refs::Migration),
            Box::new(m20261122_000004_hot_indexes::Migration),
            Box::new(m20261204_000005_modem_ports::Migration),
            Box::new(m20261204_000006_history_rows::Migration),
            Box::new(m20261205_000007_access::Migration),
            Box::new(m20261205_000007_events::Migration),
            Box::new(m20261205_000008_webhooks::Migration),
            Box::new(m20261205_000009_templates::Migration),
            Box::new(m20261205_000010_mqtt::Migration),
            Box::new(m20261205_000011_sims::Migration),
            Box::new(m20261206_000021_compat_webhooks::Migration),
            Box::new(m20261206_000022_cluster::Migration),
        ]
    }
}
