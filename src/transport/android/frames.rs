//! What each frame of a phone's session does (device protocol v1): the frame handlers, the
//! store changes they submit in arrival order, and the answers (`commit`, `revoke`, `ack`)
//! sent once each change has committed. The connection loop is in `session.rs`.
//!
//! Floods are bounded here (issue 13, defects 10 and 11): a frame names at most
//! [`MAX_IDS_PER_FRAME`] ids; an `accepted` for an id this session never offered is answered
//! at once without touching the store; every frame that earns an `error`, names ids that are
//! not this device's, or reports on a job this device does not hold is a strike, and a
//! device that keeps striking ([`STRIKES_PER_MINUTE`]) is closed with 1008; `incoming` is
//! rate-limited per device by the link.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;

use futures_util::SinkExt;
use futures_util::stream::FuturesOrdered;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use smshub_protocol::device::{
    Ack, AckedReport, DeviceFrame, ErrorFrame, Heartbeat, HeldJob, HubFrame, JobIds, Rejected,
    ReportKind, Revoke, UssdResult,
};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::close_code;
use super::session::{MAX_FRAME_BYTES, SinkResult, close_message, error_frame, send};
use crate::dispatch::core::JobEnd;
use crate::domain::{DeviceId, FailureCode};
use crate::domain::{MessageState, now_millis, parse_rfc3339};
use crate::registry::{Outbound, UssdOutcome};
use crate::store::{Change, Committed, Outcome};
use crate::transport::link::DeviceLink;

/// Most ids one frame may name (`accepted`, `rejected`, `hello.jobs`).
pub const MAX_IDS_PER_FRAME: usize = 1000;
/// Finished jobs a session remembers (see `Session::finished`).
const FINISHED_KEPT: usize = 4096;
/// Strikes (frames answered with an `error`, or naming jobs that are not the device's) a
/// device may earn per minute, in a burst or spread out, before it is disconnected.
pub const STRIKES_PER_MINUTE: u32 = 30;

pub(super) type Completion = Pin<Box<dyn Future<Output = Reply> + Send + Sync>>;

/// What to tell the device once a change has committed.
pub(super) enum Reply {
    /// `silent`: the device already holds the commit (a resumed `committed` job), so a
    /// confirmed ownership needs no new `commit` frame.
    Accepted {
        ids: Vec<Uuid>,
        outcomes: Result<Vec<Outcome>, String>,
        silent: bool,
    },
    Report {
        id: Uuid,
        wire_id: String,
        kind: ReportKind,
        outcome: Result<Vec<Outcome>, String>,
    },
    Incoming {
        wire_id: String,
        outcome: Result<Vec<Outcome>, String>,
    },
}

pub(super) struct Session {
    link: DeviceLink,
    pub(super) device_id: DeviceId,
    session: u64,
    pub(super) pending: FuturesOrdered<Completion>,
    /// Error codes of `failed` reports waiting for their commit.
    codes: HashMap<Uuid, FailureCode>,
    /// Jobs offered in this session or held from the device's `hello`, until their outcome:
    /// only their acceptances are worth a change to the store.
    offered: HashSet<Uuid>,
    /// Jobs of this session whose outcome was reported, so that a repeated `accepted` is
    /// still answered as a repeat (forgotten all at once past [`FINISHED_KEPT`]).
    finished: HashSet<Uuid>,
    /// Strikes the device may still earn (see [`STRIKES_PER_MINUTE`]).
    strikes: DefaultDirectRateLimiter,
    /// USSD requests sent to the device, by request id, until their `ussd_result`.
    ussd: HashMap<String, oneshot::Sender<UssdOutcome>>,
}

impl Session {
    pub(super) fn new(link: DeviceLink, device_id: DeviceId, session: u64) -> Session {
        let per_minute = NonZeroU32::new(STRIKES_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Session {
            link,
            device_id,
            session,
            pending: FuturesOrdered::new(),
            codes: HashMap::new(),
            offered: HashSet::new(),
            finished: HashSet::new(),
            strikes: RateLimiter::direct(Quota::per_minute(per_minute)),
            ussd: HashMap::new(),
        }
    }

    /// Notes what a command of the dispatcher means for the jobs this session knows.
    pub(super) fn note(&mut self, command: &Outbound) {
        match command {
            Outbound::Offer(job) => {
                self.offered.insert(job.id);
            }
            Outbound::Revoke { ids, .. } => {
                for id in ids {
                    self.offered.remove(id);
                }
            }
            Outbound::Ussd(call) => {
                // Requests whose caller gave up (timed out) are forgotten here, so a device
                // that never answers cannot grow the map.
                self.ussd.retain(|_, reply| !reply.is_closed());
                if let Some(reply) = call.take_reply() {
                    self.ussd.insert(call.id.clone(), reply);
                }
            }
            Outbound::Close(_) => {}
        }
    }

    /// `ussd_result`: hands the answer to the request waiting for it; an answer to no
    /// request of this session (late, or made up) is dropped.
    fn ussd_result(&mut self, result: UssdResult) {
        let Some(reply) = self.ussd.remove(&result.id) else {
            tracing::debug!(device = %self.device_id, id = %result.id, "ussd_result for no pending request");
            return;
        };
        let outcome = match (result.text, result.error) {
            (_, Some(error)) => Err((error.code, error.message)),
            (Some(text), None) => Ok(text),
            (None, None) => Err((
                "generic_failure".to_string(),
                "the device answered neither text nor error".to_string(),
            )),
        };
        let _ = reply.send(outcome);
    }

    /// Counts a strike against the device; once it has struck too often, closes the
    /// session with 1008 (policy violation) and says so with `Err`.
    async fn strike<S>(&self, sink: &mut S) -> SinkResult
    where
        S: SinkExt<Message> + Unpin,
    {
        if self.strikes.check().is_ok() {
            return Ok(());
        }
        tracing::warn!(device = %self.device_id, "device floods bad frames; closing");
        let _ = sink
            .send(close_message(
                close_code::POLICY_VIOLATION,
                "too many bad frames",
            ))
            .await;
        Err(())
    }

    /// An `error` frame for a bad frame, and a strike.
    pub(super) async fn refuse<S>(&self, code: &str, message: &str, sink: &mut S) -> SinkResult
    where
        S: SinkExt<Message> + Unpin,
    {
        send(sink, &error_frame(code, message)).await?;
        self.strike(sink).await
    }

    /// Handles one text frame.
    pub(super) async fn handle<S>(&mut self, text: &str, sink: &mut S) -> SinkResult
    where
        S: SinkExt<Message> + Unpin,
    {
        if text.len() > MAX_FRAME_BYTES {
            return self.refuse("invalid_frame", "frame too large", sink).await;
        }
        let frame = match DeviceFrame::parse(text) {
            Ok(it) => it,
            Err(err) => return self.refuse("invalid_frame", &err.to_string(), sink).await,
        };
        if let DeviceFrame::Accepted(JobIds { ids }) | DeviceFrame::Rejected(Rejected { ids, .. }) =
            &frame
            && ids.len() > MAX_IDS_PER_FRAME
        {
            let message = format!("a frame names at most {MAX_IDS_PER_FRAME} ids");
            return self.refuse("too_many_ids", &message, sink).await;
        }
        match frame {
            DeviceFrame::Hello(_) => {
                self.refuse("invalid_frame", "hello was already received", sink)
                    .await
            }
            DeviceFrame::UssdResult(result) => {
                self.ussd_result(result);
                Ok(())
            }
            // The session loop records the sign of life of every text frame.
            DeviceFrame::Heartbeat(_) => send(sink, &HubFrame::Heartbeat(Heartbeat {})).await,
            DeviceFrame::Status(status) => {
                // A battery level is a percentage; anything else is a worker bug, and the
                // whole status is ignored rather than routed by.
                if status.battery.is_some_and(|it| it.level > 100) {
                    let message = "battery.level must be 0 to 100";
                    return self.refuse("invalid_frame", message, sink).await;
                }
                self.link
                    .report_status(&self.device_id, self.session, status);
                Ok(())
            }
            DeviceFrame::Accepted(JobIds { ids }) => {
                let (ids, bad) = parse_ids(&ids);
                // Only an offer of this session (or a job held from its hello) can be the
                // device's: any other id is refused at once, with no work for the store.
                let (ids, strangers): (Vec<Uuid>, Vec<Uuid>) = ids
                    .into_iter()
                    .partition(|it| self.offered.contains(it) || self.finished.contains(it));
                self.accept(ids, false).await;
                if !strangers.is_empty() {
                    let revoke = Revoke {
                        ids: strangers.iter().map(Uuid::to_string).collect(),
                        reason: Some("not_assigned".into()),
                    };
                    send(sink, &HubFrame::Revoke(revoke)).await?;
                    self.strike(sink).await?;
                }
                self.unknown_jobs(bad, sink).await
            }
            DeviceFrame::Rejected(rejected) => {
                let (ids, bad) = parse_ids(&rejected.ids);
                for id in &ids {
                    self.offered.remove(id);
                }
                self.link.rejected(
                    &self.device_id,
                    ids,
                    rejected.reason.unwrap_or_else(|| "rejected".into()),
                );
                self.unknown_jobs(bad, sink).await
            }
            DeviceFrame::Sent(sent) => {
                let Ok(id) = Uuid::parse_str(&sent.id) else {
                    return self.unknown_report(sent.id, ReportKind::Sent, sink).await;
                };
                // A concatenated SMS has at most 255 parts; anything more is a device bug,
                // refused (no ack, so the report stays in the device's outbox).
                if sent.parts > 255 {
                    return self
                        .refuse("invalid_frame", "sent.parts must be 1 to 255", sink)
                        .await;
                }
                let change = Change::Sent {
                    id,
                    device: self.device_id.clone(),
                    parts: sent.parts.max(1),
                };
                self.report(id, sent.id, ReportKind::Sent, change).await;
                Ok(())
            }
            DeviceFrame::Delivered(delivered) => {
                let Ok(id) = Uuid::parse_str(&delivered.id) else {
                    return self
                        .unknown_report(delivered.id, ReportKind::Delivered, sink)
                        .await;
                };
                let change = Change::Delivered {
                    id,
                    device: self.device_id.clone(),
                };
                self.report(id, delivered.id, ReportKind::Delivered, change)
                    .await;
                Ok(())
            }
            DeviceFrame::Failed(failed) => {
                let Ok(id) = Uuid::parse_str(&failed.id) else {
                    return self
                        .unknown_report(failed.id, ReportKind::Failed, sink)
                        .await;
                };
                let temporary = failed.is_temporary();
                let message = failed
                    .reason
                    .clone()
                    .unwrap_or_else(|| describe_code(&failed.code, temporary));
                let code = FailureCode::parse(&failed.code);
                let change =
                    self.link
                        .failure(id, &self.device_id, code.clone(), message, temporary);
                self.codes.insert(id, code);
                self.report(id, failed.id, ReportKind::Failed, change).await;
                Ok(())
            }
            DeviceFrame::Incoming(incoming) => {
                if incoming.id.is_empty() || incoming.id.len() > 128 {
                    let message = "incoming.id must be 1 to 128 characters";
                    return self.refuse("invalid_frame", message, sink).await;
                }
                if !self.link.incoming_allowed(&self.device_id) {
                    // Not stored and not acknowledged: the device keeps it and sends it again.
                    let error = ErrorFrame {
                        code: "rate_limited".into(),
                        message: "too many incoming SMS from this device; send it again later"
                            .into(),
                        ids: vec![incoming.id],
                    };
                    return send(sink, &HubFrame::Error(error)).await;
                }
                let received_at = incoming
                    .received_at
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .unwrap_or_else(now_millis);
                let change = Change::Incoming {
                    device: self.device_id.clone(),
                    external_id: incoming.id.clone(),
                    sim_slot: incoming.sim_slot,
                    sender: incoming.from,
                    text: incoming.text,
                    received_at,
                };
                let wire_id = incoming.id;
                let committed = self.submit(vec![change]).await;
                self.pending.push_back(Box::pin(async move {
                    Reply::Incoming {
                        wire_id,
                        outcome: wait(committed).await,
                    }
                }));
                Ok(())
            }
        }
    }

    /// The device announced jobs it holds from an earlier session.
    pub(super) async fn resume<S>(&mut self, jobs: &[HeldJob], sink: &mut S)
    where
        S: SinkExt<Message> + Unpin,
    {
        // A job the device holds as committed is already its own on both sides: check that
        // the hub agrees, but do not ask the device to send it again.
        for job in jobs {
            if let Ok(id) = Uuid::parse_str(&job.id) {
                self.offered.insert(id);
            }
        }
        let (committed, accepted): (Vec<&HeldJob>, Vec<&HeldJob>) = jobs
            .iter()
            .partition(|it| it.phase == smshub_protocol::device::HeldPhase::Committed);
        let mut bad_all = Vec::new();
        for (held, silent) in [(accepted, false), (committed, true)] {
            let wire: Vec<String> = held.iter().map(|it| it.id.clone()).collect();
            let (ids, bad) = parse_ids(&wire);
            self.accept(ids, silent).await;
            bad_all.extend(bad);
        }
        let _ = self.unknown_jobs(bad_all, sink).await;
    }

    async fn accept(&mut self, ids: Vec<Uuid>, silent: bool) {
        if ids.is_empty() {
            return;
        }
        let changes = ids
            .iter()
            .map(|id| Change::Accept {
                id: *id,
                device: self.device_id.clone(),
            })
            .collect();
        let committed = self.submit(changes).await;
        self.pending.push_back(Box::pin(async move {
            Reply::Accepted {
                ids,
                outcomes: wait(committed).await,
                silent,
            }
        }));
    }

    /// Submits a report's change; its answer follows once it commits. A plain function
    /// returning the future, so the future holds the change in one place (an async fn keeps
    /// room for its arguments beside what they move into, and every session's future is as
    /// large as its largest await).
    fn report(
        &mut self,
        id: Uuid,
        wire_id: String,
        kind: ReportKind,
        change: Change,
    ) -> impl std::future::Future<Output = ()> + '_ {
        let changes = vec![change];
        async move {
            let committed = self.submit(changes).await;
            self.pending.push_back(Box::pin(async move {
                Reply::Report {
                    id,
                    wire_id,
                    kind,
                    outcome: wait(committed).await,
                }
            }));
        }
    }

    async fn submit(&self, changes: Vec<Change>) -> Result<Committed, String> {
        self.link.submit(changes).await.map_err(|it| it.to_string())
    }

    /// Sends what a committed change means for the device.
    pub(super) async fn answer<S>(&mut self, reply: Reply, sink: &mut S) -> SinkResult
    where
        S: SinkExt<Message> + Unpin,
    {
        match reply {
            Reply::Accepted {
                ids,
                outcomes,
                silent,
            } => {
                let outcomes = match outcomes {
                    Ok(it) => it,
                    Err(err) => {
                        // Not recorded: the device must not send. It may offer again later.
                        tracing::error!(error = %err, "could not record acceptance");
                        let ids = ids.iter().map(Uuid::to_string).collect();
                        return send(
                            sink,
                            &HubFrame::Revoke(Revoke {
                                ids,
                                reason: Some("hub_error".into()),
                            }),
                        )
                        .await;
                    }
                };
                let past = self.past_acceptance(&ids, &outcomes).await;
                let mut commit = Vec::new();
                let mut owned = Vec::new();
                let mut revoke = Vec::new();
                let mut lost = Vec::new();
                for (id, outcome) in ids.into_iter().zip(outcomes) {
                    match outcome {
                        // Reported sent or failed already: the acceptance is a repeat that
                        // needs no commit, and the job no longer occupies the device.
                        Outcome::Unchanged if past.contains(&id) => {}
                        Outcome::Applied | Outcome::Unchanged => {
                            commit.push(id.to_string());
                            owned.push(id);
                        }
                        Outcome::Refused | Outcome::Requeued => {
                            revoke.push(id.to_string());
                            lost.push(id);
                        }
                    }
                }
                if !owned.is_empty() {
                    self.link.owned(&self.device_id, owned);
                    if !silent {
                        send(sink, &HubFrame::Commit(JobIds { ids: commit })).await?;
                    }
                }
                if !lost.is_empty() {
                    self.link.offer_refused(&self.device_id, lost);
                    let reason = Some("not_assigned".to_string());
                    send(
                        sink,
                        &HubFrame::Revoke(Revoke {
                            ids: revoke,
                            reason,
                        }),
                    )
                    .await?;
                }
                Ok(())
            }
            Reply::Report {
                id,
                wire_id,
                kind,
                outcome,
            } => {
                let code = self
                    .codes
                    .remove(&id)
                    .unwrap_or_else(|| FailureCode::Other(String::new()));
                let outcome = match outcome {
                    Ok(outcomes) => outcomes.first().copied().unwrap_or(Outcome::Unchanged),
                    Err(err) => {
                        // Not stored: no ack. A device re-sends unacknowledged reports when
                        // it reconnects, so end the session rather than leave the job waiting.
                        tracing::error!(error = %err, "could not record a report; closing the session");
                        let _ = sink
                            .send(close_message(
                                close_code::INTERNAL_ERROR,
                                "hub could not store a report",
                            ))
                            .await;
                        return Err(());
                    }
                };
                if outcome == Outcome::Refused {
                    tracing::warn!(device = %self.device_id, %id, ?kind, "report for a job this device does not own; ignored");
                }
                if matches!(kind, ReportKind::Sent | ReportKind::Failed) && self.offered.remove(&id)
                {
                    if self.finished.len() >= FINISHED_KEPT {
                        self.finished.clear();
                    }
                    self.finished.insert(id);
                }
                let end = match (kind, outcome) {
                    (ReportKind::Sent, Outcome::Applied) => Some(JobEnd::Sent),
                    (ReportKind::Failed, Outcome::Applied) => Some(JobEnd::Failed { code }),
                    (ReportKind::Failed, Outcome::Requeued) => Some(JobEnd::Retried { code }),
                    _ => None,
                };
                if let Some(end) = end {
                    self.link.finished(&self.device_id, id, end);
                }
                send(sink, &ack(wire_id, kind)).await?;
                if outcome == Outcome::Refused {
                    self.strike(sink).await?;
                }
                Ok(())
            }
            Reply::Incoming { wire_id, outcome } => match outcome {
                Ok(_) => send(sink, &ack(wire_id, ReportKind::Incoming)).await,
                Err(err) => {
                    tracing::error!(error = %err, "could not store an incoming SMS; closing the session");
                    let _ = sink
                        .send(close_message(
                            close_code::INTERNAL_ERROR,
                            "hub could not store a report",
                        ))
                        .await;
                    Err(())
                }
            },
        }
    }

    /// Of the acceptances the store found already made (`Unchanged`), those of jobs already
    /// past `accepted` (their outcome is stored). Read only when there are repeats, which a
    /// working device rarely sends; a failed read counts none as past, as before.
    async fn past_acceptance(&self, ids: &[Uuid], outcomes: &[Outcome]) -> Vec<Uuid> {
        let repeats: Vec<Uuid> = ids
            .iter()
            .zip(outcomes)
            .filter(|(_, outcome)| **outcome == Outcome::Unchanged)
            .map(|(id, _)| *id)
            .collect();
        if repeats.is_empty() {
            return Vec::new();
        }
        // Boxed: this query is rare, and inline it would make every session's future larger.
        match Box::pin(self.link.store().get_messages(&repeats)).await {
            Ok(records) => records
                .into_iter()
                .filter(|it| it.state != MessageState::Accepted)
                .map(|it| it.id)
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "could not read repeated acceptances");
                Vec::new()
            }
        }
    }

    async fn unknown_jobs<S>(&self, bad: Vec<String>, sink: &mut S) -> SinkResult
    where
        S: SinkExt<Message> + Unpin,
    {
        if bad.is_empty() {
            return Ok(());
        }
        let error = ErrorFrame {
            code: "unknown_job".into(),
            message: "not job ids of this hub".into(),
            ids: bad.clone(),
        };
        send(sink, &HubFrame::Error(error)).await?;
        send(
            sink,
            &HubFrame::Revoke(Revoke {
                ids: bad,
                reason: Some("unknown_job".into()),
            }),
        )
        .await?;
        self.strike(sink).await
    }

    /// A report about an id that is not a job of this hub: say so, and ack it so the device
    /// stops repeating it.
    async fn unknown_report<S>(&self, wire_id: String, kind: ReportKind, sink: &mut S) -> SinkResult
    where
        S: SinkExt<Message> + Unpin,
    {
        let error = ErrorFrame {
            code: "unknown_job".into(),
            message: "not a job id of this hub".into(),
            ids: vec![wire_id.clone()],
        };
        send(sink, &HubFrame::Error(error)).await?;
        send(sink, &ack(wire_id, kind)).await?;
        self.strike(sink).await
    }

    pub(super) async fn disconnect(self) {
        self.link.go_offline(&self.device_id, self.session).await;
        tracing::info!(device = %self.device_id, session = self.session, "device disconnected");
    }
}

async fn wait(committed: Result<Committed, String>) -> Result<Vec<Outcome>, String> {
    match committed {
        Ok(it) => it.await.map_err(|it| it.to_string()),
        Err(err) => Err(err),
    }
}

fn parse_ids(ids: &[String]) -> (Vec<Uuid>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for id in ids {
        match Uuid::parse_str(id) {
            Ok(it) => good.push(it),
            Err(_) => bad.push(id.clone()),
        }
    }
    (good, bad)
}

fn ack(id: String, report: ReportKind) -> HubFrame {
    HubFrame::Ack(Ack {
        reports: vec![AckedReport { id, report }],
    })
}

/// The message stored for a failure the device gave no reason for.
fn describe_code(code: &str, temporary: bool) -> String {
    if temporary {
        format!("the device reported a temporary failure ({code})")
    } else {
        format!("the device reported a permanent failure ({code})")
    }
}
