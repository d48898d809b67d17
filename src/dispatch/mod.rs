//! The dispatcher: one task that offers each waiting message to the best device the moment
//! one can take it (push, not polling), and keeps every delivery deadline.
//!
//! The decisions live in [`core::Core`], a pure state machine; the rest of this module is its
//! shell. The shell feeds the core [`Event`]s and the time, and carries out the
//! [`core::Action`]s: store writes are submitted in order from one loop and their outcomes
//! come back as events, so the loop never waits on the database.
//!
//! - `mod.rs`: the vocabulary ([`QueuedMessage`], [`Event`]) and the [`Dispatcher`] handle;
//! - `shell.rs`: the loop that handles events and carries out actions;
//! - `restore.rs`: the queues rebuilt from the database at start;
//! - `clock.rs`: [`Clock`], the time deadlines are kept by;
//! - `backlog.rs`: [`Backlog`], the waiting counts the API reads for back-pressure;
//! - `core`, `scoring.rs`, `limits.rs`: the pure decisions, no I/O and no clock.
//!
//! Invariants:
//! - a job is offered to a device only after its `dispatched` to that device is queued for
//!   the store's writer, so the device's `accepted` is applied after it (and refused with it);
//! - a job goes back to the queue only after `dispatched → queued` is committed, which the
//!   store refuses once the device accepted it, so an accepted job is never offered twice;
//! - the dispatcher never knows what kind of transport a device uses: it speaks
//!   [`crate::registry::Outbound`] only.

pub mod allowed;
mod backlog;
mod clock;
pub mod core;
pub mod limits;
mod restore;
pub mod scoring;
mod shell;

use std::collections::HashMap;
use std::sync::Arc;

use smshub_protocol::device::{Capabilities, Status};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use self::core::{Core, DispatchConfig, JobEnd};
use self::limits::Limits;
use self::shell::Shell;
use crate::domain::PhoneNumber;
use crate::domain::{DeviceId, Millis};
use crate::registry::DeviceRegistry;
use crate::store::{
    MessageRecord, Outcome, Retry, RoutingRuleRecord, SimCardRecord, Store, StoreError,
};

pub use self::allowed::AllowedDevices;
pub use self::backlog::Backlog;
pub use self::clock::Clock;

/// The maps of the core and the limits use foldhash: keys are the hub's own ids, and SipHash
/// was a tenth of the dispatcher's time (perf).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A message waiting for a device, with what the device needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    /// The message's id.
    pub id: Uuid,
    /// The API key it came with, counted for back-pressure.
    pub api_key: Option<Uuid>,
    /// The recipient, E.164.
    pub recipient: PhoneNumber,
    /// The body.
    pub text: String,
    /// SMS parts, as the hub counts them.
    pub parts: u32,
    /// Whether a delivery report was asked for.
    pub delivery_report: bool,
    /// The device the client asked for, if any.
    pub device_id: Option<DeviceId>,
    /// The SIM the client asked for, if any.
    pub sim_slot: Option<u8>,
    /// When the API committed it.
    pub created_at: Millis,
    /// Higher goes first.
    pub priority: i32,
    /// Not offered before this instant (schedule or retry backoff).
    pub not_before: Option<Millis>,
    /// Expires if not accepted by a device before this instant.
    pub valid_until: Option<Millis>,
    /// Offers made so far.
    pub attempts: u32,
    /// Devices that refused or failed this message; offered to them only as a last resort.
    pub avoid: Vec<DeviceId>,
    /// The only devices (and SIMs) it may go through (its API key's restriction); `None`: any.
    pub allowed: Option<AllowedDevices>,
}

impl QueuedMessage {
    /// The waiting message of a stored one; it waits for the later of its schedule and backoff.
    pub fn from_record(it: &MessageRecord) -> QueuedMessage {
        let not_before = match (it.schedule_at, it.not_before) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        QueuedMessage {
            id: it.id,
            api_key: it.api_key_id,
            recipient: PhoneNumber::from_e164_unchecked(it.recipient.clone()),
            text: it.text.clone(),
            parts: it.parts,
            delivery_report: it.delivery_report,
            device_id: it.requested_device_id.clone(),
            sim_slot: it.requested_sim_slot,
            created_at: it.created_at,
            priority: it.priority,
            not_before,
            valid_until: it.valid_until,
            attempts: it.attempts,
            avoid: Vec::new(),
            allowed: it
                .allowed_devices
                .as_deref()
                .and_then(|it| AllowedDevices::parse(it).ok().flatten()),
        }
    }
}

impl DispatchConfig {
    /// How temporary failures are retried: the store's rule for sending a failed job back to
    /// the queue.
    pub fn retry(&self) -> Retry {
        Retry {
            max_attempts: self.max_attempts,
            base_ms: self.retry_base_ms,
            cap_ms: self.retry_cap_ms,
        }
    }
}

/// What the dispatcher hears about.
#[derive(Debug)]
pub enum Event {
    /// Messages committed as queued.
    Enqueue(Vec<QueuedMessage>),
    /// A device session opened; `held` is the device's journal, if it keeps one.
    Connected {
        device_id: DeviceId,
        session: u64,
        capabilities: Capabilities,
        limits: Option<Limits>,
        held: Option<Vec<Uuid>>,
    },
    /// A device reported its status.
    Status {
        device_id: DeviceId,
        session: u64,
        status: Status,
    },
    /// A device session ended.
    Disconnected { device_id: DeviceId, session: u64 },
    /// The hub is shutting down: the offers its closing sessions leave behind were lost by
    /// the hub, not by the devices, and go back to the queue without using up an attempt.
    Stopping,
    /// The device owns these jobs (its acceptance is committed).
    Owned { device_id: DeviceId, ids: Vec<Uuid> },
    /// A job no longer occupies the device.
    Finished {
        device_id: DeviceId,
        id: Uuid,
        end: JobEnd,
    },
    /// The device refused these offers: offer them elsewhere.
    Rejected {
        device_id: DeviceId,
        ids: Vec<Uuid>,
        reason: String,
    },
    /// Offers that did not commit (the message changed meanwhile).
    OfferRefused { device_id: DeviceId, ids: Vec<Uuid> },
    /// Jobs whose return to the queue is committed.
    Requeued(Vec<QueuedMessage>),
    /// A device was removed: fail what waits for it.
    Removed { device_id: DeviceId },
    /// A device's sending limits changed (`None`: back to the hub's defaults).
    Limits {
        device_id: DeviceId,
        limits: Option<Limits>,
    },
    /// Cancel a message not yet accepted; replies with the store's outcome.
    Cancel {
        id: Uuid,
        reply: oneshot::Sender<Result<Outcome, StoreError>>,
    },
    /// Why a message still waits.
    WhyWaiting {
        id: Uuid,
        reply: oneshot::Sender<Option<String>>,
    },
    /// Replies with the number of waiting messages.
    QueueLen(oneshot::Sender<usize>),
    /// Replies with each connected device's SIMs, their limits and what they used.
    Quotas(oneshot::Sender<Vec<(DeviceId, Vec<core::SimQuota>)>>),
    /// A SIM card was created or changed.
    SimCard(core::SimCard),
    /// A SIM card was deleted.
    SimCardRemoved(Uuid),
    /// A routing rule was created or changed.
    Route {
        rule: core::RoutingRule,
        enabled: bool,
    },
    /// A routing rule was deleted.
    RouteRemoved(Uuid),
    /// An operator rests a device for `minutes` (`None`: ends its rest, an operator's or
    /// the circuit breaker's).
    Rest {
        device_id: DeviceId,
        minutes: Option<u32>,
        reason: Option<String>,
    },
}

impl core::SimCard {
    /// The dispatcher's view of a stored card (limits that do not parse count as none).
    pub fn from_record(it: &SimCardRecord) -> core::SimCard {
        core::SimCard {
            id: it.id,
            iccid: it.iccid.clone(),
            device: it.device_id.as_deref().and_then(DeviceId::parse),
            slot: it.slot,
            label: it.label.clone(),
            operator: it.operator.clone(),
            enabled: it.enabled,
            limits: it
                .limits
                .clone()
                .and_then(|it| serde_json::from_value::<Limits>(it).ok()),
        }
    }
}

impl core::RoutingRule {
    /// The dispatcher's view of a stored rule.
    pub fn from_record(it: &RoutingRuleRecord) -> core::RoutingRule {
        core::RoutingRule {
            id: it.id,
            name: it.name.clone(),
            priority: it.priority,
            prefixes: it.prefixes.clone(),
            via_operator: it.via_operator.clone(),
            via_label: it.via_label.clone(),
        }
    }
}

/// Handle to the dispatcher task; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    tx: mpsc::UnboundedSender<Event>,
}

impl Dispatcher {
    /// Rebuilds the queues from the database and starts the dispatcher task.
    pub async fn start(
        store: Store,
        registry: Arc<DeviceRegistry>,
        config: DispatchConfig,
        backlog: Arc<Backlog>,
        clock: Clock,
    ) -> Result<Dispatcher, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut core = Core::new(config);
        let now = clock.now();
        let waiting = restore::rebuild(&store, &mut core, now).await?;
        let initial = core.enqueue(waiting, now);
        let mut shell = Shell {
            core,
            store,
            registry,
            events: tx.clone(),
            backlog,
            clock,
            stopping: false,
        };
        shell.execute(initial).await;
        tokio::spawn(shell.run(rx));
        Ok(Dispatcher { tx })
    }

    /// Tells the dispatcher something happened. Never blocks.
    pub fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// The number of messages waiting for a device.
    pub async fn queue_len(&self) -> usize {
        let (reply, rx) = oneshot::channel();
        self.send(Event::QueueLen(reply));
        rx.await.unwrap_or(0)
    }

    /// Each connected device's SIMs with their limits and what they used of them now (none
    /// if the dispatcher has stopped).
    pub async fn quotas(&self) -> Vec<(DeviceId, Vec<core::SimQuota>)> {
        let (reply, rx) = oneshot::channel();
        self.send(Event::Quotas(reply));
        rx.await.unwrap_or_default()
    }

    /// Why a message is not with a device yet, if the dispatcher holds it.
    pub async fn why_waiting(&self, id: Uuid) -> Option<String> {
        let (reply, rx) = oneshot::channel();
        self.send(Event::WhyWaiting { id, reply });
        rx.await.ok().flatten()
    }

    /// Cancels a message unless a device accepted it; `Applied` or `Refused`.
    pub async fn cancel(&self, id: Uuid) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Event::Cancel { id, reply });
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}
