//! Final error results of AT commands and what they mean for a message.
//!
//! One table per family (`+CMS ERROR`, 27.005 §3.2.5 plus the 24.011 network causes below 128;
//! `+CME ERROR`, 27.007 §9.2) gives each code a description, a [`ErrorClass`] and the device
//! protocol error code the hub stores. Codes not in a table are classified by range. Sources:
//! Gammu `libgammu/phone/at/atgen.c` (`CMSErrorCodes`, `CMEErrorCodes`), smstools3
//! `src/modeminit.c`, python-gsmmodem (515 and SIM busy retries), as summarised in the
//! research notes §1.6. Must never panic on any input.

use std::fmt;

use crate::device::ErrorCode;

/// What an error means for the message (or command) that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// May work later or on another modem: congestion, no network, busy, SIM busy.
    Temporary,
    /// Will not work as it is: the number, the PDU or the subscription is refused.
    Permanent,
    /// The network may or may not have taken the message: never resend it blindly.
    OutcomeUnknown,
    /// The modem is set up wrong (no SMSC, PIN needed, wrong mode): an operator must act;
    /// another modem may still send the message.
    Config,
}

impl ErrorClass {
    /// Whether a message that failed with this class may be tried again (later or elsewhere).
    pub fn is_temporary(self) -> bool {
        matches!(self, ErrorClass::Temporary | ErrorClass::Config)
    }
}

/// A final result code other than `OK`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommandError {
    /// Plain `ERROR`.
    Error,
    /// `+CME ERROR: <n>` (equipment errors).
    Cme(u16),
    /// `+CMS ERROR: <n>` (message service errors).
    Cms(u16),
    /// `+CME ERROR: <text>` with a text no table knows (`AT+CMEE=2` on an unusual firmware).
    CmeText(String),
    /// `+CMS ERROR: <text>` with a text no table knows.
    CmsText(String),
    /// Huawei's `COMMAND NOT SUPPORT`.
    NotSupported,
}

struct Entry {
    code: u16,
    text: &'static str,
    class: ErrorClass,
    wire: ErrorCode,
}

const fn e(code: u16, text: &'static str, class: ErrorClass, wire: ErrorCode) -> Entry {
    Entry {
        code,
        text,
        class,
        wire,
    }
}

use ErrorClass::{Config, OutcomeUnknown, Permanent, Temporary};

/// `+CMS ERROR` codes (27.005 §3.2.5; 0-127 are 24.011 RP causes, 128-255 TP-FCS values).
const CMS: &[Entry] = &[
    e(
        1,
        "unassigned (unallocated) number",
        Permanent,
        ErrorCode::InvalidRecipient,
    ),
    e(
        8,
        "operator determined barring",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(10, "call barred", Permanent, ErrorCode::Rejected),
    e(
        21,
        "short message transfer rejected",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        27,
        "destination out of service",
        Permanent,
        ErrorCode::InvalidRecipient,
    ),
    e(
        28,
        "unidentified subscriber",
        Permanent,
        ErrorCode::InvalidRecipient,
    ),
    e(29, "facility rejected", Permanent, ErrorCode::Rejected),
    e(
        30,
        "unknown subscriber",
        Permanent,
        ErrorCode::InvalidRecipient,
    ),
    e(38, "network out of order", Temporary, ErrorCode::NoService),
    e(
        41,
        "temporary failure",
        Temporary,
        ErrorCode::GenericFailure,
    ),
    e(42, "congestion", Temporary, ErrorCode::Busy),
    e(
        47,
        "resources unavailable, unspecified",
        Temporary,
        ErrorCode::Busy,
    ),
    e(
        50,
        "requested facility not subscribed",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        69,
        "requested facility not implemented",
        Permanent,
        ErrorCode::Unsupported,
    ),
    e(
        81,
        "invalid short message transfer reference value",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        95,
        "invalid message, unspecified",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        96,
        "invalid mandatory information",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        97,
        "message type non-existent or not implemented",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        98,
        "message not compatible with short message protocol state",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        99,
        "information element non-existent or not implemented",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        111,
        "protocol error, unspecified",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        127,
        "interworking, unspecified",
        Temporary,
        ErrorCode::GenericFailure,
    ),
    e(300, "ME failure", Temporary, ErrorCode::GenericFailure),
    e(
        301,
        "SMS service of ME reserved",
        Temporary,
        ErrorCode::Busy,
    ),
    e(
        302,
        "operation not allowed",
        Config,
        ErrorCode::GenericFailure,
    ),
    e(
        303,
        "operation not supported",
        Config,
        ErrorCode::Unsupported,
    ),
    e(
        304,
        "invalid PDU mode parameter",
        Permanent,
        ErrorCode::Rejected,
    ),
    e(
        305,
        "invalid text mode parameter",
        Config,
        ErrorCode::GenericFailure,
    ),
    e(310, "SIM not inserted", Config, ErrorCode::SimUnavailable),
    e(311, "SIM PIN required", Config, ErrorCode::SimUnavailable),
    e(
        312,
        "PH-SIM PIN required",
        Config,
        ErrorCode::SimUnavailable,
    ),
    e(313, "SIM failure", Config, ErrorCode::SimUnavailable),
    e(314, "SIM busy", Temporary, ErrorCode::Busy),
    e(315, "SIM wrong", Config, ErrorCode::SimUnavailable),
    e(316, "SIM PUK required", Config, ErrorCode::SimUnavailable),
    e(317, "SIM PIN2 required", Config, ErrorCode::SimUnavailable),
    e(318, "SIM PUK2 required", Config, ErrorCode::SimUnavailable),
    e(320, "memory failure", Temporary, ErrorCode::GenericFailure),
    e(
        321,
        "invalid memory index",
        Permanent,
        ErrorCode::GenericFailure,
    ),
    e(322, "memory full", Temporary, ErrorCode::GenericFailure),
    e(
        330,
        "SMSC address unknown",
        Config,
        ErrorCode::GenericFailure,
    ),
    e(331, "no network service", Temporary, ErrorCode::NoService),
    e(
        332,
        "network timeout",
        OutcomeUnknown,
        ErrorCode::OutcomeUnknown,
    ),
    e(
        340,
        "no +CNMA acknowledgement expected",
        Config,
        ErrorCode::GenericFailure,
    ),
    e(500, "unknown error", Temporary, ErrorCode::GenericFailure),
    e(
        512,
        "MM establishment failure",
        Temporary,
        ErrorCode::NoService,
    ),
    e(
        513,
        "lower layer failure",
        Temporary,
        ErrorCode::GenericFailure,
    ),
    e(514, "network congestion", Temporary, ErrorCode::Busy),
    e(
        515,
        "please wait, init or command processing in progress",
        Temporary,
        ErrorCode::Busy,
    ),
];

/// `+CME ERROR` codes (27.007 §9.2).
const CME: &[Entry] = &[
    e(0, "phone failure", Temporary, ErrorCode::GenericFailure),
    e(
        1,
        "no connection to phone",
        Temporary,
        ErrorCode::GenericFailure,
    ),
    e(
        3,
        "operation not allowed",
        Config,
        ErrorCode::GenericFailure,
    ),
    e(4, "operation not supported", Config, ErrorCode::Unsupported),
    e(5, "PH-SIM PIN required", Config, ErrorCode::SimUnavailable),
    e(10, "SIM not inserted", Config, ErrorCode::SimUnavailable),
    e(11, "SIM PIN required", Config, ErrorCode::SimUnavailable),
    e(12, "SIM PUK required", Config, ErrorCode::SimUnavailable),
    e(13, "SIM failure", Config, ErrorCode::SimUnavailable),
    e(14, "SIM busy", Temporary, ErrorCode::Busy),
    e(15, "SIM wrong", Config, ErrorCode::SimUnavailable),
    e(16, "incorrect password", Config, ErrorCode::SimUnavailable),
    e(17, "SIM PIN2 required", Config, ErrorCode::SimUnavailable),
    e(18, "SIM PUK2 required", Config, ErrorCode::SimUnavailable),
    e(20, "memory full", Temporary, ErrorCode::GenericFailure),
    e(21, "invalid index", Permanent, ErrorCode::GenericFailure),
    e(22, "not found", Permanent, ErrorCode::GenericFailure),
    e(23, "memory failure", Temporary, ErrorCode::GenericFailure),
    e(30, "no network service", Temporary, ErrorCode::NoService),
    e(31, "network timeout", Temporary, ErrorCode::NetworkTimeout),
    e(
        32,
        "network not allowed - emergency calls only",
        Temporary,
        ErrorCode::NoService,
    ),
    e(100, "unknown", Temporary, ErrorCode::GenericFailure),
    e(515, "device busy", Temporary, ErrorCode::Busy),
];

fn find(table: &'static [Entry], code: u16) -> Option<&'static Entry> {
    table.iter().find(|it| it.code == code)
}

fn find_text(table: &'static [Entry], text: &str) -> Option<u16> {
    let text = text.trim();
    table
        .iter()
        .find(|it| it.text.eq_ignore_ascii_case(text))
        .map(|it| it.code)
}

impl CommandError {
    /// Reads what follows `+CME ERROR:` (a number, or a text when `AT+CMEE=2`).
    pub fn cme(rest: &str) -> CommandError {
        match rest.trim().parse::<u16>() {
            Ok(code) => CommandError::Cme(code),
            Err(_) => match find_text(CME, rest) {
                Some(code) => CommandError::Cme(code),
                None => CommandError::CmeText(rest.trim().to_string()),
            },
        }
    }

    /// Reads what follows `+CMS ERROR:`.
    pub fn cms(rest: &str) -> CommandError {
        match rest.trim().parse::<u16>() {
            Ok(code) => CommandError::Cms(code),
            Err(_) => match find_text(CMS, rest) {
                Some(code) => CommandError::Cms(code),
                None => CommandError::CmsText(rest.trim().to_string()),
            },
        }
    }

    fn entry(&self) -> Option<&'static Entry> {
        match self {
            CommandError::Cme(code) => find(CME, *code),
            CommandError::Cms(code) => find(CMS, *code),
            _ => None,
        }
    }

    /// The device/SIM is busy for a moment (`515`, SIM busy): retry the same command after a
    /// short pause (python-gsmmodem retries these, adding 0.2 s each time).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            CommandError::Cme(14 | 515) | CommandError::Cms(314 | 515)
        )
    }

    /// What this error means for a message.
    pub fn class(&self) -> ErrorClass {
        if let Some(entry) = self.entry() {
            return entry.class;
        }
        match self {
            // Plain ERROR after a PDU: the modem refused it without saying why.
            CommandError::Error | CommandError::CmeText(_) | CommandError::CmsText(_) => Temporary,
            CommandError::NotSupported => Config,
            // Unlisted network causes are rejections; unlisted TP-FCS values are PDU faults.
            CommandError::Cms(0..=255) => Permanent,
            CommandError::Cms(_) | CommandError::Cme(_) => Temporary,
        }
    }

    /// The device protocol error code a message failed with this error is stored with.
    pub fn wire_code(&self) -> ErrorCode {
        if let Some(entry) = self.entry() {
            return entry.wire;
        }
        match self.class() {
            Permanent => ErrorCode::Rejected,
            OutcomeUnknown => ErrorCode::OutcomeUnknown,
            Config if *self == CommandError::NotSupported => ErrorCode::Unsupported,
            _ => ErrorCode::GenericFailure,
        }
    }

    /// What the code means, in words.
    pub fn description(&self) -> String {
        match (self, self.entry()) {
            (_, Some(entry)) => entry.text.to_string(),
            (CommandError::Error, _) => "ERROR".to_string(),
            (CommandError::NotSupported, _) => "command not supported".to_string(),
            (CommandError::CmeText(text) | CommandError::CmsText(text), _) => text.clone(),
            (CommandError::Cms(0..=127), _) => "network rejected the message".to_string(),
            (CommandError::Cms(128..=255), _) => "service centre rejected the message".to_string(),
            _ => "vendor-specific error".to_string(),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Error => f.write_str("ERROR"),
            CommandError::NotSupported => f.write_str("COMMAND NOT SUPPORT"),
            CommandError::Cme(code) => write!(f, "+CME ERROR: {code} ({})", self.description()),
            CommandError::Cms(code) => write!(f, "+CMS ERROR: {code} ({})", self.description()),
            CommandError::CmeText(text) => write!(f, "+CME ERROR: {text}"),
            CommandError::CmsText(text) => write!(f, "+CMS ERROR: {text}"),
        }
    }
}

impl std::error::Error for CommandError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        // The driver actions of research notes §1.6, code by code.
        let check = |error: CommandError, class: ErrorClass, wire: &str, busy: bool| {
            assert_eq!(
                (error.class(), error.wire_code().as_str(), error.is_busy()),
                (class, wire, busy),
                "{error}"
            );
        };
        check(CommandError::Cms(38), Temporary, "no_service", false);
        check(CommandError::Cms(41), Temporary, "generic_failure", false);
        check(CommandError::Cms(42), Temporary, "busy", false);
        check(CommandError::Cms(47), Temporary, "busy", false);
        check(CommandError::Cms(1), Permanent, "invalid_recipient", false);
        check(CommandError::Cms(21), Permanent, "rejected", false);
        check(CommandError::Cms(96), Permanent, "rejected", false);
        check(CommandError::Cms(304), Permanent, "rejected", false);
        check(CommandError::Cms(302), Config, "generic_failure", false);
        check(CommandError::Cms(314), Temporary, "busy", true);
        check(CommandError::Cms(330), Config, "generic_failure", false);
        check(CommandError::Cms(331), Temporary, "no_service", false);
        check(
            CommandError::Cms(332),
            OutcomeUnknown,
            "outcome_unknown",
            false,
        );
        check(CommandError::Cms(500), Temporary, "generic_failure", false);
        check(CommandError::Cms(512), Temporary, "no_service", false);
        check(CommandError::Cms(515), Temporary, "busy", true);
        check(CommandError::Cme(515), Temporary, "busy", true);
        check(CommandError::Cme(14), Temporary, "busy", true);
        check(CommandError::Cme(10), Config, "sim_unavailable", false);
        check(CommandError::Cme(30), Temporary, "no_service", false);
        check(CommandError::Cms(200), Permanent, "rejected", false);
        check(CommandError::Cms(600), Temporary, "generic_failure", false);
        check(CommandError::Error, Temporary, "generic_failure", false);
        check(CommandError::NotSupported, Config, "unsupported", false);
        assert!(Config.is_temporary() && Temporary.is_temporary());
        assert!(!Permanent.is_temporary() && !OutcomeUnknown.is_temporary());
    }

    #[test]
    fn verbose_texts() {
        assert_eq!(CommandError::cme("SIM busy"), CommandError::Cme(14));
        assert_eq!(CommandError::cme(" 22"), CommandError::Cme(22));
        assert_eq!(
            CommandError::cms("SMSC address unknown"),
            CommandError::Cms(330)
        );
        assert_eq!(
            CommandError::cme("frobnicated"),
            CommandError::CmeText("frobnicated".into())
        );
        assert_eq!(
            CommandError::Cms(330).to_string(),
            "+CMS ERROR: 330 (SMSC address unknown)"
        );
    }
}
