//! One task per modem of the worker: owns its serial port and drives it with the hub's own
//! lower layers — the AT runner ([`crate::transport::modem::session`]), the PDU codec and AT
//! reply parsers (`smshub_protocol`), the failure classification
//! ([`crate::transport::modem::failure`]) and the operator table — but reports to the worker's
//! job rules ([`super::jobs`]) through [`ModemEvent`]s instead of the hub's registry and store.
//!
//! Life of a port: open → init (wake, echo off, numeric errors, SIM ready, identity, PDU mode,
//! new-message indications) → serve (jobs, URCs, status refresh, storage sweep) until the port
//! fails → report the SIM unregistered → reopen after [`REOPEN`].
//!
//! Sending: the modem asks the job rules for a permit ([`ModemEvent::Start`]); they record
//! `sending` durably and say yes only for a job that is still committed. Only then is the
//! first PDU written. An incoming SMS is deleted from the modem only after the journal has it.
//!
//! Must never: write a PDU without a permit, write again a PDU whose answer did not come, or
//! delete a stored message before the journal has it.

use std::sync::Arc;
use std::time::Duration;

use smshub_protocol::at::{self, reply, sms, ussd};
use smshub_protocol::device::{ErrorCode, SimInfo, SimStatus};
use smshub_protocol::pdu::{self, Address, ConcatRef, DecodedPdu, StatusClass, Submit};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::transport::modem::parts::{Gathering, Received, write_parts};
use crate::transport::modem::session::{Session, SessionError, Timeouts};
use crate::transport::radio::Operators;
use crate::transport::radio::session::SendFailure;

/// The wait before a failed port is opened again.
const REOPEN: Duration = Duration::from_secs(5);
/// How often signal, registration and operator are read.
const REFRESH: Duration = Duration::from_secs(30);
/// How often the storage is swept for messages whose notification was lost.
const SWEEP: Duration = Duration::from_secs(60);
/// How long the parts of a long incoming message wait for the others.
const PARTS_WAIT_MS: u64 = 3600 * 1000;
/// A part refused with a transient error is written again this many times.
const PART_RETRIES: u32 = 3;

/// A committed job handed to a modem.
#[derive(Debug, Clone)]
pub struct ModemJob {
    pub id: String,
    pub to: String,
    pub text: String,
    pub delivery_report: bool,
}

/// A USSD request for a modem; the answer (or the error) goes back on `reply`.
#[derive(Debug)]
pub struct UssdRequest {
    pub code: String,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// What a modem tells the job rules.
#[derive(Debug)]
pub enum ModemEvent {
    /// About to write the first PDU of `id`: `permit` says whether it may (`sending` recorded).
    Start {
        id: String,
        permit: oneshot::Sender<bool>,
    },
    /// Every part went out; `references` are their TP-MRs.
    Sent {
        id: String,
        parts: u32,
        references: Vec<u8>,
    },
    /// It failed, classified like the hub's modem driver does.
    Failed {
        id: String,
        code: String,
        temporary: bool,
        reason: String,
    },
    /// A status report for a part sent on this slot.
    Report {
        slot: u8,
        reference: u8,
        recipient: String,
        class: StatusClass,
        detail: String,
    },
    /// A whole incoming SMS; the modem deletes it once `stored` is answered. `key`: an id the
    /// modem derives from its own record of the message (a HiLink stick's), so that taking it
    /// twice reports it under one id; else the journal gives it a fresh one.
    Incoming {
        slot: u8,
        key: Option<String>,
        from: String,
        text: String,
        received_at: Option<String>,
        stored: oneshot::Sender<()>,
    },
    /// The answer to a hub's `ussd` request `id`: the text, or an error code and message.
    Ussd {
        id: String,
        result: Result<String, (String, String)>,
    },
    /// The SIM's identity and radio state changed.
    Status {
        slot: u8,
        sim: SimInfo,
        status: SimStatus,
    },
}

/// The channels into a modem's task.
#[derive(Debug, Clone)]
pub struct ModemHandle {
    pub jobs: mpsc::UnboundedSender<ModemJob>,
    pub ussd: mpsc::Sender<UssdRequest>,
    /// Where [`ModemHandle::run_ussd`] reports; weak, so that the event channel still closes
    /// when every modem task has ended.
    events: mpsc::WeakSender<ModemEvent>,
}

impl ModemHandle {
    /// Runs a USSD code for the hub's request `id` without waiting: the answer comes back as
    /// [`ModemEvent::Ussd`]. A modem with requests already waiting answers `busy`.
    pub fn run_ussd(&self, id: String, code: String) {
        let (reply, answer) = oneshot::channel();
        let queued = self.ussd.try_send(UssdRequest { code, reply });
        let events = self.events.clone();
        tokio::spawn(async move {
            let result = match queued {
                Err(_) => Err((
                    "busy".to_string(),
                    "the modem has USSD requests waiting".to_string(),
                )),
                Ok(()) => match answer.await {
                    Ok(Ok(text)) => Ok(text),
                    Ok(Err(message)) => Err(("generic_failure".to_string(), message)),
                    Err(_) => Err((
                        "sim_unavailable".to_string(),
                        "the modem's session ended".to_string(),
                    )),
                },
            };
            if let Some(events) = events.upgrade() {
                let _ = events.send(ModemEvent::Ussd { id, result }).await;
            }
        });
    }
}

/// Asks the job rules whether job `id` may go out now ([`ModemEvent::Start`]: `sending` is
/// on disk when they say yes).
pub async fn permitted(events: &mpsc::Sender<ModemEvent>, id: &str) -> bool {
    let (permit, answer) = oneshot::channel();
    let asked = events
        .send(ModemEvent::Start {
            id: id.to_string(),
            permit,
        })
        .await;
    asked.is_ok() && answer.await.unwrap_or(false)
}

/// Tells the session the status of SIM slot `slot` when it differs from `last` (the status told
/// before) or when `always`; it then becomes `last`.
pub async fn tell_status(
    events: &mpsc::Sender<ModemEvent>,
    slot: u8,
    sim: &SimInfo,
    last: &mut SimStatus,
    status: SimStatus,
    always: bool,
) {
    if always || status != *last {
        *last = status.clone();
        let _ = events
            .send(ModemEvent::Status {
                slot,
                sim: sim.clone(),
                status,
            })
            .await;
    }
}

/// Starts the task of the modem at `port`, SIM slot `slot`.
pub fn spawn(
    slot: u8,
    port: String,
    events: mpsc::Sender<ModemEvent>,
    operators: Arc<Operators>,
) -> ModemHandle {
    let (handle, jobs_rx, ussd_rx) = channels(&events);
    tokio::spawn(run(slot, port, events, jobs_rx, ussd_rx, operators));
    handle
}

/// A modem task's handle and the receiving ends it serves.
pub fn channels(
    events: &mpsc::Sender<ModemEvent>,
) -> (
    ModemHandle,
    mpsc::UnboundedReceiver<ModemJob>,
    mpsc::Receiver<UssdRequest>,
) {
    let (jobs, jobs_rx) = mpsc::unbounded_channel();
    let (ussd, ussd_rx) = mpsc::channel(4);
    let handle = ModemHandle {
        jobs,
        ussd,
        events: events.downgrade(),
    };
    (handle, jobs_rx, ussd_rx)
}

async fn run(
    slot: u8,
    port: String,
    events: mpsc::Sender<ModemEvent>,
    mut jobs: mpsc::UnboundedReceiver<ModemJob>,
    mut ussd: mpsc::Receiver<UssdRequest>,
    operators: Arc<Operators>,
) {
    let mut sim = SimInfo {
        slot,
        ..SimInfo::default()
    };
    let mut missing = false;
    loop {
        match open(&port) {
            Ok(stream) => {
                missing = false;
                let mut modem = Modem {
                    slot,
                    port: port.clone(),
                    session: Session::new(stream),
                    timeouts: Timeouts::default(),
                    events: events.clone(),
                    operators: operators.clone(),
                    sim: sim.clone(),
                    status: SimStatus {
                        slot,
                        registered: false,
                        ..SimStatus::default()
                    },
                    packed_ussd: false,
                    announced: false,
                    reference: (chrono::Utc::now().timestamp_millis() & 0xFFFF) as u16,
                    gathering: Gathering::new(),
                    started: Instant::now(),
                };
                let error = modem.serve(&mut jobs, &mut ussd).await;
                sim = modem.sim.clone();
                tracing::warn!(%port, slot, %error, "modem session ended; reopening");
            }
            // Said once per outage at WARN (a missing stick would fill a Pi's log every 5 s).
            Err(error) if !missing => {
                missing = true;
                tracing::warn!(%port, slot, %error, "cannot open the modem; retrying every 5 s");
            }
            Err(error) => tracing::debug!(%port, slot, %error, "cannot open the modem"),
        }
        let down = SimStatus {
            slot,
            registered: false,
            ..SimStatus::default()
        };
        if events
            .send(ModemEvent::Status {
                slot,
                sim: sim.clone(),
                status: down,
            })
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(REOPEN).await;
    }
}

fn open(port: &str) -> Result<tokio_serial::SerialStream, String> {
    use tokio_serial::SerialPortBuilderExt;
    tokio_serial::new(port, 115_200)
        .open_native_async()
        .map_err(|err| format!("cannot open {port}: {err}"))
}

struct Modem<S> {
    slot: u8,
    port: String,
    session: Session<S>,
    timeouts: Timeouts,
    events: mpsc::Sender<ModemEvent>,
    operators: Arc<Operators>,
    sim: SimInfo,
    status: SimStatus,
    packed_ussd: bool,
    /// The first status of a session was told (it is told even when unchanged).
    announced: bool,
    reference: u16,
    gathering: Gathering,
    started: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Modem<S> {
    /// Init, then serve until the port fails; returns why it ended.
    async fn serve(
        &mut self,
        jobs: &mut mpsc::UnboundedReceiver<ModemJob>,
        ussd_rx: &mut mpsc::Receiver<UssdRequest>,
    ) -> String {
        if let Err(error) = self.init().await {
            return error;
        }
        if let Err(err) = self.refresh().await {
            return err.to_string();
        }
        if let Err(err) = self.sweep().await {
            return err.to_string();
        }
        let mut refresh = tokio::time::interval(REFRESH);
        let mut sweep = tokio::time::interval(SWEEP);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        refresh.reset();
        sweep.reset();
        enum Next {
            Job(ModemJob),
            Ussd(UssdRequest),
            Urc(Result<at::Urc, SessionError>),
            Refresh,
            Sweep,
            Gone,
        }
        loop {
            let next = tokio::select! {
                job = jobs.recv() => job.map_or(Next::Gone, Next::Job),
                request = ussd_rx.recv() => request.map_or(Next::Gone, Next::Ussd),
                urc = self.session.next_urc() => Next::Urc(urc),
                _ = refresh.tick() => Next::Refresh,
                _ = sweep.tick() => Next::Sweep,
            };
            let result = match next {
                Next::Gone => return "the worker is stopping".into(),
                Next::Job(job) => self.send_job(job).await,
                Next::Ussd(request) => self.ussd(request).await,
                Next::Urc(Ok(urc)) => self.handle_urc(urc).await,
                Next::Urc(Err(err)) => Err(err),
                Next::Refresh => self.refresh().await,
                Next::Sweep => self.sweep().await,
            };
            let result = match result {
                Ok(()) => self.drain_urcs().await,
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                if err.is_fatal() {
                    return err.to_string();
                }
                tracing::debug!(port = %self.port, error = %err, "modem command failed");
            }
        }
    }

    /// A command whose failure (other than a dead port) only means "no lines".
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

    async fn init(&mut self) -> Result<(), String> {
        let t = self.timeouts;
        let mut alive = false;
        for _ in 0..5 {
            match self.session.command("AT", Duration::from_secs(2)).await {
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
        let fatal = |err: SessionError| err.to_string();
        self.lines("ATE0", t.command).await.map_err(fatal)?;
        self.lines("AT+CMEE=1", t.command).await.map_err(fatal)?;
        let pin = self.lines("AT+CPIN?", t.sim).await.map_err(fatal)?;
        if let Some(state) = pin.iter().find_map(|it| reply::parse_cpin(it))
            && state != reply::PinState::Ready
        {
            return Err(format!(
                "the SIM is not ready: {state:?} (enter its PIN elsewhere)"
            ));
        }
        let manufacturer = self.lines("AT+CGMI", t.command).await.map_err(fatal)?;
        let huawei = manufacturer
            .iter()
            .any(|it| it.to_ascii_lowercase().contains("huawei"));
        self.packed_ussd = huawei;
        let imsi = self.lines("AT+CIMI", t.sim).await.map_err(fatal)?;
        if let Some(imsi) = imsi.iter().find_map(|it| reply::parse_imsi(it)) {
            if let Some(profile) = self.operators.for_imsi(&imsi) {
                self.sim.operator = Some(profile.name.clone());
                self.sim.mcc_mnc = Some(profile.mcc_mnc.clone());
            } else {
                self.sim.mcc_mnc = imsi.get(..5).map(str::to_string);
            }
        }
        for command in ["AT^ICCID?", "AT+CCID", "AT+ICCID"] {
            if command == "AT^ICCID?" && !huawei {
                continue;
            }
            let lines = self.lines(command, t.sim).await.map_err(fatal)?;
            if let Some(iccid) = lines.iter().find_map(|it| reply::parse_iccid(it)) {
                self.sim.iccid = Some(iccid);
                break;
            }
        }
        if let Err(err) = self.session.command("AT+CMGF=0", t.command).await {
            return Err(format!("no PDU mode: {err}"));
        }
        let mut indications = false;
        for setting in [
            "2,1,0,2,0",
            "2,1,0,1,0",
            "2,1,0,2",
            "2,1,0,0,0",
            "1,1,0,0,0",
        ] {
            match self
                .session
                .command(&format!("AT+CNMI={setting}"), t.command)
                .await
            {
                Ok(_) => {
                    indications = true;
                    break;
                }
                Err(err) if err.is_fatal() => return Err(err.to_string()),
                Err(_) => {}
            }
        }
        if !indications {
            tracing::warn!(port = %self.port, "no new-message indications: incoming SMS found by the sweep only");
        }
        tracing::info!(port = %self.port, slot = self.slot, operator = ?self.sim.operator, "modem ready");
        Ok(())
    }

    /// Reads signal, registration and operator, and tells the job rules.
    async fn refresh(&mut self) -> Result<(), SessionError> {
        let t = self.timeouts;
        let mut status = SimStatus {
            slot: self.slot,
            ..SimStatus::default()
        };
        let csq = self.lines("AT+CSQ", t.command).await?;
        if let Some(signal) = csq.iter().find_map(|it| reply::parse_csq(it)) {
            status.signal_dbm = signal.dbm();
            status.signal_level = signal.dbm().map(|_| signal.level());
        }
        if status.signal_dbm.is_none() {
            let hcsq = self.lines("AT^HCSQ?", t.command).await?;
            let urcs = self
                .session
                .take_urcs_where(|it| it.line.starts_with("^HCSQ"));
            let found = hcsq
                .iter()
                .chain(urcs.iter().map(|it| &it.line))
                .find_map(|it| reply::parse_hcsq(it));
            if let Some(hcsq) = found {
                status.signal_dbm = hcsq.signal_dbm();
                status.network = hcsq.network().map(str::to_string);
            }
        }
        let creg = self.lines("AT+CREG?", t.command).await?;
        status.registered = creg
            .iter()
            .find_map(|it| reply::parse_creg(it))
            .is_none_or(|it| it.status.is_registered());
        let cops = self.lines("AT+COPS?", t.command).await?;
        if let Some(operator) = cops.iter().find_map(|it| reply::parse_cops(it)) {
            status.operator = operator.name;
            if status.network.is_none() {
                status.network = operator.act.map(|it| it.network().to_string());
            }
        }
        let first = !self.announced;
        self.announced = true;
        tell_status(
            &self.events,
            self.slot,
            &self.sim,
            &mut self.status,
            status,
            first,
        )
        .await;
        Ok(())
    }

    /// Sends one committed job, if the job rules still permit it.
    async fn send_job(&mut self, job: ModemJob) -> Result<(), SessionError> {
        if !permitted(&self.events, &job.id).await {
            return Ok(());
        }
        let result = self
            .send_text(&job.to, &job.text, job.delivery_report)
            .await;
        let fatal = result.as_ref().is_err_and(|it| it.fatal);
        let event = match result {
            Ok((parts, references)) => ModemEvent::Sent {
                id: job.id,
                parts,
                references,
            },
            Err(failure) => ModemEvent::Failed {
                id: job.id,
                code: failure.code.as_str().to_string(),
                temporary: failure.temporary,
                reason: failure.message,
            },
        };
        let _ = self.events.send(event).await;
        if fatal {
            return Err(SessionError::Closed);
        }
        Ok(())
    }

    /// Writes the PDUs of one message, as the hub's driver does: a part refused with a
    /// transient error is written again with the same reference and part number.
    async fn send_text(
        &mut self,
        to: &str,
        text: &str,
        status_report: bool,
    ) -> Result<(u32, Vec<u8>), SendFailure> {
        let permanent = SendFailure::permanent;
        let address = Address::parse(to)
            .map_err(|err| permanent(ErrorCode::InvalidRecipient, err.to_string()))?;
        self.reference = self.reference.wrapping_add(1);
        let submit = Submit::new(address, text)
            .status_report(status_report)
            .reference(ConcatRef::EightBit((self.reference & 0xFF) as u8));
        let pdus = submit
            .encode()
            .map_err(|err| permanent(ErrorCode::Unsupported, err.to_string()))?;
        let total = pdus.len();
        let references = write_parts(
            &mut self.session,
            &pdus,
            &self.timeouts,
            PART_RETRIES,
            Duration::from_secs(1),
            &self.port,
        )
        .await?
        .into_iter()
        .flatten()
        .collect();
        Ok((total as u32, references))
    }

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

    async fn handle_urc(&mut self, urc: at::Urc) -> Result<(), SessionError> {
        if let Some(notice) = sms::parse_stored_notice(&urc.line) {
            let lines = self
                .lines(&format!("AT+CMGR={}", notice.index), self.timeouts.list)
                .await?;
            if let Some(stored) = sms::parse_cmgr(&lines) {
                return self.take_pdu(Some(notice.index), &stored.pdu).await;
            }
            return Ok(());
        }
        if let Some(pdu) = &urc.pdu {
            return self.take_pdu(None, pdu).await;
        }
        if let Some(hcsq) = reply::parse_hcsq(&urc.line) {
            tracing::debug!(port = %self.port, ?hcsq, "signal");
        }
        Ok(())
    }

    /// `AT+CMGL=4`: every stored message, for notifications that were lost.
    async fn sweep(&mut self) -> Result<(), SessionError> {
        let lines = self.lines("AT+CMGL=4", self.timeouts.list).await?;
        for stored in sms::parse_cmgl(&lines) {
            if matches!(stored.stat, sms::StoredStat::Sent | sms::StoredStat::Unsent) {
                continue;
            }
            self.take_pdu(stored.index, &stored.pdu).await?;
        }
        let now = self.started.elapsed().as_millis() as u64;
        for message in self.gathering.expire(now, PARTS_WAIT_MS) {
            self.keep(message).await?;
        }
        Ok(())
    }

    async fn take_pdu(&mut self, index: Option<u32>, hex: &str) -> Result<(), SessionError> {
        match pdu::decode(hex) {
            Ok(DecodedPdu::Deliver(deliver)) => {
                let now = self.started.elapsed().as_millis() as u64;
                match self.gathering.push(deliver, index, now) {
                    Some(message) => self.keep(message).await,
                    None => Ok(()),
                }
            }
            Ok(DecodedPdu::StatusReport(report)) => {
                let _ = self
                    .events
                    .send(ModemEvent::Report {
                        slot: self.slot,
                        reference: report.message_reference,
                        recipient: report.recipient.number.clone(),
                        class: report.status.class(),
                        detail: format!(
                            "status report: {} (TP-ST {:#04x})",
                            report.status.description(),
                            report.status.0
                        ),
                    })
                    .await;
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

    /// Hands a received message to the journal, then deletes its parts from the modem. Its
    /// key (sender, timestamp, text) is its id, so taking it twice reports it once.
    async fn keep(&mut self, message: Received) -> Result<(), SessionError> {
        let (stored, done) = oneshot::channel();
        let sent = self
            .events
            .send(ModemEvent::Incoming {
                slot: self.slot,
                key: Some(message.key()),
                from: message.sender.number.clone(),
                text: message.body,
                received_at: Some(message.timestamp.to_string()),
                stored,
            })
            .await;
        if sent.is_ok() && done.await.is_ok() {
            for index in message.indexes {
                self.delete(index).await?;
            }
        }
        Ok(())
    }

    async fn delete(&mut self, index: u32) -> Result<(), SessionError> {
        self.lines(&format!("AT+CMGD={index}"), self.timeouts.command)
            .await
            .map(|_| ())
    }

    /// Runs a USSD code and waits for its answer.
    async fn ussd(&mut self, request: UssdRequest) -> Result<(), SessionError> {
        let t = self.timeouts;
        let command = ussd::command(&request.code, self.packed_ussd);
        let answer = match self.session.command(&command, t.command).await {
            Err(err) if err.is_fatal() => {
                let _ = request.reply.send(Err(err.to_string()));
                return Err(err);
            }
            Err(err) => Err(format!("the modem refused the USSD request: {err}")),
            Ok(_) => self.await_ussd().await?,
        };
        let _ = request.reply.send(answer);
        Ok(())
    }

    /// Waits for the network's `+CUSD` answer, skipping release notices (an extra
    /// `+CUSD: 2,"Initiating Release"` or `+CUSD: 3` may come first, as the hub's modem driver
    /// knows), and closes a menu.
    async fn await_ussd(&mut self) -> Result<Result<String, String>, SessionError> {
        let t = self.timeouts;
        let deadline = Instant::now() + t.ussd;
        loop {
            let urc = self
                .session
                .wait_urc(deadline, |it| at::strip_tag(&it.line, "+CUSD").is_some())
                .await?;
            let Some(urc) = urc else {
                let _ = self.session.command("AT+CUSD=2", t.command).await;
                return Ok(Err(format!("no USSD answer within {} s", t.ussd.as_secs())));
            };
            let Some(reply) = ussd::parse_cusd(&urc.line) else {
                continue;
            };
            let text = reply.text(self.packed_ussd);
            let release = reply.status == ussd::UssdStatus::Terminated
                && text
                    .as_deref()
                    .is_some_and(|it| it.trim().eq_ignore_ascii_case("Initiating Release"));
            if reply.status == ussd::UssdStatus::OtherClient || release {
                continue;
            }
            if reply.status == ussd::UssdStatus::ActionRequired {
                // A menu: close it, the worker does not navigate menus.
                let _ = self.session.command("AT+CUSD=2", t.command).await;
            }
            return Ok(
                text.ok_or_else(|| format!("USSD ended without text ({})", reply.status.as_str()))
            );
        }
    }
}
