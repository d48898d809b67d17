//! Device protocol v1: the JSON text frames exchanged over `/ws/device/{id}`.
//!
//! These types are a compatibility contract with phone apps: renaming a field breaks phones
//! in the field. Domain types inside the hub are free to change; these are not. Every frame
//! is an object with a `type`; unknown fields are ignored so that newer phones and hubs can
//! add fields without breaking older peers. The version is negotiated once, in `hello` and
//! `welcome`, not repeated in every frame.
//!
//! The normative description, with an example of every frame, is
//! `android-client-spec/README.md`; the examples there are parsed by this crate's tests.
//!
//! This module does no I/O: it only defines the frames and how they are read and written.

use serde::{Deserialize, Serialize};

/// The protocol versions this crate speaks.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];

/// Frames a device sends to the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeviceFrame {
    /// First frame of every session: who the device is and which jobs it still holds.
    Hello(Hello),
    /// Battery, charging and per-SIM radio state; sent on change and periodically.
    Status(Status),
    /// The device has journaled these offered jobs and waits for `commit` before sending.
    Accepted(JobIds),
    /// The device will not take these offered jobs (full, SIM missing, ...).
    Rejected(Rejected),
    /// A job left the device: the SMS (all its parts) was handed to the radio network.
    Sent(Sent),
    /// The network confirmed delivery to the recipient (a delivery report came back).
    Delivered(Delivered),
    /// A job ended without being sent, or the network reported delivery failure.
    Failed(Failed),
    /// An SMS the device received.
    Incoming(Incoming),
    /// Keeps the session alive and proves the device is reachable.
    Heartbeat(Heartbeat),
    /// The answer to a hub's `ussd` request (only from devices that announced
    /// `capabilities.ussd`).
    UssdResult(UssdResult),
}

/// Frames the hub sends to a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubFrame {
    /// Answer to `hello`: the session is open.
    Welcome(Welcome),
    /// Offer of a job. The device answers `accepted` or `rejected` and must not send yet.
    Send(SendJob),
    /// The hub has recorded that the device owns these jobs: send them now.
    Commit(JobIds),
    /// The device must drop these jobs without sending them.
    Revoke(Revoke),
    /// The hub has stored these reports; the device may forget them.
    Ack(Ack),
    /// Answer to a device heartbeat.
    Heartbeat(Heartbeat),
    /// A frame could not be processed. The session stays open.
    Error(ErrorFrame),
    /// Run a USSD code on a SIM; the device answers `ussd_result`. Sent only to devices whose
    /// `hello` announced `capabilities.ussd` (an additive extension of v1, spec §11).
    Ussd(UssdCommand),
}

/// `hello`: identity, capabilities and the device's journal of unfinished jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol versions the device speaks; the hub picks the highest it also speaks.
    pub protocol: Vec<u32>,
    /// Version of the phone app or worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Hardware and OS of the device.
    #[serde(default)]
    pub device: DeviceInfo,
    /// SIM cards present.
    #[serde(default)]
    pub sims: Vec<SimInfo>,
    /// What the device can do.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Jobs the device still holds from earlier sessions. `None` means the device keeps no
    /// journal; `Some([])` means it holds nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<HeldJob>>,
}

/// Hardware and OS description.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Maker, e.g. Android's `Build.MANUFACTURER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// Model, e.g. Android's `Build.MODEL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Operating system and version, e.g. `"Android 14"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
}

/// One SIM card as known at `hello`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimInfo {
    /// Zero-based slot index.
    pub slot: u8,
    /// Name of the SIM's home operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// MCC+MNC of the home network, e.g. `"60301"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcc_mnc: Option<String>,
    /// E.164, when the SIM knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// SIM serial number (ICCID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
}

/// Capabilities announced at `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// How many jobs may be outstanding on the device at once: offered, or committed and not
    /// yet reported `sent` or `failed`. `0` means the device takes no jobs.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// Whether the device splits long texts into concatenated parts itself.
    #[serde(default = "yes")]
    pub multipart: bool,
    /// Whether the device can request and report delivery reports.
    #[serde(default = "yes")]
    pub delivery_reports: bool,
    /// Whether the device forwards received SMS.
    #[serde(default = "yes")]
    pub incoming: bool,
    /// Whether the device answers `ussd` frames. Absent means no: older devices never get one.
    #[serde(default)]
    pub ussd: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            max_in_flight: default_max_in_flight(),
            multipart: true,
            delivery_reports: true,
            incoming: true,
            ussd: false,
        }
    }
}

fn default_max_in_flight() -> u32 {
    4
}

fn yes() -> bool {
    true
}

/// A job in the device's journal, reported at `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldJob {
    /// Job id, as in `send`.
    pub id: String,
    /// How far the device got with it.
    pub phase: HeldPhase,
}

/// How far the device got with a held job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldPhase {
    /// Accepted, but no `commit` received: the SMS has not been sent.
    Accepted,
    /// Committed: the device may have handed it to the radio; its outcome report follows.
    Committed,
    /// A phase this build does not know (sent by a newer peer); treated like `accepted`.
    #[serde(other)]
    Unknown,
}

/// `status`: the device's health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<Battery>,
    #[serde(default)]
    pub sims: Vec<SimStatus>,
    /// How the device reaches the hub: `wifi`, `cellular`, `ethernet`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
}

/// Battery state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Battery {
    /// Percent, 0..=100.
    pub level: u8,
    /// Plugged in and charging.
    pub charging: bool,
}

/// Radio state of one SIM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimStatus {
    /// Zero-based slot index, as in `hello`.
    pub slot: u8,
    /// Received signal strength in dBm (e.g. -71), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_dbm: Option<i32>,
    /// Android's 0..=4 signal level, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_level: Option<u8>,
    /// Radio access type: `gsm`, `edge`, `umts`, `hspa`, `lte`, `nr`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Registered on a network (home or roaming). `false` means no service.
    #[serde(default = "yes")]
    pub registered: bool,
    /// Name of the network the SIM is registered on now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

/// A list of job ids (`accepted`, `commit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIds {
    /// Job ids; one frame may name many, to batch the round trip.
    pub ids: Vec<String>,
}

/// `rejected`: offered jobs the device will not take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// Jobs the device did not and will not send.
    pub ids: Vec<String>,
    /// One of the error codes of [`ErrorCode`], `revoked` (dropped on the hub's `revoke`),
    /// `unknown_job` (`commit` for a job the device does not hold), or free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `sent`: the SMS left the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Job id.
    pub id: String,
    /// Number of SMS parts the text was split into.
    #[serde(default = "one")]
    pub parts: u32,
    /// When the last part was handed to the network (RFC 3339), if the device knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

fn one() -> u32 {
    1
}

/// `delivered`: the delivery report arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// Job id.
    pub id: String,
    /// When the recipient got it (RFC 3339), if the device knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// `failed`: the job ended without success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    /// Job id.
    pub id: String,
    /// Stable error code; see [`ErrorCode`].
    pub code: String,
    /// Whether trying again later, or elsewhere, may succeed; `true` also promises that the SMS
    /// did not leave the device. Absent means `false` (spec §8.1): without the promise, the
    /// hub never sends the message again, whatever the code's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary: Option<bool>,
    /// Human-readable detail (OS result code, CMS error, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Failed {
    /// Whether the failure is temporary: only when the device said so (an omitted field is
    /// permanent, so a device that did not promise the SMS stayed home never gets it again).
    pub fn is_temporary(&self) -> bool {
        self.temporary.unwrap_or(false)
    }
}

/// `incoming`: an SMS received by the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    /// Device-chosen unique id, so a repeated report is stored once.
    pub id: String,
    /// Originating address: E.164, a short code or an alphanumeric sender name.
    pub from: String,
    /// The whole text, reassembled from all its parts by the device.
    pub text: String,
    /// Slot of the SIM that received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_slot: Option<u8>,
    /// When the network delivered it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
}

/// `heartbeat`, in both directions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {}

/// `welcome`: the session is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The negotiated protocol version.
    pub protocol: u32,
    /// The device's id, as in the URL.
    pub device_id: String,
    /// The device must send a frame (at least a heartbeat) at least this often.
    pub heartbeat_s: u32,
    /// Hub time (RFC 3339), so a device with a wrong clock can correct `valid_until`.
    pub server_time: String,
}

/// `send`: a job offered to the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendJob {
    /// Message id (UUID). The same id is never to be sent twice.
    pub id: String,
    /// Recipient in E.164.
    pub to: String,
    /// Text to send.
    pub text: String,
    /// SIM slot to use; `None` lets the device choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_slot: Option<u8>,
    /// Request a delivery report, and report `delivered` or `failed` when it comes back.
    #[serde(default)]
    pub delivery_report: bool,
    /// Past this instant (RFC 3339) the job must not be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// Parts the hub counted for this text (GSM 7-bit or UCS-2).
    #[serde(default = "one")]
    pub parts: u32,
}

/// `revoke`: drop these jobs without sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    /// Jobs to drop.
    pub ids: Vec<String>,
    /// Why, for logs: `reassigned`, `cancelled`, `expired`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `ack`: reports the hub has durably stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The reports stored; one `ack` may cover many.
    pub reports: Vec<AckedReport>,
}

/// One acknowledged report: the job (or incoming SMS) id and which report it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckedReport {
    /// Job id, or incoming-SMS id.
    pub id: String,
    /// Which of that id's reports was stored.
    pub report: ReportKind,
}

/// Which report an `ack` refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A `sent` frame.
    Sent,
    /// A `delivered` frame.
    Delivered,
    /// A `failed` frame.
    Failed,
    /// An `incoming` frame.
    Incoming,
    /// A report kind this build does not know (sent by a newer peer); ignore the entry.
    #[serde(other)]
    Unknown,
}

/// `error`: a frame the hub could not process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// Stable code: `invalid_frame`, `hello_required`, `unsupported_version`, `unknown_job`,
    /// `too_many_ids`, `rate_limited`.
    pub code: String,
    /// Human-readable detail, for logs; not meant to be parsed.
    pub message: String,
    /// The job ids the error is about, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
}

/// `ussd`: run a USSD code (`*100#`) on one SIM and answer `ussd_result` with the same `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdCommand {
    /// Request id, chosen by the hub; the answer names it.
    pub id: String,
    /// Zero-based SIM slot, as in `hello.sims`.
    #[serde(default)]
    pub sim: u8,
    /// The USSD code: digits, `*`, `#` and `+`.
    pub code: String,
}

/// `ussd_result`: the network's answer to a `ussd` request, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdResult {
    /// The `id` of the `ussd` frame answered.
    pub id: String,
    /// The network's answer text, decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Set when the request failed; `text` is then absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<UssdError>,
}

/// Why a USSD request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdError {
    /// Stable code: `sim_unavailable` (no modem or SIM in that slot), `busy`,
    /// `network_timeout` (no answer from the network), `generic_failure`, `unsupported`.
    pub code: String,
    /// Human-readable detail, for logs.
    #[serde(default)]
    pub message: String,
}

/// Error codes a device reports in `failed` and `rejected`, with whether each is temporary
/// by default. Devices may send codes not listed here; the hub stores them as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The radio is off (airplane mode). Temporary.
    RadioOff,
    /// No cellular service. Temporary.
    NoService,
    /// The OS or carrier refused because too many SMS were sent. Temporary.
    RateLimited,
    /// The modem or SMS stack is busy. Temporary.
    Busy,
    /// The network did not answer in time. Temporary.
    NetworkTimeout,
    /// Generic failure from the OS or modem. Temporary.
    GenericFailure,
    /// The SIM in the requested slot is missing or not ready. Temporary.
    SimUnavailable,
    /// The recipient number was refused by the network. Permanent.
    InvalidRecipient,
    /// The network or SMSC rejected the message (barred, no credit, ...). Permanent.
    Rejected,
    /// The app lacks the SEND_SMS permission or a user refused a prompt. Permanent.
    PermissionDenied,
    /// `valid_until` passed before the job could be sent. Permanent.
    Expired,
    /// The device cannot do what the job asks (e.g. multipart). Permanent.
    Unsupported,
    /// The device cannot say whether the SMS went out. Permanent: never resent blindly.
    OutcomeUnknown,
    /// The network reported that delivery failed. Permanent.
    DeliveryFailed,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::RadioOff,
        ErrorCode::NoService,
        ErrorCode::RateLimited,
        ErrorCode::Busy,
        ErrorCode::NetworkTimeout,
        ErrorCode::GenericFailure,
        ErrorCode::SimUnavailable,
        ErrorCode::InvalidRecipient,
        ErrorCode::Rejected,
        ErrorCode::PermissionDenied,
        ErrorCode::Expired,
        ErrorCode::Unsupported,
        ErrorCode::OutcomeUnknown,
        ErrorCode::DeliveryFailed,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RadioOff => "radio_off",
            ErrorCode::NoService => "no_service",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Busy => "busy",
            ErrorCode::NetworkTimeout => "network_timeout",
            ErrorCode::GenericFailure => "generic_failure",
            ErrorCode::SimUnavailable => "sim_unavailable",
            ErrorCode::InvalidRecipient => "invalid_recipient",
            ErrorCode::Rejected => "rejected",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::Expired => "expired",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::OutcomeUnknown => "outcome_unknown",
            ErrorCode::DeliveryFailed => "delivery_failed",
        }
    }

    /// Reads a wire code.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|it| it.as_str() == code)
    }

    /// Whether a failure with this code may succeed when tried again later or elsewhere.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            ErrorCode::RadioOff
                | ErrorCode::NoService
                | ErrorCode::RateLimited
                | ErrorCode::Busy
                | ErrorCode::NetworkTimeout
                | ErrorCode::GenericFailure
                | ErrorCode::SimUnavailable
        )
    }
}

/// Why a text frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame is not valid JSON: {0}")]
    Json(String),
    #[error("frame has no \"type\" field")]
    MissingType,
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    #[error("invalid {kind} frame: {detail}")]
    Invalid { kind: String, detail: String },
}

impl DeviceFrame {
    /// Reads a frame sent by a device, with an error that says what is wrong.
    pub fn parse(text: &str) -> Result<DeviceFrame, FrameError> {
        parse_tagged(
            text,
            &[
                "hello",
                "status",
                "accepted",
                "rejected",
                "sent",
                "delivered",
                "failed",
                "incoming",
                "heartbeat",
                "ussd_result",
            ],
        )
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string keys, no floats.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl HubFrame {
    /// Reads a frame sent by the hub.
    pub fn parse(text: &str) -> Result<HubFrame, FrameError> {
        parse_tagged(
            text,
            &[
                "welcome",
                "send",
                "commit",
                "revoke",
                "ack",
                "heartbeat",
                "error",
                "ussd",
            ],
        )
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn parse_tagged<T: serde::de::DeserializeOwned>(
    text: &str,
    known: &[&str],
) -> Result<T, FrameError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| FrameError::Json(e.to_string()))?;
    let kind = match value.get("type").and_then(|it| it.as_str()) {
        Some(kind) => kind.to_string(),
        None => return Err(FrameError::MissingType),
    };
    if !known.contains(&kind.as_str()) {
        return Err(FrameError::UnknownType(kind));
    }
    serde_json::from_value(value).map_err(|e| FrameError::Invalid {
        kind,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_ignored() {
        let frame = DeviceFrame::parse(r#"{"type":"heartbeat","future":1}"#).unwrap();
        assert_eq!(frame, DeviceFrame::Heartbeat(Heartbeat {}));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let check = |text: &str, expected: &str| {
            let err = DeviceFrame::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        };
        check("not json", "not valid JSON");
        check(r#"{"ids":[]}"#, "no \"type\"");
        check(r#"{"type":"teleport"}"#, "unknown frame type");
        check(r#"{"type":"sent"}"#, "invalid sent frame");
        check(r#"{"type":"welcome","protocol":1}"#, "unknown frame type");
    }

    #[test]
    fn error_codes_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
        }
        assert!(ErrorCode::NoService.is_temporary());
        assert!(!ErrorCode::OutcomeUnknown.is_temporary());
    }
}
