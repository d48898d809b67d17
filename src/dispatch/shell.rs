//! [`Shell`], the dispatcher's task: it feeds the [`Core`] events and the time, and carries
//! out the core's [`Action`]s (offers, requeues, revokes, store writes, the registry's view
//! of each device).
//!
//! Store writes are submitted from this one loop, in order, and their outcomes come back as
//! [`Event`]s from spawned tasks: the loop never waits on a commit. It never decides which
//! device gets a job nor when (that is the core's), and never offers a job before its
//! `dispatched` is queued for the writer.

use std::collections::HashMap;
use std::sync::Arc;

use smshub_protocol::device::ErrorCode;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::core::{Action, Core, JobEnd, ReportedSim};
use super::{Backlog, Clock, Event, QueuedMessage};
use crate::domain::{DeviceId, FailureCode};
use crate::domain::{MessageState, format_millis};
use crate::registry::{DeviceRegistry, Job, Outbound, RevokeReason};
use crate::store::{Change, EventType, NewEvent, Outcome, Store};

/// The dispatcher's loop and what it needs to carry out the core's actions.
pub(super) struct Shell {
    pub(super) core: Core,
    pub(super) store: Store,
    pub(super) registry: Arc<DeviceRegistry>,
    /// The sender of the loop's own channel, for the outcomes of store writes.
    pub(super) events: mpsc::UnboundedSender<Event>,
    pub(super) backlog: Arc<Backlog>,
    pub(super) clock: Clock,
    /// The hub is shutting down ([`Event::Stopping`]).
    pub(super) stopping: bool,
}

impl Shell {
    /// The loop: waits for an event or the core's next wake, then ticks and dispatches.
    /// Returns when every [`super::Dispatcher`] handle is gone.
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
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

    /// Tells the API how many messages wait, in all and per key.
    fn publish_backlog(&self) {
        self.backlog
            .publish(self.core.waiting(), |key| self.core.waiting_for_key(key));
    }

    /// Hands one event to the core and carries out what it decides.
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
            } => {
                let actions = self.core.connected(
                    &device_id,
                    session,
                    &capabilities,
                    limits,
                    held.as_deref(),
                    now,
                );
                // The SIMs it reported at `hello`, to find their managed cards.
                if let Some(live) = self.registry.get(&device_id) {
                    let sims = live
                        .sims
                        .iter()
                        .map(|it| ReportedSim {
                            slot: it.slot,
                            iccid: it.iccid.clone(),
                            operator: it.operator.clone(),
                        })
                        .collect();
                    self.core.sims_reported(&device_id, sims);
                }
                actions
            }
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
            Event::Stopping => {
                self.stopping = true;
                Vec::new()
            }
            Event::Owned { device_id, ids } => self.core.owned(&device_id, &ids, now),
            Event::Finished { device_id, id, end } => {
                if matches!(end, JobEnd::Sent)
                    && let Some(submitted) = self.core.submitted_at(&device_id, id)
                {
                    let latency = u64::try_from(now - submitted).unwrap_or(0);
                    crate::series::record_sent_latency(latency, now);
                }
                self.core.finished(&device_id, id, end, now)
            }
            Event::Rejected {
                device_id,
                ids,
                reason,
            } => {
                tracing::debug!(device = %device_id, ?ids, %reason, "offers rejected");
                self.core.rejected(&device_id, &ids, &reason, now)
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
            Event::Quotas(reply) => {
                let _ = reply.send(self.core.quotas(now));
                Vec::new()
            }
            Event::SimCard(card) => {
                self.core.put_sim_card(card);
                Vec::new()
            }
            Event::SimCardRemoved(id) => {
                self.core.remove_sim_card(id);
                Vec::new()
            }
            Event::Route { rule, enabled } => {
                self.core.put_route(rule, enabled);
                Vec::new()
            }
            Event::RouteRemoved(id) => {
                self.core.remove_route(id);
                Vec::new()
            }
            Event::Rest {
                device_id,
                minutes,
                reason,
            } => {
                let until = minutes.map(|it| now + i64::from(it) * 60_000);
                self.core.set_rest(&device_id, until, reason, now)
            }
        };
        self.execute(actions).await;
    }

    /// Carries out the core's decisions. Store writes are submitted here, in order.
    pub(super) async fn execute(&mut self, actions: Vec<Action>) {
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
                            code: FailureCode::NotSent,
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
                                    code: FailureCode::NotSent,
                                },
                                Some(Outcome::Applied) => JobEnd::Failed {
                                    code: FailureCode::NotSent,
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
                            code: FailureCode::DeviceRemoved,
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
                Action::FailUnsendable { device, ids } => {
                    let changes = ids
                        .into_iter()
                        .map(|id| Change::Failed {
                            id,
                            device: None,
                            code: FailureCode::Known(ErrorCode::Unsupported),
                            message: format!(
                                "device {device} does not send multipart messages (its hello says multipart: false) and this message has several parts"
                            ),
                            temporary: false,
                            retry: None,
                        })
                        .collect();
                    self.fire(changes, "fail messages their device cannot send")
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
                    let payload = serde_json::json!({ "until": until, "reason": reason });
                    let event = NewEvent::device(EventType::DeviceRested, &device, Some(payload));
                    self.fire(vec![Change::Emit(vec![event])], "record a rest")
                        .await;
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
    async fn requeue(&self, device: DeviceId, offered: Vec<QueuedMessage>, reason: String) {
        let changes = offered
            .iter()
            .map(|it| Change::Requeue {
                id: it.id,
                device: device.clone(),
                reason: reason.clone(),
                // The device lost or refused it: the attempt counts (a message that makes
                // phones drop their connection must not be offered forever), unless the hub
                // is closing the sessions itself.
                refund: self.stopping,
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
    async fn offer(&self, device_id: DeviceId, jobs: Vec<(QueuedMessage, Option<u8>)>) {
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
                    recipient: message.recipient.clone(),
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
mod tests {
    use std::time::Duration;

    use smshub_protocol::device::{Battery, Capabilities, SimStatus, Status};

    use super::*;
    use crate::dispatch::Dispatcher;
    use crate::dispatch::core::DispatchConfig;
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
            recipient: crate::domain::PhoneNumber::from_e164_unchecked("+33612345678".into()),
            text: "hello".into(),
            parts: 1,
            requested_device_id: None,
            requested_sim_slot: None,
            delivery_report: false,
            created_at: now_millis(),
            priority: 0,
            schedule_at: None,
            valid_until: None,
            allowed_devices: None,
        };
        store
            .apply_all(vec![
                Change::CreateDevice {
                    id: "phone".into(),
                    name: "phone".into(),
                    kind: DeviceKind::Android,
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
            ussd: false,
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
