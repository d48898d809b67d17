//! What serial modems ([`crate::transport::modem`]) and HiLink sticks
//! ([`crate::transport::hilink`]) share: their status and requests ([`status`]), the operator
//! table ([`operators`]), how a modem-like device describes itself to the hub and stores
//! what it receives ([`device`]), what their sessions do alike (come online, take the next
//! thing to serve, commit a job's outcome: [`session`]), and the loop that keeps one attached
//! ([`supervisor`]).
//!
//! Both drivers depend on this module; it depends on neither of them.

pub mod device;
pub mod operators;
pub mod session;
pub mod status;
pub mod supervisor;

pub use operators::{OperatorProfile, Operators, OperatorsFileError, parse_operators_file};
pub use status::{
    Balance, Control, ModemError, ModemState, ModemStatus, NetworkDetails, RawSent, SignalDetails,
    SimDetails, StoredSms, UssdAnswer,
};
