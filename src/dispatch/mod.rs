//! The dispatcher: one task that owns the queue of waiting messages and the in-flight jobs
//! of every connected device, and offers each message to the best device the moment one can
//! take it (push, not polling).
//!
//! Everything reaches it as an [`Event`] on one channel, so its state needs no locks. Store
//! writes it needs are submitted in order from its own loop and their outcomes come back as
//! events, so the loop never waits on the database.
//!
//! Invariants:
//! - a job is offered to a device only after `dispatched` to that device is committed;
//! - a job goes back to the queue only after `dispatched → queued` is committed, which the
//!   store refuses once the device accepted it, so an accepted job is never offered twice;
//! - the dispatcher never knows what kind of transport a device uses.

pub mod scoring;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use smshub_protocol::device::{Capabilities, HubFrame, SendJob, Status};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::domain::{MessageState, Millis};
use crate::registry::{DeviceRegistry, Outbound};
use crate::store::{Change, MessageRecord, Outcome, Store, StoreError};
use scoring::ScoringConfig;

/// A message waiting for a device, with what the device needs to send it.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: Uuid,
    pub to: String,
    pub text: String,
    pub parts: u32,
    pub delivery_report: bool,
    pub device_id: Option<String>,
    pub sim_slot: Option<u8>,
    pub created_at: Millis,
    /// Devices that rejected this message; it is not offered to them again.
    pub avoid: Vec<String>,
}

impl QueuedMessage {
    pub fn from_record(it: &MessageRecord) -> QueuedMessage {
        QueuedMessage {
            id: it.id,
            to: it.recipient.clone(),
            text: it.body.clone(),
            parts: it.parts,
            delivery_report: it.delivery_report,
            device_id: it.requested_device_id.clone(),
            sim_slot: it.requested_sim_slot,
            created_at: it.created_at,
            avoid: Vec::new(),
        }
    }
}

/// What the dispatcher hears about.
#[derive(Debug)]
pub enum Event {
    /// Messages committed as queued.
    Enqueue(Vec<QueuedMessage>),
    /// A device session opened.
    Connected {
        device_id: String,
        session: u64,
        tx: mpsc::Sender<Outbound>,
        max_in_flight: u32,
        status: Option<Status>,
    },
    /// A device reported its status.
    Status { device_id: String, session: u64, status: Status },
    /// A device session ended.
    Disconnected { device_id: String, session: u64 },
    /// The device owns these jobs (its acceptance is committed).
    Owned { device_id: String, ids: Vec<Uuid> },
    /// These jobs no longer occupy the device (sent, failed, rejected or revoked).
    Finished { device_id: String, ids: Vec<Uuid> },
    /// The device refused these offers: offer them elsewhere.
    Rejected { device_id: String, ids: Vec<Uuid>, reason: String },
    /// A device was removed: fail what waits for it.
    Removed { device_id: String },
    /// Offers that did not commit (the message changed meanwhile): free their slots.
    OfferRefused { device_id: String, ids: Vec<Uuid> },
    /// Jobs whose return to the queue is committed.
    Requeued(Vec<QueuedMessage>),
    /// Replies with the number of queued messages (for tests and stats).
    QueueLen(oneshot::Sender<usize>),
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
        config: ScoringConfig,
    ) -> Result<Dispatcher, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = State {
            store: store.clone(),
            registry,
            config,
            events: tx.clone(),
            queue: VecDeque::new(),
            pinned: HashMap::new(),
            devices: HashMap::new(),
            owned_offline: HashMap::new(),
        };
        // No device is connected yet, so no offer can be answered: every offer goes back to
        // the queue. Accepted jobs stay with their device, which reports them on reconnect.
        let open = store.open_messages().await?;
        let offered: Vec<Change> = open
            .iter()
            .filter(|it| it.state == MessageState::Dispatched)
            .filter_map(|it| it.device_id.clone().map(|device| Change::Requeue { id: it.id, device }))
            .collect();
        if !offered.is_empty() {
            store.apply_all(offered).await?;
        }
        let mut waiting = Vec::new();
        for message in &open {
            match (message.state, &message.device_id) {
                (MessageState::Accepted, Some(device)) => {
                    state.owned_offline.entry(device.clone()).or_default().insert(message.id);
                }
                _ => waiting.push(QueuedMessage::from_record(message)),
            }
        }
        tracing::info!(
            queued = waiting.len(),
            accepted = open.len() - waiting.len(),
            "dispatcher rebuilt from the database"
        );
        state.enqueue(waiting);
        tokio::spawn(state.run(rx));
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
}

/// A job occupying a device.
#[derive(Debug)]
enum Held {
    /// Offered, not yet accepted: goes back to the queue if the device goes away.
    Offered(QueuedMessage),
    /// Accepted: stays with the device until it reports an outcome.
    Owned,
}

struct Slot {
    session: u64,
    tx: mpsc::Sender<Outbound>,
    /// 0 means the device takes no jobs (receive-only).
    max_in_flight: u32,
    /// Whether the device sends texts of more than one part.
    multipart: bool,
    status: Option<Status>,
    jobs: HashMap<Uuid, Held>,
    /// Smooth weighted round-robin credit.
    credit: f64,
}

struct State {
    store: Store,
    registry: Arc<DeviceRegistry>,
    config: ScoringConfig,
    events: mpsc::UnboundedSender<Event>,
    /// Messages any device may send, oldest first.
    queue: VecDeque<QueuedMessage>,
    /// Messages pinned to one device, per device, oldest first.
    pinned: HashMap<String, VecDeque<QueuedMessage>>,
    /// Connected devices.
    devices: HashMap<String, Slot>,
    /// Accepted jobs of devices that are not connected.
    owned_offline: HashMap<String, HashSet<Uuid>>,
}

/// How far past an unplaceable message the queue is searched for one that fits elsewhere.
const LOOKAHEAD: usize = 64;

impl State {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        while let Some(event) = rx.recv().await {
            let mut changed = self.handle(event).await;
            // Take every event already waiting before dispatching, so a burst costs one pass.
            while let Ok(event) = rx.try_recv() {
                changed |= self.handle(event).await;
            }
            if changed {
                self.dispatch().await;
            }
        }
    }

    /// Applies an event; returns whether dispatching may now place something.
    async fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Enqueue(messages) | Event::Requeued(messages) => {
                self.enqueue(messages);
                true
            }
            Event::Connected { device_id, session, tx, capabilities, status } => {
                let jobs = self
                    .owned_offline
                    .remove(&device_id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|id| (id, Held::Owned))
                    .collect();
                let slot = Slot {
                    session,
                    tx,
                    max_in_flight: capabilities.max_in_flight,
                    multipart: capabilities.multipart,
                    status,
                    jobs,
                    credit: 0.0,
                };
                if let Some(old) = self.devices.insert(device_id.clone(), slot) {
                    // The replaced session's offers go back to the queue (the new session
                    // announces what it holds); its owned jobs carry over.
                    self.release_session(&device_id, old).await;
                }
                self.publish_in_flight(&device_id);
                true
            }
            Event::Status { device_id, session, status } => match self.devices.get_mut(&device_id) {
                Some(slot) if slot.session == session => {
                    slot.status = Some(status);
                    true
                }
                _ => false,
            },
            Event::Disconnected { device_id, session } => {
                if self.devices.get(&device_id).is_some_and(|it| it.session == session)
                    && let Some(slot) = self.devices.remove(&device_id)
                {
                    self.release_session(&device_id, slot).await;
                }
                false
            }
            Event::Owned { device_id, ids } => {
                match self.devices.get_mut(&device_id) {
                    Some(slot) => {
                        for id in ids {
                            slot.jobs.insert(id, Held::Owned);
                        }
                    }
                    None => self.owned_offline.entry(device_id.clone()).or_default().extend(ids),
                }
                self.publish_in_flight(&device_id);
                false
            }
            Event::Finished { device_id, ids } | Event::OfferRefused { device_id, ids } => {
                if let Some(slot) = self.devices.get_mut(&device_id) {
                    for id in &ids {
                        slot.jobs.remove(id);
                    }
                }
                if let Some(owned) = self.owned_offline.get_mut(&device_id) {
                    for id in &ids {
                        owned.remove(id);
                    }
                }
                self.publish_in_flight(&device_id);
                true
            }
            Event::Rejected { device_id, ids, reason } => {
                let mut offered = Vec::new();
                if let Some(slot) = self.devices.get_mut(&device_id) {
                    for id in ids {
                        if let Some(Held::Offered(mut message)) = slot.jobs.remove(&id) {
                            tracing::debug!(device = %device_id, %id, %reason, "offer rejected");
                            message.avoid.push(device_id.clone());
                            offered.push(message);
                        }
                    }
                }
                self.publish_in_flight(&device_id);
                self.requeue_offers(&device_id, offered).await;
                false
            }
            Event::Removed { device_id } => {
                self.owned_offline.remove(&device_id);
                if let Some(waiting) = self.pinned.remove(&device_id) {
                    let changes = waiting
                        .iter()
                        .map(|it| Change::Failed {
                            id: it.id,
                            device: None,
                            code: "device_removed".into(),
                            message: format!("device {device_id} was removed before it could send this message"),
                            temporary: false,
                        })
                        .collect();
                    let store = self.store.clone();
                    tokio::spawn(async move {
                        if let Err(err) = store.apply_all(changes).await {
                            tracing::error!(error = %err, "could not fail the messages of a removed device");
                        }
                    });
                }
                false
            }
            Event::QueueLen(reply) => {
                let pinned: usize = self.pinned.values().map(VecDeque::len).sum();
                let _ = reply.send(self.queue.len() + pinned);
                false
            }
        }
    }

    fn enqueue(&mut self, messages: Vec<QueuedMessage>) {
        for message in messages {
            let queue = match &message.device_id {
                Some(device) => self.pinned.entry(device.clone()).or_default(),
                None => &mut self.queue,
            };
            // Requeued messages are older than most waiting ones: keep creation order.
            let at = queue.partition_point(|it| (it.created_at, it.id) <= (message.created_at, message.id));
            queue.insert(at, message);
        }
    }

    /// A session is gone: its offers return to the queue once that is committed; its
    /// accepted jobs wait for the device to come back.
    async fn release_session(&mut self, device_id: &str, slot: Slot) {
        let mut offered = Vec::new();
        for (id, held) in slot.jobs {
            match held {
                Held::Offered(message) => offered.push(message),
                Held::Owned => {
                    self.owned_offline.entry(device_id.to_string()).or_default().insert(id);
                }
            }
        }
        self.requeue_offers(device_id, offered).await;
    }

    /// Returns offers to the queue once `dispatched → queued` has committed for them.
    async fn requeue_offers(&mut self, device_id: &str, offered: Vec<QueuedMessage>) {
        if offered.is_empty() {
            return;
        }
        let changes = offered.iter().map(|it| Change::Requeue { id: it.id, device: device_id.to_string() }).collect();
        let pending = self.store.submit(changes).await;
        let store = self.store.clone();
        let events = self.events.clone();
        let device_id = device_id.to_string();
        tokio::spawn(async move {
            let outcomes = match pending {
                Ok(pending) => pending.await,
                Err(err) => Err(err),
            };
            let outcomes = match outcomes {
                Ok(it) => it,
                Err(err) => {
                    tracing::error!(error = %err, "could not requeue offers of a lost device");
                    return;
                }
            };
            let mut requeued = Vec::new();
            let mut owned = Vec::new();
            for (message, outcome) in offered.into_iter().zip(outcomes) {
                if outcome == Outcome::Applied {
                    requeued.push(message);
                } else if let Ok(Some(record)) = store.get_message(message.id).await
                    && record.state == MessageState::Accepted
                    && record.device_id.as_deref() == Some(device_id.as_str())
                {
                    // The device's acceptance committed first: the job is its to report.
                    owned.push(message.id);
                }
            }
            let _ = events.send(Event::Requeued(requeued));
            if !owned.is_empty() {
                let _ = events.send(Event::Owned { device_id, ids: owned });
            }
        });
    }

    fn publish_in_flight(&self, device_id: &str) {
        if let Some(slot) = self.devices.get(device_id) {
            self.registry.set_in_flight(device_id, slot.jobs.len() as u32);
        }
    }

    /// Offers every waiting message that some device can take now.
    async fn dispatch(&mut self) {
        let mut offers: HashMap<String, Vec<(QueuedMessage, Option<u8>)>> = HashMap::new();

        // Pinned messages: only their device can take them.
        for (device_id, queue) in self.pinned.iter_mut() {
            let Some(slot) = self.devices.get_mut(device_id) else { continue };
            while let Some(message) = queue.front() {
                if message.parts > 1 && !slot.multipart {
                    break;
                }
                let Some(candidate) = scoring::score(
                    slot.status.as_ref(),
                    slot.jobs.len() as u32,
                    slot.max_in_flight,
                    message.sim_slot,
                    &self.config,
                ) else {
                    break;
                };
                let Some(message) = queue.pop_front() else { break };
                slot.jobs.insert(message.id, Held::Offered(message.clone()));
                offers.entry(device_id.clone()).or_default().push((message, candidate.sim_slot));
            }
        }
        self.pinned.retain(|_, queue| !queue.is_empty());

        // Everything else: the best device by smooth weighted round-robin over health.
        let ids: Vec<String> = self.devices.keys().cloned().collect();
        let mut idx = 0;
        let mut misses = 0;
        while idx < self.queue.len() && misses < LOOKAHEAD && !ids.is_empty() {
            let message = &self.queue[idx];
            let mut names = Vec::new();
            let mut weights = Vec::new();
            let mut credits = Vec::new();
            let mut sims = Vec::new();
            for id in &ids {
                let slot = &self.devices[id];
                if message.avoid.contains(id) || (message.parts > 1 && !slot.multipart) {
                    continue;
                }
                if let Some(candidate) = scoring::score(
                    slot.status.as_ref(),
                    slot.jobs.len() as u32,
                    slot.max_in_flight,
                    message.sim_slot,
                    &self.config,
                ) {
                    names.push(id);
                    weights.push(candidate.weight);
                    credits.push(slot.credit);
                    sims.push(candidate.sim_slot);
                }
            }
            let Some(chosen) = scoring::pick(&mut credits, &weights) else {
                // Nothing can take this one; a later message may want another SIM.
                idx += 1;
                misses += 1;
                continue;
            };
            for (name, credit) in names.iter().zip(&credits) {
                if let Some(slot) = self.devices.get_mut(*name) {
                    slot.credit = *credit;
                }
            }
            let device_id = names[chosen].clone();
            let Some(message) = self.queue.remove(idx) else { break };
            if let Some(slot) = self.devices.get_mut(&device_id) {
                slot.jobs.insert(message.id, Held::Offered(message.clone()));
            }
            offers.entry(device_id).or_default().push((message, sims[chosen]));
        }

        for (device_id, jobs) in offers {
            self.offer(device_id, jobs).await;
        }
    }

    /// Commits `dispatched` for the jobs, then sends them to the device.
    async fn offer(&mut self, device_id: String, jobs: Vec<(QueuedMessage, Option<u8>)>) {
        let Some(slot) = self.devices.get(&device_id) else { return };
        let tx = slot.tx.clone();
        self.publish_in_flight(&device_id);
        let changes = jobs
            .iter()
            .map(|(it, sim)| Change::Dispatch { id: it.id, device: device_id.clone(), sim_slot: *sim })
            .collect();
        let pending = match self.store.submit(changes).await {
            Ok(it) => it,
            Err(err) => {
                tracing::error!(error = %err, "could not record offers");
                return;
            }
        };
        let events = self.events.clone();
        tokio::spawn(async move {
            let outcomes = match pending.await {
                Ok(it) => it,
                Err(err) => {
                    tracing::error!(error = %err, "could not record offers");
                    let ids = jobs.iter().map(|(it, _)| it.id).collect();
                    let _ = events.send(Event::OfferRefused { device_id: device_id.clone(), ids });
                    let _ = events.send(Event::Requeued(jobs.into_iter().map(|(it, _)| it).collect()));
                    return;
                }
            };
            let mut refused = Vec::new();
            for ((message, sim_slot), outcome) in jobs.into_iter().zip(outcomes) {
                if outcome != Outcome::Applied {
                    refused.push(message.id);
                    continue;
                }
                let frame = HubFrame::Send(SendJob {
                    id: message.id.to_string(),
                    to: message.to,
                    text: message.text,
                    sim_slot,
                    delivery_report: message.delivery_report,
                    valid_until: None,
                    parts: message.parts,
                });
                // A closed channel means the session ended; its offers are being requeued.
                let _ = tx.send(Outbound::Frame(frame)).await;
            }
            if !refused.is_empty() {
                let _ = events.send(Event::OfferRefused { device_id, ids: refused });
            }
        });
    }
}
