//! A GSM modem emulator on a pty pair, for end-to-end tests of the modem transport.
//!
//! It runs on the master side of `tokio_serial::SerialStream::pair()`; the driver under test
//! opens the slave path like a real `/dev/ttyUSB2`. Its behaviour is data
//! (`modem_data/profiles.json`, replies taken from public transcripts) plus the quirks real
//! modems have: echo on at start, `+CME ERROR: 515` and SIM busy (`+CME ERROR: 14`) on the
//! first commands, `COMMAND NOT SUPPORT`, storage indexes from 0 (Huawei), a delayed `+CMGS`
//! with an unsolicited line in the middle of the reply, USSD as packed GSM 7-bit hex, an extra
//! `+CUSD: 2,"Initiating Release"`, and notifications that can be "lost" (the message is stored
//! without `+CMTI`). Every PDU the driver writes is checked against its `AT+CMGS=<n>` length
//! and decoded with our codec; the parts of long messages are reassembled by reference and
//! part number, and anything wrong is recorded in `errors`.
//!
//! Must never: use the network, or sleep except where a real modem takes time (`+CMGS` delay).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use smshub_protocol::gsm::{pack_gsm7_hex, unpack_gsm7_hex};
use smshub_protocol::pdu::{
    self, Address, Alphabet, Body, Concat, ConcatRef, DataCoding, DecodedPdu, Deliver,
    DeliveryStatus, StatusReport, Timestamp, Udh,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_serial::{SerialPort, SerialStream};

const PROFILES: &str = include_str!("modem_data/profiles.json");

/// One modem model's behaviour.
#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    pub echo: bool,
    pub index_base: u32,
    pub busy_first: u32,
    pub sim_busy_first: u32,
    pub ussd_packed: bool,
    #[serde(default)]
    pub ussd_extra_release: bool,
    /// `AT+CMGD` on an empty index answers `OK` (27.005 leaves it open; others say
    /// `+CMS ERROR: 321`). `AT+CMGR` on an empty index always answers `+CMS ERROR: 321`.
    #[serde(default)]
    pub cmgd_empty_ok: bool,
    pub cmgs_delay_ms: u64,
    pub urc_mid_reply: Option<String>,
    pub unknown: String,
    pub cnmi_accept: Vec<String>,
    pub ussd_answers: HashMap<String, String>,
    pub replies: HashMap<String, Vec<String>>,
    pub not_supported: Vec<String>,
}

/// Loads a profile from `modem_data/profiles.json`.
pub fn profile(name: &str) -> Profile {
    let all: serde_json::Value = serde_json::from_str(PROFILES).expect("profiles.json parses");
    serde_json::from_value(all[name].clone()).unwrap_or_else(|err| panic!("profile {name}: {err}"))
}

/// A message the driver sent, reassembled from its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub to: String,
    pub text: String,
    pub parts: usize,
    /// The concatenation reference (`None` for a single part).
    pub reference: Option<u16>,
    /// TP-MR given to each part.
    pub message_references: Vec<u8>,
    pub status_report: bool,
}

#[derive(Debug, Clone)]
struct StoredPdu {
    stat: u8,
    pdu: String,
    tpdu_len: usize,
}

/// The parts of one long message received so far: total, text by part number, the TP-MRs
/// given, whether a status report was asked.
type Parts = (u8, BTreeMap<u8, String>, Vec<u8>, bool);

#[derive(Debug, Default)]
struct State {
    profile: Option<Profile>,
    echo: bool,
    busy_left: u32,
    sim_busy_left: u32,
    storage: BTreeMap<u32, StoredPdu>,
    next_index: u32,
    next_mr: u8,
    /// `<ds>` of the accepted `AT+CNMI`: 1 = `+CDS` direct, 2 = stored with `+CDSI`.
    ds: u8,
    /// Parts received, by (recipient, reference): (total, seq → text, message refs, srr).
    parts: HashMap<(String, u16), Parts>,
    sent: Vec<SentMessage>,
    /// PDUs written by the driver, in order.
    pdus: Vec<String>,
    /// Submitted parts with a status report request: (mr, recipient).
    awaiting_reports: Vec<(u8, Address)>,
    errors: Vec<String>,
    commands: Vec<String>,
    /// The next AT+CMGS gets its PDU and never answers.
    swallow_next_pdu: bool,
    /// The next AT+CMGS PDU is refused with this CMS error.
    refuse_next_pdu: Option<u16>,
    /// Parts with this part number are refused with these CMS errors, one error a PDU, in
    /// order (a transient fault on one part of a long message).
    refuse_part: Option<(u8, Vec<u16>)>,
    /// The parts refused that way: (concatenation reference, part number, total, CMS error).
    refused_parts: Vec<(u16, u8, u8, u16)>,
    /// PDUs answered with `+CMGS`, with the length announced in `AT+CMGS`.
    accepted: Vec<(usize, String)>,
}

enum Action {
    Write(String),
    Unplug,
}

/// An emulated modem; dropping it (or [`Emulator::unplug`]) closes the pty.
pub struct Emulator {
    /// The slave path to open, like `/dev/ttyUSB2`.
    pub path: String,
    state: Arc<Mutex<State>>,
    actions: mpsc::UnboundedSender<Action>,
}

enum Out {
    Line(String),
    Raw(String),
    Delay(u64),
}

impl Emulator {
    /// Starts a modem behaving like `profile`.
    pub fn start(profile: Profile) -> Emulator {
        // The slave is not locked: the driver takes its own exclusive lock when it opens the path.
        let (master, slave) = SerialStream::pair().expect("a pty pair");
        let path = slave.name().expect("the slave has a path");
        let state = Arc::new(Mutex::new(State {
            echo: profile.echo,
            busy_left: profile.busy_first,
            sim_busy_left: profile.sim_busy_first,
            next_index: profile.index_base,
            ds: 0,
            profile: Some(profile),
            ..State::default()
        }));
        let (actions, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(master, slave, state.clone(), rx));
        Emulator {
            path,
            state,
            actions,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("emulator state"))
    }

    /// Messages the driver sent, reassembled.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.with(|it| it.sent.clone())
    }

    /// How many PDUs the driver wrote.
    pub fn pdu_count(&self) -> usize {
        self.with(|it| it.pdus.len())
    }

    /// The TP-MR the next submitted part gets (modems count 0-255 and wrap).
    pub fn set_next_mr(&self, mr: u8) {
        self.with(|it| it.next_mr = mr);
    }

    /// Writes an unsolicited line, as the modem does on its own (`^HCSQ: ...`).
    pub fn urc(&self, line: &str) {
        let _ = self.actions.send(Action::Write(format!("\r\n{line}\r\n")));
    }

    /// Protocol faults seen (bad lengths, undecodable PDUs, wrong part numbers).
    pub fn errors(&self) -> Vec<String> {
        self.with(|it| it.errors.clone())
    }

    /// Commands received, in order.
    pub fn commands(&self) -> Vec<String> {
        self.with(|it| it.commands.clone())
    }

    /// Storage indexes in use.
    pub fn stored_indexes(&self) -> Vec<u32> {
        self.with(|it| it.storage.keys().copied().collect())
    }

    /// The next PDU is taken and never answered (the network went silent).
    pub fn swallow_next_pdu(&self) {
        self.with(|it| it.swallow_next_pdu = true);
    }

    /// The next PDU is refused with `+CMS ERROR: <code>`.
    pub fn refuse_next_pdu(&self, code: u16) {
        self.with(|it| it.refuse_next_pdu = Some(code));
    }

    /// The parts numbered `seq` of the long messages that follow are refused with `codes`,
    /// one code a PDU, in order; then they are taken.
    pub fn refuse_part(&self, seq: u8, codes: &[u16]) {
        self.with(|it| it.refuse_part = Some((seq, codes.to_vec())));
    }

    /// The parts refused by [`Emulator::refuse_part`]: (reference, part number, total, code).
    pub fn refused_parts(&self) -> Vec<(u16, u8, u8, u16)> {
        self.with(|it| it.refused_parts.clone())
    }

    /// The PDUs the modem took (answered `+CMGS`), in order, with the length announced in
    /// their `AT+CMGS`.
    pub fn accepted(&self) -> Vec<(usize, String)> {
        self.with(|it| it.accepted.clone())
    }

    /// An SMS arrives from `from`: stored, and announced with `+CMTI` unless `notify` is
    /// false (a lost notification).
    pub fn deliver(&self, from: &str, text: &str, notify: bool) -> u32 {
        self.deliver_part(from, text, None, notify)
    }

    /// The parts of a long SMS from `from` (`parts[i]` is part `i + 1` of concatenation
    /// reference `reference`) arrive in `order`: each `(part number, notify)` is stored, and
    /// announced with `+CMTI` unless `notify` is false. Returns the storage indexes in `order`.
    pub fn deliver_long(
        &self,
        from: &str,
        parts: &[&str],
        reference: u8,
        order: &[(u8, bool)],
    ) -> Vec<u32> {
        let total = u8::try_from(parts.len()).expect("at most 255 parts");
        order
            .iter()
            .map(|(seq, notify)| {
                let concat = Concat {
                    reference: ConcatRef::EightBit(reference),
                    total,
                    seq: *seq,
                };
                self.deliver_part(from, parts[usize::from(*seq) - 1], Some(concat), *notify)
            })
            .collect()
    }

    fn deliver_part(&self, from: &str, text: &str, concat: Option<Concat>, notify: bool) -> u32 {
        let deliver = Deliver {
            smsc: Some(Address::parse("+213770000001").expect("smsc")),
            sender: Address::parse(from).expect("sender"),
            protocol_id: 0,
            coding: DataCoding::of(
                if smshub_protocol::gsm::smallest_encoding(text)
                    == smshub_protocol::gsm::Encoding::Gsm7
                {
                    Alphabet::Gsm7
                } else {
                    Alphabet::Ucs2
                },
            ),
            timestamp: Timestamp {
                year: 2026,
                month: 11,
                day: 22,
                hour: 12,
                minute: 30,
                second: 5,
                tz_quarters: 4,
            },
            more_messages: false,
            status_report_indication: false,
            reply_path: false,
            udh: concat.map(Udh::with_concat),
            body: Body::Text(text.to_string()),
        };
        let encoded = deliver.encode().expect("deliver encodes");
        let index = self.with(|it| it.store(0, encoded.hex, encoded.tpdu_len));
        if notify {
            let _ = self
                .actions
                .send(Action::Write(format!("\r\n+CMTI: \"SM\",{index}\r\n")));
        }
        index
    }

    /// Sends a status report for every part awaiting one: `+CDS` directly or stored with
    /// `+CDSI`, as the driver's `AT+CNMI` asked.
    pub fn report_all(&self, status: u8) -> usize {
        let reports = self.with(|it| std::mem::take(&mut it.awaiting_reports));
        for (mr, recipient) in &reports {
            self.report(*mr, recipient, status);
        }
        reports.len()
    }

    /// The parts awaiting a status report: (TP-MR, recipient).
    pub fn awaiting_reports(&self) -> Vec<(u8, String)> {
        self.with(|it| {
            it.awaiting_reports
                .iter()
                .map(|(mr, to)| (*mr, to.number.clone()))
                .collect()
        })
    }

    /// Sends one status report, for message reference `mr` and `recipient`, whether or not a
    /// part awaits it (the network may report late, or twice).
    pub fn report(&self, mr: u8, recipient: &Address, status: u8) {
        self.with(|it| {
            it.awaiting_reports
                .retain(|(m, to)| !(*m == mr && to.number == recipient.number))
        });
        let ds = self.with(|it| it.ds);
        let report = StatusReport {
            smsc: None,
            message_reference: mr,
            recipient: recipient.clone(),
            sc_timestamp: Timestamp {
                year: 2026,
                month: 11,
                day: 22,
                hour: 12,
                minute: 31,
                second: 0,
                tz_quarters: 4,
            },
            discharge_time: Timestamp {
                year: 2026,
                month: 11,
                day: 22,
                hour: 12,
                minute: 31,
                second: 9,
                tz_quarters: 4,
            },
            status: DeliveryStatus(status),
            more_messages: false,
            qualifier: false,
            protocol_id: None,
            coding: None,
            udh: None,
            body: None,
        };
        let encoded = report.encode().expect("report encodes");
        let text = if ds == 1 {
            format!("\r\n+CDS: {}\r\n{}\r\n", encoded.tpdu_len, encoded.hex)
        } else {
            let index = self.with(|it| it.store(0, encoded.hex.clone(), encoded.tpdu_len));
            format!("\r\n+CDSI: \"SM\",{index}\r\n")
        };
        let _ = self.actions.send(Action::Write(text));
    }

    /// Pulls the stick out: the pty closes.
    pub fn unplug(&self) {
        let _ = self.actions.send(Action::Unplug);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.actions.send(Action::Unplug);
    }
}

impl State {
    fn profile(&self) -> &Profile {
        self.profile.as_ref().expect("profile")
    }

    fn store(&mut self, stat: u8, pdu: String, tpdu_len: usize) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        self.storage.insert(
            index,
            StoredPdu {
                stat,
                pdu,
                tpdu_len,
            },
        );
        index
    }

    fn ok(lines: Vec<String>) -> Vec<Out> {
        let mut out: Vec<Out> = lines.into_iter().map(Out::Line).collect();
        out.push(Out::Line("OK".into()));
        out
    }

    /// What the modem answers to one command line.
    fn respond(&mut self, command: &str) -> Vec<Out> {
        self.commands.push(command.to_string());
        let upper = command.to_ascii_uppercase();
        if self.busy_left > 0 && upper != "AT" {
            self.busy_left -= 1;
            return vec![Out::Line("+CME ERROR: 515".into())];
        }
        if upper == "AT" {
            return State::ok(vec![]);
        }
        if upper == "ATE0" || upper == "ATE1" {
            self.echo = upper == "ATE1";
            return State::ok(vec![]);
        }
        if upper == "AT+CPIN?" {
            if self.sim_busy_left > 0 {
                self.sim_busy_left -= 1;
                return vec![Out::Line("+CME ERROR: 14".into())];
            }
            return State::ok(vec!["+CPIN: READY".into()]);
        }
        if self
            .profile()
            .not_supported
            .iter()
            .any(|it| it.eq_ignore_ascii_case(command))
        {
            return vec![Out::Line("COMMAND NOT SUPPORT".into())];
        }
        if let Some(lines) = self.profile().replies.get(&upper).cloned() {
            return State::ok(lines);
        }
        if let Some(setting) = upper.strip_prefix("AT+CNMI=") {
            if self.profile().cnmi_accept.iter().any(|it| it == setting) {
                self.ds = setting
                    .split(',')
                    .nth(3)
                    .and_then(|it| it.parse().ok())
                    .unwrap_or(0);
                return State::ok(vec![]);
            }
            return vec![Out::Line("+CMS ERROR: 303".into())];
        }
        if upper.starts_with("AT+CPMS=") {
            let used = self.storage.len();
            return State::ok(vec![format!("+CPMS: {used},50,{used},50,{used},50")]);
        }
        if upper == "AT+CMGL=4" {
            let mut lines = Vec::new();
            for (index, stored) in self.storage.iter_mut() {
                lines.push(format!(
                    "+CMGL: {index},{},,{}",
                    stored.stat, stored.tpdu_len
                ));
                lines.push(stored.pdu.clone());
                if stored.stat == 0 {
                    stored.stat = 1;
                }
            }
            return State::ok(lines);
        }
        if let Some(index) = upper
            .strip_prefix("AT+CMGR=")
            .and_then(|it| it.parse::<u32>().ok())
        {
            return match self.storage.get_mut(&index) {
                Some(stored) => {
                    let lines = vec![
                        format!("+CMGR: {},,{}", stored.stat, stored.tpdu_len),
                        stored.pdu.clone(),
                    ];
                    stored.stat = stored.stat.max(1);
                    State::ok(lines)
                }
                None => vec![Out::Line("+CMS ERROR: 321".into())],
            };
        }
        if let Some(args) = upper.strip_prefix("AT+CMGD=") {
            let index = args.split(',').next().and_then(|it| it.parse::<u32>().ok());
            return match index.and_then(|it| self.storage.remove(&it)) {
                Some(_) => State::ok(vec![]),
                None if self.profile().cmgd_empty_ok => State::ok(vec![]),
                None => vec![Out::Line("+CMS ERROR: 321".into())],
            };
        }
        if upper == "AT+CUSD=2" {
            return State::ok(vec![]);
        }
        if upper.starts_with("AT+CUSD=1,") {
            return self.ussd(command);
        }
        if upper.starts_with("AT+COPS=")
            || upper == "AT+CMGF=0"
            || upper == "AT+CMEE=1"
            || upper.starts_with("AT^")
        {
            return State::ok(vec![]);
        }
        vec![Out::Line(self.profile().unknown.clone())]
    }

    fn ussd(&mut self, command: &str) -> Vec<Out> {
        let Some(quoted) = command.split('"').nth(1) else {
            return vec![Out::Line("ERROR".into())];
        };
        let packed = self.profile().ussd_packed;
        let code = if packed {
            // Huawei wants packed GSM 7-bit hex; plain text is refused.
            if !quoted.bytes().all(|b| b.is_ascii_hexdigit()) {
                return vec![Out::Line("ERROR".into())];
            }
            unpack_gsm7_hex(quoted).unwrap_or_default()
        } else {
            quoted.to_string()
        };
        let answer = self.profile().ussd_answers.get(&code).cloned();
        let mut out = State::ok(vec![]);
        out.push(Out::Delay(50));
        if self.profile().ussd_extra_release {
            out.push(Out::Line("+CUSD: 2,\"Initiating Release\",15".into()));
        }
        match answer {
            Some(text) if packed => out.push(Out::Line(format!(
                "+CUSD: 0,\"{}\",15",
                pack_gsm7_hex(&text)
            ))),
            Some(text) => out.push(Out::Line(format!("+CUSD: 0,\"{text}\",15"))),
            None => out.push(Out::Line("+CUSD: 4".into())),
        }
        out
    }

    /// Takes the PDU written after `AT+CMGS=<length>`.
    fn take_pdu(&mut self, length: usize, hex: &str) -> Vec<Out> {
        self.pdus.push(hex.to_string());
        if self.swallow_next_pdu {
            self.swallow_next_pdu = false;
            return Vec::new();
        }
        if let Some(code) = self.refuse_next_pdu.take() {
            return vec![Out::Line(format!("+CMS ERROR: {code}"))];
        }
        let decoded = match pdu::decode(hex) {
            Ok(DecodedPdu::Submit(it)) => it,
            other => {
                self.errors
                    .push(format!("PDU {hex} is not an SMS-SUBMIT: {other:?}"));
                return vec![Out::Line("+CMS ERROR: 304".into())];
            }
        };
        if let (Some(concat), Some((seq, codes))) = (
            decoded.udh.as_ref().and_then(|it| it.concat),
            self.refuse_part.as_mut(),
        ) && concat.seq == *seq
            && !codes.is_empty()
        {
            let code = codes.remove(0);
            self.refused_parts
                .push((concat.reference.value(), concat.seq, concat.total, code));
            return vec![Out::Line(format!("+CMS ERROR: {code}"))];
        }
        self.accepted.push((length, hex.to_string()));
        let smsc_octets = usize::from_str_radix(hex.get(..2).unwrap_or("00"), 16).unwrap_or(0) + 1;
        if hex.len() / 2 - smsc_octets != length {
            self.errors.push(format!(
                "AT+CMGS={length} but the TPDU has {} octets",
                hex.len() / 2 - smsc_octets
            ));
        }
        let mr = self.next_mr;
        self.next_mr = self.next_mr.wrapping_add(1);
        if decoded.status_report {
            self.awaiting_reports.push((mr, decoded.to.clone()));
        }
        let text = decoded.body.text().unwrap_or_default().to_string();
        let to = decoded.to.number.clone();
        match decoded.udh.as_ref().and_then(|it| it.concat) {
            None => self.sent.push(SentMessage {
                to,
                text,
                parts: 1,
                reference: None,
                message_references: vec![mr],
                status_report: decoded.status_report,
            }),
            Some(concat) => {
                let key = (to.clone(), concat.reference.value());
                let entry = self.parts.entry(key.clone()).or_insert((
                    concat.total,
                    BTreeMap::new(),
                    Vec::new(),
                    false,
                ));
                if entry.0 != concat.total || concat.seq == 0 || concat.seq > concat.total {
                    self.errors.push(format!(
                        "part {}/{} of reference {}",
                        concat.seq, concat.total, key.1
                    ));
                }
                if entry.1.insert(concat.seq, text).is_some() {
                    self.errors.push(format!(
                        "part {} of reference {} sent twice",
                        concat.seq, key.1
                    ));
                }
                entry.2.push(mr);
                entry.3 |= decoded.status_report;
                if entry.1.len() == usize::from(concat.total)
                    && let Some((total, texts, mrs, srr)) = self.parts.remove(&key)
                {
                    self.sent.push(SentMessage {
                        to,
                        text: texts.into_values().collect(),
                        parts: usize::from(total),
                        reference: Some(key.1),
                        message_references: mrs,
                        status_report: srr,
                    });
                }
            }
        }
        let mut out = vec![Out::Delay(self.profile().cmgs_delay_ms)];
        if let Some(urc) = self.profile().urc_mid_reply.clone() {
            out.push(Out::Line(urc));
        }
        out.push(Out::Line(format!("+CMGS: {mr}")));
        out.push(Out::Line("OK".into()));
        out
    }
}

async fn run(
    mut master: SerialStream,
    slave: SerialStream,
    state: Arc<Mutex<State>>,
    mut actions: mpsc::UnboundedReceiver<Action>,
) {
    // The emulator keeps a slave descriptor open so the master never sees a hang-up while the
    // driver reopens the port.
    let _slave = slave;
    let mut buf = [0u8; 1024];
    let mut line: Vec<u8> = Vec::new();
    let mut pdu_for: Option<usize> = None;
    loop {
        tokio::select! {
            read = master.read(&mut buf) => {
                let Ok(n) = read else { return };
                if n == 0 {
                    return;
                }
                for &byte in &buf[..n] {
                    let outs = match (pdu_for, byte) {
                        (Some(length), 0x1A) => {
                            pdu_for = None;
                            let hex = String::from_utf8_lossy(&line).trim().to_string();
                            line.clear();
                            state.lock().expect("state").take_pdu(length, &hex)
                        }
                        (Some(_), 0x1B) => {
                            pdu_for = None;
                            line.clear();
                            vec![Out::Line("OK".into())]
                        }
                        (Some(_), _) => {
                            line.push(byte);
                            continue;
                        }
                        (None, b'\r') => {
                            let command = String::from_utf8_lossy(&line).trim().to_string();
                            line.clear();
                            if command.is_empty() {
                                continue;
                            }
                            let echo = state.lock().expect("state").echo;
                            if echo && master.write_all(format!("{command}\r").as_bytes()).await.is_err() {
                                return;
                            }
                            if let Some(length) = command.to_ascii_uppercase().strip_prefix("AT+CMGS=").and_then(|it| it.parse().ok()) {
                                pdu_for = Some(length);
                                state.lock().expect("state").commands.push(command);
                                vec![Out::Raw("\r\n> ".into())]
                            } else {
                                state.lock().expect("state").respond(&command)
                            }
                        }
                        (None, b'\n') => continue,
                        (None, _) => {
                            line.push(byte);
                            continue;
                        }
                    };
                    for out in outs {
                        let bytes = match out {
                            Out::Line(text) => format!("\r\n{text}\r\n"),
                            Out::Raw(text) => text,
                            Out::Delay(ms) => {
                                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                                continue;
                            }
                        };
                        if master.write_all(bytes.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            }
            action = actions.recv() => match action {
                Some(Action::Write(text)) => {
                    if master.write_all(text.as_bytes()).await.is_err() {
                        return;
                    }
                }
                Some(Action::Unplug) | None => return,
            },
        }
    }
}
