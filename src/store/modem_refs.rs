//! Message references of SMS sent through modems (table `modem_refs`), so that a status report
//! (`+CDS`/`+CDSI`) finds its message even after a hub restart or a modem reopen.
//!
//! A modem numbers every part it submits (`+CMGS: <mr>`, TP-MR, 0-255) and a status report
//! (3GPP TS 23.040 SMS-STATUS-REPORT) names the part only by that number (TP-MR) and its
//! recipient's address (TP-RA): no message id travels with it. When a send is recorded, one
//! row per part that asked for a report is written in the same transaction as `sent`
//! ([`ModemRefChange::Record`]). A report is matched by (device, MR, recipient), the
//! newest row first since the MR wraps after 256 parts; its part is settled, and the message
//! becomes `delivered` when no part waits any more, or `failed` on a failure report. Rows are
//! kept until their report is final or `expires_at` (the SMS's validity: no report can come
//! after the service centre gave up) passes; expired rows are dropped whenever the device
//! records new ones.
//!
//! Writes go through the store's single writer as [`super::Change::ModemRefs`]; reads go
//! straight to the pool like every other read. The same change kind carries the modems the
//! hub remembers across restarts ([`super::modem_ports`]), so the writer has one entry for
//! what the store keeps for modems. Must never: be read or written outside `store`.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::entities::modem_ref;
use super::writer::Exec;
use super::{Outcome, Store, StoreError};
use crate::domain::Millis;

/// A sent part waiting for its status report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemRef {
    /// The row, to settle it.
    pub id: i64,
    pub device_id: String,
    /// TP-MR the modem gave the part.
    pub mr: u8,
    /// The recipient as it was sent to.
    pub recipient: String,
    pub message_id: Uuid,
    /// The part's number, from 0.
    pub part: u32,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A write to the message references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemRefChange {
    /// The parts of a message just sent through `device` wait for reports until `expires_at`:
    /// `(part, mr)` pairs. An older row with the same MR and recipient is replaced (a report
    /// could no longer tell the two apart), and the device's expired rows are dropped.
    Record {
        device: String,
        message: Uuid,
        recipient: String,
        parts: Vec<(u32, u8)>,
        expires_at: Millis,
    },
    /// These parts had their final report.
    Settle { ids: Vec<i64> },
    /// The message needs no more reports (one failed).
    Forget { message: Uuid },
    /// A modem attached through the API, attached again at the next start
    /// ([`super::modem_ports`]).
    RememberPort { port: String },
    /// A modem detached through the API: not attached again.
    ForgetPort { port: String },
}

fn record(row: modem_ref::Model) -> ModemRef {
    ModemRef {
        id: row.id,
        device_id: row.device_id,
        mr: u8::try_from(row.mr).unwrap_or(0),
        recipient: row.recipient,
        message_id: row.message_id,
        part: u32::try_from(row.part).unwrap_or(0),
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}

impl Store {
    /// Parts sent through `device` with message reference `mr` whose report may still come at
    /// `now`, newest first.
    pub async fn modem_refs(
        &self,
        device: &str,
        mr: u8,
        now: Millis,
    ) -> Result<Vec<ModemRef>, StoreError> {
        let rows = modem_ref::Entity::find()
            .filter(modem_ref::Column::DeviceId.eq(device))
            .filter(modem_ref::Column::Mr.eq(i16::from(mr)))
            .filter(modem_ref::Column::ExpiresAt.gt(now))
            .order_by_desc(modem_ref::Column::CreatedAt)
            .order_by_desc(modem_ref::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(record).collect())
    }

    /// The parts of a message still waiting for a report.
    pub async fn modem_refs_of(&self, message: Uuid) -> Result<Vec<ModemRef>, StoreError> {
        let rows = modem_ref::Entity::find()
            .filter(modem_ref::Column::MessageId.eq(message))
            .order_by_asc(modem_ref::Column::Part)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(record).collect())
    }
}

/// Applies one change inside the writer's transaction.
pub(super) async fn apply(
    txn: &super::writer::Tx<'_>,
    change: &ModemRefChange,
    now: Millis,
) -> Result<Outcome, DbErr> {
    use modem_ref::Column as C;
    match change {
        ModemRefChange::Record {
            device,
            message,
            recipient,
            parts,
            expires_at,
        } => {
            modem_ref::Entity::delete_many()
                .filter(C::DeviceId.eq(device.as_str()))
                .filter(C::ExpiresAt.lte(now))
                .exec_in(txn)
                .await?;
            if parts.is_empty() {
                return Ok(Outcome::Unchanged);
            }
            modem_ref::Entity::delete_many()
                .filter(C::DeviceId.eq(device.as_str()))
                .filter(C::Recipient.eq(recipient.as_str()))
                .filter(C::Mr.is_in(parts.iter().map(|(_, mr)| i16::from(*mr))))
                .exec_in(txn)
                .await?;
            let rows = parts.iter().map(|(part, mr)| modem_ref::ActiveModel {
                id: NotSet,
                device_id: Set(device.clone()),
                mr: Set(i16::from(*mr)),
                recipient: Set(recipient.clone()),
                message_id: Set(*message),
                part: Set(i32::try_from(*part).unwrap_or(i32::MAX)),
                created_at: Set(now),
                expires_at: Set(*expires_at),
            });
            modem_ref::Entity::insert_many(rows).exec_in(txn).await?;
            Ok(Outcome::Applied)
        }
        ModemRefChange::Settle { ids } => {
            let rows = modem_ref::Entity::delete_many()
                .filter(C::Id.is_in(ids.iter().copied()))
                .exec_in(txn)
                .await?;
            Ok(if rows > 0 {
                Outcome::Applied
            } else {
                Outcome::Unchanged
            })
        }
        ModemRefChange::RememberPort { port } => super::modem_ports::remember(txn, port, now).await,
        ModemRefChange::ForgetPort { port } => super::modem_ports::forget(txn, port).await,
        ModemRefChange::Forget { message } => {
            let rows = modem_ref::Entity::delete_many()
                .filter(C::MessageId.eq(*message))
                .exec_in(txn)
                .await?;
            Ok(if rows > 0 {
                Outcome::Applied
            } else {
                Outcome::Unchanged
            })
        }
    }
}
