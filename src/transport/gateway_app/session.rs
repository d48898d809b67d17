//! A phone's live channel: `GET /mobile/v1/events`, Server-Sent Events. While the stream is
//! open the phone is a session in the registry and may be offered jobs; an offer is kept
//! here until the phone pulls it (`pull.rs`) and the stream says `MessageEnqueued` so the
//! app pulls at once; a keep-alive comment goes out every 15 s, as the app's own server
//! does. When the stream ends (the phone went away, or the write of a keep-alive failed),
//! the session ends: offers not pulled go back to the queue, jobs pulled stay the phone's.
//!
//! [`Sessions`] is the state the HTTP requests of one phone share with its session task:
//! the open session's number and its offers not yet pulled, and the jobs the phone said it
//! has `Processed`, which are no longer listed to it. Its methods are synchronous and hold
//! no guard across an `.await`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use dashmap::DashMap;
use smshub_protocol::device::{Capabilities, SimInfo, SimStatus, Status};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use warp::reply::{Reply, Response};

use super::{GatewayApp, KIND, MAX_IN_FLIGHT};
use crate::domain::{DeviceId, now_millis};
use crate::registry::{CloseReason, Job, LiveDevice, Outbound};
use crate::store::DeviceRecord;
use crate::transport::link::parse_limits;

/// Between two keep-alive comments on the stream (the app's server uses 15 s too).
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// Jobs a phone may have marked `Processed` and not yet finished, remembered per phone; past
/// it the memory starts over (the phone is then only listed those jobs once more).
const PROCESSED_KEPT: usize = 10_000;

/// The open sessions of this kind of phone, and what their requests share.
#[derive(Default)]
pub struct Sessions {
    live: DashMap<DeviceId, Live>,
    processed: DashMap<DeviceId, HashSet<Uuid>>,
}

struct Live {
    session: u64,
    /// Offered and not yet pulled, in the order offered.
    offered: Vec<Job>,
}

impl Sessions {
    fn open(&self, device: &DeviceId, session: u64) {
        self.live.insert(
            device.clone(),
            Live {
                session,
                offered: Vec::new(),
            },
        );
    }

    /// Ends `session` (and only it: a newer session of the device stays).
    fn close(&self, device: &DeviceId, session: u64) {
        self.live.remove_if(device, |_, it| it.session == session);
    }

    /// Keeps an offer for the phone's next pull; `false` if the session is gone.
    fn offer(&self, device: &DeviceId, session: u64, job: Job) -> bool {
        match self.live.get_mut(device) {
            Some(mut live) if live.session == session => {
                live.offered.push(job);
                true
            }
            _ => false,
        }
    }

    /// Takes back offers not yet pulled.
    fn revoke(&self, device: &DeviceId, session: u64, ids: &[Uuid]) {
        if let Some(mut live) = self.live.get_mut(device)
            && live.session == session
        {
            live.offered.retain(|it| !ids.contains(&it.id));
        }
    }

    /// The open session and the offers it holds, taken for a pull.
    pub(super) fn take(&self, device: &DeviceId) -> Option<(u64, Vec<Job>)> {
        let mut live = self.live.get_mut(device)?;
        let offered = std::mem::take(&mut live.offered);
        Some((live.session, offered))
    }

    /// The number of the device's open session.
    pub(super) fn session(&self, device: &DeviceId) -> Option<u64> {
        self.live.get(device).map(|it| it.session)
    }

    /// The phone said it has these jobs in hand (`Processed`).
    pub(super) fn processed(&self, device: &DeviceId, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let mut set = self.processed.entry(device.clone()).or_default();
        if set.len() + ids.len() > PROCESSED_KEPT {
            set.clear();
        }
        set.extend(ids.iter().copied());
    }

    /// These jobs ended: nothing more to remember of them.
    pub(super) fn ended(&self, device: &DeviceId, ids: &[Uuid]) {
        if let Some(mut set) = self.processed.get_mut(device) {
            for id in ids {
                set.remove(id);
            }
        }
    }

    /// Whether the phone said it has job `id` in hand.
    pub(super) fn is_processed(&self, device: &DeviceId, id: &Uuid) -> bool {
        self.processed.get(device).is_some_and(|it| it.contains(id))
    }

    /// The device was removed or re-registered: forget it.
    pub(super) fn forget(&self, device: &DeviceId) {
        self.processed.remove(device);
    }
}

/// What a phone of this kind can do: it splits long texts and asks for delivery reports
/// itself, forwards received SMS (through its webhook), and holds at most
/// [`MAX_IN_FLIGHT`] jobs.
pub fn capabilities() -> Capabilities {
    Capabilities {
        max_in_flight: MAX_IN_FLIGHT,
        multipart: true,
        delivery_reports: true,
        incoming: true,
        ussd: false,
    }
}

/// The SIMs stored for a device (as its last `PATCH` reported them).
fn stored_sims(device: &DeviceRecord) -> Vec<SimInfo> {
    device
        .sims
        .clone()
        .and_then(|it| serde_json::from_value(it).ok())
        .unwrap_or_default()
}

/// What smshub knows of a phone of this kind before it reports its health, and beside what
/// it reports: its SIMs registered with no signal reading (the app reports none), and no
/// battery reading. A phone whose SIMs are not known yet has one, in slot 0.
pub fn baseline(device: &DeviceRecord) -> Status {
    let mut sims: Vec<SimStatus> = stored_sims(device)
        .into_iter()
        .map(|it| SimStatus {
            slot: it.slot,
            registered: true,
            operator: it.operator,
            ..SimStatus::default()
        })
        .collect();
    if sims.is_empty() {
        sims.push(SimStatus {
            slot: 0,
            registered: true,
            ..SimStatus::default()
        });
    }
    Status {
        battery: None,
        sims,
        connection: None,
    }
}

/// Opens a session for `device` and answers with its event stream.
pub(super) fn open(app: GatewayApp, device: DeviceRecord) -> Response {
    let (tx, outbound) = mpsc::channel::<Outbound>(1024);
    let now = now_millis();
    let live = LiveDevice {
        device_id: device.id.clone(),
        session: 0,
        kind: KIND,
        connected_at: now,
        last_seen_at: now,
        app_version: device.app_version.clone(),
        model: device.model.clone(),
        sims: stored_sims(&device),
        capabilities: capabilities(),
        status: None,
        in_flight: 0,
    };
    let session = app.link.register(live, tx);
    app.sessions.open(&device.id, session);
    tracing::info!(device = %device.id, session, "SMS Gateway app connected");
    // One pending wake-up is enough: the app pulls everything offered when it wakes.
    let (wake_tx, wake_rx) = mpsc::channel::<()>(1);
    let (gone_tx, gone_rx) = oneshot::channel::<()>();
    let limits = parse_limits(device.limits.clone());
    tokio::spawn(run(
        app.clone(),
        device.id.clone(),
        session,
        outbound,
        wake_tx,
        gone_rx,
    ));
    // The app keeps its own journal (its database) of what it pulled and reports every job
    // it holds; jobs accepted in earlier sessions stay its own.
    app.link
        .announce(&device.id, session, capabilities(), limits, None);
    // It may be offered jobs before its first ping: as a phone with its SIMs in service.
    app.link
        .report_status(&device.id, session, baseline(&device));
    let events = futures_util::stream::unfold(
        (wake_rx, Gone(Some(gone_tx))),
        |(mut wake, gone)| async move {
            wake.recv().await?;
            let event = warp::sse::Event::default()
                .event("MessageEnqueued")
                .data("{}");
            Some((Ok::<_, Infallible>(event), (wake, gone)))
        },
    );
    let stream = warp::sse::keep_alive()
        .interval(KEEPALIVE)
        .text("keepalive")
        .stream(events);
    warp::sse::reply(stream).into_response()
}

/// Dropped with the response body: the phone's stream is gone.
struct Gone(Option<oneshot::Sender<()>>);

impl Drop for Gone {
    fn drop(&mut self) {
        if let Some(it) = self.0.take() {
            let _ = it.send(());
        }
    }
}

/// The session: the dispatcher's commands, until the stream or the session ends.
async fn run(
    app: GatewayApp,
    device: DeviceId,
    session: u64,
    mut outbound: mpsc::Receiver<Outbound>,
    wake: mpsc::Sender<()>,
    mut gone: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            command = outbound.recv() => match command {
                Some(Outbound::Offer(job)) => {
                    if app.sessions.offer(&device, session, *job) {
                        let _ = wake.try_send(());
                    }
                }
                Some(Outbound::Revoke { ids, .. }) => app.sessions.revoke(&device, session, &ids),
                // Never announced: dropping the call answers its caller with "gone".
                Some(Outbound::Ussd(_)) => {}
                Some(Outbound::Close(reason)) => {
                    if reason == CloseReason::Removed {
                        app.sessions.forget(&device);
                    }
                    tracing::info!(%device, session, reason = reason.describe(), "closing an SMS Gateway app's stream");
                    break;
                }
                None => break,
            },
            _ = &mut gone => break,
        }
    }
    app.sessions.close(&device, session);
    app.link.go_offline(&device, session).await;
    tracing::info!(%device, session, "SMS Gateway app disconnected");
}
