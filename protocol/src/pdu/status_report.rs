//! SMS-STATUS-REPORT (23.040 §9.2.2.3): the outcome of a message sent with a status report
//! request, as `+CDS` or a stored report read with `+CMGR`.
//!
//! The driver matches a report to its message by TP-MR (from `+CMGS: <mr>`) and recipient.
//! TP-ST is classified by range (§9.2.3.15), so reserved and SC-specific values still land in
//! the right group. The optional tail (TP-PI and what it announces) is read when present and
//! well formed, and ignored otherwise. Encoding exists for simulators and tests. Must never
//! panic on any input.

use serde::Serialize;
use serde::ser::SerializeStruct;

use super::address::Address;
use super::dcs::DataCoding;
use super::hex::{self, Reader};
use super::timestamp::Timestamp;
use super::udh::Udh;
use super::user_data::{self, Body};
use super::{EncodedPdu, PduError};

/// What a TP-ST value means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusClass {
    /// 0x00-0x1F: the transaction is complete (0x00 received by the recipient, 0x01 forwarded
    /// but unconfirmed, 0x02 replaced).
    Delivered,
    /// 0x20-0x3F: temporary error, the service centre is still trying. Not final.
    StillTrying,
    /// 0x40-0x5F: permanent error, e.g. 0x46 validity period expired. Final.
    PermanentFailure,
    /// 0x60-0x7F: temporary error, but the service centre has stopped trying. Final.
    TemporaryFailure,
}

/// TP-ST as sent, with its classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryStatus(pub u8);

impl DeliveryStatus {
    /// The group of bits 6-5 (bit 7 is reserved and ignored).
    pub fn class(self) -> StatusClass {
        match (self.0 >> 5) & 0x03 {
            0 => StatusClass::Delivered,
            1 => StatusClass::StillTrying,
            2 => StatusClass::PermanentFailure,
            _ => StatusClass::TemporaryFailure,
        }
    }

    /// Whether the service centre has finished with the message.
    pub fn is_final(self) -> bool {
        self.class() != StatusClass::StillTrying
    }

    /// The 23.040 name of the value, or its range's name when it is reserved or SC-specific.
    pub fn description(self) -> &'static str {
        match self.0 & 0x7F {
            0x00 => "received by the recipient",
            0x01 => "forwarded, delivery not confirmed",
            0x02 => "replaced by the service centre",
            0x20 | 0x60 => "congestion",
            0x21 | 0x61 => "recipient busy",
            0x22 | 0x62 => "no response from recipient",
            0x23 | 0x63 => "service rejected",
            0x24 | 0x44 | 0x64 => "quality of service not available",
            0x25 | 0x65 => "error in recipient",
            0x40 => "remote procedure error",
            0x41 => "incompatible destination",
            0x42 => "connection rejected by recipient",
            0x43 => "not obtainable",
            0x45 => "no interworking available",
            0x46 => "validity period expired",
            0x47 => "deleted by originating entity",
            0x48 => "deleted by service centre administration",
            0x49 => "message does not exist",
            _ => match self.class() {
                StatusClass::Delivered => "transaction completed (reserved value)",
                StatusClass::StillTrying => "temporary error, still trying (reserved value)",
                StatusClass::PermanentFailure => "permanent error (reserved value)",
                StatusClass::TemporaryFailure => {
                    "temporary error, no more attempts (reserved value)"
                }
            },
        }
    }
}

impl Serialize for DeliveryStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("DeliveryStatus", 3)?;
        out.serialize_field("code", &self.0)?;
        out.serialize_field("class", &self.class())?;
        out.serialize_field("description", self.description())?;
        out.end()
    }
}

/// One SMS-STATUS-REPORT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    /// The service centre that sent it.
    pub smsc: Option<Address>,
    /// TP-MR of the message this reports on (`+CMGS: <mr>`).
    pub message_reference: u8,
    /// TP-RA, the recipient of that message.
    pub recipient: Address,
    /// TP-SCTS, when the service centre received that message.
    pub sc_timestamp: Timestamp,
    /// TP-DT, when it was delivered or the attempt ended.
    pub discharge_time: Timestamp,
    /// TP-ST.
    pub status: DeliveryStatus,
    /// TP-MMS: more messages are waiting (the bit is inverted on the air).
    pub more_messages: bool,
    /// TP-SRQ: this reports on an SMS-COMMAND rather than an SMS-SUBMIT.
    pub qualifier: bool,
    /// TP-PID, when present.
    pub protocol_id: Option<u8>,
    /// TP-DCS, when present (user data without it is GSM 7-bit).
    pub coding: Option<DataCoding>,
    /// The user data header, when TP-UDHI is set and user data is present.
    pub udh: Option<Udh>,
    /// User data, when present.
    pub body: Option<Body>,
}

impl StatusReport {
    /// The whole PDU (SMSC prefix and TPDU) as hex, with the TPDU length.
    pub fn encode(&self) -> Result<EncodedPdu, PduError> {
        let smsc = Address::encode_smsc(self.smsc.as_ref())?;
        let has_header = self.udh.is_some() && self.body.is_some();
        let first_octet = 0x02
            | u8::from(!self.more_messages) << 2
            | u8::from(self.qualifier) << 5
            | u8::from(has_header) << 6;
        let mut tpdu = vec![first_octet, self.message_reference];
        tpdu.extend(self.recipient.encode_field()?);
        tpdu.extend(self.sc_timestamp.encode());
        tpdu.extend(self.discharge_time.encode());
        tpdu.push(self.status.0);
        let indicator = u8::from(self.protocol_id.is_some())
            | u8::from(self.coding.is_some()) << 1
            | u8::from(self.body.is_some()) << 2;
        if indicator != 0 {
            tpdu.push(indicator);
            tpdu.extend(self.protocol_id);
            tpdu.extend(self.coding.map(|coding| coding.raw));
            if let Some(body) = &self.body {
                let coding = self.coding.unwrap_or(DataCoding::from_octet(0));
                let (length, user_data) = user_data::encode(coding, self.udh.as_ref(), body)?;
                tpdu.push(length);
                tpdu.extend(user_data);
            }
        }
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
    ) -> Result<StatusReport, PduError> {
        let message_reference = reader.u8("TP-MR")?;
        let recipient = Address::decode_field(reader, "TP-RA")?;
        let sc_timestamp = Timestamp::decode(reader.seven("TP-SCTS")?);
        let discharge_time = Timestamp::decode(reader.seven("TP-DT")?);
        let status = DeliveryStatus(reader.u8("TP-ST")?);
        let mut report = StatusReport {
            smsc,
            message_reference,
            recipient,
            sc_timestamp,
            discharge_time,
            status,
            more_messages: first_octet & 0x04 == 0,
            qualifier: first_octet & 0x20 != 0,
            protocol_id: None,
            coding: None,
            udh: None,
            body: None,
        };
        if !reader.is_empty() {
            // Some modems pad reports; a tail that does not parse is not worth losing the report.
            if let Ok((protocol_id, coding, user_data)) = decode_tail(reader, first_octet) {
                report.protocol_id = protocol_id;
                report.coding = coding;
                (report.udh, report.body) = match user_data {
                    Some((udh, body)) => (udh, Some(body)),
                    None => (None, None),
                };
            }
        }
        Ok(report)
    }
}

type Tail = (Option<u8>, Option<DataCoding>, Option<(Option<Udh>, Body)>);

/// TP-PI and the fields it announces.
fn decode_tail(reader: &mut Reader<'_>, first_octet: u8) -> Result<Tail, PduError> {
    let mut indicator = reader.u8("TP-PI")?;
    let first_indicator = indicator;
    // Bit 7 chains further TP-PI octets, whose bits are all reserved.
    while indicator & 0x80 != 0 {
        indicator = reader.u8("TP-PI")?;
    }
    let protocol_id = if first_indicator & 0x01 != 0 {
        Some(reader.u8("TP-PID")?)
    } else {
        None
    };
    let coding = if first_indicator & 0x02 != 0 {
        Some(DataCoding::from_octet(reader.u8("TP-DCS")?))
    } else {
        None
    };
    let user_data = if first_indicator & 0x04 != 0 {
        let coding = coding.unwrap_or(DataCoding::from_octet(0));
        Some(user_data::decode(reader, coding, first_octet & 0x40 != 0)?)
    } else {
        None
    };
    Ok((protocol_id, coding, user_data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let check = |code: u8, class: StatusClass, description: &str| {
            let status = DeliveryStatus(code);
            assert_eq!(
                (status.class(), status.description()),
                (class, description),
                "{code:#04X}"
            );
            assert_eq!(status.is_final(), class != StatusClass::StillTrying);
        };
        check(0x00, StatusClass::Delivered, "received by the recipient");
        check(
            0x02,
            StatusClass::Delivered,
            "replaced by the service centre",
        );
        check(
            0x10,
            StatusClass::Delivered,
            "transaction completed (reserved value)",
        );
        check(0x21, StatusClass::StillTrying, "recipient busy");
        check(
            0x3F,
            StatusClass::StillTrying,
            "temporary error, still trying (reserved value)",
        );
        check(
            0x46,
            StatusClass::PermanentFailure,
            "validity period expired",
        );
        check(
            0x5A,
            StatusClass::PermanentFailure,
            "permanent error (reserved value)",
        );
        check(
            0x62,
            StatusClass::TemporaryFailure,
            "no response from recipient",
        );
        check(
            0x7F,
            StatusClass::TemporaryFailure,
            "temporary error, no more attempts (reserved value)",
        );
        check(
            0xC6,
            StatusClass::PermanentFailure,
            "validity period expired",
        );
    }
}
