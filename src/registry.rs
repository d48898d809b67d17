//! The registry of live device sessions: who is connected right now, and how each device
//! last said it was doing (battery, signal, SIMs).
//!
//! It is memory only and can always be rebuilt: devices re-announce themselves when they
//! reconnect. Methods are synchronous and return owned values (a cloned snapshot, a channel
//! sender), so no DashMap guard can ever be held across an `.await`.
//!
//! It also holds the vocabulary between the dispatcher and the transports ([`Outbound`]:
//! offer, revoke, USSD, close), which knows no wire format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use smshub_protocol::device::{Capabilities, SimInfo, Status};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::domain::{DeviceId, DeviceKind, Millis, PhoneNumber, now_millis};

/// What the dispatcher (or the API) asks a device's session to do. Transport-neutral: the
/// phone session turns it into protocol frames, the modem and HiLink drivers into their own
/// actions.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Offer this job (boxed: each phone's channel keeps a block of 32 slots, and a job
    /// inline would make every slot several times larger).
    Offer(Box<Job>),
    /// Take back offers the device has not been told to send.
    Revoke {
        ids: Vec<Uuid>,
        reason: RevokeReason,
    },
    /// Run a USSD code on one of the device's SIMs (only for devices that announced
    /// `capabilities.ussd`); the answer goes back through the request's reply channel.
    /// Boxed, like an offer: every slot of the channel is as large as the largest command.
    Ussd(Box<UssdCall>),
    /// End the session.
    Close(CloseReason),
}

/// A USSD request for a remote device, and where its answer goes.
#[derive(Debug, Clone)]
pub struct UssdCall {
    /// Request id, named again in the device's answer.
    pub id: String,
    /// Zero-based SIM slot.
    pub slot: u8,
    /// The USSD code, already checked (digits, `*`, `#`, `+`).
    pub code: String,
    /// Taken once by the session that sends the request (shared so that [`Outbound`] stays
    /// `Clone`); dropped unanswered if the session ends first.
    pub reply: Arc<Mutex<Option<oneshot::Sender<UssdOutcome>>>>,
}

/// What a device answered to a USSD request: the network's text, or an error code and
/// message.
pub type UssdOutcome = Result<String, (String, String)>;

impl UssdCall {
    /// A request and the receiver its answer comes on.
    pub fn new(slot: u8, code: String) -> (UssdCall, oneshot::Receiver<UssdOutcome>) {
        let (tx, rx) = oneshot::channel();
        let call = UssdCall {
            id: Uuid::new_v4().to_string(),
            slot,
            code,
            reply: Arc::new(Mutex::new(Some(tx))),
        };
        (call, rx)
    }

    /// Takes the reply channel; `None` if it was already taken.
    pub fn take_reply(&self) -> Option<oneshot::Sender<UssdOutcome>> {
        self.reply.lock().ok().and_then(|mut it| it.take())
    }
}

/// A message offered to a device, with what the device needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub recipient: PhoneNumber,
    pub text: String,
    /// SMS parts, as the hub counts them.
    pub parts: u32,
    /// The SIM to send with; `None` lets the device choose.
    pub sim_slot: Option<u8>,
    pub delivery_report: bool,
    /// Not to be sent after this instant.
    pub valid_until: Option<Millis>,
}

/// Why the hub takes an offer back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// The message was cancelled.
    Cancelled,
    /// The message is past its validity.
    Expired,
    /// The device did not accept within the offer lease.
    LeaseExpired,
    /// The store did not record the offer (the message changed meanwhile).
    NotAssigned,
}

impl RevokeReason {
    /// The word for it on the wire and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Cancelled => "cancelled",
            RevokeReason::Expired => "expired",
            RevokeReason::LeaseExpired => "lease_expired",
            RevokeReason::NotAssigned => "not_assigned",
        }
    }
}

/// Why the hub ends a device's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Another session of the same device replaced this one.
    Replaced,
    /// The device was removed; it must not come back.
    Removed,
    /// The hub is shutting down.
    GoingAway,
    /// The device's token was rotated or revoked: this session's credential is gone.
    TokenRevoked,
}

impl CloseReason {
    /// Whether the device is gone for good from this hub's point of view (replaced or
    /// removed), rather than asked to come back later.
    pub fn for_good(self) -> bool {
        matches!(
            self,
            CloseReason::Replaced | CloseReason::Removed | CloseReason::TokenRevoked
        )
    }

    /// A short reason for logs and close frames.
    pub fn describe(self) -> &'static str {
        match self {
            CloseReason::Replaced => "replaced by a newer connection",
            CloseReason::Removed => "device removed",
            CloseReason::GoingAway => "hub shutting down",
            CloseReason::TokenRevoked => "device token rotated or revoked",
        }
    }
}

/// A snapshot of one live device.
#[derive(Debug, Clone)]
pub struct LiveDevice {
    pub device_id: DeviceId,
    /// Distinguishes successive connections of the same device.
    pub session: u64,
    pub kind: DeviceKind,
    pub connected_at: Millis,
    pub last_seen_at: Millis,
    pub app_version: Option<String>,
    pub model: Option<String>,
    pub sims: Vec<SimInfo>,
    pub capabilities: Capabilities,
    pub status: Option<Status>,
    /// Jobs offered or committed and not yet reported sent or failed.
    pub in_flight: u32,
}

struct Entry {
    live: LiveDevice,
    tx: mpsc::Sender<Outbound>,
}

/// Live device sessions, keyed by device id.
#[derive(Default)]
pub struct DeviceRegistry {
    devices: DashMap<DeviceId, Entry>,
    next_session: AtomicU64,
    /// Devices the circuit breaker rested: until when, and why. Kept for offline devices too.
    rests: DashMap<DeviceId, (Millis, String)>,
}

impl DeviceRegistry {
    /// Registers a new session and returns its number; the session of the same device that
    /// it replaces, if any, is asked to close.
    pub fn connect(&self, mut live: LiveDevice, tx: mpsc::Sender<Outbound>) -> u64 {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed) + 1;
        live.session = session;
        let old = self
            .devices
            .insert(live.device_id.clone(), Entry { live, tx });
        if let Some(old) = old {
            let _ = old.tx.try_send(Outbound::Close(CloseReason::Replaced));
        }
        session
    }

    /// Removes the session, unless a newer session of the same device has replaced it.
    /// Returns whether it was removed.
    pub fn disconnect(&self, device_id: &str, session: u64) -> bool {
        self.devices
            .remove_if(device_id, |_, entry| entry.live.session == session)
            .is_some()
    }

    /// Applies `update` to the live device if this session is still current.
    pub fn update(&self, device_id: &str, session: u64, update: impl FnOnce(&mut LiveDevice)) {
        if let Some(mut entry) = self.devices.get_mut(device_id)
            && entry.live.session == session
        {
            update(&mut entry.live);
        }
    }

    /// Records that the session showed a sign of life.
    pub fn touch(&self, device_id: &str, session: u64) {
        self.update(device_id, session, |it| it.last_seen_at = now_millis());
    }

    /// Sets the in-flight count shown for a device.
    pub fn set_in_flight(&self, device_id: &str, in_flight: u32) {
        if let Some(mut entry) = self.devices.get_mut(device_id) {
            entry.live.in_flight = in_flight;
        }
    }

    /// Marks a device as rested until an instant, with the reason, or clears it.
    pub fn set_rest(&self, device_id: &DeviceId, rest: Option<(Millis, String)>) {
        match rest {
            Some(it) => {
                self.rests.insert(device_id.clone(), it);
            }
            None => {
                self.rests.remove(device_id);
            }
        }
    }

    /// Until when and why a device is rested, if it is.
    pub fn rest(&self, device_id: &str) -> Option<(Millis, String)> {
        self.rests.get(device_id).map(|it| it.clone())
    }

    pub fn get(&self, device_id: &str) -> Option<LiveDevice> {
        self.devices.get(device_id).map(|it| it.live.clone())
    }

    /// What `read` makes of the live device, if it is connected (nothing is cloned).
    pub fn read<T>(&self, device_id: &str, read: impl FnOnce(&LiveDevice) -> T) -> Option<T> {
        self.devices.get(device_id).map(|it| read(&it.live))
    }

    /// The channel to the device's connection task, if it is connected.
    pub fn sender(&self, device_id: &str) -> Option<mpsc::Sender<Outbound>> {
        self.devices.get(device_id).map(|it| it.tx.clone())
    }

    pub fn snapshot(&self) -> Vec<LiveDevice> {
        self.devices.iter().map(|it| it.live.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Asks every session to close (at shutdown).
    pub fn close_all(&self, reason: CloseReason) {
        let senders: Vec<_> = self.devices.iter().map(|it| it.tx.clone()).collect();
        for tx in senders {
            let _ = tx.try_send(Outbound::Close(reason));
        }
    }

    /// Asks the device's session, if it has one, to close.
    pub fn close(&self, device_id: &str, reason: CloseReason) {
        if let Some(tx) = self.sender(device_id) {
            let _ = tx.try_send(Outbound::Close(reason));
        }
    }
}
