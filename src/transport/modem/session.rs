//! The AT command runner over one serial port (or anything `AsyncRead + AsyncWrite`): writes a
//! command, gathers its reply lines until the final result code, and keeps the unsolicited
//! codes that arrive meanwhile for the driver.
//!
//! One command is outstanding at a time (the session is `&mut self` and owned by one task).
//! Each command has its own timeout; `+CME ERROR: 515` and SIM busy are retried a few times
//! with a growing pause (python-gsmmodem adds 0.2 s per try). Sending a PDU is split in two
//! stages so the caller knows whether a failure came before the PDU was written (nothing can
//! have gone out) or after (the outcome may be unknown). Stale lines from a command that timed
//! out are dropped before the next one is written.
//!
//! Must never: interpret what replies mean (that is `smshub_protocol::at` and the driver), or
//! resend a PDU.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use smshub_protocol::at::{CommandError, Event, Final, Framer, Urc, sms};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Per-command timeouts. By default: 5 s for an ordinary command (the `AT` that wakes a modem
/// at init waits 2 s at most), 15 s for SIM commands, 40 s for `AT+CFUN`, 5 s to the
/// `AT+CMGS` prompt and 60 s to its answer, 30 s for USSD and for listing messages.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// An ordinary command.
    pub command: Duration,
    /// `AT+CPIN?` and other SIM commands.
    pub sim: Duration,
    /// `AT+CFUN`.
    pub radio: Duration,
    /// From `AT+CMGS=<n>` to the `> ` prompt.
    pub prompt: Duration,
    /// From the PDU to `+CMGS: <mr>`; past it the outcome is unknown.
    pub send: Duration,
    /// From `AT+CUSD` to the `+CUSD:` answer.
    pub ussd: Duration,
    /// Listing or reading stored messages.
    pub list: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(5),
            sim: Duration::from_secs(15),
            radio: Duration::from_secs(40),
            prompt: Duration::from_secs(5),
            send: Duration::from_secs(60),
            ussd: Duration::from_secs(30),
            list: Duration::from_secs(30),
        }
    }
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The modem answered with an error result.
    #[error("{0}")]
    Command(CommandError),
    /// No final result code in time; the lines that did come are kept (old Wavecom modems
    /// answer `+CPIN: READY` without `OK`).
    #[error("no answer in time")]
    Timeout { lines: Vec<String> },
    /// The port failed.
    #[error("serial port error: {0}")]
    Io(#[from] io::Error),
    /// The port closed (the modem was unplugged).
    #[error("the serial port closed")]
    Closed,
}

impl SessionError {
    /// Whether the port is gone and the session cannot go on.
    pub fn is_fatal(&self) -> bool {
        matches!(self, SessionError::Io(_) | SessionError::Closed)
    }
}

/// How sending one PDU failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Before the PDU was written: nothing went out.
    #[error("before the PDU was written: {0}")]
    BeforePdu(SessionError),
    /// After the PDU was written: an error result means the network refused it; a timeout
    /// means nobody knows.
    #[error("after the PDU was written: {0}")]
    AfterPdu(SessionError),
}

/// How many times a busy answer (`515`, SIM busy) is retried.
const BUSY_RETRIES: u32 = 5;
/// The pause before the first retry; it grows by this much each time.
const BUSY_PAUSE: Duration = Duration::from_millis(200);
/// ESC aborts a pending `> ` prompt.
const ESC: u8 = 0x1B;
/// Ctrl-Z ends a PDU.
const CTRL_Z: u8 = 0x1A;

/// An AT session over `S`.
pub struct Session<S> {
    io: S,
    framer: Framer,
    events: VecDeque<Event>,
    urcs: VecDeque<Urc>,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// A session over an open port.
    pub fn new(io: S) -> Session<S> {
        Session {
            io,
            framer: Framer::new(),
            events: VecDeque::new(),
            urcs: VecDeque::new(),
            buf: vec![0; 4096],
        }
    }

    /// Reads once from the port and frames what came. Cancel-safe: an unfinished read loses
    /// nothing.
    async fn fill(&mut self) -> Result<(), SessionError> {
        let n = self.io.read(&mut self.buf).await?;
        if n == 0 {
            return Err(SessionError::Closed);
        }
        let bytes = self.buf.get(..n).unwrap_or_default();
        tracing::trace!(rx = %String::from_utf8_lossy(bytes).escape_debug(), "modem");
        self.events.extend(self.framer.push(bytes));
        Ok(())
    }

    /// The next event before `deadline`, or `None` when it passes.
    async fn next_event(&mut self, deadline: Instant) -> Result<Option<Event>, SessionError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Ok(result) => result?,
                Err(_) => return Ok(None),
            }
        }
    }

    /// Keeps the URCs already framed and drops anything else left over (the late end of a
    /// command that timed out).
    fn drop_stale(&mut self) {
        for event in self.events.drain(..) {
            match event {
                Event::Urc(urc) => self.urcs.push_back(urc),
                other => tracing::debug!(?other, "stale modem output dropped"),
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        tracing::trace!(tx = %String::from_utf8_lossy(bytes).escape_debug(), "modem");
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Runs `command` (without `\r`) and returns its information lines; busy answers are
    /// retried.
    pub async fn command(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, SessionError> {
        let mut attempt = 0;
        loop {
            match self.command_once(command, timeout).await {
                Err(SessionError::Command(err)) if err.is_busy() && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    tracing::debug!(%command, %err, attempt, "modem busy; retrying");
                    tokio::time::sleep(BUSY_PAUSE * attempt).await;
                }
                other => return other,
            }
        }
    }

    async fn command_once(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, SessionError> {
        self.drop_stale();
        self.framer.expect_echo(command);
        self.write(format!("{command}\r").as_bytes()).await?;
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            match self.next_event(deadline).await? {
                None => return Err(SessionError::Timeout { lines }),
                Some(Event::Line(line)) => lines.push(line),
                Some(Event::Final(Final::Ok)) => return Ok(lines),
                Some(Event::Final(Final::Error(err))) => return Err(SessionError::Command(err)),
                Some(Event::Urc(urc)) => self.urcs.push_back(urc),
                Some(Event::Echo(_) | Event::Prompt) => {}
            }
        }
    }

    /// Sends one PDU with `AT+CMGS=<tpdu_len>` and returns the message reference from
    /// `+CMGS: <mr>` (`None` if the modem said `OK` without one).
    pub async fn send_pdu(
        &mut self,
        tpdu_len: usize,
        hex: &str,
        timeouts: &Timeouts,
    ) -> Result<Option<u8>, SendError> {
        let command = format!("AT+CMGS={tpdu_len}");
        let mut attempt = 0;
        loop {
            match self.wait_prompt(&command, timeouts.prompt).await {
                Ok(()) => break,
                Err(SessionError::Command(err)) if err.is_busy() && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(BUSY_PAUSE * attempt).await;
                }
                Err(err) => return Err(SendError::BeforePdu(err)),
            }
        }
        self.framer.expect_echo(hex);
        let mut body = hex.as_bytes().to_vec();
        body.push(CTRL_Z);
        self.write(&body).await.map_err(SendError::AfterPdu)?;
        let deadline = Instant::now() + timeouts.send;
        let mut reference = None;
        loop {
            match self
                .next_event(deadline)
                .await
                .map_err(SendError::AfterPdu)?
            {
                None => {
                    return Err(SendError::AfterPdu(SessionError::Timeout {
                        lines: Vec::new(),
                    }));
                }
                Some(Event::Line(line)) => reference = reference.or(sms::parse_cmgs(&line)),
                Some(Event::Final(Final::Ok)) => return Ok(reference),
                Some(Event::Final(Final::Error(err))) => {
                    return Err(SendError::AfterPdu(SessionError::Command(err)));
                }
                Some(Event::Urc(urc)) => self.urcs.push_back(urc),
                Some(Event::Echo(_) | Event::Prompt) => {}
            }
        }
    }

    async fn wait_prompt(&mut self, command: &str, timeout: Duration) -> Result<(), SessionError> {
        self.drop_stale();
        self.framer.expect_echo(command);
        self.write(format!("{command}\r").as_bytes()).await?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline).await? {
                Some(Event::Prompt) => return Ok(()),
                Some(Event::Final(Final::Error(err))) => return Err(SessionError::Command(err)),
                Some(Event::Urc(urc)) => self.urcs.push_back(urc),
                Some(Event::Final(Final::Ok)) => {
                    return Err(SessionError::Command(CommandError::Error));
                }
                Some(Event::Line(_) | Event::Echo(_)) => {}
                None => {
                    // Cancel a prompt that may still come, so the PDU is never half-expected.
                    self.write(&[ESC]).await?;
                    return Err(SessionError::Timeout { lines: Vec::new() });
                }
            }
        }
    }

    /// Waits for a URC that `wanted` accepts (one already queued counts); others stay queued
    /// for the driver. `None` when `deadline` passes.
    pub async fn wait_urc(
        &mut self,
        deadline: Instant,
        wanted: impl Fn(&Urc) -> bool,
    ) -> Result<Option<Urc>, SessionError> {
        if let Some(at) = self.urcs.iter().position(&wanted) {
            return Ok(self.urcs.remove(at));
        }
        loop {
            match self.next_event(deadline).await? {
                None => return Ok(None),
                Some(Event::Urc(urc)) if wanted(&urc) => return Ok(Some(urc)),
                Some(Event::Urc(urc)) => self.urcs.push_back(urc),
                Some(other) => tracing::debug!(?other, "modem output outside a command dropped"),
            }
        }
    }

    /// The next unsolicited code, waiting on the port when none is queued. Cancel-safe, for
    /// use in `select!`.
    pub async fn next_urc(&mut self) -> Result<Urc, SessionError> {
        loop {
            if let Some(urc) = self.urcs.pop_front() {
                return Ok(urc);
            }
            while let Some(event) = self.events.pop_front() {
                match event {
                    Event::Urc(urc) => return Ok(urc),
                    other => tracing::debug!(?other, "modem output outside a command dropped"),
                }
            }
            self.fill().await?;
        }
    }

    /// Takes the URCs queued while commands ran.
    pub fn take_urcs(&mut self) -> Vec<Urc> {
        self.urcs.drain(..).collect()
    }

    /// Takes the queued URCs that `wanted` accepts, leaving the others: the reply of a command
    /// whose answer looks unsolicited (`AT^HCSQ?` answers `^HCSQ: ...`, which also comes on its
    /// own).
    pub fn take_urcs_where(&mut self, wanted: impl Fn(&Urc) -> bool) -> Vec<Urc> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for urc in self.urcs.drain(..) {
            if wanted(&urc) {
                taken.push(urc);
            } else {
                kept.push_back(urc);
            }
        }
        self.urcs = kept;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream};

    /// A scripted modem on the other end of a duplex pipe: for each command line, the bytes
    /// to answer.
    async fn script(peer: DuplexStream, replies: Vec<(&'static str, &'static str)>, hold: bool) {
        let (read, mut write) = tokio::io::split(peer);
        let mut reader = BufReader::new(read);
        for (expected, reply) in replies {
            let mut line = Vec::new();
            if reader
                .read_until(
                    if expected.ends_with('\x1a') {
                        0x1a
                    } else {
                        b'\r'
                    },
                    &mut line,
                )
                .await
                .is_err()
            {
                return;
            }
            let got = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\x1a'])
                .to_string();
            assert_eq!(got, expected.trim_end_matches('\x1a'));
            let _ = write.write_all(reply.as_bytes()).await;
        }
        if hold {
            // Keep the port open, silent.
            std::future::pending::<()>().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn replies_urcs_busy_retries_and_pdus() {
        let (ours, theirs) = tokio::io::duplex(4096);
        let peer = tokio::spawn(script(
            theirs,
            vec![
                ("AT+CSQ", "\r\n+CMTI: \"SM\",0\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
                ("AT+CPMS?", "\r\n+CME ERROR: 515\r\n"),
                (
                    "AT+CPMS?",
                    "\r\n+CPMS: \"SM\",1,30,\"SM\",1,30,\"SM\",1,30\r\nOK\r\n",
                ),
                ("AT+CMGS=12", "\r\n> "),
                (
                    "0011000B911326880736F40000A700\x1a",
                    "\r\n+ZPASR: \"UMTS\"\r\n+CMGS: 7\r\n\r\nOK\r\n",
                ),
                ("AT+CMGS=12", "\r\n+CMS ERROR: 330\r\n"),
                ("AT+WIND?", "COMMAND NOT SUPPORT\r\n"),
            ],
            false,
        ));
        let mut session = Session::new(ours);
        let timeouts = Timeouts::default();
        assert_eq!(
            session.command("AT+CSQ", timeouts.command).await.unwrap(),
            ["+CSQ: 20,99"]
        );
        assert_eq!(
            session.take_urcs(),
            [Urc {
                line: "+CMTI: \"SM\",0".into(),
                pdu: None
            }]
        );
        let lines = session.command("AT+CPMS?", timeouts.command).await.unwrap();
        assert_eq!(lines.len(), 1, "busy answered once, then retried");
        let reference = session
            .send_pdu(12, "0011000B911326880736F40000A700", &timeouts)
            .await
            .unwrap();
        assert_eq!(reference, Some(7));
        assert_eq!(session.next_urc().await.unwrap().line, "+ZPASR: \"UMTS\"");
        let refused = session
            .send_pdu(12, "0011000B911326880736F40000A700", &timeouts)
            .await;
        assert!(matches!(
            refused,
            Err(SendError::BeforePdu(SessionError::Command(
                CommandError::Cms(330)
            )))
        ));
        let unsupported = session.command("AT+WIND?", timeouts.command).await;
        assert!(matches!(
            unsupported,
            Err(SessionError::Command(CommandError::NotSupported))
        ));
        peer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_modem_times_out_and_a_closed_one_is_fatal() {
        let (ours, theirs) = tokio::io::duplex(4096);
        let mut session = Session::new(ours);
        let timeouts = Timeouts::default();
        let err = session
            .command("AT", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(err, SessionError::Timeout { .. }) && !err.is_fatal());
        // After the PDU: a timeout is "after", so the caller reports an unknown outcome.
        let (ours2, theirs2) = tokio::io::duplex(4096);
        let peer = tokio::spawn(script(
            theirs2,
            vec![("AT+CMGS=5", "\r\n> "), ("0001\x1a", "")],
            true,
        ));
        let mut sending = Session::new(ours2);
        let result = sending.send_pdu(5, "0001", &timeouts).await;
        assert!(
            matches!(
                result,
                Err(SendError::AfterPdu(SessionError::Timeout { .. }))
            ),
            "{result:?}"
        );
        peer.abort();
        drop(theirs);
        let err = session.next_urc().await.unwrap_err();
        assert!(err.is_fatal());
    }
}
