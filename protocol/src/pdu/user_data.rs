//! User data (TP-UDL and TP-UD): the optional header, then the text or data in the alphabet the
//! data coding scheme names.
//!
//! With GSM 7-bit, TP-UDL counts septets (header included) and the text starts on the septet
//! boundary after the header, so fill bits sit between them; otherwise TP-UDL counts octets.
//! Decoding is lenient where that saves a message: user data shorter than TP-UDL says is decoded
//! as far as it goes (python-gsmmodem keeps such PDUs too). Must never panic on any input.

use serde::Serialize;

use super::PduError;
use super::dcs::{Alphabet, DataCoding};
use super::hex::Reader;
use super::udh::Udh;
use crate::gsm::{
    decode_gsm7, decode_ucs2, encode_gsm7, encode_ucs2, pack_septets, unpack_septets,
};

/// The most octets of user data one SMS carries.
pub(crate) const MAX_USER_DATA_OCTETS: usize = 140;

/// What a message says: text (GSM 7-bit or UCS-2) or data (8-bit, or compressed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// Text, decoded from GSM 7-bit or UCS-2.
    Text(String),
    /// Octets as sent (8-bit data, or compressed user data); hex in JSON.
    Data(#[serde(serialize_with = "super::hex::serialize")] Vec<u8>),
}

impl Body {
    /// The text, if this is text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Body::Text(text) => Some(text),
            Body::Data(_) => None,
        }
    }
}

/// Reads TP-UDL and TP-UD (the rest of the PDU).
pub(crate) fn decode(
    reader: &mut Reader<'_>,
    coding: DataCoding,
    has_header: bool,
) -> Result<(Option<Udh>, Body), PduError> {
    let length = usize::from(reader.u8("TP-UDL")?);
    let rest = reader.rest();
    let septets = coding.alphabet == Alphabet::Gsm7 && !coding.compressed;
    let octets = if septets {
        (length * 7).div_ceil(8)
    } else {
        length
    };
    let user_data = rest.get(..octets).unwrap_or(rest);
    let (udh, header_octets) = if has_header {
        let (udh, used) = Udh::decode(user_data)?;
        (Some(udh), used)
    } else {
        (None, 0)
    };
    let body = if septets {
        let header_septets = (header_octets * 8).div_ceil(7);
        let values = unpack_septets(user_data, length, 0);
        Body::Text(decode_gsm7(values.get(header_septets..).unwrap_or(&[])))
    } else {
        let payload = user_data.get(header_octets..).unwrap_or(&[]);
        match coding.alphabet {
            Alphabet::Ucs2 if !coding.compressed => Body::Text(decode_ucs2(payload)),
            _ => Body::Data(payload.to_vec()),
        }
    };
    Ok((udh, body))
}

/// TP-UDL and TP-UD for a header and body in a coding.
pub(crate) fn encode(
    coding: DataCoding,
    udh: Option<&Udh>,
    body: &Body,
) -> Result<(u8, Vec<u8>), PduError> {
    let mut out = match udh {
        Some(udh) => udh.encode()?,
        None => Vec::new(),
    };
    let header_octets = out.len();
    let length = match (coding.alphabet, body) {
        (_, Body::Text(_)) if coding.compressed => return Err(PduError::BodyMismatch),
        (Alphabet::Gsm7, Body::Text(text)) => {
            let values = encode_gsm7(text).ok_or(PduError::NotGsm7)?;
            let header_septets = (header_octets * 8).div_ceil(7);
            let fill_bits = header_septets * 7 - header_octets * 8;
            out.extend(pack_septets(&values, fill_bits));
            header_septets + values.len()
        }
        (Alphabet::Ucs2, Body::Text(text)) => {
            out.extend(encode_ucs2(text));
            out.len()
        }
        (_, Body::Data(data)) if coding.compressed || coding.alphabet == Alphabet::EightBit => {
            out.extend(data);
            out.len()
        }
        _ => return Err(PduError::BodyMismatch),
    };
    if out.len() > MAX_USER_DATA_OCTETS {
        return Err(PduError::UserDataTooLong);
    }
    let length = u8::try_from(length).map_err(|_| PduError::UserDataTooLong)?;
    Ok((length, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::hex;
    use crate::pdu::udh::{Concat, ConcatRef};

    #[test]
    fn gsm7_after_a_header_has_fill_bits() {
        // One fill bit after a 6-octet header: the header takes 7 septets.
        let udh = Udh::with_concat(Concat {
            reference: ConcatRef::EightBit(0xC3),
            total: 1,
            seq: 1,
        });
        let body = Body::Text("Hello!".into());
        let (length, bytes) =
            encode(DataCoding::of(Alphabet::Gsm7), Some(&udh), &body).unwrap_or_default();
        assert_eq!(length, 13);
        // The python-gsmmodem DELIVER vector with UDH C3 01 01 and "Hello!…" has 91 here: its
        // sender set the fill bit, which must be 0 when sending and is ignored when receiving.
        assert!(
            hex::encode(&bytes).starts_with("050003C30101906536FB1D"),
            "{}",
            hex::encode(&bytes)
        );
        let mut pdu = vec![length];
        pdu.extend(&bytes);
        let decoded = decode(&mut Reader::new(&pdu), DataCoding::of(Alphabet::Gsm7), true);
        assert_eq!(decoded, Ok((Some(udh), body)));
    }

    #[test]
    fn mismatches_and_limits() {
        let text = Body::Text("x".into());
        let data = Body::Data(vec![1]);
        assert_eq!(
            encode(DataCoding::of(Alphabet::EightBit), None, &text),
            Err(PduError::BodyMismatch)
        );
        assert_eq!(
            encode(DataCoding::of(Alphabet::Gsm7), None, &data),
            Err(PduError::BodyMismatch)
        );
        assert_eq!(
            encode(
                DataCoding::of(Alphabet::Gsm7),
                None,
                &Body::Text("я".into())
            ),
            Err(PduError::NotGsm7)
        );
        let long = Body::Text("a".repeat(161));
        assert_eq!(
            encode(DataCoding::of(Alphabet::Gsm7), None, &long),
            Err(PduError::UserDataTooLong)
        );
        let full = Body::Text("a".repeat(160));
        assert_eq!(
            encode(DataCoding::of(Alphabet::Gsm7), None, &full).map(|(l, b)| (l, b.len())),
            Ok((160, 140))
        );
    }
}
