//! The dispatcher: one task that offers each waiting message to the best device the moment
//! one can take it (push, not polling), and keeps every delivery deadline.
//!
//! The decisions live in [`core::Core`], a pure state machine; this module is its shell. It
//! feeds the core [`Event`]s and the time, and carries out the [`core::Action`]s: store
//! writes are submitted in order from this one loop and their outcomes come back as events,
//! so the loop never waits on the database.
//!
//! Invariants:
//! - a job is offered to a device only after `dispatched` to that device is committed;
//! - a job goes back to the queue only after `dispatched → queued` is committed, which the
//!   store refuses once the device accepted it, so an accepted job is never offered twice;
//! - the dispatcher never knows what kind of transport a device uses.

mod backlog;
mod clock;
pub mod core;
pub mod limits;
pub mod scoring;

pub use self::backlog::Backlog;
pub use self::clock::Clock;

/// The maps of the core and the limits use foldhash: keys are the hub's own ids, and SipHash
/// was a tenth of the dispatcher's time (perf).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use std::collections::HashMap;
use std::sync::Arc;

use smshub_protocol::device::{Capabilities, Status};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use self::core::{Action, Core, DispatchConfig, JobEnd};
use self::limits::Limits;
use crate::domain::{MessageState, Millis, PhoneNumber, format_millis};
use crate::registry::{DeviceRegistry, Job, Outbound, RevokeReason};
use crate::store::{Change, MessageRecord, Outcome, Retry, Store, StoreError};

/// A message waiting for a device, with what the device needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    pub id: Uuid,
    pub api_key: Option<Uuid>,
    pub to: String,
    pub text: String,
    pub parts: u32,
    pub delivery_report: bool,
    pub device_id: Option<String>,
    pub sim_slot: Option<u8>,
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
    pub avoid: Vec<String>,
}

impl QueuedMessage {
    pub fn from_record(it: &MessageRecord) -> QueuedMessage {
        let not_before = match (it.schedule_at, it.not_before) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        QueuedMessage {
            id: it.id,
            api_key: it.api_key_id,
            to: it.recipient.clone(),
            text: it.body.clone(),
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
        device_id: String,
        session: u64,
        capabilities: Capabilities,
        limits: Option<Limits>,
        held: Option<Vec<Uuid>>,
    },
    /// A device reported its status.
    Status {
        device_id: String,
        session: u64,
        status: Status,
    },
    /// A device session ended.
    Disconnected { device_id: String, session: u64 },
    /// The device owns these jobs (its acceptance is committed).
    Owned { device_id: String, ids: Vec<Uuid> },
    /// A job no longer occupies the device.
    Finished {
        device_id: String,
        id: Uuid,
        end: JobEnd,
    },
    /// The device refused these offers: offer them elsewhere.
    Rejected {
        device_id: String,
        ids: Vec<Uuid>,
        reason: String,
    },
    /// Offers that did not commit (the message changed meanwhile).
    OfferRefused { device_id: String, ids: Vec<Uuid> },
    /// Jobs whose return to the queue is committed.
    Requeued(Vec<QueuedMessage>),
    /// A device was removed: fail what waits for it.
    Removed { device_id: String },
    /// A device's sending limits changed (`None`: back to the hub's defaults).
    Limits {
        device_id: String,
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
        // Quotas and sticky routes from the last day's offers.
        for send in store.recent_sends(now - 24 * 3_600_000).await? {
            core.replay_send(
                &send.device_id,
                send.sim_slot,
                &send.recipient,
                send.parts,
                send.dispatched_at,
            );
        }
        // No device is connected yet, so no offer can be answered: every offer goes back to
        // the queue. Accepted jobs stay with their device, which reports them on reconnect.
        let open = store.open_messages().await?;
        let offered: Vec<Change> = open
            .iter()
            .filter(|it| it.state == MessageState::Dispatched)
            .filter_map(|it| {
                it.device_id.clone().map(|device| Change::Requeue {
                    id: it.id,
                    device,
                    reason: "hub restarted".into(),
                })
            })
            .collect();
        if !offered.is_empty() {
            store.apply_all(offered).await?;
        }
        let mut waiting = Vec::new();
        let mut accepted = 0;
        for message in &open {
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
                _ => waiting.push(QueuedMessage::from_record(message)),
            }
        }
        tracing::info!(
            waiting = waiting.len(),
            accepted,
            "dispatcher rebuilt from the database"
        );
        let initial = core.enqueue(waiting, now);
        let mut shell = Shell {
            core,
            store,
            registry,
            events: tx.clone(),
            backlog,
            clock,
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

struct Shell {
    core: Core,
    store: Store,
    registry: Arc<DeviceRegistry>,
    events: mpsc::UnboundedSender<Event>,
    backlog: Arc<Backlog>,
    clock: Clock,
}

impl Shell {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        loop {
            let wake = self
                .core
                .next_wake(self.clock.now())
                .map(|at| self.clock.instant(at));
            let event = match wake {
                Some(at) => tokio::select! {
                    event = rx.recv() => Some(event),
                    _ = tokio::time::sleep_until(at) => None,
                },
                None => Some(rx.recv().await),
            };
            match event {
                Some(None) => return,
                Some(Some(event)) => {
                    self.handle(event).await;
                    // Take every event already waiting before dispatching, so a burst costs one pass.
                    while let Ok(event) = rx.try_recv() {
                        self.handle(event).await;
                    }
                }
                None => {}
            }
            let now = self.clock.now();
            let actions = self.core.tick(now);
            self.execute(actions).await;
            let actions = self.core.dispatch(now);
            self.execute(actions).await;
            self.publish_backlog();
        }
    }

    fn publish_backlog(&self) {
        self.backlog
            .publish(self.core.waiting(), |key| self.core.waiting_for_key(key));
    }

    async fn handle(&mut self, event: Event) {
        let now = self.clock.now();
        let actions = match event {
            Event::Enqueue(messages) => {
                let mut counts: HashMap<Option<Uuid>, usize> = HashMap::new();
                for message in &messages {
                    *counts.entry(message.api_key).or_default() += 1;
                }
                let actions = self.core.enqueue(messages, now);
                // Publish the new waiting counts before giving back the API's reservations,
                // so the two never both read zero and let a request past the limit.
                for key in counts.keys() {
                    self.backlog.count_key(*key);
                }
                self.publish_backlog();
                for (key, n) in counts {
                    self.backlog.release(key, n);
                }
                actions
            }
            Event::Requeued(messages) => self.core.enqueue(messages, now),
            Event::Connected {
                device_id,
                session,
                capabilities,
                limits,
                held,
            } => self.core.connected(
                &device_id,
                session,
                &capabilities,
                limits,
                held.as_deref(),
                now,
            ),
            Event::Status {
                device_id,
                session,
                status,
            } => {
                self.core.status(&device_id, session, status);
                Vec::new()
            }
            Event::Disconnected { device_id, session } => {
                self.core.disconnected(&device_id, session)
            }
            Event::Owned { device_id, ids } => self.core.owned(&device_id, &ids, now),
            Event::Finished { device_id, id, end } => self.core.finished(&device_id, id, end, now),
            Event::Rejected {
                device_id,
                ids,
                reason,
            } => {
                tracing::debug!(device = %device_id, ?ids, %reason, "offers rejected");
                self.core.rejected(&device_id, &ids, &reason)
            }
            Event::OfferRefused { device_id, ids } => self.core.offer_refused(&device_id, &ids),
            Event::Removed { device_id } => self.core.removed(&device_id),
            Event::Limits { device_id, limits } => {
                self.core.set_limits(&device_id, limits);
                Vec::new()
            }
            Event::Cancel { id, reply } => {
                let actions = self.core.cancel(id);
                self.execute(actions).await;
                match self.store.submit(vec![Change::Cancel { id }]).await {
                    Ok(pending) => {
                        tokio::spawn(async move {
                            let result = pending
                                .await
                                .map(|it| it.first().copied().unwrap_or(Outcome::Refused));
                            let _ = reply.send(result);
                        });
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
                Vec::new()
            }
            Event::WhyWaiting { id, reply } => {
                let _ = reply.send(self.core.why_waiting(id, now));
                Vec::new()
            }
            Event::QueueLen(reply) => {
                let _ = reply.send(self.core.waiting());
                Vec::new()
            }
        };
        self.execute(actions).await;
    }

    /// Carries out the core's decisions. Store writes are submitted here, in order.
    async fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Offer { device, jobs } => self.offer(device, jobs).await,
                Action::Requeue {
                    device,
                    messages,
                    reason,
                } => self.requeue(device, messages, reason).await,
                Action::Revoke {
                    device,
                    ids,
                    reason,
                } => {
                    if let Some(tx) = self.registry.sender(&device) {
                        let reason = match reason {
                            "cancelled" => RevokeReason::Cancelled,
                            "expired" => RevokeReason::Expired,
                            _ => RevokeReason::LeaseExpired,
                        };
                        let _ = tx.try_send(Outbound::Revoke { ids, reason });
                    }
                }
                Action::Expire { ids } => {
                    let changes = ids.into_iter().map(|id| Change::Expire { id }).collect();
                    self.fire(changes, "expire messages").await;
                }
                Action::Disown {
                    device,
                    ids,
                    reason,
                } => {
                    let retry = self.core.config().retry();
                    for id in ids {
                        let change = Change::Failed {
                            id,
                            device: Some(device.clone()),
                            code: "not_sent".into(),
                            message: format!("the device gave the job back unsent ({reason})"),
                            temporary: true,
                            retry: Some(retry),
                        };
                        let pending = self.store.submit(vec![change]).await;
                        let events = self.events.clone();
                        let device = device.clone();
                        tokio::spawn(async move {
                            let outcome = match pending {
                                Ok(it) => it.await.ok().and_then(|it| it.first().copied()),
                                Err(_) => None,
                            };
                            let end = match outcome {
                                Some(Outcome::Requeued) => JobEnd::Retried {
                                    code: "not_sent".into(),
                                },
                                Some(Outcome::Applied) => JobEnd::Failed {
                                    code: "not_sent".into(),
                                },
                                _ => return,
                            };
                            let _ = events.send(Event::Finished {
                                device_id: device,
                                id,
                                end,
                            });
                        });
                    }
                }
                Action::OutcomeUnknown {
                    device,
                    ids,
                    reason,
                } => {
                    tracing::warn!(%device, count = ids.len(), %reason, "jobs end as outcome_unknown");
                    let changes = ids
                        .into_iter()
                        .map(|id| Change::OutcomeUnknown {
                            id,
                            device: device.clone(),
                            reason: reason.clone(),
                        })
                        .collect();
                    self.fire(changes, "record unknown outcomes").await;
                }
                Action::FailRemoved { device, ids } => {
                    let changes = ids
                        .into_iter()
                        .map(|id| Change::Failed {
                            id,
                            device: None,
                            code: "device_removed".into(),
                            message: format!(
                                "device {device} was removed before it could send this message"
                            ),
                            temporary: false,
                            retry: None,
                        })
                        .collect();
                    self.fire(changes, "fail the messages of a removed device")
                        .await;
                }
                Action::Reload { ids } => {
                    let store = self.store.clone();
                    let events = self.events.clone();
                    tokio::spawn(async move {
                        if let Ok(records) = store.get_messages(&ids).await {
                            let waiting = records
                                .iter()
                                .filter(|it| it.state == MessageState::Queued)
                                .map(QueuedMessage::from_record)
                                .collect();
                            let _ = events.send(Event::Requeued(waiting));
                        }
                    });
                }
                Action::InFlight { device, count } => self.registry.set_in_flight(&device, count),
                Action::Rest {
                    device,
                    until,
                    reason,
                } => {
                    match until {
                        Some(until) => {
                            tracing::warn!(%device, until = %format_millis(until), ?reason, "device rested")
                        }
                        None => tracing::info!(%device, "device rest is over"),
                    }
                    self.registry
                        .set_rest(&device, until.map(|it| (it, reason.unwrap_or_default())));
                }
            }
        }
    }

    /// Submits changes whose outcome nobody waits for; failures are logged.
    async fn fire(&self, changes: Vec<Change>, what: &'static str) {
        match self.store.submit(changes).await {
            Ok(pending) => {
                tokio::spawn(async move {
                    if let Err(err) = pending.await {
                        tracing::error!(error = %err, "could not {what}");
                    }
                });
            }
            Err(err) => tracing::error!(error = %err, "could not {what}"),
        }
    }

    /// Returns offers to the queue once `dispatched → queued` has committed for them.
    async fn requeue(&self, device: String, offered: Vec<QueuedMessage>, reason: String) {
        let changes = offered
            .iter()
            .map(|it| Change::Requeue {
                id: it.id,
                device: device.clone(),
                reason: reason.clone(),
            })
            .collect();
        let pending = self.store.submit(changes).await;
        let store = self.store.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let outcomes = match pending {
                Ok(pending) => pending.await,
                Err(err) => Err(err),
            };
            let outcomes = match outcomes {
                Ok(it) => it,
                Err(err) => {
                    tracing::error!(error = %err, "could not requeue offers");
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
                    && record.device_id.as_deref() == Some(device.as_str())
                {
                    // The device's acceptance committed first: the job is its to report.
                    owned.push(message.id);
                }
            }
            let _ = events.send(Event::Requeued(requeued));
            if !owned.is_empty() {
                let _ = events.send(Event::Owned {
                    device_id: device,
                    ids: owned,
                });
            }
        });
    }

    /// Sends the jobs to the device as soon as their `dispatched` is queued for the writer,
    /// without waiting for it to commit.
    ///
    /// An offer gives nothing away (spec 5.1): the device may not send before `commit`, and
    /// its `accepted` reaches the writer behind the `dispatched` (one queue, applied in order),
    /// so an acceptance of an offer the store refused is refused too and answered `revoke`.
    async fn offer(&self, device_id: String, jobs: Vec<(QueuedMessage, Option<u8>)>) {
        let Some(tx) = self.registry.sender(&device_id) else {
            let ids = jobs.iter().map(|(it, _)| it.id).collect();
            let _ = self.events.send(Event::OfferRefused { device_id, ids });
            let _ = self.events.send(Event::Requeued(
                jobs.into_iter().map(|(it, _)| it).collect(),
            ));
            return;
        };
        let changes = jobs
            .iter()
            .map(|(it, sim)| Change::Dispatch {
                id: it.id,
                device: device_id.clone(),
                sim_slot: *sim,
            })
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
            let ids: Vec<Uuid> = jobs.iter().map(|(it, _)| it.id).collect();
            for (message, sim_slot) in &jobs {
                let job = Job {
                    id: message.id,
                    recipient: PhoneNumber::from_e164_unchecked(message.to.clone()),
                    text: message.text.clone(),
                    parts: message.parts,
                    sim_slot: *sim_slot,
                    delivery_report: message.delivery_report,
                    valid_until: message.valid_until,
                };
                // A closed channel means the session ended; its offers are being requeued.
                let _ = tx.send(Outbound::Offer(Box::new(job))).await;
            }
            let refused: Vec<Uuid> = match pending.await {
                Ok(outcomes) => ids
                    .into_iter()
                    .zip(outcomes)
                    .filter(|(_, outcome)| *outcome != Outcome::Applied)
                    .map(|(id, _)| id)
                    .collect(),
                Err(err) => {
                    tracing::error!(error = %err, "could not record offers");
                    revoke(&tx, &ids).await;
                    let _ = events.send(Event::OfferRefused {
                        device_id: device_id.clone(),
                        ids,
                    });
                    let _ = events.send(Event::Requeued(
                        jobs.into_iter().map(|(it, _)| it).collect(),
                    ));
                    return;
                }
            };
            if !refused.is_empty() {
                // Cancelled or expired meanwhile: the device drops what it journaled.
                revoke(&tx, &refused).await;
                let _ = events.send(Event::OfferRefused {
                    device_id,
                    ids: refused,
                });
            }
        });
    }
}

/// Takes back offers the store did not record.
async fn revoke(tx: &mpsc::Sender<Outbound>, ids: &[Uuid]) {
    let command = Outbound::Revoke {
        ids: ids.to_vec(),
        reason: RevokeReason::NotAssigned,
    };
    let _ = tx.send(command).await;
}

#[cfg(test)]
mod shell_tests {
    use std::time::Duration;

    use smshub_protocol::device::{Battery, SimStatus};

    use super::*;
    use crate::domain::{DeviceKind, now_millis};
    use crate::registry::LiveDevice;
    use crate::store::{Durability, NewMessage};

    /// An offer goes out before its `dispatched` commits (spec 5.1: an offer gives nothing
    /// away). When the store refuses that `dispatched` (the message was cancelled in the
    /// meantime), the phone is told to drop the job, and the message stays cancelled.
    #[tokio::test]
    async fn an_offer_the_store_refuses_is_revoked_from_the_phone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("hub.db").display());
        let store = Store::open(&url, Durability::Normal).await.unwrap();
        let id = Uuid::now_v7();
        let message = NewMessage {
            id,
            api_key_id: None,
            recipient: "+33612345678".into(),
            body: "hello".into(),
            parts: 1,
            requested_device_id: None,
            requested_sim_slot: None,
            delivery_report: false,
            created_at: now_millis(),
            priority: 0,
            schedule_at: None,
            valid_until: None,
        };
        store
            .apply_all(vec![
                Change::CreateDevice {
                    id: "phone".into(),
                    name: "phone".into(),
                    kind: DeviceKind::Android.as_str().into(),
                    token_hash: "hash".into(),
                },
                Change::Insert(vec![message]),
                // Cancelled before the dispatcher places it: the race, made certain.
                Change::Cancel { id },
            ])
            .await
            .unwrap();
        let record = store.get_message(id).await.unwrap().unwrap();
        assert_eq!(record.state, MessageState::Cancelled);

        let registry = Arc::new(DeviceRegistry::default());
        let capabilities = Capabilities {
            max_in_flight: 4,
            multipart: true,
            delivery_reports: true,
            incoming: false,
        };
        let (tx, mut outbound) = mpsc::channel(16);
        let session = registry.connect(
            LiveDevice {
                device_id: "phone".into(),
                session: 0,
                kind: DeviceKind::Android,
                connected_at: now_millis(),
                last_seen_at: now_millis(),
                app_version: None,
                model: None,
                sims: Vec::new(),
                capabilities: capabilities.clone(),
                status: None,
                in_flight: 0,
            },
            tx,
        );
        let dispatcher = Dispatcher::start(
            store.clone(),
            registry,
            DispatchConfig::default(),
            Arc::new(Backlog::default()),
            Clock::new(),
        )
        .await
        .unwrap();
        dispatcher.send(Event::Connected {
            device_id: "phone".into(),
            session,
            capabilities,
            limits: None,
            held: None,
        });
        dispatcher.send(Event::Status {
            device_id: "phone".into(),
            session,
            status: Status {
                battery: Some(Battery {
                    level: 90,
                    charging: true,
                }),
                sims: vec![SimStatus {
                    slot: 0,
                    registered: true,
                    signal_dbm: Some(-70),
                    ..Default::default()
                }],
                connection: None,
            },
        });
        // The enqueue of the API request that lost the race to the cancel.
        dispatcher.send(Event::Enqueue(vec![QueuedMessage::from_record(&record)]));

        let mut commands = Vec::new();
        while commands.len() < 2 {
            let next = tokio::time::timeout(Duration::from_secs(5), outbound.recv())
                .await
                .expect("the phone hears of the job")
                .expect("session channel open");
            if !matches!(next, Outbound::Close(_)) {
                commands.push(next);
            }
        }
        match &commands[0] {
            Outbound::Offer(job) => assert_eq!(job.id, id),
            other => panic!("expected the offer first, got {other:?}"),
        }
        match &commands[1] {
            Outbound::Revoke { ids, reason } => {
                assert_eq!(ids, &vec![id]);
                assert_eq!(reason.as_str(), "not_assigned");
            }
            other => panic!("expected a revoke, got {other:?}"),
        }
        let record = store.get_message(id).await.unwrap().unwrap();
        assert_eq!(record.state, MessageState::Cancelled);
        assert_eq!(record.device_id, None);
    }
}
