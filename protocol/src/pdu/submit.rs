//! SMS-SUBMIT (23.040 §9.2.2.2): what the hub sends through a modem, and what `+CMGL` lists
//! for stored outgoing messages.
//!
//! [`Submit`] is an outgoing message of any length; [`Submit::encode`] splits it with
//! [`crate::gsm::split`] (the same rule the hub uses to count parts) and gives, per part, the
//! hex to write after `AT+CMGS=<tpdu_len>`. [`SubmitPdu`] is one SMS-SUBMIT, encoded or
//! decoded. Must never panic on any input, and never choose a concatenation reference itself:
//! the modem driver owns that counter.

use serde::Serialize;

use super::address::Address;
use super::dcs::{Alphabet, DataCoding};
use super::hex::{self, Reader};
use super::timestamp::Timestamp;
use super::udh::{Concat, ConcatRef, Udh};
use super::user_data::{self, Body};
use super::{EncodedPdu, PduError};
use crate::gsm::{self, Encoding, Segmentation};

/// TP-VP, how long the service centre keeps trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// No validity period: the service centre's default.
    None,
    /// Relative TP-VP octet (see [`Validity::relative_minutes`]).
    Relative(u8),
    /// Enhanced format, seven octets kept as they came.
    Enhanced(#[serde(serialize_with = "super::hex::serialize")] [u8; 7]),
    /// Absolute expiry time.
    Absolute(Timestamp),
}

impl Validity {
    /// The shortest relative period of at least `minutes` (capped at 63 weeks, octet 255).
    pub fn relative_minutes(minutes: u32) -> Validity {
        let octet = (0..=u8::MAX)
            .find(|octet| relative_to_minutes(*octet) >= minutes)
            .unwrap_or(u8::MAX);
        Validity::Relative(octet)
    }

    /// The length of a relative period in minutes; `None` for the other forms.
    pub fn minutes(&self) -> Option<u32> {
        match self {
            Validity::Relative(octet) => Some(relative_to_minutes(*octet)),
            _ => None,
        }
    }

    /// TP-VPF, bits 4-3 of the first octet.
    fn format_bits(&self) -> u8 {
        match self {
            Validity::None => 0x00,
            Validity::Enhanced(_) => 0x08,
            Validity::Relative(_) => 0x10,
            Validity::Absolute(_) => 0x18,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Validity::None => Vec::new(),
            Validity::Relative(octet) => vec![*octet],
            Validity::Enhanced(octets) => octets.to_vec(),
            Validity::Absolute(timestamp) => timestamp.encode().to_vec(),
        }
    }

    fn decode(first_octet: u8, reader: &mut Reader<'_>) -> Result<Validity, PduError> {
        const FIELD: &str = "TP-VP";
        Ok(match first_octet & 0x18 {
            0x10 => Validity::Relative(reader.u8(FIELD)?),
            0x08 => Validity::Enhanced(reader.seven(FIELD)?),
            0x18 => Validity::Absolute(Timestamp::decode(reader.seven(FIELD)?)),
            _ => Validity::None,
        })
    }
}

/// 23.040 §9.2.3.12.1: 5-minute steps to 12 h, 30-minute steps to 24 h, then days, then weeks.
fn relative_to_minutes(octet: u8) -> u32 {
    let octet = u32::from(octet);
    match octet {
        0..=143 => (octet + 1) * 5,
        144..=167 => 12 * 60 + (octet - 143) * 30,
        168..=196 => (octet - 166) * 24 * 60,
        _ => (octet - 192) * 7 * 24 * 60,
    }
}

/// An outgoing text message of any length, built up and then [encoded](Submit::encode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// The recipient.
    pub to: Address,
    /// The text; split into parts when it does not fit one SMS.
    pub text: String,
    /// Ask for a status report (TP-SRR).
    pub status_report: bool,
    /// How long the service centre keeps trying.
    pub validity: Validity,
    /// The concatenation reference, used only when the text needs more than one part.
    pub reference: ConcatRef,
    /// Send as UCS-2 even when GSM 7-bit would do.
    pub force_ucs2: bool,
    /// An explicit service centre; `None` writes `00`, "use the SIM's".
    pub smsc: Option<Address>,
}

impl Submit {
    /// A message with no status report, no validity period, reference 0 (8-bit), the smallest
    /// encoding and the SIM's service centre.
    pub fn new(to: Address, text: impl Into<String>) -> Submit {
        Submit {
            to,
            text: text.into(),
            status_report: false,
            validity: Validity::None,
            reference: ConcatRef::EightBit(0),
            force_ucs2: false,
            smsc: None,
        }
    }

    /// Asks for a status report or not.
    pub fn status_report(mut self, status_report: bool) -> Submit {
        self.status_report = status_report;
        self
    }

    /// Sets the validity period.
    pub fn validity(mut self, validity: Validity) -> Submit {
        self.validity = validity;
        self
    }

    /// Sets the concatenation reference (the driver's per-modem counter).
    pub fn reference(mut self, reference: ConcatRef) -> Submit {
        self.reference = reference;
        self
    }

    /// Forces UCS-2 or not.
    pub fn force_ucs2(mut self, force_ucs2: bool) -> Submit {
        self.force_ucs2 = force_ucs2;
        self
    }

    /// Uses an explicit service centre instead of the SIM's.
    pub fn smsc(mut self, smsc: Address) -> Submit {
        self.smsc = Some(smsc);
        self
    }

    /// The encoding the text goes out in.
    pub fn encoding(&self) -> Encoding {
        if self.force_ucs2 {
            Encoding::Ucs2
        } else {
            gsm::smallest_encoding(&self.text)
        }
    }

    /// The encoding, units and number of parts, counted with this message's reference size.
    pub fn segmentation(&self) -> Segmentation {
        let encoding = self.encoding();
        let ref_size = self.reference.size();
        gsm::segment_as(&self.text, encoding, ref_size).unwrap_or(Segmentation {
            encoding,
            units: 0,
            parts: 0,
        })
    }

    /// One SMS-SUBMIT per part, in order.
    pub fn pdus(&self) -> Result<Vec<SubmitPdu>, PduError> {
        let encoding = self.encoding();
        let parts =
            gsm::split(&self.text, encoding, self.reference.size()).ok_or(PduError::NotGsm7)?;
        let total = u8::try_from(parts.len()).map_err(|_| PduError::TooManyParts(parts.len()))?;
        let alphabet = match encoding {
            Encoding::Gsm7 => Alphabet::Gsm7,
            Encoding::Ucs2 => Alphabet::Ucs2,
        };
        let pdus = parts.iter().zip(1..=total).map(|(text, seq)| SubmitPdu {
            smsc: self.smsc.clone(),
            message_reference: 0,
            to: self.to.clone(),
            protocol_id: 0,
            coding: DataCoding::of(alphabet),
            validity: self.validity,
            status_report: self.status_report,
            reject_duplicates: false,
            reply_path: false,
            udh: (total > 1).then(|| {
                Udh::with_concat(Concat {
                    reference: self.reference,
                    total,
                    seq,
                })
            }),
            body: Body::Text((*text).to_owned()),
        });
        Ok(pdus.collect())
    }

    /// Per part, the hex to write after `AT+CMGS=<tpdu_len>` and that length.
    pub fn encode(&self) -> Result<Vec<EncodedPdu>, PduError> {
        self.pdus()?.iter().map(SubmitPdu::encode).collect()
    }
}

/// One SMS-SUBMIT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubmitPdu {
    /// The service centre prefix; `None` is `00`.
    pub smsc: Option<Address>,
    /// TP-MR; the modem assigns its own and reports it in `+CMGS: <mr>`.
    pub message_reference: u8,
    /// TP-DA, the recipient.
    pub to: Address,
    /// TP-PID.
    pub protocol_id: u8,
    /// TP-DCS.
    pub coding: DataCoding,
    /// TP-VP.
    pub validity: Validity,
    /// TP-SRR: a status report is requested.
    pub status_report: bool,
    /// TP-RD: the service centre should reject a duplicate.
    pub reject_duplicates: bool,
    /// TP-RP.
    pub reply_path: bool,
    /// The user data header, when TP-UDHI is set.
    pub udh: Option<Udh>,
    /// The text or data.
    pub body: Body,
}

impl SubmitPdu {
    /// The whole PDU (SMSC prefix and TPDU) as hex, and the TPDU length for `AT+CMGS`.
    pub fn encode(&self) -> Result<EncodedPdu, PduError> {
        let smsc = Address::encode_smsc(self.smsc.as_ref())?;
        let first_octet = 0x01
            | u8::from(self.reject_duplicates) << 2
            | self.validity.format_bits()
            | u8::from(self.status_report) << 5
            | u8::from(self.udh.is_some()) << 6
            | u8::from(self.reply_path) << 7;
        let mut tpdu = vec![first_octet, self.message_reference];
        tpdu.extend(self.to.encode_field()?);
        tpdu.extend([self.protocol_id, self.coding.raw]);
        tpdu.extend(self.validity.encode());
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
    ) -> Result<SubmitPdu, PduError> {
        let message_reference = reader.u8("TP-MR")?;
        let to = Address::decode_field(reader, "TP-DA")?;
        let protocol_id = reader.u8("TP-PID")?;
        let coding = DataCoding::from_octet(reader.u8("TP-DCS")?);
        let validity = Validity::decode(first_octet, reader)?;
        let (udh, body) = user_data::decode(reader, coding, first_octet & 0x40 != 0)?;
        Ok(SubmitPdu {
            smsc,
            message_reference,
            to,
            protocol_id,
            coding,
            validity,
            status_report: first_octet & 0x20 != 0,
            reject_duplicates: first_octet & 0x04 != 0,
            reply_path: first_octet & 0x80 != 0,
            udh,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_validity() {
        // python-gsmmodem test_pdu.py TestRelativeValidityPeriod, plus the research notes' 167/170/255.
        let check = |minutes: u32, octet: u8| {
            assert_eq!(
                Validity::relative_minutes(minutes),
                Validity::Relative(octet),
                "{minutes} min"
            );
            assert_eq!(
                Validity::Relative(octet).minutes(),
                Some(minutes),
                "octet {octet}"
            );
        };
        check(30, 5);
        check(16 * 60, 151);
        check(3 * 24 * 60, 169);
        check(5 * 7 * 24 * 60, 197);
        check(24 * 60, 167);
        check(4 * 24 * 60, 170);
        check(63 * 7 * 24 * 60, 255);
        assert_eq!(Validity::relative_minutes(0), Validity::Relative(0));
        assert_eq!(
            Validity::relative_minutes(31),
            Validity::Relative(6),
            "rounds up"
        );
        assert_eq!(
            Validity::relative_minutes(u32::MAX),
            Validity::Relative(255)
        );
    }
}
