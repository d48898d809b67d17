//! Serial GSM modems (Huawei E173/E3372, SIMCom SIM800/SIM7600, Quectel EC25, ...) as devices,
//! like phones: registered in the same registry, fed by the same dispatcher, reporting through
//! the same [`DeviceLink`](crate::transport::link::DeviceLink).
//!
//! - [`session`]: the AT command runner over one port (one command at a time, timeouts, URCs).
//! - [`driver`]: one task per modem owning its port: init with fallbacks, identity and status
//!   refresh, PDU-mode sending with concatenation, delivery reports, incoming SMS (`+CMTI` and a
//!   periodic `AT+CMGL=4` sweep), USSD and balance; reopens the port after an unplug.
//! - [`parts`]: a message's parts: writing them with the part-retry rule, gathering incoming
//!   ones with their storage indexes (shared with the remote worker, like [`failure`]).
//! - [`detect`]: which serial ports are modems, which of a stick's ports speaks AT, and which
//!   sticks are network-only (HiLink), read from a configurable sysfs root.
//!
//! What a modem shares with a HiLink stick (status, requests, operator table, the loop that
//! reopens it after a failure) is in [`crate::transport::radio`]; the handle that attaches both
//! is [`crate::transport::attached::Modems`].
//!
//! Invariants: a PDU is written only after the message's acceptance by this modem is committed;
//! a message whose PDU was written and not answered is failed `outcome_unknown`, never resent;
//! one broken modem never blocks another (each has its own task and timeouts).

pub mod detect;
pub mod driver;
pub mod failure;
pub mod parts;
pub mod session;

use std::time::Duration;

pub use detect::{DetectedPort, Detection, HilinkStick};
pub use session::Timeouts;

use crate::transport::radio::OperatorProfile;

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
    /// How many times a part of a long message that the modem refused with a transient error
    /// (`+CMS ERROR: 38`, `41`, `42`, `47`, `331`, `332`, `500`, `512`+, ...) is written again,
    /// with the same concatenation reference and part number, before the message fails.
    pub part_retries: u32,
    /// The wait before the first such retry; it doubles for each further one.
    pub part_retry_wait: Duration,
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
            part_retries: 3,
            part_retry_wait: Duration::from_secs(1),
            allow: Vec::new(),
            scan_interval: Duration::from_secs(10),
            host: detect::Host::default(),
            operators: Vec::new(),
            report_wait: Duration::from_secs(7 * 24 * 3600),
            parts_wait: Duration::from_secs(3600),
        }
    }
}
