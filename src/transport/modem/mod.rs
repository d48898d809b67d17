//! Serial GSM modems (Huawei E173/E3372, SIMCom SIM800/SIM7600, Quectel EC25, ...) as devices,
//! like phones: registered in the same registry, fed by the same dispatcher, reporting through
//! the same store changes.
//!
//! - [`session`]: the AT command runner over one port (one command at a time, timeouts, URCs).
//! - [`driver`]: one task per modem owning its port: init with fallbacks, identity and status
//!   refresh, PDU-mode sending with concatenation, delivery reports, incoming SMS (`+CMTI` and a
//!   periodic `AT+CMGL=4` sweep), USSD and balance; reopens the port after an unplug.
//! - [`operators`]: MCC/MNC → operator name, APN and USSD codes.
//! - [`detect`]: which serial ports are modems, which of a stick's ports speaks AT, and which
//!   sticks are network-only (HiLink), read from a configurable sysfs root.
//!
//! [`Modems`] is the handle the HTTP layer and the command line use: attach and detach ports,
//! read status and SIM info, list and delete SMS stored on a modem, send a raw SMS, USSD,
//! balance, detection and hot-plug scanning. It keeps one entry per port; every call goes to
//! the port's task over a channel, so no lock is held across an `.await`. Huawei HiLink
//! sticks ([`crate::transport::hilink`]) are modems too: their "port" is an `http://` URL, their
//! task speaks HTTP instead of AT, and they answer the same [`Control`] requests with the same
//! [`ModemStatus`] (`transport: "hilink"`).
//!
//! Invariants: a PDU is written only after the message's acceptance by this modem is committed;
//! a message whose PDU was written and not answered is failed `outcome_unknown`, never resent;
//! one broken modem never blocks another (each has its own task and timeouts).

pub mod detect;
pub mod driver;
pub mod operators;
pub mod session;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;
use smshub_protocol::at::CommandError;
use tokio::sync::{mpsc, oneshot, watch};

use crate::app::Hub;
use crate::transport::hilink::{self, HilinkConfig};
pub use detect::{DetectedPort, Detection, HilinkStick};
pub use operators::{OperatorProfile, Operators, OperatorsFileError, parse_operators_file};
pub use session::Timeouts;

/// How modems are driven.
#[derive(Debug, Clone)]
pub struct ModemConfig {
    /// Per-command timeouts.
    pub timeouts: Timeouts,
    /// How often signal, operator and registration are refreshed.
    pub refresh: Duration,
    /// How often stored messages are swept with `AT+CMGL=4` (catches lost notifications).
    pub sweep: Duration,
    /// How long to wait before reopening a port that failed or vanished.
    pub retry: Duration,
    /// The SIM PIN, entered when a SIM asks for it.
    pub sim_pin: Option<String>,
    /// Use 16-bit concatenation references (152 septets per part) instead of 8-bit.
    pub sixteen_bit_refs: bool,
    /// Ports detection may use (exact paths or prefixes such as `/dev/ttyUSB`); empty means
    /// every `ttyUSB*`/`ttyACM*`.
    pub allow: Vec<String>,
    /// How often detection re-scans for plugged modems when scanning is on.
    pub scan_interval: Duration,
    /// Where detection reads sysfs and names ports (`/sys`, `/dev`).
    pub host: detect::Host,
    /// Operator profiles that override the built-in ones.
    pub operators: Vec<OperatorProfile>,
    /// How long a sent part waits for its status report before its message reference is
    /// forgotten: the service centre gives up after the SMS's validity (its default is not
    /// known to the hub; a week covers the usual ones).
    pub report_wait: Duration,
    /// How long the parts of an incomplete long incoming message are kept waiting for the
    /// others before what arrived is stored, marked incomplete.
    pub parts_wait: Duration,
    /// HiLink sticks: timeouts, polling, backoff, login.
    pub hilink: HilinkConfig,
}

impl Default for ModemConfig {
    fn default() -> Self {
        ModemConfig {
            timeouts: Timeouts::default(),
            refresh: Duration::from_secs(30),
            sweep: Duration::from_secs(60),
            retry: Duration::from_secs(5),
            sim_pin: None,
            sixteen_bit_refs: false,
            allow: Vec::new(),
            scan_interval: Duration::from_secs(10),
            host: detect::Host::default(),
            operators: Vec::new(),
            report_wait: Duration::from_secs(7 * 24 * 3600),
            parts_wait: Duration::from_secs(3600),
            hilink: HilinkConfig::default(),
        }
    }
}

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
    pub(crate) fn new(port: &str) -> ModemStatus {
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
pub(crate) enum Control {
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
    pub(crate) fn refuse(self, error: ModemError) {
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

#[derive(Clone)]
struct PortHandle {
    control: mpsc::Sender<Control>,
    status: watch::Receiver<ModemStatus>,
}

/// Every attached modem, by port.
pub struct Modems {
    config: ModemConfig,
    operators: Arc<Operators>,
    ports: DashMap<String, PortHandle>,
    scanning: AtomicBool,
    /// HiLink sticks already logged, by USB device.
    hilink_seen: dashmap::DashSet<String>,
}

/// How long `connect` waits for a modem to come up before answering with its state.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

impl Modems {
    /// No modems yet.
    pub fn new(config: ModemConfig) -> Modems {
        let operators = Arc::new(Operators::new(config.operators.clone()));
        Modems {
            config,
            operators,
            ports: DashMap::new(),
            scanning: AtomicBool::new(false),
            hilink_seen: dashmap::DashSet::new(),
        }
    }

    /// How modems are driven.
    pub fn config(&self) -> &ModemConfig {
        &self.config
    }

    /// The operator profiles in use.
    pub fn operators(&self) -> &Operators {
        &self.operators
    }

    /// Attaches the modem at `port` (its task keeps reopening the port until detached) and
    /// waits until it is ready or has failed once. An `http://` URL attaches a HiLink stick
    /// (see [`Modems::connect_hilink`]).
    pub async fn connect(&self, hub: Arc<Hub>, port: &str) -> ModemStatus {
        if hilink::is_url(port) {
            let config = &self.config.hilink;
            return match hilink::Target::parse(
                port,
                config.username.as_deref(),
                config.password.as_deref(),
            ) {
                Ok(target) => self.connect_hilink(hub, target).await,
                Err(error) => ModemStatus {
                    transport: hilink::KIND,
                    state: ModemState::Error,
                    last_error: Some(error),
                    ..ModemStatus::new(&hilink::redact(port))
                },
            };
        }
        let operators = self.operators.clone();
        let config = self.config.clone();
        self.attach(port, ModemStatus::new(port), move |control, status| {
            let task = driver::Supervisor {
                port: port.to_string(),
                hub,
                config,
                operators,
                status,
                control,
            };
            tokio::spawn(task.run());
        })
        .await
    }

    /// Attaches a HiLink stick (its task keeps reconnecting, with backoff, until detached)
    /// and waits until it is ready or has failed once. Its key is the URL without credentials.
    pub async fn connect_hilink(&self, hub: Arc<Hub>, target: hilink::Target) -> ModemStatus {
        let key = target.url.clone();
        let initial = ModemStatus {
            transport: hilink::KIND,
            ..ModemStatus::new(&key)
        };
        let operators = self.operators.clone();
        let config = self.config.hilink.clone();
        self.attach(&key, initial, move |control, status| {
            let task = hilink::driver::Supervisor {
                target,
                hub,
                config,
                operators,
                status,
                control,
            };
            tokio::spawn(task.run());
        })
        .await
    }

    /// Registers `key` and starts its task with `spawn` unless a live task already has it,
    /// then waits for the first outcome.
    async fn attach(
        &self,
        key: &str,
        initial: ModemStatus,
        spawn: impl FnOnce(mpsc::Receiver<Control>, watch::Sender<ModemStatus>),
    ) -> ModemStatus {
        // Bound first, so the map's read guard is gone before `insert`.
        let existing = self.ports.get(key).map(|it| it.clone());
        let (mut status, fresh) = match existing {
            Some(handle) if handle.status.borrow().state != ModemState::Disconnected => {
                (handle.status, false)
            }
            _ => {
                let (control, control_rx) = mpsc::channel(16);
                let (status_tx, status_rx) = watch::channel(initial);
                self.ports.insert(
                    key.to_string(),
                    PortHandle {
                        control,
                        status: status_rx.clone(),
                    },
                );
                spawn(control_rx, status_tx);
                (status_rx, true)
            }
        };
        // A new port answers with its first outcome; a port already retrying, once it is back.
        let _ = tokio::time::timeout(
            CONNECT_WAIT,
            status.wait_for(|it| match it.state {
                ModemState::Ready | ModemState::Disconnected => true,
                ModemState::Error => fresh,
                ModemState::Connecting | ModemState::Initializing => false,
            }),
        )
        .await;
        status.borrow().clone()
    }

    /// Detaches a modem (by port, device id or IMEI): its session ends and it goes offline.
    pub async fn disconnect(&self, id: &str) -> Result<ModemStatus, ModemError> {
        let (port, handle) = self.find(id)?;
        let mut status = handle.status.clone();
        let _ = handle.control.send(Control::Stop).await;
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            status.wait_for(|it| it.state == ModemState::Disconnected),
        )
        .await;
        self.ports.remove(&port);
        let snapshot = status.borrow().clone();
        Ok(snapshot)
    }

    /// Detaches every modem (at shutdown, before the registry closes the other devices), so
    /// no port task is left retrying.
    pub async fn stop_all(&self) {
        let handles: Vec<PortHandle> = self.ports.iter().map(|it| it.value().clone()).collect();
        for handle in &handles {
            let _ = handle.control.send(Control::Stop).await;
        }
        for handle in handles {
            let mut status = handle.status;
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                status.wait_for(|it| it.state == ModemState::Disconnected),
            )
            .await;
        }
        self.ports.clear();
    }

    /// Every attached modem.
    pub fn status_list(&self) -> Vec<ModemStatus> {
        let mut list: Vec<ModemStatus> = self
            .ports
            .iter()
            .map(|it| it.status.borrow().clone())
            .collect();
        list.sort_by(|a, b| a.port.cmp(&b.port));
        list
    }

    /// One modem, by port (path or file name), device id or IMEI.
    pub fn status(&self, id: &str) -> Result<ModemStatus, ModemError> {
        let (_, handle) = self.find(id)?;
        let snapshot = handle.status.borrow().clone();
        Ok(snapshot)
    }

    /// The SIM of one modem.
    pub fn sim_info(&self, id: &str) -> Result<SimDetails, ModemError> {
        self.status(id).map(|it| it.sim)
    }

    /// Messages stored on the modem's storage.
    pub async fn list_sms(&self, id: &str) -> Result<Vec<StoredSms>, ModemError> {
        self.ask(id, Control::ListSms).await
    }

    /// Deletes a stored message; [`ModemError::SmsNotFound`] when the index holds none.
    pub async fn delete_sms(&self, id: &str, index: u32) -> Result<(), ModemError> {
        self.ask(id, |reply| Control::DeleteSms(index, reply)).await
    }

    /// Sends an SMS straight through the modem, outside the message queue (for diagnostics:
    /// nothing is stored, there is no retry).
    pub async fn send_raw(&self, id: &str, to: &str, text: &str) -> Result<RawSent, ModemError> {
        let (to, text) = (to.to_string(), text.to_string());
        self.ask(id, |reply| Control::SendRaw { to, text, reply })
            .await
    }

    /// Runs a USSD code (`*100#`) and returns the network's answer.
    pub async fn ussd(&self, id: &str, code: &str) -> Result<UssdAnswer, ModemError> {
        let code = code.trim().to_string();
        if code.is_empty()
            || code.len() > 160
            || !code
                .chars()
                .all(|c| c.is_ascii_digit() || "*#+".contains(c))
        {
            return Err(ModemError::Invalid(format!(
                "{code:?} is not a USSD code (digits, * and #)"
            )));
        }
        self.ask(id, |reply| Control::Ussd { code, reply }).await
    }

    /// Checks the balance with the USSD code of the SIM's operator.
    pub async fn balance(&self, id: &str) -> Result<Balance, ModemError> {
        self.ask(id, Control::Balance).await
    }

    /// Serial ports that answer `AT`, one per modem (probes ports not already attached), and
    /// the sticks in HiLink (network-only) mode, which have no AT port (logged once each).
    pub async fn detect(&self) -> Detection {
        let attached: Vec<String> = self.ports.iter().map(|it| it.key().clone()).collect();
        let found = detect::detect(
            &self.config.host,
            &self.config.allow,
            &attached,
            self.config.timeouts.command,
        )
        .await;
        for stick in &found.hilink {
            if self.hilink_seen.insert(stick.usb_device.clone()) {
                tracing::info!(
                    usb = %stick.usb_device,
                    id = %format!("{}:{}", stick.vid, stick.pid),
                    net = ?stick.net_interfaces,
                    "Huawei stick in HiLink (network-only) mode: it has no AT port to drive"
                );
            }
        }
        found
    }

    /// Detects modems and attaches the new ones; returns their states.
    pub async fn scan(&self, hub: Arc<Hub>) -> Vec<ModemStatus> {
        let mut attached = Vec::new();
        for found in self.detect().await.ports {
            if !self.ports.contains_key(&found.port) {
                attached.push(self.connect(hub.clone(), &found.port).await);
            }
        }
        attached
    }

    /// Re-scans every `scan_interval` for hot-plugged modems, until the hub stops. Starting it
    /// twice does nothing.
    pub fn spawn_scanner(self: &Arc<Self>, hub: Arc<Hub>) {
        if self.scanning.swap(true, Ordering::SeqCst) {
            return;
        }
        let modems = Arc::downgrade(self);
        let hub = Arc::downgrade(&hub);
        let interval = self.config.scan_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let (Some(modems), Some(hub)) = (modems.upgrade(), hub.upgrade()) else {
                    return;
                };
                let attached = modems.scan(hub).await;
                for status in attached {
                    tracing::info!(port = %status.port, state = ?status.state, "modem found by scan");
                }
            }
        });
    }

    fn find(&self, id: &str) -> Result<(String, PortHandle), ModemError> {
        self.ports
            .iter()
            .find(|it| it.key() == id || it.status.borrow().matches(id))
            .map(|it| (it.key().clone(), it.value().clone()))
            .ok_or_else(|| ModemError::NotFound(id.to_string()))
    }

    async fn ask<T>(
        &self,
        id: &str,
        request: impl FnOnce(oneshot::Sender<Result<T, ModemError>>) -> Control,
    ) -> Result<T, ModemError> {
        let (_, handle) = self.find(id)?;
        let (reply, answer) = oneshot::channel();
        handle
            .control
            .send(request(reply))
            .await
            .map_err(|_| ModemError::NotReady("its task has stopped".to_string()))?;
        answer
            .await
            .map_err(|_| ModemError::NotReady("its task has stopped".to_string()))?
    }
}
