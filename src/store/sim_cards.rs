//! SIM cards as things an operator manages (table `sim_cards`) and the routing rules that send
//! numbers of a prefix through SIMs of an operator or label (table `routing_rules`).
//!
//! A SIM card is known by its ICCID, or by device and slot while its ICCID is unknown. A card
//! is created when an operator registers it, or the first time a device reports the SIM at
//! `hello` ([`SimCardChange::Seen`]), which also keeps its device, slot and home operator
//! current. Writes go through the store's single writer as [`super::Change::SimCards`]; reads
//! go straight to the pool. Limits are stored as JSON text and not read here: the dispatcher
//! owns their meaning. Must never: be read or written outside `store`.

use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::{message, routing_rule, sim_card};
use super::writer::Exec;
use super::{Outcome, Store, StoreError};
use crate::domain::Millis;

/// A stored SIM card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCardRecord {
    pub id: Uuid,
    /// The card's serial number, when known.
    pub iccid: Option<String>,
    /// The device it was last seen in (or was registered for).
    pub device_id: Option<String>,
    /// Its slot in that device.
    pub slot: Option<u8>,
    pub label: Option<String>,
    /// Its phone number, E.164, set by the operator or reported by the device.
    pub phone_number: Option<String>,
    /// Its home operator, as the device reported it.
    pub operator: Option<String>,
    /// A disabled card gets no job.
    pub enabled: bool,
    /// Its own sending limits (JSON), replacing its device's.
    pub limits: Option<serde_json::Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// When a device last reported it at `hello`.
    pub last_seen_at: Option<Millis>,
}

/// A stored routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRuleRecord {
    pub id: Uuid,
    pub name: String,
    /// Higher is tried first.
    pub priority: i32,
    /// E.164 prefixes of the numbers it applies to (`+49`, `+4915`).
    pub prefixes: Vec<String>,
    /// Through SIMs of this home operator (case-insensitive).
    pub via_operator: Option<String>,
    /// Through SIMs with this label.
    pub via_label: Option<String>,
    pub enabled: bool,
    pub created_at: Millis,
}

/// A SIM a device reported at `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSim {
    pub slot: u8,
    pub iccid: Option<String>,
    pub operator: Option<String>,
    pub phone_number: Option<String>,
}

/// A write to the SIM cards or routing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimCardChange {
    /// Inserts or replaces a card by id (settable fields and identity as given).
    Put(SimCardRecord),
    /// Deletes a card; `Unchanged` if there was none.
    Delete { id: Uuid },
    /// A device reported these SIMs at `hello`: each is matched to its card by ICCID, else by
    /// device and slot (learning its ICCID), else gets a new card; the card's device, slot,
    /// home operator and last sighting are updated (its number only when it has none).
    Seen { device: String, sims: Vec<SeenSim> },
    /// Inserts or replaces a routing rule by id.
    PutRule(RoutingRuleRecord),
    /// Deletes a routing rule; `Unchanged` if there was none.
    DeleteRule { id: Uuid },
}

/// Sends and failures of one SIM (device and slot) today and this month (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimCounters {
    pub sent_today: u64,
    pub failed_today: u64,
    pub sent_month: u64,
    pub failed_month: u64,
}

fn card_record(row: sim_card::Model) -> SimCardRecord {
    SimCardRecord {
        id: row.id,
        iccid: row.iccid,
        device_id: row.device_id,
        slot: row.slot.and_then(|it| u8::try_from(it).ok()),
        label: row.label,
        phone_number: row.phone_number,
        operator: row.operator,
        enabled: row.enabled,
        limits: row.limits.and_then(|it| serde_json::from_str(&it).ok()),
        created_at: row.created_at,
        updated_at: row.updated_at,
        last_seen_at: row.last_seen_at,
    }
}

fn rule_record(row: routing_rule::Model) -> RoutingRuleRecord {
    RoutingRuleRecord {
        id: row.id,
        name: row.name,
        priority: row.priority,
        prefixes: row
            .prefixes
            .split(',')
            .filter(|it| !it.is_empty())
            .map(str::to_string)
            .collect(),
        via_operator: row.via_operator,
        via_label: row.via_label,
        enabled: row.enabled,
        created_at: row.created_at,
    }
}

fn card_model(card: &SimCardRecord) -> sim_card::ActiveModel {
    sim_card::ActiveModel {
        id: Set(card.id),
        iccid: Set(card.iccid.clone()),
        device_id: Set(card.device_id.clone()),
        slot: Set(card.slot.map(i16::from)),
        label: Set(card.label.clone()),
        phone_number: Set(card.phone_number.clone()),
        operator: Set(card.operator.clone()),
        enabled: Set(card.enabled),
        limits: Set(card.limits.as_ref().map(|it| it.to_string())),
        created_at: Set(card.created_at),
        updated_at: Set(card.updated_at),
        last_seen_at: Set(card.last_seen_at),
    }
}

/// The first instant of the UTC day and of the UTC month of `now`.
fn day_and_month_start(now: Millis) -> (Millis, Millis) {
    use chrono::Datelike;
    let Some(at) = chrono::DateTime::from_timestamp_millis(now) else {
        return (now, now);
    };
    let day = at.date_naive();
    let start = |date: chrono::NaiveDate| {
        date.and_hms_opt(0, 0, 0)
            .map_or(now, |it| it.and_utc().timestamp_millis())
    };
    (start(day), start(day.with_day(1).unwrap_or(day)))
}

impl Store {
    /// Every SIM card, in the order they became known.
    pub async fn list_sim_cards(&self) -> Result<Vec<SimCardRecord>, StoreError> {
        let rows = sim_card::Entity::find()
            .order_by_asc(sim_card::Column::CreatedAt)
            .order_by_asc(sim_card::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(card_record).collect())
    }

    /// The SIM card with this id.
    pub async fn get_sim_card(&self, id: Uuid) -> Result<Option<SimCardRecord>, StoreError> {
        Ok(sim_card::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(card_record))
    }

    /// Every routing rule, highest priority first.
    pub async fn list_routing_rules(&self) -> Result<Vec<RoutingRuleRecord>, StoreError> {
        let rows = routing_rule::Entity::find()
            .order_by_desc(routing_rule::Column::Priority)
            .order_by_asc(routing_rule::Column::CreatedAt)
            .order_by_asc(routing_rule::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(rule_record).collect())
    }

    /// The routing rule with this id.
    pub async fn get_routing_rule(
        &self,
        id: Uuid,
    ) -> Result<Option<RoutingRuleRecord>, StoreError> {
        Ok(routing_rule::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(rule_record))
    }

    /// Sends and failures per (device, SIM slot) today and this month, UTC.
    pub async fn sim_counters(
        &self,
        now: Millis,
    ) -> Result<std::collections::HashMap<(String, u8), SimCounters>, StoreError> {
        use message::Column as C;
        let (day, month) = day_and_month_start(now);
        let mut out: std::collections::HashMap<(String, u8), SimCounters> = Default::default();
        for (column, since, which) in [
            (C::SentAt, day, 0),
            (C::SentAt, month, 1),
            (C::FailedAt, day, 2),
            (C::FailedAt, month, 3),
        ] {
            let rows: Vec<(Option<String>, Option<i16>, i64)> = message::Entity::find()
                .select_only()
                .column(C::DeviceId)
                .column(C::SimSlot)
                .column_as(Expr::col(C::Id).count(), "n")
                .filter(column.gte(since))
                .filter(C::DeviceId.is_not_null())
                .group_by(C::DeviceId)
                .group_by(C::SimSlot)
                .into_tuple()
                .all(&self.db)
                .await?;
            for (device, slot, n) in rows {
                let Some(device) = device else { continue };
                let slot = slot.and_then(|it| u8::try_from(it).ok()).unwrap_or(0);
                let entry = out.entry((device, slot)).or_default();
                let n = u64::try_from(n).unwrap_or(0);
                match which {
                    0 => entry.sent_today += n,
                    1 => entry.sent_month += n,
                    2 => entry.failed_today += n,
                    _ => entry.failed_month += n,
                }
            }
        }
        Ok(out)
    }
}

/// Applies one change inside the writer's transaction.
pub(super) async fn apply(
    txn: &super::writer::Tx<'_>,
    change: &SimCardChange,
    now: Millis,
) -> Result<Outcome, DbErr> {
    match change {
        SimCardChange::Put(card) => {
            use sim_card::Column as C;
            sim_card::Entity::insert(card_model(card))
                .on_conflict(
                    OnConflict::column(C::Id)
                        .update_columns([
                            C::Iccid,
                            C::DeviceId,
                            C::Slot,
                            C::Label,
                            C::PhoneNumber,
                            C::Operator,
                            C::Enabled,
                            C::Limits,
                            C::UpdatedAt,
                            C::LastSeenAt,
                        ])
                        .to_owned(),
                )
                .exec_in(txn)
                .await?;
            Ok(Outcome::Applied)
        }
        SimCardChange::Delete { id } => {
            let rows = sim_card::Entity::delete_many()
                .filter(sim_card::Column::Id.eq(*id))
                .exec_in(txn)
                .await?;
            Ok(changed(rows))
        }
        SimCardChange::Seen { device, sims } => {
            for sim in sims {
                seen(txn, device, sim, now).await?;
            }
            Ok(Outcome::Applied)
        }
        SimCardChange::PutRule(rule) => {
            use routing_rule::Column as C;
            let row = routing_rule::ActiveModel {
                id: Set(rule.id),
                name: Set(rule.name.clone()),
                priority: Set(rule.priority),
                prefixes: Set(rule.prefixes.join(",")),
                via_operator: Set(rule.via_operator.clone()),
                via_label: Set(rule.via_label.clone()),
                enabled: Set(rule.enabled),
                created_at: Set(rule.created_at),
            };
            routing_rule::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(C::Id)
                        .update_columns([
                            C::Name,
                            C::Priority,
                            C::Prefixes,
                            C::ViaOperator,
                            C::ViaLabel,
                            C::Enabled,
                        ])
                        .to_owned(),
                )
                .exec_in(txn)
                .await?;
            Ok(Outcome::Applied)
        }
        SimCardChange::DeleteRule { id } => {
            let rows = routing_rule::Entity::delete_many()
                .filter(routing_rule::Column::Id.eq(*id))
                .exec_in(txn)
                .await?;
            Ok(changed(rows))
        }
    }
}

/// Records one SIM reported by `device`: its card found by ICCID, else by device and slot
/// (a card whose ICCID is unknown or the same), else created. A card of another ICCID that
/// was in this slot is no longer placed there.
async fn seen(
    txn: &super::writer::Tx<'_>,
    device: &str,
    sim: &SeenSim,
    now: Millis,
) -> Result<(), DbErr> {
    use sim_card::Column as C;
    let slot = i16::from(sim.slot);
    let here = C::DeviceId.eq(device).and(C::Slot.eq(slot));
    let mut select = sea_orm::sea_query::Query::select();
    select
        .columns([C::Id, C::Iccid])
        .from(sim_card::Entity)
        .and_where(match &sim.iccid {
            Some(iccid) => C::Iccid.eq(iccid.as_str()).or(here.clone()),
            None => here.clone(),
        });
    let rows: Vec<(Uuid, Option<String>)> = txn.query(&select).await?;
    let by_iccid = rows
        .iter()
        .find(|(_, iccid)| iccid.is_some() && *iccid == sim.iccid);
    let by_slot = rows.iter().find(|(_, iccid)| iccid.is_none());
    if let Some(iccid) = &sim.iccid {
        sim_card::Entity::update_many()
            .col_expr(C::DeviceId, Expr::value(Option::<String>::None))
            .col_expr(C::Slot, Expr::value(Option::<i16>::None))
            .filter(here.clone())
            .filter(C::Iccid.is_not_null())
            .filter(C::Iccid.ne(iccid.as_str()))
            .exec_in(txn)
            .await?;
    }
    match by_iccid.or(by_slot) {
        Some((id, _)) => {
            let mut update = sim_card::Entity::update_many()
                .col_expr(C::DeviceId, Expr::value(device))
                .col_expr(C::Slot, Expr::value(slot))
                .col_expr(C::LastSeenAt, Expr::value(now))
                .col_expr(
                    C::Iccid,
                    Func::coalesce([Expr::col(C::Iccid), Expr::value(sim.iccid.clone())]).into(),
                )
                .col_expr(
                    C::PhoneNumber,
                    Func::coalesce([
                        Expr::col(C::PhoneNumber),
                        Expr::value(sim.phone_number.clone()),
                    ])
                    .into(),
                );
            if let Some(operator) = &sim.operator {
                update = update.col_expr(C::Operator, Expr::value(operator.as_str()));
            }
            update.filter(C::Id.eq(*id)).exec_in(txn).await?;
        }
        None => {
            let card = SimCardRecord {
                id: Uuid::new_v4(),
                iccid: sim.iccid.clone(),
                device_id: Some(device.to_string()),
                slot: Some(sim.slot),
                label: None,
                phone_number: sim.phone_number.clone(),
                operator: sim.operator.clone(),
                enabled: true,
                limits: None,
                created_at: now,
                updated_at: now,
                last_seen_at: Some(now),
            };
            sim_card::Entity::insert(card_model(&card))
                .exec_in(txn)
                .await?;
        }
    }
    Ok(())
}

fn changed(rows: u64) -> Outcome {
    if rows > 0 {
        Outcome::Applied
    } else {
        Outcome::Unchanged
    }
}
