//! What a serial modem's session and a HiLink stick's session do the same way as devices of
//! the hub: come online (describe themselves, register, announce an empty journal, report
//! their status), take the next thing to serve from the hub's channel and the API's, and
//! commit how a job ended.
//!
//! Must never: talk to a device, or know which transport it serves.

use std::future::Future;
use std::time::Duration;

use smshub_protocol::device::{Capabilities, ErrorCode, Status};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval};
use uuid::Uuid;

use super::device::{model_name, sim_info};
use super::status::{Control, ModemState, ModemStatus};
use super::supervisor::Ended;
use crate::dispatch::limits::Limits;
use crate::domain::{DeviceId, DeviceKind, format_millis, now_millis};
use crate::registry::{Job, LiveDevice, Outbound};
use crate::store::{Change, Outcome};
use crate::transport::link::DeviceLink;

/// Why sending a message failed, as stored.
#[derive(Debug)]
pub struct SendFailure {
    pub code: ErrorCode,
    pub message: String,
    /// Nothing went out: the message may go back to the queue by the retry rule.
    pub temporary: bool,
    /// The device is gone (its port failed): the session must end after recording this.
    pub fatal: bool,
}

impl SendFailure {
    /// A failure that goes back to the queue by the retry rule.
    pub fn temporary(code: ErrorCode, message: String) -> SendFailure {
        SendFailure {
            code,
            message,
            temporary: true,
            fatal: false,
        }
    }

    /// A failure that ends the message.
    pub fn permanent(code: ErrorCode, message: String) -> SendFailure {
        SendFailure {
            code,
            message,
            temporary: false,
            fatal: false,
        }
    }
}

/// A modem or stick that identified itself as `device_id` of `kind`, as the hub sees it.
pub struct Identified<'a> {
    pub link: &'a DeviceLink,
    pub status: &'a watch::Sender<ModemStatus>,
    pub kind: DeviceKind,
    pub device_id: &'a DeviceId,
    pub capabilities: Capabilities,
    pub limits: Option<Limits>,
    /// Its radio, in the device protocol's terms.
    pub radio: Status,
}

/// Brings the device online: records its model and SIM, registers the session, announces it
/// with an empty journal (the device keeps none: jobs it accepted in earlier sessions end as
/// `outcome_unknown`), reports its status and publishes it `Ready`. Returns the session number
/// and the channel the hub's commands come on.
pub async fn go_online(device: Identified<'_>) -> (u64, mpsc::Receiver<Outbound>) {
    let snapshot = device.status.borrow().clone();
    let sim = sim_info(&snapshot);
    device
        .link
        .hello(
            device.device_id,
            model_name(&snapshot),
            snapshot.revision.clone(),
            std::slice::from_ref(&sim),
        )
        .await;
    let (tx, outbound) = mpsc::channel::<Outbound>(64);
    let now = now_millis();
    let live = LiveDevice {
        device_id: device.device_id.clone(),
        session: 0,
        kind: device.kind,
        connected_at: now,
        last_seen_at: now,
        app_version: snapshot.revision.clone(),
        model: model_name(&snapshot),
        sims: vec![sim],
        capabilities: device.capabilities.clone(),
        status: Some(device.radio.clone()),
        in_flight: 0,
    };
    let session = device.link.register(live, tx);
    device.link.announce(
        device.device_id,
        session,
        device.capabilities,
        device.limits,
        Some(Vec::new()),
    );
    device
        .link
        .report_status(device.device_id, session, device.radio);
    let device_id = device.device_id.to_string();
    device.status.send_modify(|it| {
        it.state = ModemState::Ready;
        it.device_id = Some(device_id);
        it.last_error = None;
        it.connected_at = Some(format_millis(now));
    });
    (session, outbound)
}

/// What a session serves next.
pub enum Next<T> {
    /// A job of the hub to send.
    Offer(Job),
    /// A request of the API.
    Control(Control),
    /// What the transport waits for besides (its device, its timers).
    Own(T),
    /// The session ends: closed by the hub, or detached.
    End(Ended),
}

/// Waits for the next thing to serve: a job from `outbound`, a request from `control`, or
/// `own`. A revoked offer is skipped (jobs run one at a time, accepted right before they are
/// sent, so an offer taken back is refused at acceptance anyway); `what` and `place` name the
/// device in the log when the hub closes the session.
pub async fn next<T>(
    outbound: &mut mpsc::Receiver<Outbound>,
    control: &mut mpsc::Receiver<Control>,
    own: impl Future<Output = T>,
    what: &str,
    place: &str,
) -> Next<T> {
    tokio::pin!(own);
    loop {
        tokio::select! {
            frame = outbound.recv() => match frame {
                Some(Outbound::Offer(job)) => return Next::Offer(*job),
                // Local modems run USSD through the API's control channel, not this one.
                Some(Outbound::Revoke { .. } | Outbound::Ussd(_)) => {}
                Some(Outbound::Close(reason)) => {
                    tracing::info!(at = %place, reason = reason.describe(), "{what} session closed by the hub");
                    return Next::End(if reason.for_good() {
                        Ended::Replaced
                    } else {
                        Ended::Stopped
                    });
                }
                None => return Next::End(Ended::Stopped),
            },
            request = control.recv() => return match request {
                None | Some(Control::Stop) => Next::End(Ended::Stopped),
                Some(request) => Next::Control(request),
            },
            it = &mut own => return Next::Own(it),
        }
    }
}

/// A timer that first fires `every` from now, then every `every` (at least 10 ms), and waits
/// out a late tick rather than bursting.
pub fn ticker(every: Duration) -> Interval {
    let every = every.max(Duration::from_millis(10));
    let mut it = tokio::time::interval_at(Instant::now() + every, every);
    it.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    it
}

/// Commits how job `id` ended on `device_id` and tells the dispatcher: sent, with the changes
/// that record it (`Ok`), or the failure, which is logged. Either is counted in the device's
/// status. `what` names the device in the log ("modem"), `place` its port or URL.
pub async fn commit_outcome(
    link: &DeviceLink,
    status: &watch::Sender<ModemStatus>,
    device_id: &DeviceId,
    id: Uuid,
    ended: Result<Vec<Change>, &SendFailure>,
    what: &str,
    place: &str,
) {
    let (changes, code) = match ended {
        Ok(changes) => {
            status.send_modify(|it| it.sent += 1);
            (changes, None)
        }
        Err(failure) => {
            status.send_modify(|it| it.failed += 1);
            tracing::info!(at = %place, %id, code = failure.code.as_str(), message = %failure.message, "{what} send failed");
            let change = link.failure(
                id,
                device_id,
                failure.code.into(),
                failure.message.clone(),
                failure.temporary,
            );
            (vec![change], Some(failure.code.into()))
        }
    };
    let outcome = link
        .store()
        .apply_all(changes)
        .await
        .map(|it| it.first().copied().unwrap_or(Outcome::Unchanged));
    link.finish(device_id, id, outcome, code, what);
}
