//! The SMS PDU codec (3GPP TS 23.040 / 23.038) for modems in PDU mode (`AT+CMGF=0`).
//!
//! - Sending: [`Submit`] → [`Submit::encode`] → per part, the hex written after
//!   `AT+CMGS=<tpdu_len>` ([`EncodedPdu`]).
//! - Receiving: [`decode`] takes the hex of `+CMT`, `+CDS`, `+CMGR` and `+CMGL` (SMSC prefix
//!   first) and gives a [`DecodedPdu`]: a [`Deliver`], a [`StatusReport`], or a [`SubmitPdu`]
//!   (stored outgoing messages, and `smshub pdu decode` of what we send). [`decode_tpdu`]
//!   takes a PDU without the SMSC prefix.
//! - Long incoming messages: [`Reassembler`].
//!
//! Code map: `hex` (hex and the bounds-checked `Reader` every decoder reads through),
//! `address`, `timestamp`, `dcs`, `udh`, `user_data` (fields), `submit`, `deliver`,
//! `status_report` (message types), `reassembly`.
//!
//! Must never: do I/O, read a clock, use randomness (the caller picks concatenation
//! references and passes "now"), or panic on any input. Decoded types serialize to JSON.

mod address;
mod dcs;
mod deliver;
pub mod hex;
mod reassembly;
mod status_report;
mod submit;
mod timestamp;
mod udh;
mod user_data;

use serde::Serialize;

pub use address::{Address, TypeOfNumber};
pub use dcs::{Alphabet, DataCoding};
pub use deliver::Deliver;
pub use reassembly::{Expired, Message, PartKey, Reassembler};
pub use status_report::{DeliveryStatus, StatusClass, StatusReport};
pub use submit::{Submit, SubmitPdu, Validity};
pub use timestamp::Timestamp;
pub use udh::{Concat, ConcatRef, InformationElement, Udh};
pub use user_data::Body;

use hex::Reader;

/// Why a PDU could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// Hex text with an odd number of digits.
    #[error("hex text has an odd length ({0} digits)")]
    OddHexLength(usize),
    /// A character that is not a hex digit.
    #[error("not a hex digit at position {position}")]
    InvalidHex {
        /// Byte offset in the (trimmed) text.
        position: usize,
    },
    /// The PDU ends inside a field.
    #[error("the PDU ends inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Message type indicator 3, which 23.040 reserves.
    #[error("message type indicator 3 is reserved")]
    ReservedMessageType,
    /// A user data header that does not fit the user data or is not a list of elements.
    #[error("malformed user data header")]
    InvalidUdh,
    /// An address that cannot be written in a PDU.
    #[error("not a valid address: {0:?}")]
    InvalidAddress(String),
    /// A text needing more parts than a one-octet part count allows.
    #[error("the text needs {0} parts; a concatenated SMS has at most 255")]
    TooManyParts(usize),
    /// GSM 7-bit asked for a text it cannot carry.
    #[error("the text has characters outside the GSM 7-bit alphabet")]
    NotGsm7,
    /// More than 140 octets of user data.
    #[error("user data over 140 octets")]
    UserDataTooLong,
    /// Text with an 8-bit coding, or data with a text coding.
    #[error("text needs GSM 7-bit or UCS-2 coding, data needs 8-bit (or compressed) coding")]
    BodyMismatch,
}

/// One encoded PDU: the hex as written after `AT+CMGS=<tpdu_len>` (SMSC prefix included), and
/// the TPDU length in octets, SMSC prefix excluded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EncodedPdu {
    /// SMSC prefix and TPDU, uppercase hex.
    pub hex: String,
    /// Octets of the TPDU alone: the number for `AT+CMGS=`.
    pub tpdu_len: usize,
}

/// A decoded PDU of any of the three types a modem hands over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DecodedPdu {
    /// An incoming message (MTI 00).
    Deliver(Deliver),
    /// An outgoing message (MTI 01).
    Submit(SubmitPdu),
    /// A status report (MTI 10).
    StatusReport(StatusReport),
}

/// Decodes hex as modems print it, SMSC prefix first.
pub fn decode(hex_text: &str) -> Result<DecodedPdu, PduError> {
    decode_bytes(&hex::decode(hex_text)?)
}

/// Decodes bytes, SMSC prefix first.
pub fn decode_bytes(bytes: &[u8]) -> Result<DecodedPdu, PduError> {
    let mut reader = Reader::new(bytes);
    let smsc = Address::decode_smsc(&mut reader)?;
    decode_from(&mut reader, smsc)
}

/// Decodes hex of a TPDU alone, without SMSC prefix.
pub fn decode_tpdu(hex_text: &str) -> Result<DecodedPdu, PduError> {
    decode_tpdu_bytes(&hex::decode(hex_text)?)
}

/// Decodes bytes of a TPDU alone, without SMSC prefix.
pub fn decode_tpdu_bytes(bytes: &[u8]) -> Result<DecodedPdu, PduError> {
    decode_from(&mut Reader::new(bytes), None)
}

fn decode_from(reader: &mut Reader<'_>, smsc: Option<Address>) -> Result<DecodedPdu, PduError> {
    let first_octet = reader.u8("first octet")?;
    match first_octet & 0x03 {
        0 => Deliver::decode(reader, smsc, first_octet).map(DecodedPdu::Deliver),
        1 => SubmitPdu::decode(reader, smsc, first_octet).map(DecodedPdu::Submit),
        2 => StatusReport::decode(reader, smsc, first_octet).map(DecodedPdu::StatusReport),
        _ => Err(PduError::ReservedMessageType),
    }
}
