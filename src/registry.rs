//! The registry of live device sessions: who is connected right now, and how each device
//! last said it was doing (battery, signal, SIMs).
//!
//! It is memory only and can always be rebuilt: devices re-announce themselves when they
//! reconnect. Methods are synchronous and return owned values (a cloned snapshot, a channel
//! sender), so no DashMap guard can ever be held across an `.await`.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use smshub_protocol::device::{Capabilities, HubFrame, SimInfo, Status};
use tokio::sync::mpsc;

use crate::domain::{Millis, now_millis};

/// What a connection task is asked to do.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Write this frame (boxed: each phone's channel keeps a block of 32 slots, and a frame
    /// inline would make every slot 104 bytes).
    Frame(Box<HubFrame>),
    /// Close the socket with this WebSocket close code and reason.
    Close { code: u16, reason: &'static str },
}

/// Close codes the hub uses (4000-4999 are application codes).
pub mod close_code {
    /// Another connection for the same device replaced this one.
    pub const REPLACED: u16 = 4000;
    /// The device was removed; it must not reconnect.
    pub const REMOVED: u16 = 4001;
    /// No common protocol version.
    pub const UNSUPPORTED_VERSION: u16 = 4002;
    /// The device stayed silent too long.
    pub const TIMEOUT: u16 = 4003;
    /// The hub is shutting down (standard "going away").
    pub const GOING_AWAY: u16 = 1001;
}

/// A snapshot of one live device.
#[derive(Debug, Clone)]
pub struct LiveDevice {
    pub device_id: String,
    /// Distinguishes successive connections of the same device.
    pub session: u64,
    pub kind: &'static str,
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
    devices: DashMap<String, Entry>,
    next_session: AtomicU64,
    /// Devices the circuit breaker rested: until when, and why. Kept for offline devices too.
    rests: DashMap<String, (Millis, String)>,
}

impl DeviceRegistry {
    /// Registers a new session and returns its number and, if the device was already
    /// connected, the sender of the session it replaces (so the caller can close it).
    pub fn connect(
        &self,
        mut live: LiveDevice,
        tx: mpsc::Sender<Outbound>,
    ) -> (u64, Option<mpsc::Sender<Outbound>>) {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed) + 1;
        live.session = session;
        let old = self
            .devices
            .insert(live.device_id.clone(), Entry { live, tx });
        (session, old.map(|it| it.tx))
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
    pub fn set_rest(&self, device_id: &str, rest: Option<(Millis, String)>) {
        match rest {
            Some(it) => {
                self.rests.insert(device_id.to_string(), it);
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

    /// Asks every connection to close with `code` (used at shutdown and device removal).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        let senders: Vec<_> = self.devices.iter().map(|it| it.tx.clone()).collect();
        for tx in senders {
            let _ = tx.try_send(Outbound::Close { code, reason });
        }
    }
}
