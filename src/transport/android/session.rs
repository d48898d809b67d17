//! One phone's WebSocket session (device protocol v1): one task per connection, owning the
//! socket, fed by a channel from the dispatcher.
//!
//! The task reads frames, turns them into store changes submitted in arrival order, and
//! answers (`commit`, `revoke`, `ack`) once each change has committed, so a phone only ever
//! sends a job the database already records as its own. While changes commit, the task keeps
//! reading, so a busy phone is not slowed by commit latency.
//!
//! A malformed frame gets an `error` frame and the session goes on; nothing a device sends
//! can take the hub down.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use smshub_protocol::device::{
    Ack, AckedReport, DeviceFrame, ErrorFrame, Heartbeat, HeldJob, Hello, HubFrame, JobIds,
    ReportKind, Revoke, SUPPORTED_VERSIONS, SendJob, Welcome,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

use super::close_code;
use super::upgrade::DeviceSocket;
use crate::dispatch::core::JobEnd;
use crate::domain::{DeviceId, FailureCode};
use crate::domain::{DeviceKind, MessageState, format_millis, now_millis, parse_rfc3339};
use crate::registry::{CloseReason, Job, LiveDevice, Outbound};
use crate::store::{Change, Committed, DeviceRecord, Outcome};
use crate::transport::link::{DeviceLink, parse_limits};

/// Largest text frame accepted from a device.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

type Completion = Pin<Box<dyn Future<Output = Reply> + Send + Sync>>;

/// What to tell the device once a change has committed.
enum Reply {
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

/// Runs a session for an authenticated device until the socket closes; a device that has not
/// said `hello` within `hello_timeout` of the upgrade is closed with 4003.
pub async fn run(
    ws: DeviceSocket,
    device: DeviceRecord,
    link: DeviceLink,
    hello_timeout: Duration,
) {
    let (mut sink, mut stream) = ws.split();

    let hello =
        match tokio::time::timeout(hello_timeout, wait_for_hello(&mut sink, &mut stream)).await {
            Ok(Some(hello)) => hello,
            Ok(None) => return,
            Err(_) => {
                tracing::debug!(device = %device.id, "no hello in time; closing");
                let _ = sink
                    .send(close_message(close_code::TIMEOUT, "no hello in time"))
                    .await;
                return;
            }
        };
    let Some(version) = hello
        .protocol
        .iter()
        .copied()
        .filter(|it| SUPPORTED_VERSIONS.contains(it))
        .max()
    else {
        let _ = send(
            &mut sink,
            &HubFrame::Error(ErrorFrame {
                code: "unsupported_version".into(),
                message: format!("the hub speaks protocol versions {SUPPORTED_VERSIONS:?}"),
                ids: Vec::new(),
            }),
        )
        .await;
        let _ = sink
            .send(close_message(
                close_code::UNSUPPORTED_VERSION,
                "unsupported version",
            ))
            .await;
        return;
    };

    let (tx, mut outbound) = mpsc::channel::<Outbound>(1024);
    let now = now_millis();
    let live = LiveDevice {
        device_id: device.id.clone(),
        session: 0,
        kind: DeviceKind::Android,
        connected_at: now,
        last_seen_at: now,
        app_version: hello.app_version.clone(),
        model: hello.device.model.clone(),
        sims: hello.sims.clone(),
        capabilities: hello.capabilities.clone(),
        status: None,
        in_flight: 0,
    };
    let session = link.register(live, tx.clone());
    let mut ctx = Session {
        link: link.clone(),
        device_id: device.id.clone(),
        session,
        pending: FuturesOrdered::new(),
        codes: std::collections::HashMap::new(),
    };
    tracing::info!(device = %device.id, session, "device connected");

    let welcome = HubFrame::Welcome(Welcome {
        protocol: version,
        device_id: device.id.to_string(),
        heartbeat_s: link.heartbeat_s(),
        server_time: format_millis(now),
    });
    if send(&mut sink, &welcome).await.is_err() || sink.flush().await.is_err() {
        ctx.disconnect().await;
        return;
    }
    link.hello(
        &device.id,
        hello.device.model.clone(),
        hello.app_version.clone(),
        &hello.sims,
    )
    .await;
    let limits = parse_limits(device.limits.clone());
    let held = hello.jobs.as_ref().map(|jobs| {
        jobs.iter()
            .filter_map(|it| Uuid::parse_str(&it.id).ok())
            .collect()
    });
    // Settle the jobs the device holds before the dispatcher may offer it anything: a revoke
    // of a stale claim must reach the device before any new offer of the same message, or it
    // would cancel the new offer on the device while the hub records it as accepted.
    if let Some(jobs) = &hello.jobs {
        ctx.resume(jobs, &mut sink).await;
        while let Some(reply) = ctx.pending.next().await {
            if ctx.answer(reply, &mut sink).await.is_err() {
                ctx.disconnect().await;
                return;
            }
        }
        if sink.flush().await.is_err() {
            ctx.disconnect().await;
            return;
        }
    }
    link.announce(
        &device.id,
        session,
        hello.capabilities.clone(),
        limits,
        held,
    );
    drop(tx);

    let silence_limit = Duration::from_secs(u64::from(link.heartbeat_s().max(1)) * 3);
    let mut last_heard = tokio::time::Instant::now();
    let mut check = tokio::time::interval(Duration::from_secs(u64::from(
        link.heartbeat_s().clamp(1, 10),
    )));
    // Frames are buffered and flushed once per turn of the loop, after everything already
    // waiting (more frames from the device, replies, offers; at most `TURN` of each) was
    // handled: a burst of work costs one socket write, not one per frame, and a device that
    // floods frames does not keep its session from its other work.
    const TURN: usize = 64;
    'session: loop {
        tokio::select! {
            incoming = stream.next() => {
                let mut next = Some(incoming);
                let mut handled = 0;
                while let Some(incoming) = next.take() {
                    let message = match incoming {
                        Some(Ok(message)) => message,
                        Some(Err(WsError::Capacity(_))) => {
                            // RFC 6455: a message too big to process is closed with 1009.
                            let _ = sink.send(close_message(close_code::MESSAGE_TOO_BIG, "frame too large")).await;
                            break 'session;
                        }
                        _ => break 'session,
                    };
                    match message {
                        // Liveness is judged by protocol frames (spec 2.3, 4.3): WebSocket
                        // pings alone do not keep a device online.
                        Message::Text(text) => {
                            last_heard = tokio::time::Instant::now();
                            if ctx.handle(text.as_str(), &mut sink).await.is_err() {
                                break 'session;
                            }
                        }
                        Message::Binary(_) => {
                            let _ = send(&mut sink, &error_frame("invalid_frame", "frames must be JSON text")).await;
                        }
                        Message::Close(_) => break 'session,
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                    handled += 1;
                    if handled < TURN {
                        next = stream.next().now_or_never();
                    }
                }
            }
            Some(reply) = ctx.pending.next(), if !ctx.pending.is_empty() => {
                let mut next = Some(reply);
                let mut handled = 0;
                while let Some(reply) = next.take() {
                    if ctx.answer(reply, &mut sink).await.is_err() {
                        break 'session;
                    }
                    handled += 1;
                    if handled < TURN {
                        next = ctx.pending.next().now_or_never().flatten();
                    }
                }
            }
            command = outbound.recv() => {
                let mut next = Some(command);
                let mut handled = 0;
                while let Some(command) = next.take() {
                    match command {
                        Some(Outbound::Close(reason)) => {
                            let _ = sink.send(close_message(close_code_of(reason), reason.describe())).await;
                            break 'session;
                        }
                        Some(command) => {
                            if send(&mut sink, &frame_of(command)).await.is_err() {
                                break 'session;
                            }
                        }
                        None => break 'session,
                    }
                    handled += 1;
                    if handled < TURN {
                        next = outbound.try_recv().ok().map(Some);
                    }
                }
            }
            _ = check.tick() => {
                if last_heard.elapsed() > silence_limit {
                    tracing::info!(device = %ctx.device_id, "device silent too long; closing");
                    let _ = sink.send(close_message(close_code::TIMEOUT, "no heartbeat")).await;
                    break;
                }
                link.touch(&ctx.device_id, session);
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    // Answer what already committed before letting go, so a phone that reconnects quickly
    // does not re-report work the hub has stored.
    while let Some(reply) = ctx.pending.next().await {
        if ctx.answer(reply, &mut sink).await.is_err() {
            break;
        }
    }
    let _ = sink.flush().await;
    ctx.disconnect().await;
}

async fn wait_for_hello<S, R>(sink: &mut S, stream: &mut R) -> Option<Hello>
where
    S: SinkExt<Message> + Unpin,
    R: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(Ok(message)) = stream.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return None,
            _ => continue,
        };
        match DeviceFrame::parse(text.as_str()) {
            Ok(DeviceFrame::Hello(hello)) => return Some(hello),
            Ok(_) => {
                let frame = error_frame(
                    "hello_required",
                    "the first frame of a session must be hello",
                );
                sink.send(Message::text(frame.to_json())).await.ok()?;
            }
            Err(err) => {
                sink.send(Message::text(
                    error_frame("invalid_frame", &err.to_string()).to_json(),
                ))
                .await
                .ok()?;
            }
        }
    }
    None
}

struct Session {
    link: DeviceLink,
    device_id: DeviceId,
    session: u64,
    pending: FuturesOrdered<Completion>,
    /// Error codes of `failed` reports waiting for their commit.
    codes: std::collections::HashMap<Uuid, FailureCode>,
}

type SinkResult = Result<(), ()>;

impl Session {
    /// Handles one text frame.
    async fn handle<S>(&mut self, text: &str, sink: &mut S) -> SinkResult
    where
        S: SinkExt<Message> + Unpin,
    {
        if text.len() > MAX_FRAME_BYTES {
            return send(sink, &error_frame("invalid_frame", "frame too large")).await;
        }
        let frame = match DeviceFrame::parse(text) {
            Ok(it) => it,
            Err(err) => return send(sink, &error_frame("invalid_frame", &err.to_string())).await,
        };
        match frame {
            DeviceFrame::Hello(_) => {
                send(
                    sink,
                    &error_frame("invalid_frame", "hello was already received"),
                )
                .await
            }
            DeviceFrame::Heartbeat(_) => {
                self.link.touch(&self.device_id, self.session);
                send(sink, &HubFrame::Heartbeat(Heartbeat {})).await
            }
            DeviceFrame::Status(status) => {
                self.link
                    .report_status(&self.device_id, self.session, status);
                Ok(())
            }
            DeviceFrame::Accepted(JobIds { ids }) => {
                let (ids, bad) = parse_ids(&ids);
                self.accept(ids, false).await;
                self.unknown_jobs(bad, sink).await
            }
            DeviceFrame::Rejected(rejected) => {
                let (ids, bad) = parse_ids(&rejected.ids);
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
                    return send(
                        sink,
                        &error_frame("invalid_frame", "sent.parts must be 1 to 255"),
                    )
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
                    return send(
                        sink,
                        &error_frame("invalid_frame", "incoming.id must be 1 to 128 characters"),
                    )
                    .await;
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
    async fn resume<S>(&mut self, jobs: &[HeldJob], sink: &mut S)
    where
        S: SinkExt<Message> + Unpin,
    {
        // A job the device holds as committed is already its own on both sides: check that
        // the hub agrees, but do not ask the device to send it again.
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

    async fn report(&mut self, id: Uuid, wire_id: String, kind: ReportKind, change: Change) {
        let committed = self.submit(vec![change]).await;
        self.pending.push_back(Box::pin(async move {
            Reply::Report {
                id,
                wire_id,
                kind,
                outcome: wait(committed).await,
            }
        }));
    }

    async fn submit(&self, changes: Vec<Change>) -> Result<Committed, String> {
        self.link.submit(changes).await.map_err(|it| it.to_string())
    }

    /// Sends what a committed change means for the device.
    async fn answer<S>(&mut self, reply: Reply, sink: &mut S) -> SinkResult
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
                let end = match (kind, outcome) {
                    (ReportKind::Sent, Outcome::Applied) => Some(JobEnd::Sent),
                    (ReportKind::Failed, Outcome::Applied) => Some(JobEnd::Failed { code }),
                    (ReportKind::Failed, Outcome::Requeued) => Some(JobEnd::Retried { code }),
                    _ => None,
                };
                if let Some(end) = end {
                    self.link.finished(&self.device_id, id, end);
                }
                send(sink, &ack(wire_id, kind)).await
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
        match self.link.store().get_messages(&repeats).await {
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
        .await
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
        send(sink, &ack(wire_id, kind)).await
    }

    async fn disconnect(self) {
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

fn error_frame(code: &str, message: &str) -> HubFrame {
    HubFrame::Error(ErrorFrame {
        code: code.to_string(),
        message: message.to_string(),
        ids: Vec::new(),
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

/// Queues a frame on the socket's write buffer; the session loop flushes it.
async fn send<S>(sink: &mut S, frame: &HubFrame) -> SinkResult
where
    S: SinkExt<Message> + Unpin,
{
    sink.feed(Message::text(frame.to_json()))
        .await
        .map_err(|_| ())
}

/// The protocol frame for a command of the dispatcher (a close is not a frame).
fn frame_of(command: Outbound) -> HubFrame {
    match command {
        Outbound::Offer(job) => {
            let Job {
                id,
                recipient,
                text,
                parts,
                sim_slot,
                delivery_report,
                valid_until,
            } = *job;
            HubFrame::Send(SendJob {
                id: id.to_string(),
                to: recipient.to_string(),
                text,
                sim_slot,
                delivery_report,
                valid_until: valid_until.map(format_millis),
                parts,
            })
        }
        Outbound::Revoke { ids, reason } => HubFrame::Revoke(Revoke {
            ids: ids.iter().map(Uuid::to_string).collect(),
            reason: Some(reason.as_str().to_string()),
        }),
        Outbound::Close(reason) => error_frame("closing", reason.describe()),
    }
}

/// The WebSocket close code of a reason to end a session.
fn close_code_of(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::Replaced => close_code::REPLACED,
        CloseReason::Removed => close_code::REMOVED,
        CloseReason::GoingAway => close_code::GOING_AWAY,
    }
}

fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }))
}
