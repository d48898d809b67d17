//! The AT line framer: bytes from the serial port in, [`Event`]s out.
//!
//! Lines end at CR or LF (modems send `\r\n`, Gammu's dumps show bare `\r`); empty lines are
//! skipped and control bytes (the echoed Ctrl-Z) dropped. Rules, from the research notes §1.1
//! and §6:
//! - a `>` at the start of a line is the `AT+CMGS` prompt, which arrives as `\r\n> ` with no
//!   newline after it, so it is reported the moment the `>` is seen;
//! - `OK`, `ERROR`, `+CME ERROR: n`, `+CMS ERROR: n` and `COMMAND NOT SUPPORT` end a command;
//! - lines with a known unsolicited prefix (`+CMTI:`, `+CDSI:`, `+CUSD:`, `RING`, Huawei `^RSSI`,
//!   ZTE `+ZPASR`, ...) are URCs wherever they fall, even between a command and its final code;
//! - `+CMT:` and `+CDS:` headers are followed by their PDU on the next line, which is taken
//!   with them (if that line is not hex, the header comes alone and the line is read normally);
//! - a `+CUSD:` whose quoted text is still open at the end of a line goes on over the next
//!   lines (python-gsmmodem's multi-line USSD fixtures), up to a final result code;
//! - a line equal to a command announced with [`Framer::expect_echo`] is its echo.
//!
//! The events do not depend on how the byte stream is split into reads (a property test
//! checks this). Lines longer than [`MAX_LINE`] bytes are cut, so memory stays bounded on any
//! input. Must never panic.

use std::collections::VecDeque;

use super::error::CommandError;
use super::{is_hex, strip_tag};

/// The longest line kept; longer lines are cut into pieces of this size.
pub const MAX_LINE: usize = 8192;

/// Echoes remembered at once (a command and its PDU are two).
const MAX_ECHOES: usize = 8;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Final {
    /// `OK`.
    Ok,
    /// Any error result.
    Error(CommandError),
}

/// An unsolicited result code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Urc {
    /// The line (for a multi-line `+CUSD`, its lines joined with `\n`).
    pub line: String,
    /// The PDU line that followed a `+CMT:` or `+CDS:` header.
    pub pdu: Option<String>,
}

/// Something the modem said.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// An information line, part of the reply to the running command.
    Line(String),
    /// A final result code.
    Final(Final),
    /// The `> ` prompt for a PDU.
    Prompt,
    /// The modem echoed a command (echo is on).
    Echo(String),
    /// An unsolicited result code.
    Urc(Urc),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// A `+CMT:`/`+CDS:` header waiting for its PDU line.
    Pdu(String),
    /// A `+CUSD:` whose quoted text has not closed yet.
    Quoted(String),
}

/// Turns serial bytes into events. Feed it with [`Framer::push`].
#[derive(Debug, Clone, Default)]
pub struct Framer {
    line: Vec<u8>,
    pending: Option<Pending>,
    echoes: VecDeque<String>,
}

/// Line prefixes that are always unsolicited.
const URC_PREFIXES: &[&str] = &[
    "+CMTI:",
    "+CDSI:",
    "+CBM:",
    "+CUSD:",
    "+CRING:",
    "+CLIP:",
    "+CCWA:",
    "+CIEV:",
    "^RSSI:",
    "^HCSQ:",
    "^BOOT:",
    "^MODE:",
    "^DSFLOWRPT:",
    "^SRVST:",
    "^SIMST:",
    "^CEND:",
    "^ORIG:",
    "^CONF:",
    "^CONN:",
    "^STIN:",
    "^NDISSTAT:",
    "^RFSWITCH:",
    "^SMMEMFULL",
    "^SYSSTART",
    "+ZPASR:",
    "+ZDONR:",
    "+ZEND",
    "+ZUSIMR:",
    "+QIND:",
    "+CPMSFULL",
];

/// Whole lines that are always unsolicited.
const URC_LINES: &[&str] = &[
    "RING",
    "RDY",
    "Call Ready",
    "SMS Ready",
    "PB DONE",
    "SMS DONE",
];

impl Framer {
    /// A framer with nothing buffered.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Announces that `text` was written (a command without its `\r`, or a PDU), so a line
    /// equal to it is reported as [`Event::Echo`] rather than as a reply line.
    pub fn expect_echo(&mut self, text: &str) {
        if self.echoes.len() == MAX_ECHOES {
            self.echoes.pop_front();
        }
        self.echoes.push_back(text.trim().to_string());
    }

    /// Forgets a partial line and any half-read URC (after the port was reopened).
    pub fn reset(&mut self) {
        *self = Framer::default();
    }

    /// Takes bytes as they came from the port and returns what they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &byte in bytes {
            match byte {
                b'\r' | b'\n' => self.end_line(&mut events),
                b'>' if self.at_line_start()
                    && !matches!(self.pending, Some(Pending::Quoted(_))) =>
                {
                    self.line.clear();
                    events.push(Event::Prompt);
                }
                // Ctrl-Z, ESC and other control bytes are never part of a line.
                0x00..=0x08 | 0x0B..=0x0C | 0x0E..=0x1F | 0x7F => {}
                _ => {
                    if self.line.len() >= MAX_LINE {
                        self.end_line(&mut events);
                    }
                    self.line.push(byte);
                }
            }
        }
        events
    }

    /// Whether nothing but blanks has been read on the current line.
    fn at_line_start(&self) -> bool {
        self.line.iter().all(|b| *b == b' ' || *b == b'\t')
    }

    fn end_line(&mut self, events: &mut Vec<Event>) {
        let raw = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&raw);
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.take_line(text, events);
    }

    fn take_line(&mut self, text: &str, events: &mut Vec<Event>) {
        match self.pending.take() {
            Some(Pending::Quoted(mut so_far)) => {
                if let Some(result) = parse_final(text) {
                    // The quote never closed; do not let it swallow the command's end.
                    events.push(Event::Urc(Urc {
                        line: so_far,
                        pdu: None,
                    }));
                    self.finish(result, events);
                    return;
                }
                so_far.push('\n');
                so_far.push_str(text);
                if quote_open(&so_far) && so_far.len() < MAX_LINE {
                    self.pending = Some(Pending::Quoted(so_far));
                } else {
                    events.push(Event::Urc(Urc {
                        line: so_far,
                        pdu: None,
                    }));
                }
                return;
            }
            Some(Pending::Pdu(header)) => {
                if is_hex(text) {
                    events.push(Event::Urc(Urc {
                        line: header,
                        pdu: Some(text.to_string()),
                    }));
                    return;
                }
                events.push(Event::Urc(Urc {
                    line: header,
                    pdu: None,
                }));
            }
            None => {}
        }
        if let Some(position) = self
            .echoes
            .iter()
            .position(|it| it.eq_ignore_ascii_case(text))
        {
            self.echoes.remove(position);
            events.push(Event::Echo(text.to_string()));
            return;
        }
        if let Some(result) = parse_final(text) {
            self.finish(result, events);
            return;
        }
        if strip_tag(text, "+CMT").is_some() || strip_tag(text, "+CDS").is_some() {
            self.pending = Some(Pending::Pdu(text.to_string()));
            return;
        }
        if strip_tag(text, "+CUSD").is_some() && quote_open(text) {
            self.pending = Some(Pending::Quoted(text.to_string()));
            return;
        }
        if is_urc(text) {
            events.push(Event::Urc(Urc {
                line: text.to_string(),
                pdu: None,
            }));
            return;
        }
        events.push(Event::Line(text.to_string()));
    }

    fn finish(&mut self, result: Final, events: &mut Vec<Event>) {
        self.echoes.clear();
        events.push(Event::Final(result));
    }
}

/// Whether the text has an odd number of double quotes.
fn quote_open(text: &str) -> bool {
    text.bytes().filter(|b| *b == b'"').count() % 2 == 1
}

fn is_urc(text: &str) -> bool {
    URC_LINES.iter().any(|it| text.eq_ignore_ascii_case(it))
        || URC_PREFIXES.iter().any(|prefix| {
            text.get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
                && (prefix.ends_with(':')
                    || text.len() == prefix.len()
                    || text.as_bytes()[prefix.len()] == b':')
        })
}

/// Reads a final result code.
pub fn parse_final(text: &str) -> Option<Final> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("OK") {
        return Some(Final::Ok);
    }
    if text.eq_ignore_ascii_case("ERROR") {
        return Some(Final::Error(CommandError::Error));
    }
    if text.eq_ignore_ascii_case("COMMAND NOT SUPPORT") {
        return Some(Final::Error(CommandError::NotSupported));
    }
    if let Some(rest) = strip_tag(text, "+CME ERROR") {
        return Some(Final::Error(CommandError::cme(rest)));
    }
    if let Some(rest) = strip_tag(text, "+CMS ERROR") {
        return Some(Final::Error(CommandError::cms(rest)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Event {
        Event::Line(text.to_string())
    }

    fn urc(text: &str) -> Event {
        Event::Urc(Urc {
            line: text.to_string(),
            pdu: None,
        })
    }

    fn urc_pdu(text: &str, pdu: &str) -> Event {
        Event::Urc(Urc {
            line: text.to_string(),
            pdu: Some(pdu.to_string()),
        })
    }

    const OK: Event = Event::Final(Final::Ok);

    fn check(echoes: &[&str], input: &str, expected: &[Event]) {
        let mut framer = Framer::new();
        for echo in echoes {
            framer.expect_echo(echo);
        }
        assert_eq!(framer.push(input.as_bytes()), expected, "{input:?}");
    }

    #[test]
    fn transcripts() {
        // A plain reply.
        check(
            &[],
            "\r\n+CSQ: 14,99\r\n\r\nOK\r\n",
            &[line("+CSQ: 14,99"), OK],
        );
        // The CMGS prompt has no newline (PGM expectedResponseTermSeq '> ').
        check(&[], "\r\n> ", &[Event::Prompt]);
        // python-gsmmodem's fake modems send the prompt as "> \r\n".
        check(
            &[],
            "> \r\n+CMGS: 183\r\nOK\r\n",
            &[Event::Prompt, line("+CMGS: 183"), OK],
        );
        // python-gsmmodem test_sendSmsResponseMixedWithUnsolictedMessages (github issue #11):
        // ZTE +ZDONR/+ZPASR lines before the prompt and before +CMGS.
        check(
            &["AT+CMGS=23"],
            "+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"\r\n+ZPASR: \"UMTS\"\r\n> \r\n",
            &[
                urc("+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\""),
                urc("+ZPASR: \"UMTS\""),
                Event::Prompt,
            ],
        );
        // Echo on after a re-enumeration: the command comes back first, and so does the PDU.
        check(
            &["AT+CMGS=12", "0011000B911326880736F40000A700"],
            "AT+CMGS=12\r\r\n> 0011000B911326880736F40000A700\x1a\r\n+CMGS: 5\r\n\r\nOK\r\n",
            &[
                Event::Echo("AT+CMGS=12".into()),
                Event::Prompt,
                Event::Echo("0011000B911326880736F40000A700".into()),
                line("+CMGS: 5"),
                OK,
            ],
        );
        // Errors of every kind end a command (PGM test_errorTypes, fakemodems HuaweiE1752).
        check(
            &[],
            "+CME ERROR: 22\r\n",
            &[Event::Final(Final::Error(CommandError::Cme(22)))],
        );
        check(
            &[],
            "+CMS ERROR: 310\r\n",
            &[Event::Final(Final::Error(CommandError::Cms(310)))],
        );
        check(
            &[],
            "ERROR\r\n",
            &[Event::Final(Final::Error(CommandError::Error))],
        );
        check(
            &[],
            "COMMAND NOT SUPPORT\r\n",
            &[Event::Final(Final::Error(CommandError::NotSupported))],
        );
        check(
            &[],
            "+CME ERROR: SIM busy\r\n",
            &[Event::Final(Final::Error(CommandError::Cme(14)))],
        );
        // Gammu tests/atgen smsd-incoming-cmt.c: a +CMT with its PDU, CR-terminated.
        check(
            &[],
            "+CMT: ,23\r07918497483252F0840B918496445078F700007121320144744004D4F29C0E\r",
            &[urc_pdu(
                "+CMT: ,23",
                "07918497483252F0840B918496445078F700007121320144744004D4F29C0E",
            )],
        );
        // Gammu tests/atgen incoming-sms.c: +CDS with no space after the colon.
        check(
            &[],
            "+CDS:25\r07914875215652F006360B914892347527F3817003018104808170030181448000\r",
            &[urc_pdu(
                "+CDS:25",
                "07914875215652F006360B914892347527F3817003018104808170030181448000",
            )],
        );
        // A header whose PDU never comes does not swallow the final code.
        check(&[], "+CDS: 25\r\nOK\r\n", &[urc("+CDS: 25"), OK]);
        // A URC in the middle of a reply (Kannel queues +CMTI that arrive while it waits).
        check(
            &[],
            "+CPMS: \"SM\",1,30\r\n+CMTI: \"SM\",3\r\nOK\r\n",
            &[line("+CPMS: \"SM\",1,30"), urc("+CMTI: \"SM\",3"), OK],
        );
        // USSD before OK, and a multi-line USSD text (PGM test_modem.py TestUssd).
        check(
            &[],
            "+CUSD: 0,\"Available Balance: R 96.45 .\",15\r\nOK\r\n",
            &[urc("+CUSD: 0,\"Available Balance: R 96.45 .\",15"), OK],
        );
        check(
            &[],
            "OK\r\n+CUSD: 2,\"You have the following remaining balances:\r\n0 free minutes\r\n20 MORE Weekend minutes \",15\r\n",
            &[
                OK,
                urc(
                    "+CUSD: 2,\"You have the following remaining balances:\n0 free minutes\n20 MORE Weekend minutes \",15",
                ),
            ],
        );
        // A quote that never closes stops at the final code.
        check(
            &[],
            "+CUSD: 1,\"broken\r\nOK\r\n",
            &[urc("+CUSD: 1,\"broken"), OK],
        );
        // Lines that are not echoes stay lines even when they look like commands.
        check(&[], "ATI\r\nOK\r\n", &[line("ATI"), OK]);
        check(
            &[],
            "RING\r\n^RSSI:17\r\n^RSSIX\r\n",
            &[urc("RING"), urc("^RSSI:17"), line("^RSSIX")],
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let mut framer = Framer::new();
        let events = framer.push(&vec![b'A'; MAX_LINE * 2 + 10]);
        assert_eq!(events.len(), 2);
        assert_eq!(framer.push(b"\r").len(), 1);
    }
}
