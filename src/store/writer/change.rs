//! The writer's vocabulary: every write the hub can ask of the store ([`Change`]), the retry
//! policy a failure carries ([`Retry`]) and what a change did ([`Outcome`]).
//!
//! Plain data, shared with the rest of the crate through `crate::store`. Must never: run SQL
//! or decide where a message may go (that is `MessageState::TRANSITIONS`, read by
//! `transitions.rs` and `runs.rs`).

use uuid::Uuid;

use super::super::access::{AccessChange, NewKeyRow};
use super::super::webhooks::WebhookChange;
use super::super::{ModemRefChange, NewEvent, NewMessage, SimCardChange, TemplateChange};
use crate::domain::Millis;
#[cfg(doc)]
use crate::domain::Transition;
use crate::domain::{DeviceId, DeviceKind, FailureCode};

/// One write.
#[derive(Debug, Clone)]
pub enum Change {
    /// Stores a new API key (its hash, never the key).
    CreateApiKey(NewKeyRow),
    /// Users, sessions, audit entries, keys' last use, generated secrets (`store::access`).
    Access(AccessChange),
    /// Rewrites a row of the migrations table with its own values: a real write that
    /// commits only if the database can take writes (readiness probe).
    Probe,
    /// Revokes the unrevoked API keys with this id or this prefix (`shk_` and 6 characters):
    /// from the next request on they are refused. `Unchanged` if none matched.
    RevokeApiKey {
        id: Option<Uuid>,
        prefix: Option<String>,
    },
    /// Registers a device (its token's hash, never the token).
    CreateDevice {
        id: DeviceId,
        name: String,
        kind: DeviceKind,
        token_hash: String,
    },
    /// Removes a device; its messages keep their history.
    DeleteDevice { id: DeviceId },
    /// Replaces a device's token hash (a rotated token), or with `None` revokes its token:
    /// no token matches until the next rotation. `Unchanged` if there is no such device.
    SetDeviceToken {
        id: DeviceId,
        token_hash: Option<String>,
    },
    /// What a device said about itself at `hello`.
    DeviceHello {
        id: DeviceId,
        model: Option<String>,
        app_version: Option<String>,
        sims: serde_json::Value,
    },
    /// The device was last heard from `at`.
    DeviceSeen { id: DeviceId, at: Millis },
    /// Inserts new messages, `queued`.
    Insert(Vec<NewMessage>),
    /// Inserts messages under an idempotency key; `Refused` if the key is already taken
    /// (the caller then looks up what it stands for).
    InsertIdempotent {
        api_key_id: Uuid,
        key: String,
        fingerprint: String,
        messages: Vec<NewMessage>,
    },
    /// Sets (or clears) a device's sending limits.
    SetLimits {
        device: DeviceId,
        limits: Option<serde_json::Value>,
    },
    /// queued → dispatched to `device` ([`Transition::Dispatch`]); `Refused` otherwise.
    Dispatch {
        id: Uuid,
        device: DeviceId,
        sim_slot: Option<u8>,
    },
    /// dispatched to `device` → queued: the offer was lost before it was committed
    /// ([`Transition::Requeue`]).
    Requeue {
        id: Uuid,
        device: DeviceId,
        reason: String,
        /// The hub lost the offer (a restart, a new leader), not the device: the attempt
        /// its dispatch counted is given back, so failovers never use up `max_attempts`.
        refund: bool,
    },
    /// dispatched to `device` → accepted ([`Transition::Accept`]). `Unchanged` if `device`
    /// already owns it.
    Accept { id: Uuid, device: DeviceId },
    /// accepted → sent, by the owning device ([`Transition::Sent`]).
    Sent {
        id: Uuid,
        device: DeviceId,
        parts: u32,
    },
    /// accepted or sent → delivered, by the owning device ([`Transition::Delivered`]).
    Delivered { id: Uuid, device: DeviceId },
    /// → failed. With a device, only by the owning device ([`Transition::Failed`]); without,
    /// by the hub itself ([`Transition::FailedByHub`]). A temporary failure with `retry` and
    /// attempts left goes back to `queued` instead (outcome `Requeued`,
    /// [`Transition::Retry`]): nothing was sent, so trying again is safe.
    Failed {
        id: Uuid,
        device: Option<DeviceId>,
        code: FailureCode,
        message: String,
        temporary: bool,
        retry: Option<Retry>,
    },
    /// accepted by `device` → failed `outcome_unknown`: the device never reported, and the SMS
    /// may have gone out, so it is never resent ([`Transition::OutcomeUnknown`]).
    OutcomeUnknown {
        id: Uuid,
        device: DeviceId,
        reason: String,
    },
    /// queued or dispatched → expired ([`Transition::Expire`]).
    Expire { id: Uuid },
    /// queued or dispatched → cancelled ([`Transition::Cancel`]); `Refused` once a device
    /// accepted it.
    Cancel { id: Uuid },
    /// Message references of parts sent through a modem, kept to match status reports
    /// (`store::modem_refs`).
    ModemRefs(ModemRefChange),
    /// SIM cards and routing rules (`store::sim_cards`).
    SimCards(SimCardChange),
    /// Events that tell of something outside the store (a device came online, went offline,
    /// rested, reported a low battery): only written to the event log. Changes that the store
    /// makes write their own events.
    Emit(Vec<NewEvent>),
    /// A received SMS; a repeat of the same (device, external id) is stored once.
    Incoming {
        device: DeviceId,
        external_id: String,
        sim_slot: Option<u8>,
        sender: String,
        text: String,
        received_at: Millis,
    },
    /// Webhooks and their deliveries (`store::webhooks`).
    Webhook(WebhookChange),
    /// A consumer of the event log (the MQTT bridge) has handed on every event up to
    /// `position` for good; a position never moves back (`Unchanged` if it would).
    SetConsumerPosition { consumer: String, position: i64 },
    /// Message templates (`store::templates`).
    Template(TemplateChange),
}

impl Change {
    /// Whether this change can make a cached API key wrong (a new key cannot: it is not
    /// cached yet).
    pub fn changes_keys(&self) -> bool {
        matches!(self, Change::RevokeApiKey { .. })
    }

    /// Whether this change may wait for the writer's next commit (at most
    /// [`super::LINGER`]) instead of paying a commit of its own: no client waits on it, and
    /// losing it in a crash changes nothing the protocol does not already cover.
    /// - `Dispatch`: the offer went out before it committed (an offer gives nothing away, spec
    ///   5.1); uncommitted, the message is simply still `queued` after a restart. The
    ///   device's `accepted` then commits together with it, one transaction for both.
    /// - `Sent`, `Delivered`: the device keeps its report in its journal until `ack`, which
    ///   goes only after the commit, and reports again after a crash.
    pub fn may_wait(&self) -> bool {
        matches!(
            self,
            Change::Dispatch { .. } | Change::Sent { .. } | Change::Delivered { .. }
        )
    }
}

/// The retry policy applied to a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Offers allowed in all; a message offered this many times fails instead.
    pub max_attempts: u32,
    /// Backoff before the next offer: `base × 2^(attempts−1)`, at most `cap`.
    pub base_ms: Millis,
    /// The longest backoff.
    pub cap_ms: Millis,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A temporary failure sent the message back to the queue for another attempt.
    Requeued,
    /// The change was made.
    Applied,
    /// Nothing to do: the change was already made (a repeat) or has been overtaken.
    Unchanged,
    /// Not allowed: the message is not in a state, or not with the device, that permits it.
    Refused,
}
