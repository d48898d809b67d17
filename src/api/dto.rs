//! Request and response bodies of the REST API: a compatibility contract with clients,
//! kept apart from the domain and store types, which are free to change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smshub_protocol::device::{Battery, SimInfo, SimStatus};
use utoipa::{IntoParams, ToSchema};

use crate::domain::format_millis;
use crate::registry::LiveDevice;
use crate::store::{DeviceRecord, InboxRecord, MessageRecord};

/// `POST /api/send-sms`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "phone_number": "+14155552671",
    "message": "Your code is 482913",
    "delivery_report": true
}))]
#[serde(deny_unknown_fields)]
pub struct SendSmsRequest {
    /// One recipient.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Several recipients: one message each.
    #[serde(default)]
    pub phone_numbers: Option<Vec<String>>,
    #[serde(default)]
    pub message: Option<String>,
    /// Send through this device only.
    #[serde(default)]
    pub device_id: Option<String>,
    /// Send through this SIM slot only (0-based). Read wide, so an out-of-range value gets
    /// its own error code rather than a JSON type error.
    #[serde(default)]
    pub sim_slot: Option<i64>,
    /// Send through this managed SIM card only (its id from `/api/sim-cards`); sets the
    /// device and slot it is in.
    #[serde(default)]
    pub sim_card_id: Option<String>,
    /// The same, naming the card by id, ICCID or label.
    #[serde(default)]
    pub sim: Option<String>,
    /// Ask the network for a delivery report.
    #[serde(default)]
    pub delivery_report: Option<bool>,
    /// A client-chosen id: a repeat of the request returns the same messages (like the
    /// `Idempotency-Key` header).
    #[serde(default)]
    pub id: Option<String>,
    /// Seconds the message stays valid; unsent after that, it expires.
    #[serde(default)]
    pub ttl: Option<i64>,
    /// RFC 3339 instant after which an unsent message expires.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// RFC 3339 instant before which the message is not sent.
    #[serde(default)]
    pub schedule_at: Option<String>,
    /// Higher goes first (-100 to 100, default 0).
    #[serde(default)]
    pub priority: Option<i32>,
    /// A template (`/api/templates`) whose `{{name}}` fields `params` fill in, instead of
    /// `message`.
    #[serde(default)]
    pub template_id: Option<String>,
    /// The values of the template's fields, by name.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    /// Accept any `+` and 7 to 15 digits as the recipient, without checking the number plan
    /// (as capcom6's gateway does; also `?skipPhoneValidation=true`).
    #[serde(default)]
    pub skip_phone_validation: Option<bool>,
}

/// The query of `POST /api/send-sms`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SendQuery {
    /// `true`: as the body's `skip_phone_validation` (capcom6's name for it).
    #[serde(default, rename = "skipPhoneValidation")]
    pub skip_phone_validation: Option<String>,
}

impl SendQuery {
    /// Whether the query asks to skip the number plan check (`true` or `1`).
    pub fn skip_phone_validation(&self) -> bool {
        matches!(self.skip_phone_validation.as_deref(), Some("true" | "1"))
    }
}

/// One accepted message in a `202` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedMessage {
    pub id: String,
    pub phone_number: String,
    pub state: &'static str,
    pub parts: u32,
}

/// `202` answer of `POST /api/send-sms`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendSmsResponse {
    /// The message id when there was one recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    pub state: &'static str,
    pub messages: Vec<AcceptedMessage>,
}

/// Why a message failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDto {
    pub code: String,
    pub message: String,
    pub temporary: bool,
}

/// A message as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDto {
    pub id: String,
    pub phone_number: String,
    pub message: String,
    pub state: &'static str,
    pub parts: u32,
    pub device_id: Option<String>,
    pub sim_slot: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_sim_slot: Option<u8>,
    pub delivery_report: bool,
    /// Offers made to devices so far.
    pub attempts: u32,
    pub error: Option<ErrorDto>,
    pub created_at: String,
    pub updated_at: String,
    /// When each state was reached.
    pub states: BTreeMap<&'static str, String>,
    pub priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// Whether a temporary failure was retried.
    pub retried: bool,
    /// What happened to it, oldest first (filled in by `GET /api/sms/{id}`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Why it still waits for a device (only while it does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
}

/// One step in a message's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at: String,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<MessageRecord> for MessageDto {
    fn from(it: MessageRecord) -> MessageDto {
        let mut states = BTreeMap::new();
        states.insert("queued", format_millis(it.created_at));
        for (name, at) in [
            ("dispatched", it.dispatched_at),
            ("accepted", it.accepted_at),
            ("sent", it.sent_at),
            ("delivered", it.delivered_at),
            ("failed", it.failed_at),
            ("expired", it.expired_at),
            ("cancelled", it.cancelled_at),
        ] {
            if let Some(at) = at {
                states.insert(name, format_millis(at));
            }
        }
        MessageDto {
            id: it.id.to_string(),
            phone_number: it.recipient,
            message: it.text,
            state: it.state.as_str(),
            parts: it.parts,
            device_id: it.device_id.map(String::from),
            sim_slot: it.sim_slot,
            requested_device_id: it.requested_device_id.map(String::from),
            requested_sim_slot: it.requested_sim_slot,
            delivery_report: it.delivery_report,
            attempts: it.attempts,
            error: it.error.map(|e| ErrorDto {
                code: e.code,
                message: e.message,
                temporary: e.temporary,
            }),
            created_at: format_millis(it.created_at),
            updated_at: format_millis(it.updated_at),
            states,
            priority: it.priority,
            schedule_at: it.schedule_at.map(format_millis),
            valid_until: it.valid_until.map(format_millis),
            retried: it.retried > 0,
            history: Vec::new(),
            waiting_reason: None,
        }
    }
}

/// `GET /api/sms`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
    pub messages: Vec<MessageDto>,
}

/// Query of `GET /api/sms`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub state: Option<String>,
    pub device_id: Option<String>,
    pub phone_number: Option<String>,
    /// RFC 3339; messages created at or after.
    pub since: Option<String>,
    /// RFC 3339; messages created before.
    pub until: Option<String>,
    /// Only messages sent with this API key (its id; a person's user id for what they sent
    /// from the console); within the caller's own messages unless it has
    /// `messages:read_all`.
    pub api_key_id: Option<String>,
}

/// Query of `GET /api/sms/inbox`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub device_id: Option<String>,
    pub sender: Option<String>,
    /// Only SMS whose sender or text holds this (1 to 100 characters, case-blind for ASCII
    /// letters; `%` and `_` are plain characters); not with `after` or `since`.
    #[param(min_length = 1, max_length = 100)]
    pub q: Option<String>,
    /// A feed: the SMS stored after this one, oldest first.
    pub after: Option<String>,
    /// A feed: the SMS received since this RFC 3339 time, oldest first.
    pub since: Option<String>,
}

/// A received SMS.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxDto {
    pub id: String,
    pub device_id: String,
    pub sim_slot: Option<u8>,
    pub sender: String,
    pub message: String,
    pub received_at: String,
    pub created_at: String,
}

impl From<InboxRecord> for InboxDto {
    fn from(it: InboxRecord) -> InboxDto {
        InboxDto {
            id: it.id.to_string(),
            device_id: it.device_id,
            sim_slot: it.sim_slot,
            sender: it.sender,
            message: it.text,
            received_at: format_millis(it.received_at),
            created_at: format_millis(it.created_at),
        }
    }
}

/// `GET /api/sms/inbox`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxList {
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
    pub messages: Vec<InboxDto>,
}

/// One SIM in the device list: what the device said at hello merged with its last status.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimDto {
    pub slot: u8,
    pub operator: Option<String>,
    pub phone_number: Option<String>,
    pub signal_dbm: Option<i32>,
    pub signal_level: Option<u8>,
    pub network: Option<String>,
    pub registered: Option<bool>,
}

/// One SIM's sending limits and how much of each it has used: SMS parts in the rolling
/// minute, hour and day, distinct recipients in the rolling day (offers count from the
/// moment they are made).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"slot": 0, "limits": {"min_interval_ms": 0, "jitter_ms": 0, "per_hour": 60, "per_day": 500},
    "used_minute": 1, "used_hour": 3, "used_day": 12, "recipients_day": 9, "paced_until": null}))]
pub struct SimQuotaDto {
    pub slot: u8,
    /// The limits that apply to it: its SIM card's own, else its device's, else the hub's
    /// defaults (no field set: unlimited).
    pub limits: crate::dispatch::limits::Limits,
    pub used_minute: u64,
    pub used_hour: u64,
    pub used_day: u64,
    pub recipients_day: u64,
    /// No send before this time (the limits' gap between sends), while that is to come.
    pub paced_until: Option<String>,
}

impl From<crate::dispatch::core::SimQuota> for SimQuotaDto {
    fn from(it: crate::dispatch::core::SimQuota) -> SimQuotaDto {
        SimQuotaDto {
            slot: it.slot,
            limits: it.limits,
            used_minute: it.used.minute,
            used_hour: it.used.hour,
            used_day: it.used.day,
            recipients_day: it.used.recipients_day,
            paced_until: it.paced_until.map(format_millis),
        }
    }
}

/// What a device's entry adds to its record and live state: its SIMs' quotas (from the
/// dispatcher) and its last day's traffic (from the in-memory history).
#[derive(Debug, Default)]
pub struct DeviceUsage {
    pub quota: Vec<SimQuotaDto>,
    pub sent_24h: u64,
    pub failed_24h: u64,
}

/// A device as clients and the dashboard see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDto {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub online: bool,
    #[schema(value_type = Option<Object>, example = json!({"level": 87, "charging": true}))]
    pub battery: Option<Battery>,
    pub sims: Vec<SimDto>,
    pub connection: Option<String>,
    pub app_version: Option<String>,
    pub model: Option<String>,
    pub in_flight: u32,
    pub max_in_flight: Option<u32>,
    pub connected_at: Option<String>,
    pub last_seen_at: Option<String>,
    /// Messages it sent and failed, in all (stored counters).
    pub sent_count: i64,
    pub failed_count: i64,
    /// Messages it sent and failed in the last 24 hours, in whole 15-minute steps (the
    /// oldest step, partly more than a day old, is left out), from the hub's memory: it
    /// starts empty at each start of the hub, so right after one these count only since then.
    pub sent_24h: u64,
    pub failed_24h: u64,
    /// Each SIM's limits and what it used of them, while the device is online (empty when
    /// offline): every SIM it reported, with or without limits.
    pub quota: Vec<SimQuotaDto>,
    pub created_at: String,
    /// Set while the circuit breaker rests the device after repeated failures.
    pub rested_until: Option<String>,
    pub rest_reason: Option<String>,
    /// The device's own sending limits, if set (else the hub's defaults apply).
    #[schema(value_type = Option<crate::dispatch::limits::Limits>)]
    pub limits: Option<serde_json::Value>,
}

impl DeviceDto {
    pub fn new(
        record: DeviceRecord,
        live: Option<LiveDevice>,
        rest: Option<(crate::domain::Millis, String)>,
        usage: DeviceUsage,
    ) -> DeviceDto {
        let stored_sims: Vec<SimInfo> = record
            .sims
            .as_ref()
            .and_then(|it| serde_json::from_value(it.clone()).ok())
            .unwrap_or_default();
        let (sims_info, status) = match &live {
            Some(it) => (it.sims.clone(), it.status.clone()),
            None => (stored_sims, None),
        };
        let statuses: Vec<SimStatus> = status
            .as_ref()
            .map(|it| it.sims.clone())
            .unwrap_or_default();
        let mut slots: Vec<u8> = sims_info
            .iter()
            .map(|it| it.slot)
            .chain(statuses.iter().map(|it| it.slot))
            .collect();
        slots.sort_unstable();
        slots.dedup();
        let sims = slots
            .into_iter()
            .map(|slot| {
                let info = sims_info.iter().find(|it| it.slot == slot);
                let radio = statuses.iter().find(|it| it.slot == slot);
                SimDto {
                    slot,
                    operator: radio
                        .and_then(|it| it.operator.clone())
                        .or_else(|| info.and_then(|it| it.operator.clone())),
                    phone_number: info.and_then(|it| it.phone_number.clone()),
                    signal_dbm: radio.and_then(|it| it.signal_dbm),
                    signal_level: radio.and_then(|it| it.signal_level),
                    network: radio.and_then(|it| it.network.clone()),
                    registered: radio.map(|it| it.registered),
                }
            })
            .collect();
        let last_seen = live
            .as_ref()
            .map(|it| it.last_seen_at)
            .or(record.last_seen_at);
        DeviceDto {
            id: record.id.into(),
            name: record.name,
            kind: record.kind.as_str().to_string(),
            online: live.is_some(),
            battery: status.as_ref().and_then(|it| it.battery),
            sims,
            connection: status.as_ref().and_then(|it| it.connection.clone()),
            app_version: live
                .as_ref()
                .and_then(|it| it.app_version.clone())
                .or(record.app_version),
            model: live
                .as_ref()
                .and_then(|it| it.model.clone())
                .or(record.model),
            in_flight: live.as_ref().map(|it| it.in_flight).unwrap_or(0),
            max_in_flight: live.as_ref().map(|it| it.capabilities.max_in_flight),
            connected_at: live.as_ref().map(|it| format_millis(it.connected_at)),
            last_seen_at: last_seen.map(format_millis),
            sent_count: record.sent_count,
            failed_count: record.failed_count,
            sent_24h: usage.sent_24h,
            failed_24h: usage.failed_24h,
            quota: usage.quota,
            created_at: format_millis(record.created_at),
            rested_until: rest.as_ref().map(|it| format_millis(it.0)),
            rest_reason: rest.map(|it| it.1),
            limits: record.limits,
        }
    }
}

/// `GET /api/devices`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<DeviceDto>,
}

/// `POST /api/devices`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "pixel-7"}))]
#[serde(deny_unknown_fields)]
pub struct CreateDeviceRequest {
    pub name: Option<String>,
    /// `android` (default) or `modem`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// `201` answer of `POST /api/devices`: the token is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedDevice {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub token: String,
    /// Path of the device WebSocket endpoint.
    pub ws_path: String,
}

/// `GET /api/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub messages: BTreeMap<&'static str, u64>,
    pub devices: DeviceCounts,
    /// Messages waiting in the dispatcher for a device.
    pub waiting: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceCounts {
    pub total: usize,
    pub online: usize,
}

/// A person as `GET /api/users` shows them: never a password or its hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"username": "alice", "role": "operator", "created_at": "2026-12-05T09:00:00Z", "last_login_at": "2026-12-05T09:30:00Z", "locked_until": null}))]
pub struct UserDto {
    pub username: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    pub created_at: String,
    /// When they last signed in to a session (while the hub keeps it).
    pub last_login_at: Option<String>,
    /// Set while failed logins lock the name out.
    pub locked_until: Option<String>,
}

/// `GET /api/users`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserDto>,
}

/// `POST /api/users`. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"username": "alice", "password": "correct horse battery", "role": "operator"}))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
    pub username: String,
    /// At least 8 characters; stored as an argon2id hash.
    pub password: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
}

/// `PATCH /api/users/{username}`: what to change. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"role": "viewer"}))]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// `admin`, `operator` or `viewer`.
    #[serde(default)]
    pub role: Option<String>,
    /// A new password (at least 8 characters); the user's sessions end.
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST /api/devices/{id}/rest`. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"minutes": 30, "reason": "changing the SIM"}))]
#[serde(deny_unknown_fields)]
pub struct RestRequest {
    /// How long (1 to 10080 minutes; default 60).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10080)]
    pub minutes: Option<u32>,
    /// Why, shown as `rest_reason` (at most 200 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A device's rest: until when and why (`null` both: not rested).
#[derive(Debug, Serialize, ToSchema)]
pub struct RestDto {
    pub id: String,
    pub rested_until: Option<String>,
    pub rest_reason: Option<String>,
}
