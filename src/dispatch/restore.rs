//! Rebuilding the dispatcher from the database at start: the last day's sends replayed into
//! the quotas and sticky routes, the managed SIM cards and routing rules loaded, offers that were out sent back to the queue, accepted jobs
//! given back to their devices.
//!
//! It runs once, before the shell's loop starts and before any device is connected. It must
//! never offer anything nor requeue a job a device accepted: the outcome of an accepted job
//! belongs to its device, which reports it on reconnect.

use super::QueuedMessage;
use super::core::{Core, RoutingRule, SimCard};
use crate::domain::{MessageState, Millis};
use crate::store::{Change, MessageRecord, Store, StoreError};

/// Rebuilds `core` from the database; returns the messages that wait for a device.
pub(super) async fn rebuild(
    store: &Store,
    core: &mut Core,
    now: Millis,
) -> Result<Vec<QueuedMessage>, StoreError> {
    replay_sends(store, core, now).await?;
    restore_sims(store, core).await?;
    // No device is connected yet, so no offer can be answered: every offer goes back to
    // the queue. Accepted jobs stay with their device, which reports them on reconnect.
    let open = store.open_messages().await?;
    requeue_offers(store, &open).await?;
    let (waiting, accepted) = restore_accepted(core, &open, now);
    tracing::info!(
        waiting = waiting.len(),
        accepted,
        "dispatcher rebuilt from the database"
    );
    Ok(waiting)
}

/// Quotas and sticky routes from the last day's offers.
async fn replay_sends(store: &Store, core: &mut Core, now: Millis) -> Result<(), StoreError> {
    for send in store.recent_sends(now - 24 * 3_600_000).await? {
        core.replay_send(
            &send.device_id,
            send.sim_slot,
            &send.recipient,
            send.parts,
            send.dispatched_at,
        );
    }
    Ok(())
}

/// The managed SIM cards and the routing rules.
async fn restore_sims(store: &Store, core: &mut Core) -> Result<(), StoreError> {
    for card in store.list_sim_cards().await? {
        core.put_sim_card(SimCard::from_record(&card));
    }
    for rule in store.list_routing_rules().await? {
        core.put_route(RoutingRule::from_record(&rule), rule.enabled);
    }
    Ok(())
}

/// Commits `dispatched → queued` for every offer that was out when the hub stopped.
async fn requeue_offers(store: &Store, open: &[MessageRecord]) -> Result<(), StoreError> {
    let offered: Vec<Change> = open
        .iter()
        .filter(|it| it.state == MessageState::Dispatched)
        .filter_map(|it| {
            it.device_id.clone().map(|device| Change::Requeue {
                id: it.id,
                device,
                reason: "hub restarted".into(),
                // The hub lost these offers, not the phones: a restart or a failover to a new
                // leader costs no attempt.
                refund: true,
            })
        })
        .collect();
    if !offered.is_empty() {
        store.apply_all(offered).await?;
    }
    Ok(())
}

/// Gives accepted jobs back to their devices in `core`; returns the rest, which wait, and
/// the number of accepted jobs.
fn restore_accepted(
    core: &mut Core,
    open: &[MessageRecord],
    now: Millis,
) -> (Vec<QueuedMessage>, usize) {
    let mut waiting = Vec::new();
    let mut accepted = 0;
    for message in open {
        match (message.state, &message.device_id) {
            (MessageState::Accepted, Some(device)) => {
                accepted += 1;
                let at = message.accepted_at.unwrap_or(now);
                core.restore_owned(
                    device,
                    QueuedMessage::from_record(message),
                    message.sim_slot,
                    at,
                );
            }
            (MessageState::Dispatched, _) => {
                // Its offer was requeued with the attempt given back (`requeue_offers`).
                let mut queued = QueuedMessage::from_record(message);
                queued.attempts = queued.attempts.saturating_sub(1);
                waiting.push(queued);
            }
            _ => waiting.push(QueuedMessage::from_record(message)),
        }
    }
    (waiting, accepted)
}
