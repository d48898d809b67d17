//! One modem's task: owns its serial port, turns `send` jobs into `AT+CMGS` PDUs, and what the
//! modem says into store changes and dispatcher events, exactly as a phone session does.
//!
//! Life of a port ([`Supervisor::run`]): open → init (echo off, numeric errors, SIM PIN, PDU
//! mode, storage, new-message indications, each with the fallbacks real modems need) → identify (IMEI
//! keys the hub device, created on first sight) → register in the registry → serve until the
//! port fails or the modem is detached → go offline → reopen after `retry` (hot-plug).
//!
//! Serving, one thing at a time (one command outstanding): a `send` job is accepted (the
//! acceptance committed) right before its PDUs are written, then reported `sent` with the
//! message references kept to match status reports (`+CDS`/`+CDSI`) by reference and
//! recipient; a failure is classified by its CMS/CME code (temporary ones go back to the queue
//! through the store's retry rule), and a timeout after a PDU was written is
//! `outcome_unknown`, never resent. The modem keeps no journal, so it connects with an empty
//! one: jobs it accepted before a disconnect end as `outcome_unknown` in the dispatcher. `+CMTI`/`+CMT` messages are read, reassembled,
//! stored, and only then deleted from the modem; a periodic `AT+CMGL=4` sweep finds what a
//! lost notification missed. Storage indexes are used as given (Huawei counts from 0).
//!
//! Must never: write a PDU for a job whose acceptance is not committed, resend a PDU, delete a
//! stored message before the hub has committed it, or hold a lock across an `.await`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use smshub_protocol::at::{self, CommandError, reply, sms, ussd};
use smshub_protocol::device::{Capabilities, ErrorCode, SimInfo, Status};
use smshub_protocol::pdu::{
    self, Address, Body, ConcatRef, DecodedPdu, Deliver, PartKey, Reassembler, StatusClass,
    StatusReport, Submit, Timestamp,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::ModemConfig;
use super::session::{SendError, Session, SessionError, Timeouts};
use crate::dispatch::limits::Limits;
use crate::domain::{DeviceKind, Millis, format_millis, now_millis};
use crate::registry::{Job, LiveDevice, Outbound};
use crate::store::{Change, ModemRefChange, Outcome};
use crate::transport::link::DeviceLink;
use crate::transport::radio::device::{self as radio, Incoming, model_name};
use crate::transport::radio::supervisor::{self, Driver, Ended};
use crate::transport::radio::{
    Balance, Control, ModemError, ModemState, ModemStatus, Operators, RawSent, SignalDetails,
    StoredSms, UssdAnswer,
};

/// The kind of device a modem is in the registry and the database.
pub const KIND: DeviceKind = DeviceKind::Modem;

/// Runs one port: opens it, serves sessions, reopens after failures, until detached.
pub(crate) struct Supervisor {
    pub port: String,
    pub link: DeviceLink,
    pub config: ModemConfig,
    pub operators: Arc<Operators>,
    pub status: watch::Sender<ModemStatus>,
    pub control: mpsc::Receiver<Control>,
}

impl Supervisor {
    /// Keeps the port attached (reopening it `retry` after each failure) until detached.
    pub(crate) async fn run(self) {
        let Supervisor {
            port,
            link,
            config,
            operators,
            status,
            control,
        } = self;
        let port = Port {
            port,
            link,
            config,
            operators,
        };
        supervisor::run(port, status, control).await;
    }
}

/// A port's sessions, for the supervisor loop.
struct Port {
    port: String,
    link: DeviceLink,
    config: ModemConfig,
    operators: Arc<Operators>,
}

impl Driver for Port {
    async fn session(
        &mut self,
        status: &watch::Sender<ModemStatus>,
        control: &mut mpsc::Receiver<Control>,
    ) -> Ended {
        match open(&self.port) {
            Ok(stream) => {
                Connection::new(self, status, control, Session::new(stream))
                    .run()
                    .await
            }
            Err(error) => Ended::Failed {
                error,
                was_online: false,
            },
        }
    }

    /// A port is reopened after the same wait every time.
    fn wait(&self, _failures: u32) -> Duration {
        self.config.retry
    }

    fn log(&self, ended: &Ended, _failures: u32) {
        match ended {
            Ended::Stopped | Ended::Replaced => {
                tracing::info!(port = %self.port, "modem detached");
            }
            Ended::Failed { error, .. } => {
                tracing::warn!(port = %self.port, %error, "modem session ended; retrying");
            }
            Ended::GaveUp { error, .. } => {
                tracing::warn!(port = %self.port, %error, "modem session ended; not retrying");
            }
        }
    }
}

fn open(port: &str) -> Result<tokio_serial::SerialStream, String> {
    use tokio_serial::SerialPortBuilderExt;
    tokio_serial::new(port, 115_200)
        .open_native_async()
        .map_err(|err| format!("cannot open {port}: {err}"))
}

/// Why sending a message failed, as stored.
struct SendFailure {
    code: ErrorCode,
    message: String,
    temporary: bool,
    /// The port failed: the session must end after recording this.
    fatal: bool,
}

/// One open session on a port.
struct Connection<'a, S> {
    session: Session<S>,
    link: DeviceLink,
    port: String,
    config: ModemConfig,
    operators: Arc<Operators>,
    status: &'a watch::Sender<ModemStatus>,
    control: &'a mut mpsc::Receiver<Control>,
    device_id: String,
    /// The device's sending limits as stored, for the dispatcher.
    limits: Option<Limits>,
    session_no: u64,
    huawei: bool,
    /// `^SYSINFOEX` answered (`Some(true)`), `^SYSINFO` only (`Some(false)`), neither (`None`
    /// after trying).
    sysinfo: Option<Option<bool>>,
    /// Whether `AT^HCSQ?` answers (Huawei); `None` until tried.
    hcsq: Option<bool>,
    packed_ussd: bool,
    /// The storage messages are read from and deleted in.
    storage: Option<String>,
    next_reference: u16,
    reassembler: Reassembler,
    /// Storage indexes of the parts of incomplete long messages.
    parts: HashMap<PartKey, Vec<u32>>,
    started: Instant,
}

impl<'a, S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Connection<'a, S> {
    fn new(
        port: &Port,
        status: &'a watch::Sender<ModemStatus>,
        control: &'a mut mpsc::Receiver<Control>,
        session: Session<S>,
    ) -> Connection<'a, S> {
        Connection {
            session,
            link: port.link.clone(),
            port: port.port.clone(),
            config: port.config.clone(),
            operators: port.operators.clone(),
            status,
            control,
            device_id: String::new(),
            limits: None,
            session_no: 0,
            huawei: false,
            sysinfo: None,
            hcsq: None,
            packed_ussd: false,
            storage: None,
            // Not 0 after every restart, so parts of two messages sent across a restart do not
            // share a reference on the recipient's phone.
            next_reference: (now_millis() & 0xFFFF) as u16,
            reassembler: Reassembler::new(),
            parts: HashMap::new(),
            started: Instant::now(),
        }
    }

    fn timeouts(&self) -> Timeouts {
        self.config.timeouts
    }

    fn publish(&self, update: impl FnOnce(&mut ModemStatus)) {
        self.status.send_modify(update);
    }

    async fn run(mut self) -> Ended {
        self.publish(|it| {
            it.state = ModemState::Initializing;
            it.last_error = None;
        });
        let imei = match self.init().await {
            Ok(imei) => imei,
            Err(error) => return failed(error, false),
        };
        match self.link.device_for(KIND, &imei, "modem").await {
            Ok((id, limits)) => {
                self.device_id = id;
                self.limits = limits;
            }
            Err(error) => return failed(error, false),
        }
        if let Err(err) = self.refresh().await
            && err.is_fatal()
        {
            return failed(err.to_string(), false);
        }
        let status = self.radio_status();
        let snapshot = self.status.borrow().clone();
        let (tx, mut outbound) = mpsc::channel::<Outbound>(64);
        let now = now_millis();
        let capabilities = Capabilities {
            max_in_flight: 1,
            multipart: true,
            delivery_reports: true,
            incoming: true,
        };
        let live = LiveDevice {
            device_id: self.device_id.clone(),
            session: 0,
            kind: KIND,
            connected_at: now,
            last_seen_at: now,
            app_version: snapshot.revision.clone(),
            model: model_name(&snapshot),
            sims: vec![sim_info(&snapshot)],
            capabilities: capabilities.clone(),
            status: Some(status.clone()),
            in_flight: 0,
        };
        let session_no = self.link.register(live, tx.clone());
        self.session_no = session_no;
        self.link
            .hello(
                &self.device_id,
                model_name(&snapshot),
                snapshot.revision.clone(),
                &[sim_info(&snapshot)],
            )
            .await;
        // The modem keeps no journal: jobs of earlier sessions end as outcome_unknown.
        self.link.announce(
            &self.device_id,
            session_no,
            capabilities,
            self.limits,
            Some(Vec::new()),
        );
        self.link.report_status(&self.device_id, session_no, status);
        // The registry holds the sender now; the channel closes when the session is replaced.
        drop(tx);
        let device_id = self.device_id.clone();
        self.publish(|it| {
            it.state = ModemState::Ready;
            it.device_id = Some(device_id);
            it.connected_at = Some(format_millis(now));
        });
        tracing::info!(port = %self.port, device = %self.device_id, session = session_no, "modem online");

        // Messages that arrived while the modem was away.
        let ended = match self.sweep().await {
            Err(err) if err.is_fatal() => failed(err.to_string(), true),
            _ => self.serve(&mut outbound).await,
        };

        self.link.go_offline(&self.device_id, session_no).await;
        tracing::info!(port = %self.port, device = %self.device_id, "modem offline");
        ended
    }

    async fn serve(&mut self, outbound: &mut mpsc::Receiver<Outbound>) -> Ended {
        enum Step {
            Frame(Option<Outbound>),
            Control(Option<Control>),
            Urc(Result<at::Urc, SessionError>),
            Refresh,
            Sweep,
        }
        let start = Instant::now();
        let mut refresh =
            tokio::time::interval_at(start + self.config.refresh, self.config.refresh);
        let mut sweep = tokio::time::interval_at(start + self.config.sweep, self.config.sweep);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                frame = outbound.recv() => Step::Frame(frame),
                request = self.control.recv() => Step::Control(request),
                urc = self.session.next_urc() => Step::Urc(urc),
                _ = refresh.tick() => Step::Refresh,
                _ = sweep.tick() => Step::Sweep,
            };
            let result = match step {
                Step::Frame(Some(Outbound::Offer(job))) => self.send_job(*job).await,
                // Jobs run one at a time, accepted right before they are written: an offer
                // waiting in the channel is skipped at acceptance when it was taken back.
                Step::Frame(Some(Outbound::Revoke { .. })) => Ok(()),
                Step::Frame(Some(Outbound::Close(reason))) => {
                    tracing::info!(port = %self.port, reason = reason.describe(), "modem session closed by the hub");
                    return if reason.for_good() {
                        Ended::Replaced
                    } else {
                        Ended::Stopped
                    };
                }
                Step::Frame(None) | Step::Control(None | Some(Control::Stop)) => {
                    return Ended::Stopped;
                }
                Step::Control(Some(request)) => self.serve_control(request).await,
                Step::Urc(Ok(urc)) => self.handle_urc(urc).await,
                Step::Urc(Err(err)) => Err(err),
                Step::Refresh => self.refresh_and_report().await,
                Step::Sweep => self.sweep().await,
            };
            let result = match result {
                Ok(()) => self.drain_urcs().await,
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                if err.is_fatal() {
                    return failed(err.to_string(), true);
                }
                tracing::debug!(port = %self.port, error = %err, "modem command failed");
            }
        }
    }

    /// Handles the URCs that arrived while commands ran (handling one may queue more).
    async fn drain_urcs(&mut self) -> Result<(), SessionError> {
        for _ in 0..64 {
            let urcs = self.session.take_urcs();
            if urcs.is_empty() {
                return Ok(());
            }
            for urc in urcs {
                self.handle_urc(urc).await?;
            }
        }
        Ok(())
    }

    // ---- init and identity ----------------------------------------------------------------

    /// Runs the init sequence; returns the IMEI (or another stable identity).
    async fn init(&mut self) -> Result<String, String> {
        let t = self.timeouts();
        let mut alive = false;
        for _ in 0..5 {
            match self
                .session
                .command("AT", t.command.min(Duration::from_secs(2)))
                .await
            {
                Ok(_) => {
                    alive = true;
                    break;
                }
                Err(err) if err.is_fatal() => return Err(err.to_string()),
                Err(_) => {}
            }
        }
        if !alive {
            return Err(format!("{} does not answer AT", self.port));
        }
        self.quiet("ATE0").await?;
        self.quiet("AT+CMEE=1").await?;
        if let Ok(lines) = self.session.command("AT+CFUN?", t.command).await
            && lines
                .iter()
                .any(|it| at::strip_tag(it, "+CFUN").is_some_and(|v| v.trim() == "0"))
        {
            let _ = self.session.command("AT+CFUN=1", t.radio).await;
        }
        self.unlock_sim().await?;

        let manufacturer = self.info("AT+CGMI", &["+CGMI", "+GMI"]).await?;
        let model = self.info("AT+CGMM", &["+CGMM", "+GMM"]).await?;
        let revision = self.info("AT+CGMR", &["+CGMR", "+GMR"]).await?;
        let imei = self
            .info("AT+CGSN", &["+CGSN", "+GSN"])
            .await?
            .map(|it| it.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|it| (14..=17).contains(&it.len()));
        let imsi = match self.session.command("AT+CIMI", t.sim).await {
            Ok(lines) => lines.iter().find_map(|it| reply::parse_imsi(it)),
            Err(err) if err.is_fatal() => return Err(err.to_string()),
            Err(_) => None,
        };
        self.huawei = manufacturer
            .as_deref()
            .is_some_and(|it| it.to_ascii_lowercase().contains("huawei"));
        // Gammu F_ENCODED_USSD: Huawei sticks want USSD as packed GSM 7-bit hex.
        self.packed_ussd = self.huawei;
        let mut iccid = None;
        for command in [
            "AT^ICCID?",
            "AT+CCID",
            "AT+ICCID",
            "AT+QCCID",
            "AT+CICCID",
            "AT+CRSM=176,12258,0,0,10",
        ] {
            if command == "AT^ICCID?" && !self.huawei {
                continue;
            }
            match self.session.command(command, t.sim).await {
                Ok(lines) => {
                    iccid = lines.iter().find_map(|it| reply::parse_iccid(it));
                    if iccid.is_some() {
                        break;
                    }
                }
                Err(err) if err.is_fatal() => return Err(err.to_string()),
                Err(_) => {}
            }
        }
        if self.huawei {
            // Gammu's Huawei init: no periodic ^RSSI/^DSFLOWRPT; python-gsmmodem: USSD text mode.
            self.quiet("AT^CURC=0").await?;
            self.quiet("AT^USSDMODE=0").await?;
        }

        match self.session.command("AT+CMGF=0", t.command).await {
            Ok(_) => {}
            Err(err) => return Err(format!("the modem refuses PDU mode (AT+CMGF=0): {err}")),
        }
        let smsc = match self.session.command("AT+CSCA?", t.sim).await {
            Ok(lines) => lines.iter().find_map(|it| reply::parse_csca(it)),
            Err(err) if err.is_fatal() => return Err(err.to_string()),
            Err(_) => None,
        };
        self.storage = self.choose_storage().await?;
        let cnmi = self.choose_cnmi().await?;
        self.quiet("AT+COPS=3,0").await?;

        let profile = imsi
            .as_deref()
            .and_then(|it| self.operators.for_imsi(it))
            .cloned();
        let identity = imei
            .clone()
            .or_else(|| imsi.clone())
            .or_else(|| iccid.clone());
        let storage = self.storage.clone();
        self.publish(|it| {
            it.manufacturer = manufacturer;
            it.model = model;
            it.revision = revision;
            it.imei = imei;
            it.sim.mcc_mnc = profile
                .as_ref()
                .map(|p| p.mcc_mnc.clone())
                .or_else(|| imsi.as_ref().map(|i| i.chars().take(5).collect()));
            it.sim.operator = profile.as_ref().map(|p| p.name.clone());
            it.sim.profile = profile;
            it.sim.imsi = imsi;
            it.sim.iccid = iccid;
            it.sim.smsc = smsc;
            it.storage = storage;
            it.cnmi = cnmi;
        });
        identity.ok_or_else(|| "the modem gives no IMEI, IMSI or ICCID to know it by".to_string())
    }

    /// Runs a command whose failure does not matter; only a dead port is an error.
    async fn quiet(&mut self, command: &str) -> Result<(), String> {
        match self
            .session
            .command(command, self.config.timeouts.command)
            .await
        {
            Err(err) if err.is_fatal() => Err(err.to_string()),
            _ => Ok(()),
        }
    }

    async fn info(&mut self, command: &str, tags: &[&str]) -> Result<Option<String>, String> {
        match self
            .session
            .command(command, self.config.timeouts.command)
            .await
        {
            Ok(lines) => Ok(lines.iter().find_map(|it| reply::parse_info(it, tags))),
            Err(err) if err.is_fatal() => Err(err.to_string()),
            Err(_) => Ok(None),
        }
    }

    async fn unlock_sim(&mut self) -> Result<(), String> {
        let t = self.timeouts();
        for _ in 0..2 {
            let lines = match self.session.command("AT+CPIN?", t.sim).await {
                Ok(lines) => lines,
                // Old Wavecom modems answer +CPIN: READY without OK (python-gsmmodem fakemodems).
                Err(SessionError::Timeout { lines }) if !lines.is_empty() => lines,
                Err(SessionError::Command(CommandError::Cme(10) | CommandError::Cms(310))) => {
                    self.publish(|it| it.sim.pin_state = Some("SIM not inserted".into()));
                    return Err("no SIM card inserted".to_string());
                }
                Err(err) => return Err(format!("SIM state unknown (AT+CPIN?): {err}")),
            };
            let state = lines.iter().find_map(|it| reply::parse_cpin(it));
            let shown = lines
                .iter()
                .find_map(|it| at::strip_tag(it, "+CPIN"))
                .map(str::to_string);
            self.publish(|it| it.sim.pin_state = shown);
            match state {
                Some(reply::PinState::Ready) => return Ok(()),
                Some(reply::PinState::SimPin) => match self.config.sim_pin.clone() {
                    Some(pin) => {
                        if let Err(err) = self
                            .session
                            .command(&format!("AT+CPIN=\"{pin}\""), t.sim)
                            .await
                        {
                            return Err(format!("the SIM refused the configured PIN: {err}"));
                        }
                    }
                    None => return Err("the SIM asks for its PIN; configure it".to_string()),
                },
                Some(reply::PinState::SimPuk) => {
                    return Err("the SIM is blocked and asks for its PUK".to_string());
                }
                Some(reply::PinState::Other(other)) => {
                    return Err(format!("the SIM is not ready ({other})"));
                }
                None => return Err("no answer to AT+CPIN?".to_string()),
            }
        }
        Err("the SIM is still locked after entering the PIN".to_string())
    }

    async fn choose_storage(&mut self) -> Result<Option<String>, String> {
        let t = self.timeouts();
        let offered = match self.session.command("AT+CPMS=?", t.command).await {
            Ok(lines) => lines.iter().find_map(|it| reply::parse_cpms_support(it)),
            Err(err) if err.is_fatal() => return Err(err.to_string()),
            Err(_) => None,
        };
        let Some(storage) = offered.as_deref().and_then(reply::choose_storage) else {
            return Ok(None);
        };
        for command in [
            format!("AT+CPMS=\"{storage}\",\"{storage}\",\"{storage}\""),
            format!("AT+CPMS=\"{storage}\",\"{storage}\""),
            format!("AT+CPMS=\"{storage}\""),
        ] {
            match self.session.command(&command, t.command).await {
                Ok(_) => return Ok(Some(storage)),
                Err(err) if err.is_fatal() => return Err(err.to_string()),
                Err(_) => {}
            }
        }
        Ok(None)
    }

    async fn choose_cnmi(&mut self) -> Result<Option<String>, String> {
        let t = self.timeouts();
        let candidates = match self.session.command("AT+CNMI=?", t.command).await {
            Ok(lines) => lines
                .iter()
                .find_map(|it| reply::parse_cnmi_support(it))
                .map(|it| it.candidates())
                .unwrap_or_else(reply::default_cnmi),
            Err(err) if err.is_fatal() => return Err(err.to_string()),
            Err(_) => reply::default_cnmi(),
        };
        for setting in candidates {
            match self
                .session
                .command(&format!("AT+CNMI={setting}"), t.command)
                .await
            {
                Ok(_) => return Ok(Some(setting)),
                Err(err) if err.is_fatal() => return Err(err.to_string()),
                Err(_) => {}
            }
        }
        // No indications at all: the sweep still finds every stored message.
        tracing::warn!(port = %self.port, "the modem accepts no AT+CNMI setting; relying on the sweep");
        Ok(None)
    }

    // ---- status ------------------------------------------------------------------------------

    async fn refresh_and_report(&mut self) -> Result<(), SessionError> {
        self.refresh().await?;
        self.report_status();
        Ok(())
    }

    /// Hands the published radio status to the registry and the dispatcher.
    fn report_status(&self) {
        self.link
            .report_status(&self.device_id, self.session_no, self.radio_status());
    }

    /// Reads Huawei's `^HCSQ` (LTE signal where `+CSQ` says 99); `None` when the modem has no
    /// such command. The answer comes as a `^HCSQ:` line, which the framer files as a URC.
    async fn read_hcsq(&mut self) -> Result<Option<reply::Hcsq>, SessionError> {
        if !self.huawei || self.hcsq == Some(false) {
            return Ok(None);
        }
        let lines = match self
            .session
            .command("AT^HCSQ?", self.timeouts().command)
            .await
        {
            Ok(lines) => lines,
            Err(err) if err.is_fatal() => return Err(err),
            Err(_) => {
                self.hcsq = Some(false);
                return Ok(None);
            }
        };
        self.hcsq = Some(true);
        let urcs = self
            .session
            .take_urcs_where(|it| at::strip_tag(&it.line, "^HCSQ").is_some());
        Ok(lines
            .iter()
            .map(String::as_str)
            .chain(urcs.iter().map(|it| it.line.as_str()))
            .filter_map(reply::parse_hcsq)
            .next_back())
    }

    /// Reads signal, operator, registration and (Huawei) network mode.
    async fn refresh(&mut self) -> Result<(), SessionError> {
        let t = self.timeouts();
        let signal = self
            .lines("AT+CSQ", t.command)
            .await?
            .iter()
            .find_map(|it| reply::parse_csq(it));
        let hcsq = self.read_hcsq().await?;
        let operator = self
            .lines("AT+COPS?", t.command)
            .await?
            .iter()
            .find_map(|it| reply::parse_cops(it));
        let mut registration = self
            .lines("AT+CREG?", t.command)
            .await?
            .iter()
            .find_map(|it| reply::parse_creg(it));
        if !registration.is_some_and(|it| it.status.is_registered()) {
            // LTE-only modems register in the EPS domain and may say CREG 0.
            for command in ["AT+CEREG?", "AT+CGREG?"] {
                let other = self
                    .lines(command, t.command)
                    .await?
                    .iter()
                    .find_map(|it| reply::parse_creg(it));
                if other.is_some_and(|it| it.status.is_registered()) {
                    registration = other;
                    break;
                }
            }
        }
        let mut network = None;
        if self.huawei && self.sysinfo != Some(None) {
            for (command, extended) in [("AT^SYSINFOEX", true), ("AT^SYSINFO", false)] {
                if self.sysinfo == Some(Some(!extended)) {
                    continue;
                }
                match self.session.command(command, t.command).await {
                    Ok(lines) => {
                        network = lines
                            .iter()
                            .find_map(|it| reply::parse_sysinfo(it))
                            .and_then(|it| it.network());
                        self.sysinfo = Some(Some(extended));
                        break;
                    }
                    Err(err) if err.is_fatal() => return Err(err),
                    Err(_) => self.sysinfo = Some(None),
                }
            }
        }
        let network = network
            .or_else(|| hcsq.as_ref().and_then(|it| it.network()))
            .or_else(|| {
                operator
                    .as_ref()
                    .and_then(|it| it.act)
                    .map(|it| it.network())
            });
        let registered = registration.is_some_and(|it| it.status.is_registered());
        let roaming = registration.is_some_and(|it| it.status == reply::RegStatus::Roaming);
        // +CSQ when it knows (27.007); Huawei's ^HCSQ when +CSQ says 99 (LTE on E3372s).
        let dbm = signal
            .and_then(|s| s.dbm())
            .or_else(|| hcsq.as_ref().and_then(|it| it.signal_dbm()));
        let percent = signal
            .and_then(|s| s.percent())
            .or_else(|| dbm.map(dbm_percent));
        self.publish(|it| {
            it.network.signal_dbm = dbm;
            it.network.signal_percent = percent;
            it.network.signal_details = hcsq.as_ref().map(SignalDetails::from);
            it.network.operator = operator.and_then(|o| o.name);
            it.network.registered = registered;
            it.network.roaming = roaming;
            it.network.network_type = network.map(str::to_string);
        });
        Ok(())
    }

    /// A command's lines; an error other than a dead port gives no lines.
    async fn lines(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, SessionError> {
        match self.session.command(command, timeout).await {
            Ok(lines) => Ok(lines),
            Err(err) if err.is_fatal() => Err(err),
            Err(_) => Ok(Vec::new()),
        }
    }

    fn radio_status(&self) -> Status {
        let snapshot = self.status.borrow();
        let signal_level = radio::signal_level(snapshot.network.signal_dbm);
        radio::radio_status(&snapshot, signal_level)
    }

    // ---- sending -------------------------------------------------------------------------------

    fn reference(&mut self) -> ConcatRef {
        self.next_reference = self.next_reference.wrapping_add(1);
        if self.config.sixteen_bit_refs {
            ConcatRef::SixteenBit(self.next_reference)
        } else {
            ConcatRef::EightBit((self.next_reference & 0xFF) as u8)
        }
    }

    async fn send_job(&mut self, job: Job) -> Result<(), SessionError> {
        let device = self.device_id.clone();
        let id = job.id;
        if !self.link.accept(&device, id, "modem").await {
            return Ok(());
        }
        let (changes, code, fatal) = match self
            .send_text(job.recipient.as_str(), &job.text, job.delivery_report)
            .await
        {
            Ok(sent) => {
                let mut changes = vec![Change::Sent {
                    id,
                    device: device.clone(),
                    parts: sent.parts as u32,
                }];
                // The references are committed with `sent`, so a report that comes after a
                // restart or a reopen still finds the message.
                let parts: Vec<(u32, u8)> = sent
                    .references
                    .iter()
                    .enumerate()
                    .filter_map(|(part, mr)| Some((part as u32, (*mr)?)))
                    .collect();
                if job.delivery_report && !parts.is_empty() {
                    let wait =
                        i64::try_from(self.config.report_wait.as_millis()).unwrap_or(i64::MAX);
                    changes.push(Change::ModemRefs(ModemRefChange::Record {
                        device: device.clone(),
                        message: id,
                        recipient: job.recipient.to_string(),
                        parts,
                        expires_at: now_millis().saturating_add(wait),
                    }));
                }
                self.publish(|it| it.sent += 1);
                (changes, None, None)
            }
            Err(failure) => {
                self.publish(|it| it.failed += 1);
                tracing::info!(port = %self.port, %id, code = failure.code.as_str(), message = %failure.message, "modem send failed");
                let fatal = failure.fatal.then_some(SessionError::Closed);
                let change = self.link.failure(
                    id,
                    &device,
                    failure.code.as_str(),
                    failure.message,
                    failure.temporary,
                );
                (vec![change], Some(failure.code.as_str().to_string()), fatal)
            }
        };
        let outcome = self
            .link
            .store()
            .apply_all(changes)
            .await
            .map(|it| it.first().copied().unwrap_or(Outcome::Unchanged));
        self.link.finish(&device, id, outcome, code, "modem");
        fatal.map_or(Ok(()), Err)
    }

    /// Writes the PDUs of one message.
    async fn send_text(
        &mut self,
        to: &str,
        text: &str,
        status_report: bool,
    ) -> Result<RawSent, SendFailure> {
        let permanent = |code: ErrorCode, message: String| SendFailure {
            code,
            message,
            temporary: false,
            fatal: false,
        };
        let address = Address::parse(to)
            .map_err(|err| permanent(ErrorCode::InvalidRecipient, err.to_string()))?;
        let reference = self.reference();
        let submit = Submit::new(address, text)
            .status_report(status_report)
            .reference(reference);
        let pdus = submit
            .encode()
            .map_err(|err| permanent(ErrorCode::Unsupported, err.to_string()))?;
        let total = pdus.len();
        let timeouts = self.timeouts();
        let mut references = Vec::with_capacity(total);
        for (idx, part) in pdus.iter().enumerate() {
            match self
                .session
                .send_pdu(part.tpdu_len, &part.hex, &timeouts)
                .await
            {
                Ok(mr) => references.push(mr),
                Err(err) => return Err(send_failure(err, idx, total, &timeouts)),
            }
        }
        Ok(RawSent {
            parts: total,
            references,
        })
    }

    // ---- receiving -----------------------------------------------------------------------------

    async fn handle_urc(&mut self, urc: at::Urc) -> Result<(), SessionError> {
        if let Some(notice) = sms::parse_stored_notice(&urc.line) {
            return self.read_stored(&notice.storage, notice.index).await;
        }
        if let Some(pdu) = &urc.pdu {
            // +CMT (a message) or +CDS (a status report) routed straight to us.
            return self.take_pdu(None, pdu).await;
        }
        if at::strip_tag(&urc.line, "+CMT").is_some() || at::strip_tag(&urc.line, "+CDS").is_some()
        {
            tracing::warn!(line = %urc.line, "notification without its PDU ignored");
            return Ok(());
        }
        if at::strip_tag(&urc.line, "+CUSD").is_some() {
            tracing::info!(port = %self.port, line = %urc.line, "USSD answer outside a request");
            return Ok(());
        }
        if let Some(hcsq) = reply::parse_hcsq(&urc.line) {
            // Huawei reports signal changes on its own unless ^CURC=0 took (some firmwares
            // keep sending ^HCSQ anyway).
            let dbm = hcsq.signal_dbm();
            self.publish(|it| {
                if dbm.is_some() {
                    it.network.signal_dbm = dbm;
                    it.network.signal_percent = dbm.map(dbm_percent);
                }
                if let Some(network) = hcsq.network() {
                    it.network.network_type = Some(network.to_string());
                }
                it.network.signal_details = Some(SignalDetails::from(&hcsq));
            });
            if self.session_no != 0 {
                self.report_status();
            }
            return Ok(());
        }
        tracing::debug!(port = %self.port, line = %urc.line, "unsolicited code");
        Ok(())
    }

    /// Reads a stored message or report announced by `+CMTI`/`+CDSI`.
    async fn read_stored(&mut self, storage: &str, index: u32) -> Result<(), SessionError> {
        let t = self.timeouts();
        let switched = self.storage.as_deref().is_some_and(|it| it != storage);
        if switched {
            self.lines(&format!("AT+CPMS=\"{storage}\""), t.command)
                .await?;
        }
        let result = match self
            .session
            .command(&format!("AT+CMGR={index}"), t.list)
            .await
        {
            Ok(lines) => match sms::parse_cmgr(&lines) {
                Some(stored) => self.take_pdu(Some(index), &stored.pdu).await,
                None => Ok(()),
            },
            Err(err) if err.is_fatal() => Err(err),
            Err(err) => {
                tracing::debug!(%index, error = %err, "stored message not readable");
                Ok(())
            }
        };
        if switched && let Some(back) = self.storage.clone() {
            self.lines(&format!("AT+CPMS=\"{back}\""), t.command)
                .await?;
        }
        result
    }

    /// Lists every stored message and takes the received ones (lost notifications included).
    async fn sweep(&mut self) -> Result<(), SessionError> {
        let lines = match self
            .session
            .command("AT+CMGL=4", self.config.timeouts.list)
            .await
        {
            Ok(lines) => lines,
            Err(err) if err.is_fatal() => return Err(err),
            Err(err) => {
                tracing::debug!(port = %self.port, error = %err, "AT+CMGL=4 failed");
                return Ok(());
            }
        };
        for stored in sms::parse_cmgl(&lines) {
            if matches!(stored.stat, sms::StoredStat::Sent | sms::StoredStat::Unsent) {
                continue;
            }
            self.take_pdu(stored.index, &stored.pdu).await?;
        }
        self.expire_parts().await
    }

    async fn take_pdu(&mut self, index: Option<u32>, hex: &str) -> Result<(), SessionError> {
        match pdu::decode(hex) {
            Ok(DecodedPdu::Deliver(deliver)) => self.receive(deliver, index).await,
            Ok(DecodedPdu::StatusReport(report)) => {
                self.take_report(report).await;
                match index {
                    Some(index) => self.delete(index).await,
                    None => Ok(()),
                }
            }
            Ok(DecodedPdu::Submit(_)) => Ok(()),
            Err(err) => {
                tracing::warn!(port = %self.port, ?index, error = %err, "undecodable PDU left in storage");
                Ok(())
            }
        }
    }

    async fn receive(&mut self, deliver: Deliver, index: Option<u32>) -> Result<(), SessionError> {
        let key = deliver
            .udh
            .as_ref()
            .and_then(|it| it.concat)
            .filter(|it| it.total > 1)
            .map(|concat| PartKey {
                sender: deliver.sender.clone(),
                reference: concat.reference,
                total: concat.total,
            });
        if let (Some(key), Some(index)) = (&key, index) {
            let indexes = self.parts.entry(key.clone()).or_default();
            if !indexes.contains(&index) {
                indexes.push(index);
            }
        }
        let now = self.clock_ms();
        let Some(message) = self.reassembler.push(deliver, now) else {
            return Ok(());
        };
        let indexes = match key {
            Some(key) => self.parts.remove(&key).unwrap_or_default(),
            None => index.into_iter().collect(),
        };
        let body = match message.body {
            Body::Text(text) => text,
            Body::Data(data) => format!("[binary {}]", pdu::hex::encode(&data)),
        };
        if self
            .store_incoming(&message.sender, &message.timestamp, body)
            .await
        {
            for index in indexes {
                self.delete(index).await?;
            }
        }
        Ok(())
    }

    /// Milliseconds since this session started: the reassembler's clock.
    fn clock_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Stores what arrived of long messages whose other parts did not come within
    /// `parts_wait` of the last new part: a gateway delivers what it has rather than lose it.
    /// The body holds the parts in order with `[…]` for each missing one, then
    /// `[incomplete: k of n parts]`; the parts are then deleted from the modem (a part arriving
    /// even later is stored as a message of its own, marked the same way).
    async fn expire_parts(&mut self) -> Result<(), SessionError> {
        let now = self.clock_ms();
        let max_age = u64::try_from(self.config.parts_wait.as_millis()).unwrap_or(u64::MAX);
        for expired in self.reassembler.expire(now, max_age) {
            let Some(first) = expired.parts.first() else {
                continue;
            };
            let (sender, timestamp) = (first.sender.clone(), first.timestamp);
            let body = incomplete_body(&expired);
            tracing::info!(
                port = %self.port,
                sender = %sender.number,
                parts = expired.parts.len(),
                total = expired.key.total,
                "incomplete long message stored with the parts that arrived"
            );
            let indexes = self.parts.remove(&expired.key).unwrap_or_default();
            if self.store_incoming(&sender, &timestamp, body).await {
                for index in indexes {
                    self.delete(index).await?;
                }
            }
        }
        Ok(())
    }

    /// Commits a received SMS; true once it is stored (or was already).
    async fn store_incoming(
        &mut self,
        sender: &Address,
        timestamp: &Timestamp,
        body: String,
    ) -> bool {
        let mut hash = Sha256::new();
        hash.update(sender.number.as_bytes());
        hash.update(timestamp.to_string().as_bytes());
        hash.update(body.as_bytes());
        let incoming = Incoming {
            external_id: format!("modem-{}", &hex::encode(hash.finalize())[..32]),
            sender: sender.number.clone(),
            body,
            received_at: timestamp_millis(timestamp).unwrap_or_else(now_millis),
        };
        match radio::store_incoming(&self.link, self.status, &self.device_id, incoming).await {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(error = %err, "could not store an incoming SMS; it stays on the modem");
                false
            }
        }
    }

    async fn delete(&mut self, index: u32) -> Result<(), SessionError> {
        match self
            .session
            .command(&format!("AT+CMGD={index}"), self.config.timeouts.command)
            .await
        {
            Err(err) if err.is_fatal() => Err(err),
            Err(err) => {
                tracing::warn!(port = %self.port, index, error = %err, "could not delete a stored message");
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    /// Matches a status report to its message by TP-MR and recipient, from the references
    /// stored when the message was sent (newest first: the MR wraps after 256 parts).
    async fn take_report(&mut self, report: StatusReport) {
        let mr = report.message_reference;
        let store = self.link.store();
        let candidates = match store.modem_refs(&self.device_id, mr, now_millis()).await {
            Ok(it) => it,
            Err(err) => {
                tracing::error!(error = %err, "could not look up a status report's message");
                return;
            }
        };
        let Some(found) = candidates
            .into_iter()
            .find(|it| same_number(&it.recipient, &report.recipient.number))
        else {
            tracing::debug!(mr, recipient = %report.recipient.number, "status report for no awaited message");
            return;
        };
        let id = found.message_id;
        let device = self.device_id.clone();
        let changes = match report.status.class() {
            StatusClass::StillTrying => return,
            StatusClass::Delivered => {
                let waiting = match store.modem_refs_of(id).await {
                    Ok(it) => it.len(),
                    Err(err) => {
                        tracing::error!(error = %err, "could not read a message's references");
                        return;
                    }
                };
                let mut changes = vec![Change::ModemRefs(ModemRefChange::Settle {
                    ids: vec![found.id],
                })];
                if waiting <= 1 {
                    changes.push(Change::Delivered { id, device });
                }
                changes
            }
            StatusClass::PermanentFailure | StatusClass::TemporaryFailure => vec![
                Change::ModemRefs(ModemRefChange::Forget { message: id }),
                Change::Failed {
                    id,
                    device: Some(device),
                    code: ErrorCode::DeliveryFailed.as_str().to_string(),
                    message: format!(
                        "the network reports: {} (TP-ST {:#04x})",
                        report.status.description(),
                        report.status.0
                    ),
                    temporary: false,
                    retry: None,
                },
            ],
        };
        if let Err(err) = self.link.store().apply_all(changes).await {
            tracing::error!(error = %err, "could not record a delivery report");
        }
    }

    // ---- requests from the API ------------------------------------------------------------------

    async fn serve_control(&mut self, request: Control) -> Result<(), SessionError> {
        match request {
            Control::ListSms(reply) => {
                let result = self.list_stored().await;
                let fatal = port_gone(&result);
                let _ = reply.send(result);
                fatal
            }
            Control::DeleteSms(index, reply) => {
                let result = self.delete_stored(index).await;
                let fatal = port_gone(&result);
                let _ = reply.send(result);
                fatal
            }
            Control::SendRaw { to, text, reply } => {
                let result = self.send_text(&to, &text, false).await;
                let fatal = matches!(&result, Err(failure) if failure.fatal);
                let _ = reply.send(result.map_err(|it| {
                    ModemError::Invalid(format!("{}: {}", it.code.as_str(), it.message))
                }));
                if fatal {
                    Err(SessionError::Closed)
                } else {
                    Ok(())
                }
            }
            Control::Ussd { code, reply } => {
                let result = self.ussd(&code).await;
                let fatal = port_gone(&result);
                let _ = reply.send(result);
                fatal
            }
            Control::Balance(reply) => {
                let result = self.balance().await;
                let fatal = port_gone(&result);
                let _ = reply.send(result);
                fatal
            }
            Control::Stop => Ok(()),
        }
    }

    /// Deletes the message at `index` for the API. Many modems answer `OK` to `AT+CMGD` on an
    /// empty index (others `+CMS ERROR: 321`), so the index is read first: `+CMS ERROR: 321`
    /// ("invalid memory index", Gammu's transcripts) or an `OK` without `+CMGR:` means there
    /// is nothing to delete.
    async fn delete_stored(&mut self, index: u32) -> Result<(), ModemError> {
        let t = self.timeouts();
        let empty = |err: &SessionError| {
            matches!(
                err,
                SessionError::Command(CommandError::Cms(321) | CommandError::Cme(21))
            )
        };
        match self
            .session
            .command(&format!("AT+CMGR={index}"), t.list)
            .await
        {
            Ok(lines) if sms::parse_cmgr(&lines).is_some() => {}
            Ok(_) => return Err(ModemError::SmsNotFound(index)),
            Err(err) if empty(&err) => return Err(ModemError::SmsNotFound(index)),
            Err(err) => return Err(modem_error(err)),
        }
        match self
            .session
            .command(&format!("AT+CMGD={index}"), t.command)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if empty(&err) => Err(ModemError::SmsNotFound(index)),
            Err(err) => Err(modem_error(err)),
        }
    }

    async fn list_stored(&mut self) -> Result<Vec<StoredSms>, ModemError> {
        let lines = self
            .session
            .command("AT+CMGL=4", self.config.timeouts.list)
            .await
            .map_err(modem_error)?;
        Ok(sms::parse_cmgl(&lines)
            .into_iter()
            .map(describe_stored)
            .collect())
    }

    async fn ussd(&mut self, code: &str) -> Result<UssdAnswer, ModemError> {
        let t = self.timeouts();
        let forms = if self.packed_ussd {
            [true, false]
        } else {
            [false, true]
        };
        let mut refused = None;
        for packed in forms {
            match self
                .session
                .command(&ussd::command(code, packed), t.command)
                .await
            {
                Ok(_) => {
                    self.packed_ussd = packed;
                    return self.await_ussd(code, packed).await;
                }
                Err(SessionError::Command(err)) => refused = Some(err),
                Err(err) => return Err(modem_error(err)),
            }
        }
        Err(ModemError::Command(refused.unwrap_or(CommandError::Error)))
    }

    async fn await_ussd(&mut self, code: &str, packed: bool) -> Result<UssdAnswer, ModemError> {
        let t = self.timeouts();
        let deadline = Instant::now() + t.ussd;
        loop {
            let urc = self
                .session
                .wait_urc(deadline, |it| at::strip_tag(&it.line, "+CUSD").is_some())
                .await
                .map_err(modem_error)?;
            let Some(urc) = urc else {
                let _ = self.session.command("AT+CUSD=2", t.command).await;
                return Err(ModemError::Timeout);
            };
            let Some(answer) = ussd::parse_cusd(&urc.line) else {
                continue;
            };
            let text = answer.text(packed);
            // python-gsmmodem: an extra "+CUSD: 2,"Initiating Release"" or "+CUSD: 3,..."
            // may come before the real answer.
            let release = answer.status == ussd::UssdStatus::Terminated
                && text
                    .as_deref()
                    .is_some_and(|it| it.trim().eq_ignore_ascii_case("Initiating Release"));
            if answer.status == ussd::UssdStatus::OtherClient || release {
                continue;
            }
            if answer.status == ussd::UssdStatus::ActionRequired {
                // A menu: close it, the hub does not navigate menus.
                let _ = self.session.command("AT+CUSD=2", t.command).await;
            }
            return Ok(UssdAnswer {
                code: code.to_string(),
                status: answer.status.as_str(),
                text,
                dcs: answer.dcs,
            });
        }
    }

    async fn balance(&mut self) -> Result<Balance, ModemError> {
        let (profile, code) = radio::balance_code(&self.status.borrow())?;
        let answer = self.ussd(&code).await?;
        Ok(radio::balance(profile, code, answer))
    }
}

/// A failed session; `was_online` once the modem was registered with the hub.
fn failed(error: String, was_online: bool) -> Ended {
    Ended::Failed { error, was_online }
}

fn port_gone<T>(result: &Result<T, ModemError>) -> Result<(), SessionError> {
    match result {
        Err(ModemError::Port(_)) => Err(SessionError::Closed),
        _ => Ok(()),
    }
}

fn modem_error(err: SessionError) -> ModemError {
    match err {
        SessionError::Command(err) => ModemError::Command(err),
        SessionError::Timeout { .. } => ModemError::Timeout,
        SessionError::Io(err) => ModemError::Port(err.to_string()),
        SessionError::Closed => ModemError::Port("the port closed".to_string()),
    }
}

/// How a failed PDU ends the message. Parts already sent make any failure permanent: sending
/// the message again would repeat them.
fn send_failure(err: SendError, part: usize, total: usize, timeouts: &Timeouts) -> SendFailure {
    let (after, err) = match err {
        SendError::BeforePdu(err) => (false, err),
        SendError::AfterPdu(err) => (true, err),
    };
    let partial = part > 0;
    let which = if total > 1 {
        format!("part {} of {total}: ", part + 1)
    } else {
        String::new()
    };
    let sent_note = if partial {
        format!("; parts 1 to {part} were sent")
    } else {
        String::new()
    };
    let fatal = err.is_fatal();
    let (code, message, temporary) = match err {
        SessionError::Command(error) => {
            let class = error.class();
            let code = if after && class == at::ErrorClass::OutcomeUnknown {
                ErrorCode::OutcomeUnknown
            } else {
                error.wire_code()
            };
            (
                code,
                format!("{which}the modem answered {error}{sent_note}"),
                class.is_temporary(),
            )
        }
        SessionError::Timeout { .. } if after => (
            ErrorCode::OutcomeUnknown,
            format!(
                "{which}no answer within {} s after the PDU was written; it may have been sent{sent_note}",
                timeouts.send.as_secs()
            ),
            false,
        ),
        SessionError::Timeout { .. } => (
            ErrorCode::Busy,
            format!("{which}the modem did not ask for the PDU{sent_note}"),
            true,
        ),
        SessionError::Io(_) | SessionError::Closed if after => (
            ErrorCode::OutcomeUnknown,
            format!(
                "{which}the modem went away after the PDU was written; it may have been sent{sent_note}"
            ),
            false,
        ),
        SessionError::Io(_) | SessionError::Closed => (
            ErrorCode::GenericFailure,
            format!("{which}the modem went away{sent_note}"),
            true,
        ),
    };
    SendFailure {
        code,
        message,
        temporary: temporary && !partial,
        fatal,
    }
}

/// A signal in dBm as a percentage of the `+CSQ` scale (−113 dBm 0 %, −51 dBm 100 %).
fn dbm_percent(dbm: i32) -> u8 {
    let rssi = ((dbm + 113) / 2).clamp(0, 31);
    (rssi * 100 / 31) as u8
}

/// Whether two numbers are the same subscriber: their last nine digits agree (a report may
/// carry the national form of an international number).
fn same_number(a: &str, b: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<Vec<_>>();
    let (a, b) = (digits(a), digits(b));
    if a.is_empty() || b.is_empty() {
        return true;
    }
    let n = a.len().min(b.len()).min(9);
    a[a.len() - n..] == b[b.len() - n..]
}

/// The UTC instant of a service-centre timestamp.
fn timestamp_millis(timestamp: &Timestamp) -> Option<Millis> {
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::from(timestamp.year),
        timestamp.month.into(),
        timestamp.day.into(),
    )?;
    let time = date.and_hms_opt(
        timestamp.hour.into(),
        timestamp.minute.into(),
        timestamp.second.into(),
    )?;
    let local = time.and_utc().timestamp_millis();
    Some(local - i64::from(timestamp.tz_quarters) * 15 * 60 * 1000)
}

/// The text of an incomplete long message: its parts in order, `[…]` for each missing one,
/// and `[incomplete: k of n parts]`.
fn incomplete_body(expired: &pdu::Expired) -> String {
    let mut body = String::new();
    for seq in 1..=expired.key.total {
        let part = expired.parts.iter().find(|it| {
            it.udh
                .as_ref()
                .and_then(|udh| udh.concat)
                .is_some_and(|concat| concat.seq == seq)
        });
        match part.map(|it| &it.body) {
            Some(Body::Text(text)) => body.push_str(text),
            Some(Body::Data(data)) => {
                body.push_str(&format!("[binary {}]", pdu::hex::encode(data)))
            }
            None => body.push_str("[…]"),
        }
    }
    format!(
        "{body} [incomplete: {} of {} parts]",
        expired.parts.len(),
        expired.key.total
    )
}

fn describe_stored(stored: sms::StoredPdu) -> StoredSms {
    let index = stored.index.unwrap_or(0);
    let status = stored.stat.as_str();
    let part = |udh: Option<&pdu::Udh>| {
        udh.and_then(|it| it.concat)
            .map(|c| format!("{}/{}", c.seq, c.total))
    };
    match pdu::decode(&stored.pdu) {
        Ok(DecodedPdu::Deliver(it)) => StoredSms {
            index,
            status,
            kind: "deliver",
            number: Some(it.sender.number.clone()),
            text: it.body.text().map(str::to_string),
            timestamp: Some(it.timestamp.to_string()),
            part: part(it.udh.as_ref()),
            pdu: stored.pdu,
        },
        Ok(DecodedPdu::Submit(it)) => StoredSms {
            index,
            status,
            kind: "submit",
            number: Some(it.to.number.clone()),
            text: it.body.text().map(str::to_string),
            timestamp: None,
            part: part(it.udh.as_ref()),
            pdu: stored.pdu,
        },
        Ok(DecodedPdu::StatusReport(it)) => StoredSms {
            index,
            status,
            kind: "status_report",
            number: Some(it.recipient.number.clone()),
            text: Some(it.status.description().to_string()),
            timestamp: Some(it.discharge_time.to_string()),
            part: None,
            pdu: stored.pdu,
        },
        Err(_) => StoredSms {
            index,
            status,
            kind: "undecodable",
            number: None,
            text: None,
            timestamp: None,
            part: None,
            pdu: stored.pdu,
        },
    }
}

fn sim_info(status: &ModemStatus) -> SimInfo {
    radio::sim_info(status, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert!(same_number("+213770123456", "0770123456"));
        assert!(same_number("+31628870634", "+31628870634"));
        assert!(!same_number("+213770123456", "+213770999999"));
    }

    #[test]
    fn timestamps() {
        // python-gsmmodem TestTimestamp: 2015-11-27 00:00 +02:00 is 2015-11-26 22:00 UTC.
        let ts = Timestamp {
            year: 2015,
            month: 11,
            day: 27,
            hour: 0,
            minute: 0,
            second: 0,
            tz_quarters: 8,
        };
        assert_eq!(timestamp_millis(&ts), Some(1_448_575_200_000));
        let bad = Timestamp { month: 13, ..ts };
        assert_eq!(timestamp_millis(&bad), None);
    }

    #[test]
    fn failures() {
        let t = Timeouts::default();
        let after_timeout = send_failure(
            SendError::AfterPdu(SessionError::Timeout { lines: vec![] }),
            0,
            1,
            &t,
        );
        assert_eq!(
            (after_timeout.code, after_timeout.temporary),
            (ErrorCode::OutcomeUnknown, false)
        );
        let refused = send_failure(
            SendError::AfterPdu(SessionError::Command(CommandError::Cms(42))),
            0,
            1,
            &t,
        );
        assert_eq!((refused.code, refused.temporary), (ErrorCode::Busy, true));
        let partial = send_failure(
            SendError::AfterPdu(SessionError::Command(CommandError::Cms(42))),
            1,
            3,
            &t,
        );
        assert_eq!((partial.code, partial.temporary), (ErrorCode::Busy, false));
        assert!(
            partial.message.contains("part 2 of 3")
                && partial.message.contains("parts 1 to 1 were sent")
        );
        let bad = send_failure(
            SendError::AfterPdu(SessionError::Command(CommandError::Cms(1))),
            0,
            1,
            &t,
        );
        assert_eq!(
            (bad.code, bad.temporary),
            (ErrorCode::InvalidRecipient, false)
        );
        let gone = send_failure(SendError::BeforePdu(SessionError::Closed), 0, 1, &t);
        assert_eq!(
            (gone.code, gone.temporary, gone.fatal),
            (ErrorCode::GenericFailure, true, true)
        );
    }
}
