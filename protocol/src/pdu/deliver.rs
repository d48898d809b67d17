//! SMS-DELIVER (23.040 §9.2.2.1): an incoming message as a modem gives it in `+CMT`, `+CMGR`
//! and `+CMGL`.
//!
//! Encoding exists too, so that simulators and tests can play the network. Must never panic on
//! any input.

use serde::Serialize;

use super::address::Address;
use super::dcs::DataCoding;
use super::hex::{self, Reader};
use super::timestamp::Timestamp;
use super::udh::Udh;
use super::user_data::{self, Body};
use super::{EncodedPdu, PduError};

/// One SMS-DELIVER, possibly one part of a longer message (see [`Udh::concat`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deliver {
    /// The service centre that delivered it.
    pub smsc: Option<Address>,
    /// TP-OA, who sent it: a number or an alphanumeric name.
    pub sender: Address,
    /// TP-PID.
    pub protocol_id: u8,
    /// TP-DCS.
    pub coding: DataCoding,
    /// TP-SCTS, when the service centre received it.
    pub timestamp: Timestamp,
    /// TP-MMS: the service centre has more messages waiting (the bit is inverted on the air).
    pub more_messages: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    /// TP-RP.
    pub reply_path: bool,
    /// The user data header, when TP-UDHI is set.
    pub udh: Option<Udh>,
    /// The text or data.
    pub body: Body,
}

impl Deliver {
    /// The whole PDU (SMSC prefix and TPDU) as hex, with the TPDU length.
    pub fn encode(&self) -> Result<EncodedPdu, PduError> {
        let smsc = Address::encode_smsc(self.smsc.as_ref())?;
        let first_octet = u8::from(!self.more_messages) << 2
            | u8::from(self.status_report_indication) << 5
            | u8::from(self.udh.is_some()) << 6
            | u8::from(self.reply_path) << 7;
        let mut tpdu = vec![first_octet];
        tpdu.extend(self.sender.encode_field()?);
        tpdu.extend([self.protocol_id, self.coding.raw]);
        tpdu.extend(self.timestamp.encode());
        let (length, user_data) = user_data::encode(self.coding, self.udh.as_ref(), &self.body)?;
        tpdu.push(length);
        tpdu.extend(user_data);
        Ok(EncodedPdu {
            hex: hex::encode(&smsc) + &hex::encode(&tpdu),
            tpdu_len: tpdu.len(),
        })
    }

    /// Reads the TPDU after its first octet.
    pub(crate) fn decode(
        reader: &mut Reader<'_>,
        smsc: Option<Address>,
        first_octet: u8,
    ) -> Result<Deliver, PduError> {
        let sender = Address::decode_field(reader, "TP-OA")?;
        let protocol_id = reader.u8("TP-PID")?;
        let coding = DataCoding::from_octet(reader.u8("TP-DCS")?);
        let timestamp = Timestamp::decode(reader.seven("TP-SCTS")?);
        let (udh, body) = user_data::decode(reader, coding, first_octet & 0x40 != 0)?;
        Ok(Deliver {
            smsc,
            sender,
            protocol_id,
            coding,
            timestamp,
            more_messages: first_octet & 0x04 == 0,
            status_report_indication: first_octet & 0x20 != 0,
            reply_path: first_octet & 0x80 != 0,
            udh,
            body,
        })
    }
}
