//! A message's history is read from `message_events` only (issue 15, bug 9: timestamps on the
//! message row were overwritten by a retry or requeue, so earlier attempts vanished from it).
//! From now on every transition appends its row; this migration writes the rows that messages
//! stored before it would have had, from their state times (`queued`, `dispatched`,
//! `accepted`, `sent`, `delivered`, `cancelled`; expiry, failures, retries and requeues
//! already had rows). Best effort: what an overwritten time lost is lost.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000006_history_rows"
    }
}

/// (event, time column, whether the message's device is the event's device)
const STEPS: [(&str, &str, bool); 6] = [
    ("queued", "created_at", false),
    ("dispatched", "dispatched_at", true),
    ("accepted", "accepted_at", true),
    ("sent", "sent_at", true),
    ("delivered", "delivered_at", true),
    ("cancelled", "cancelled_at", false),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (event, column, with_device) in STEPS {
            let device = if with_device { "device_id" } else { "NULL" };
            db.execute_unprepared(&format!(
                "INSERT INTO message_events (message_id, at, event, device_id) \
                 SELECT id, {column}, '{event}', {device} FROM messages \
                 WHERE {column} IS NOT NULL"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (event, _, _) in STEPS {
            db.execute_unprepared(&format!(
                "DELETE FROM message_events WHERE event = '{event}'"
            ))
            .await?;
        }
        Ok(())
    }
}
