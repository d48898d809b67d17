//! What serial modems and HiLink sticks share with each other and with their callers: a
//! modem's status (state, identity, SIM, radio), the requests its task answers ([`Control`]),
//! and the answers (stored SMS, raw sends, USSD, balance) and errors of those requests.
//!
//! Plain data: nothing here talks to a device, the store or the dispatcher.

use serde::Serialize;
use smshub_protocol::at::CommandError;
use tokio::sync::oneshot;

use super::operators::OperatorProfile;

/// Where a modem's task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModemState {
    /// Opening the port.
    Connecting,
    /// Running the init sequence.
    Initializing,
    /// Online: a device in the registry, taking jobs.
    Ready,
    /// The last attempt failed; it will be retried.
    Error,
    /// Detached on request (or replaced by another port of the same modem).
    Disconnected,
}

/// The SIM in a modem.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimDetails {
    pub imsi: Option<String>,
    pub iccid: Option<String>,
    /// MCC+MNC of the SIM's home network (from the IMSI).
    pub mcc_mnc: Option<String>,
    /// The home operator's name, from the operator table.
    pub operator: Option<String>,
    /// The SIM's own number, when the device tells it (a HiLink stick's `Msisdn`); the one
    /// `GET /api/devices` shows.
    pub phone_number: Option<String>,
    /// The service centre number (`AT+CSCA?`).
    pub smsc: Option<String>,
    /// `+CPIN?` state (`READY`, `SIM PIN`, ...).
    pub pin_state: Option<String>,
    /// The operator profile (APN, USSD codes), when known.
    pub profile: Option<OperatorProfile>,
}

/// A modem's radio.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkDetails {
    /// The network it is registered on (`+COPS?`).
    pub operator: Option<String>,
    pub registered: bool,
    pub roaming: bool,
    pub signal_dbm: Option<i32>,
    pub signal_percent: Option<u8>,
    /// `gsm`, `edge`, `umts`, `hspa`, `lte`, `nr`.
    pub network_type: Option<String>,
    /// Huawei `^HCSQ` readings, richer than `+CSQ` (RSRP, RSRQ, SINR on LTE).
    pub signal_details: Option<SignalDetails>,
}

/// A Huawei modem's signal as `^HCSQ` reports it (the conversions are ModemManager's).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SignalDetails {
    /// The radio: `GSM`, `WCDMA`, `LTE`, `NR`, `NOSERVICE`.
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rssi_dbm: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rscp_dbm: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecio_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rsrp_dbm: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rsrq_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sinr_db: Option<f64>,
}

impl From<&smshub_protocol::at::reply::Hcsq> for SignalDetails {
    fn from(it: &smshub_protocol::at::reply::Hcsq) -> Self {
        SignalDetails {
            mode: it.mode.clone(),
            rssi_dbm: it.rssi_dbm,
            rscp_dbm: it.rscp_dbm,
            ecio_db: it.ecio_db,
            rsrp_dbm: it.rsrp_dbm,
            rsrq_db: it.rsrq_db,
            sinr_db: it.sinr_db,
        }
    }
}

/// What a modem is and how it is doing.
#[derive(Debug, Clone, Serialize)]
pub struct ModemStatus {
    /// The serial port, or the URL of a HiLink stick.
    pub port: String,
    /// `serial` (AT commands) or `hilink` (HTTP API).
    pub transport: &'static str,
    pub state: ModemState,
    /// The hub device id, once identified.
    pub device_id: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub revision: Option<String>,
    pub imei: Option<String>,
    pub sim: SimDetails,
    pub network: NetworkDetails,
    /// The message storage in use (`ME`, `SM`).
    pub storage: Option<String>,
    /// The new-message indication setting that was accepted.
    pub cnmi: Option<String>,
    pub last_error: Option<String>,
    /// RFC 3339 time the current session started.
    pub connected_at: Option<String>,
    /// Messages sent, failed and received in this hub run.
    pub sent: u64,
    pub failed: u64,
    pub received: u64,
}

impl ModemStatus {
    pub fn new(port: &str) -> ModemStatus {
        ModemStatus {
            port: port.to_string(),
            transport: "serial",
            state: ModemState::Connecting,
            device_id: None,
            manufacturer: None,
            model: None,
            revision: None,
            imei: None,
            sim: SimDetails::default(),
            network: NetworkDetails::default(),
            storage: None,
            cnmi: None,
            last_error: None,
            connected_at: None,
            sent: 0,
            failed: 0,
            received: 0,
        }
    }

    /// Whether `id` names this modem: its port path or file name (a stick's host), device id
    /// or IMEI.
    pub fn matches(&self, id: &str) -> bool {
        self.port == id
            || self.port.rsplit('/').next() == Some(id)
            || self.device_id.as_deref() == Some(id)
            || self.imei.as_deref() == Some(id)
    }
}

/// A message stored on a modem.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSms {
    /// Storage index (from 0 on Huawei).
    pub index: u32,
    /// `rec_unread`, `rec_read`, `sto_unsent`, `sto_sent`.
    pub status: &'static str,
    /// `deliver`, `submit` or `status_report`; `undecodable` when the PDU did not decode.
    pub kind: &'static str,
    /// Sender (received) or recipient (stored outgoing).
    pub number: Option<String>,
    pub text: Option<String>,
    /// The service centre timestamp, RFC 3339-like.
    pub timestamp: Option<String>,
    /// `part/total` for a part of a long message.
    pub part: Option<String>,
    /// The PDU as stored (empty for HiLink sticks, which store text).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pdu: String,
}

/// A raw send's result.
#[derive(Debug, Clone, Serialize)]
pub struct RawSent {
    pub parts: usize,
    /// TP-MR of each part.
    pub references: Vec<Option<u8>>,
}

/// A USSD answer.
#[derive(Debug, Clone, Serialize)]
pub struct UssdAnswer {
    pub code: String,
    /// `done`, `action_required`, `terminated`, ...
    pub status: &'static str,
    pub text: Option<String>,
    pub dcs: Option<u8>,
}

/// A balance check.
#[derive(Debug, Clone, Serialize)]
pub struct Balance {
    pub operator: Option<String>,
    pub code: String,
    pub text: Option<String>,
    /// The first amount in the text, when there is one (`96.45`).
    pub amount: Option<f64>,
}

/// Why a modem operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModemError {
    #[error("no modem {0:?}")]
    NotFound(String),
    #[error("the modem is not ready ({0})")]
    NotReady(String),
    #[error("the modem answered {0}")]
    Command(CommandError),
    #[error("the modem did not answer in time")]
    Timeout,
    #[error("serial port: {0}")]
    Port(String),
    #[error("{0}")]
    Invalid(String),
    #[error("no balance code is known for this SIM's operator; configure an operator profile")]
    NoBalanceCode,
    /// The storage index holds no message (`AT+CMGR` found nothing, or `+CMS ERROR: 321`).
    #[error("no message is stored at index {0}")]
    SmsNotFound(u32),
    /// A HiLink stick could not be reached.
    #[error("the stick does not answer: {0}")]
    Unreachable(String),
    /// A HiLink stick refused the request.
    #[error("the stick refused: {0}")]
    Refused(String),
}

/// A request to a modem's task.
pub enum Control {
    ListSms(oneshot::Sender<Result<Vec<StoredSms>, ModemError>>),
    DeleteSms(u32, oneshot::Sender<Result<(), ModemError>>),
    SendRaw {
        to: String,
        text: String,
        reply: oneshot::Sender<Result<RawSent, ModemError>>,
    },
    Ussd {
        code: String,
        reply: oneshot::Sender<Result<UssdAnswer, ModemError>>,
    },
    Balance(oneshot::Sender<Result<Balance, ModemError>>),
    Stop,
}

impl Control {
    /// Answers a request the task cannot serve now.
    pub fn refuse(self, error: ModemError) {
        match self {
            Control::ListSms(reply) => drop(reply.send(Err(error))),
            Control::DeleteSms(_, reply) => drop(reply.send(Err(error))),
            Control::SendRaw { reply, .. } => drop(reply.send(Err(error))),
            Control::Ussd { reply, .. } => drop(reply.send(Err(error))),
            Control::Balance(reply) => drop(reply.send(Err(error))),
            Control::Stop => {}
        }
    }
}
