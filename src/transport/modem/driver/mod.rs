//! One modem's task: owns its serial port, turns `send` jobs into `AT+CMGS` PDUs, and what the
//! modem says into store changes and dispatcher events, exactly as a phone session does.
//!
//! Life of a port (`Supervisor::run`, through the loop of
//! [`crate::transport::radio::supervisor`]): open → init (echo off, numeric errors, SIM PIN,
//! PDU mode, storage, new-message indications, each with the fallbacks real modems need) →
//! identify (IMEI keys the hub device, created on first sight) → register in the registry →
//! serve until the port fails or the modem is detached → go offline → reopen after `retry`
//! (hot-plug).
//!
//! Serving, one thing at a time (one command outstanding): a `send` job is accepted (the
//! acceptance committed) right before its PDUs are written, then reported `sent` with the
//! message references kept to match status reports (`+CDS`/`+CDSI`) by reference and
//! recipient; a failure is classified by its CMS/CME code (temporary ones go back to the queue
//! through the store's retry rule), and a timeout after a PDU was written is
//! `outcome_unknown`, never resent. The modem keeps no journal, so it connects with an empty
//! one: jobs it accepted before a disconnect end as `outcome_unknown` in the dispatcher.
//! `+CMTI`/`+CMT` messages are read, reassembled, stored, and only then deleted from the
//! modem; a periodic `AT+CMGL=4` sweep finds what a lost notification missed. Storage indexes
//! are used as given (Huawei counts from 0).
//!
//! This file holds the session: the `Connection` over one open port, its life (`run`) and
//! its loop (`serve`), which hands each thing to the file of its job: `init` (init and
//! identity), `status` (signal, operator, registration), `send` (jobs into PDUs),
//! `receive` (incoming SMS, reassembly, the sweep), `reports` (status reports) and
//! `control` (the API's requests).
//!
//! Must never: write a PDU for a job whose acceptance is not committed, resend a PDU whose
//! outcome is unknown (only a part the modem refused is written again), delete a
//! stored message before the hub has committed it, or hold a lock across an `.await`.

mod control;
mod init;
mod receive;
mod reports;
mod send;
mod status;

use std::sync::Arc;
use std::time::Duration;

use smshub_protocol::at::{self, reply, sms};
use smshub_protocol::device::Capabilities;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::ModemConfig;
use super::parts::Gathering;
use super::session::{Session, SessionError, Timeouts};
use crate::dispatch::limits::Limits;
use crate::domain::{DeviceId, DeviceKind, now_millis};
use crate::registry::Outbound;
use crate::transport::link::DeviceLink;
use crate::transport::radio::session::{self, Identified, Next};
use crate::transport::radio::supervisor::{self, Attachment, Driver, Ended};
use crate::transport::radio::{Control, ModemState, ModemStatus, Operators};

/// The kind of device a modem is in the registry and the database.
pub const KIND: DeviceKind = DeviceKind::Modem;

/// Keeps the modem at `port` attached (reopening the port `retry` after each failure) until
/// detached.
pub(crate) async fn run(port: String, config: ModemConfig, attachment: Attachment) {
    let Attachment {
        link,
        operators,
        status,
        control,
    } = attachment;
    let port = Port {
        port,
        link,
        config,
        operators,
    };
    supervisor::run(port, status, control).await;
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

/// Opens the serial port.
fn open(port: &str) -> Result<tokio_serial::SerialStream, String> {
    use tokio_serial::SerialPortBuilderExt;
    tokio_serial::new(port, 115_200)
        .open_native_async()
        .map_err(|err| format!("cannot open {port}: {err}"))
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
    /// The hub device of this modem; empty until `run` has identified it.
    device_id: DeviceId,
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
    /// The parts of long incoming messages, with their storage indexes.
    gathering: Gathering,
    started: Instant,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Connection<'a, S> {
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
            device_id: DeviceId::stored(""),
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
            gathering: Gathering::new(),
            started: Instant::now(),
        }
    }

    fn timeouts(&self) -> Timeouts {
        self.config.timeouts
    }

    fn publish(&self, update: impl FnOnce(&mut ModemStatus)) {
        self.status.send_modify(update);
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

    /// The session's life: init, identify, register and announce, sweep, serve, go offline.
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
        // The modem keeps no journal: jobs of earlier sessions end as outcome_unknown.
        let (session_no, mut outbound) = session::go_online(Identified {
            link: &self.link,
            status: self.status,
            kind: KIND,
            device_id: &self.device_id,
            capabilities: Capabilities {
                max_in_flight: 1,
                multipart: true,
                delivery_reports: true,
                incoming: true,
                ussd: false,
            },
            limits: self.limits,
            radio: self.radio_status(),
        })
        .await;
        self.session_no = session_no;
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

    /// Serves the hub's jobs, the API's requests, the modem's URCs and the periodic refresh
    /// and sweep, one at a time, until the session ends.
    async fn serve(&mut self, outbound: &mut mpsc::Receiver<Outbound>) -> Ended {
        enum Own {
            Urc(Result<at::Urc, SessionError>),
            Refresh,
            Sweep,
        }
        let mut refresh = session::ticker(self.config.refresh);
        let mut sweep = session::ticker(self.config.sweep);
        loop {
            let own = async {
                tokio::select! {
                    urc = self.session.next_urc() => Own::Urc(urc),
                    _ = refresh.tick() => Own::Refresh,
                    _ = sweep.tick() => Own::Sweep,
                }
            };
            let next = session::next(outbound, self.control, own, "modem", &self.port).await;
            let result = match next {
                Next::Offer(job) => self.send_job(job).await,
                Next::Control(request) => self.serve_control(request).await,
                Next::End(ended) => return ended,
                Next::Own(Own::Urc(Ok(urc))) => self.handle_urc(urc).await,
                Next::Own(Own::Urc(Err(err))) => Err(err),
                Next::Own(Own::Refresh) => self.refresh_and_report().await,
                Next::Own(Own::Sweep) => self.sweep().await,
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

    /// Routes what the modem said on its own: a stored or routed message or report, a USSD
    /// answer nobody waits for, a signal reading.
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
            self.take_hcsq(&hcsq);
            return Ok(());
        }
        tracing::debug!(port = %self.port, line = %urc.line, "unsolicited code");
        Ok(())
    }
}

/// A failed session; `was_online` once the modem was registered with the hub.
fn failed(error: String, was_online: bool) -> Ended {
    Ended::Failed { error, was_online }
}
