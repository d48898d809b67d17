//! The writer's grouping is invisible: a batch applied as grouped set-based statements ends
//! in the same rows, with the same outcomes, as the same changes applied one at a time.
//!
//! Must never: compare less than every outcome and every column it reads, to let a change to
//! the planner or the runs pass: a difference here is a change of behaviour.

use proptest::prelude::*;
use sea_orm::{EntityTrait, QueryOrder};
use uuid::Uuid;

use super::super::entities::{device, message};
use super::super::{Durability, NewMessage, Store};
use super::{Change, Conn, Outcome, Retry, apply_jobs};

const DEVICES: [&str; 3] = ["dev-a", "dev-b", "dev-c"];
const MESSAGES: usize = 5;

fn message_id(n: usize) -> Uuid {
    Uuid::from_u128(0x5000 + n as u128)
}

fn change() -> impl Strategy<Value = Change> {
    let device = (0..DEVICES.len()).prop_map(|it| crate::domain::DeviceId::from(DEVICES[it]));
    let id = (0..MESSAGES).prop_map(message_id);
    prop_oneof![
        4 => (id.clone(), device.clone(), proptest::option::of(0u8..2))
            .prop_map(|(id, device, sim_slot)| Change::Dispatch { id, device, sim_slot }),
        4 => (id.clone(), device.clone()).prop_map(|(id, device)| Change::Accept { id, device }),
        3 => (id.clone(), device.clone(), 1u32..3)
            .prop_map(|(id, device, parts)| Change::Sent { id, device, parts }),
        2 => (id.clone(), device.clone()).prop_map(|(id, device)| Change::Delivered { id, device }),
        1 => (id.clone(), device.clone(), any::<bool>()).prop_map(|(id, device, refund)| {
            Change::Requeue {
                id,
                device,
                reason: "lost".into(),
                refund,
            }
        }),
        1 => (id.clone(), device.clone(), any::<bool>()).prop_map(|(id, device, temporary)| {
            Change::Failed {
                id,
                device: Some(device),
                code: "generic".into(),
                message: "failed".into(),
                temporary,
                retry: temporary.then_some(Retry { max_attempts: 3, base_ms: 10, cap_ms: 100 }),
            }
        }),
        1 => id.clone().prop_map(|id| Change::Expire { id }),
        1 => device.prop_map(|id| Change::DeviceSeen { id, at: 1 }),
    ]
}

/// What a test compares of a message: everything but the clock's readings.
type Row = (
    String,
    Option<String>,
    Option<i16>,
    i32,
    i32,
    Option<String>,
    i32,
    [bool; 7],
);

fn row(it: message::Model) -> Row {
    (
        it.state,
        it.device_id,
        it.sim_slot,
        it.parts,
        it.attempts,
        it.error_code,
        it.retried,
        [
            it.dispatched_at.is_some(),
            it.accepted_at.is_some(),
            it.sent_at.is_some(),
            it.delivered_at.is_some(),
            it.failed_at.is_some(),
            it.expired_at.is_some(),
            it.not_before.is_some(),
        ],
    )
}

async fn fresh(dir: &tempfile::TempDir, name: &str) -> Store {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
    let store = Store::open(&url, Durability::Normal).await.unwrap();
    let mut setup: Vec<Change> = DEVICES
        .iter()
        .map(|id| Change::CreateDevice {
            id: (*id).into(),
            name: id.to_string(),
            kind: crate::domain::DeviceKind::Android,
            token_hash: format!("hash-{id}"),
        })
        .collect();
    setup.push(Change::Insert(
        (0..MESSAGES)
            .map(|n| NewMessage {
                id: message_id(n),
                api_key_id: None,
                recipient: crate::domain::PhoneNumber::from_e164_unchecked("+15550100".into()),
                text: "hi".into(),
                parts: 1,
                requested_device_id: None,
                requested_sim_slot: None,
                delivery_report: true,
                created_at: 1,
                priority: 0,
                schedule_at: None,
                valid_until: None,
                allowed_devices: None,
            })
            .collect(),
    ));
    apply_jobs(
        &mut Conn::Pool(store.db.clone(), None),
        std::iter::once(setup.as_slice()),
    )
    .await
    .unwrap();
    store
}

async fn rows(store: &Store) -> (Vec<Row>, Vec<(String, i64, i64)>) {
    let messages = message::Entity::find()
        .order_by_asc(message::Column::Id)
        .all(&store.db)
        .await
        .unwrap();
    let devices = device::Entity::find()
        .order_by_asc(device::Column::Id)
        .all(&store.db)
        .await
        .unwrap();
    (
        messages.into_iter().map(row).collect(),
        devices
            .into_iter()
            .map(|it| (it.id, it.sent_count, it.failed_count))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Also checks the two connections against each other: the batch goes through the
    /// writer's own SQLite connection, the changes one at a time through the pool.
    #[test]
    fn a_grouped_batch_ends_where_one_change_at_a_time_ends(
        changes in proptest::collection::vec(change(), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let grouped = fresh(&dir, "grouped.db").await;
            let single = fresh(&dir, "single.db").await;
            let jobs: Vec<&[Change]> = changes.chunks(1).collect();
            let mut direct =
                Conn::sqlite(&dir.path().join("grouped.db"), Durability::Normal).unwrap();
            let mut pool = Conn::Pool(single.db.clone(), None);
            let batch: Vec<Outcome> = apply_jobs(&mut direct, jobs.iter().copied())
                .await
                .unwrap()
                .0
                .into_iter()
                .flatten()
                .collect();
            let mut alone = Vec::new();
            for job in &jobs {
                // The store's checkpoint thread works on the same file beside this pool: a
                // transaction it finds locked is rolled back whole and made again.
                let mut tries = 0;
                let outcomes = loop {
                    match apply_jobs(&mut pool, std::iter::once(*job)).await {
                        Err(err) if err.to_string().contains("database is locked") && tries < 50 => {
                            tries += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                        other => break other.unwrap(),
                    }
                };
                alone.extend(outcomes.0.into_iter().flatten());
            }
            assert_eq!(batch, alone, "outcomes of {changes:#?}");
            assert_eq!(rows(&grouped).await, rows(&single).await, "rows after {changes:#?}");
        });
    }
}
