//! One phone's WebSocket session (device protocol v1): one task per connection, owning the
//! socket, fed by a channel from the dispatcher.
//!
//! This file is the connection loop: `hello` and `welcome`, the resume of held jobs, then
//! frames from the device, answers as their changes commit, the dispatcher's commands and
//! the liveness check, each served a bounded turn. What each frame does is in `frames.rs`:
//! frames become store changes submitted in arrival order, answered (`commit`, `revoke`,
//! `ack`) once each has committed, so a phone only ever sends a job the database already
//! records as its own. While changes commit, the task keeps reading, so a busy phone is not
//! slowed by commit latency.
//!
//! A malformed frame gets an `error` frame and the session goes on; nothing a device sends
//! can take the hub down.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use smshub_protocol::device::{
    DeviceFrame, ErrorFrame, Hello, HubFrame, Revoke, SUPPORTED_VERSIONS, SendJob, UssdCommand,
    Welcome,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

use super::close_code;
use super::frames::{MAX_IDS_PER_FRAME, Session};
use super::upgrade::DeviceSocket;
use crate::domain::{DeviceKind, format_millis, now_millis};
use crate::registry::{CloseReason, Job, LiveDevice, Outbound};
use crate::store::DeviceRecord;
use crate::transport::link::{DeviceLink, parse_limits};

/// What writing to the socket came to: `Err` ends the session.
pub(super) type SinkResult = Result<(), ()>;

/// Largest text frame accepted from a device.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What a session starts from: the authenticated device, the hub's side, and how long the
/// device has to say `hello`.
pub struct Start {
    pub device: DeviceRecord,
    pub link: DeviceLink,
    pub hello_timeout: Duration,
}

/// The socket's two halves after the handshake, the session's state and what the loop
/// needs of the start.
struct Open {
    sink: futures_util::stream::SplitSink<DeviceSocket, Message>,
    stream: futures_util::stream::SplitStream<DeviceSocket>,
    ctx: Session,
    link: DeviceLink,
    session: u64,
    outbound: mpsc::Receiver<Outbound>,
    /// Whether the worker can request delivery reports.
    reports: bool,
}

/// Runs a session for an authenticated device until the socket closes; a device that has not
/// said `hello` within `hello_timeout` of the upgrade is closed with 4003.
///
/// Memory: the task's future is what every connected phone costs most, so it is kept small.
/// The start (`hello`, the welcome, the resume of held jobs) is a boxed future of its own,
/// freed before the loop; arguments come boxed (an async fn keeps room for its arguments all
/// its life, beside the locals they move into).
pub async fn run(ws: Box<DeviceSocket>, start: Box<Start>) {
    if let Some(open) = Box::pin(open(ws, start)).await {
        serve(open).await;
    }
}

/// The start of a session: `hello`, the welcome, registration, the resume of the jobs the
/// device holds. `None`: the session ended there.
async fn open(ws: Box<DeviceSocket>, start: Box<Start>) -> Option<Box<Open>> {
    let Start {
        device,
        link,
        hello_timeout,
    } = *start;
    let (mut sink, mut stream) = (*ws).split();

    let hello =
        match tokio::time::timeout(hello_timeout, wait_for_hello(&mut sink, &mut stream)).await {
            Ok(Some(hello)) => hello,
            Ok(None) => return None,
            Err(_) => {
                tracing::debug!(device = %device.id, "no hello in time; closing");
                let _ = sink
                    .send(close_message(close_code::TIMEOUT, "no hello in time"))
                    .await;
                return None;
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
        return None;
    };

    let (tx, outbound) = mpsc::channel::<Outbound>(1024);
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
    let mut ctx = Session::new(link.clone(), device.id.clone(), session);
    tracing::info!(device = %device.id, session, "device connected");

    let welcome = HubFrame::Welcome(Welcome {
        protocol: version,
        device_id: device.id.to_string(),
        heartbeat_s: link.heartbeat_s(),
        server_time: format_millis(now),
    });
    if send(&mut sink, &welcome).await.is_err() || sink.flush().await.is_err() {
        ctx.disconnect().await;
        return None;
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
    if hello
        .jobs
        .as_ref()
        .is_some_and(|it| it.len() > MAX_IDS_PER_FRAME)
    {
        let message = format!("a frame names at most {MAX_IDS_PER_FRAME} ids");
        let _ = send(&mut sink, &error_frame("too_many_ids", &message)).await;
        let _ = sink
            .send(close_message(
                close_code::POLICY_VIOLATION,
                "too many held jobs",
            ))
            .await;
        ctx.disconnect().await;
        return None;
    }
    // Settle the jobs the device holds before the dispatcher may offer it anything: a revoke
    // of a stale claim must reach the device before any new offer of the same message, or it
    // would cancel the new offer on the device while the hub records it as accepted.
    if let Some(jobs) = &hello.jobs {
        ctx.resume(jobs, &mut sink).await;
        while let Some(reply) = ctx.pending.next().await {
            if ctx.answer(reply, &mut sink).await.is_err() {
                ctx.disconnect().await;
                return None;
            }
        }
        if sink.flush().await.is_err() {
            ctx.disconnect().await;
            return None;
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
    Some(Box::new(Open {
        sink,
        stream,
        ctx,
        link,
        session,
        outbound,
        // A worker that cannot request delivery reports is never asked for one (spec 6).
        reports: hello.capabilities.delivery_reports,
    }))
}

/// The session's loop, until the socket closes or the hub closes it.
async fn serve(open: Box<Open>) {
    let Open {
        mut sink,
        mut stream,
        mut ctx,
        link,
        session,
        mut outbound,
        reports,
    } = *open;
    // Liveness: a device silent for `silence_limit` is closed. One timer per session, set
    // for when the silence would be reached and moved on when it fires early (frames came
    // meanwhile): an idle phone's task wakes about once per `silence_limit`, not every few
    // seconds, which is what a hub of tens of thousands of phones spends at rest.
    let silence_limit = Duration::from_secs(u64::from(link.heartbeat_s().max(1)) * 3);
    let mut last_heard = tokio::time::Instant::now();
    let mut last_touched = last_heard;
    let silence = tokio::time::sleep(silence_limit);
    tokio::pin!(silence);
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
                            // The registry's `last_seen_at`, at most once a second.
                            if last_heard.duration_since(last_touched) >= Duration::from_secs(1) {
                                last_touched = last_heard;
                                link.touch(&ctx.device_id, session);
                            }
                            if ctx.handle(text.as_str(), &mut sink).await.is_err() {
                                break 'session;
                            }
                        }
                        Message::Binary(_) => {
                            if ctx.refuse("invalid_frame", "frames must be JSON text", &mut sink).await.is_err() {
                                break 'session;
                            }
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
                            ctx.note(&command);
                            if send(&mut sink, &frame_of(command, reports)).await.is_err() {
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
            _ = &mut silence => {
                if last_heard.elapsed() >= silence_limit {
                    tracing::info!(device = %ctx.device_id, "device silent too long; closing");
                    let _ = sink.send(close_message(close_code::TIMEOUT, "no heartbeat")).await;
                    break;
                }
                silence.as_mut().reset(last_heard + silence_limit);
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
    // Boxed: inline, the disconnect's future would make the whole loop's that much larger.
    Box::pin(ctx.disconnect()).await;
}

async fn wait_for_hello<S, R>(sink: &mut S, stream: &mut R) -> Option<Hello>
where
    S: SinkExt<Message> + Unpin,
    R: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = match stream.next().await? {
            Ok(it) => it,
            Err(WsError::Capacity(_)) => {
                // RFC 6455: a message too big to process is closed with 1009, hello or not.
                let close = close_message(close_code::MESSAGE_TOO_BIG, "frame too large");
                let _ = sink.send(close).await;
                return None;
            }
            Err(_) => return None,
        };
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
}

pub(super) fn error_frame(code: &str, message: &str) -> HubFrame {
    HubFrame::Error(ErrorFrame {
        code: code.to_string(),
        message: message.to_string(),
        ids: Vec::new(),
    })
}

/// Queues a frame on the socket's write buffer; the session loop flushes it.
pub(super) async fn send<S>(sink: &mut S, frame: &HubFrame) -> SinkResult
where
    S: SinkExt<Message> + Unpin,
{
    sink.feed(Message::text(frame.to_json()))
        .await
        .map_err(|_| ())
}

/// The protocol frame for a command of the dispatcher (a close is not a frame);
/// `delivery_reports` is the worker's capability: without it, no job asks for a report.
fn frame_of(command: Outbound, delivery_reports: bool) -> HubFrame {
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
                delivery_report: delivery_report && delivery_reports,
                valid_until: valid_until.map(format_millis),
                parts,
            })
        }
        Outbound::Revoke { ids, reason } => HubFrame::Revoke(Revoke {
            ids: ids.iter().map(Uuid::to_string).collect(),
            reason: Some(reason.as_str().to_string()),
        }),
        Outbound::Ussd(call) => HubFrame::Ussd(UssdCommand {
            id: call.id,
            sim: call.slot,
            code: call.code,
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
        CloseReason::TokenRevoked => close_code::TOKEN_REVOKED,
    }
}

pub(super) fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }))
}
