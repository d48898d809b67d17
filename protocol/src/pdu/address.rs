//! Addresses in PDUs: TP-OA/TP-DA/TP-RA (23.040 §9.1.2.5) and the SMSC prefix (24.011 RP address).
//!
//! A TP address counts its length in semi-octets (digits, or for an alphanumeric address the
//! useful semi-octets of the packed GSM 7-bit text); the SMSC prefix counts octets, type of
//! address included. Must never panic on any input.

use serde::Serialize;
use std::fmt;

use super::PduError;
use super::hex::Reader;
use crate::gsm::{decode_gsm7, encode_gsm7, pack_septets, unpack_septets};

/// Type of number (bits 6-4 of the type-of-address octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeOfNumber {
    /// 000: unknown; the number is dialled as written.
    Unknown,
    /// 001: international, shown with a leading `+`.
    International,
    /// 010: national.
    National,
    /// 011: network specific.
    NetworkSpecific,
    /// 100: subscriber number.
    Subscriber,
    /// 101: alphanumeric (GSM 7-bit text), e.g. a sender name like "Megafon".
    Alphanumeric,
    /// 110: abbreviated number.
    Abbreviated,
    /// 111: reserved for extension.
    Reserved,
}

impl TypeOfNumber {
    /// The type of number in bits 6-4 of a type-of-address octet.
    pub fn from_type_of_address(toa: u8) -> Self {
        match (toa >> 4) & 0x07 {
            0 => TypeOfNumber::Unknown,
            1 => TypeOfNumber::International,
            2 => TypeOfNumber::National,
            3 => TypeOfNumber::NetworkSpecific,
            4 => TypeOfNumber::Subscriber,
            5 => TypeOfNumber::Alphanumeric,
            6 => TypeOfNumber::Abbreviated,
            _ => TypeOfNumber::Reserved,
        }
    }

    /// The three bits of this type of number.
    pub fn bits(self) -> u8 {
        match self {
            TypeOfNumber::Unknown => 0,
            TypeOfNumber::International => 1,
            TypeOfNumber::National => 2,
            TypeOfNumber::NetworkSpecific => 3,
            TypeOfNumber::Subscriber => 4,
            TypeOfNumber::Alphanumeric => 5,
            TypeOfNumber::Abbreviated => 6,
            TypeOfNumber::Reserved => 7,
        }
    }
}

/// A phone number or alphanumeric name, with its type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Address {
    /// Digits (`+` in front when international; `*`, `#`, `a`-`c` for the other BCD codes),
    /// or the text of an alphanumeric address.
    pub number: String,
    /// Type of number.
    pub ton: TypeOfNumber,
    /// Numbering plan identification (bits 3-0): 1 = ISDN/E.164, 0 = unknown (alphanumeric).
    pub npi: u8,
}

/// The longest alphanumeric address: 10 octets of packed septets.
const MAX_ALPHANUMERIC_SEPTETS: usize = 11;
/// The longest number in a TP address: 10 octets of BCD.
const MAX_DIGITS: usize = 20;

impl Address {
    /// Reads `+4912345` as international, `0172…` or `*100#` as unknown (dialled as written),
    /// and any other GSM 7-bit text of at most 11 septets as alphanumeric.
    pub fn parse(text: &str) -> Result<Address, PduError> {
        let invalid = || PduError::InvalidAddress(text.to_owned());
        if let Some(digits) = text.strip_prefix('+') {
            if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.chars().all(is_dialable) {
                return Err(invalid());
            }
            return Ok(Address {
                number: text.to_owned(),
                ton: TypeOfNumber::International,
                npi: 1,
            });
        }
        if !text.is_empty() && text.len() <= MAX_DIGITS && text.chars().all(is_dialable) {
            return Ok(Address {
                number: text.to_owned(),
                ton: TypeOfNumber::Unknown,
                npi: 1,
            });
        }
        match encode_gsm7(text) {
            Some(septets) if !septets.is_empty() && septets.len() <= MAX_ALPHANUMERIC_SEPTETS => {
                Ok(Address {
                    number: text.to_owned(),
                    ton: TypeOfNumber::Alphanumeric,
                    npi: 0,
                })
            }
            _ => Err(invalid()),
        }
    }

    /// The type-of-address octet (bit 7 always set).
    pub fn type_of_address(&self) -> u8 {
        0x80 | self.ton.bits() << 4 | (self.npi & 0x0F)
    }

    /// The digits without the leading `+` (or the alphanumeric text).
    fn digits(&self) -> &str {
        match self.ton {
            TypeOfNumber::International => self.number.strip_prefix('+').unwrap_or(&self.number),
            _ => &self.number,
        }
    }

    /// The TP address field: length in semi-octets, type of address, value.
    pub(crate) fn encode_field(&self) -> Result<Vec<u8>, PduError> {
        let invalid = || PduError::InvalidAddress(self.number.clone());
        let (semi_octets, value) = if self.ton == TypeOfNumber::Alphanumeric {
            let septets = encode_gsm7(&self.number).ok_or_else(invalid)?;
            if septets.len() > MAX_ALPHANUMERIC_SEPTETS {
                return Err(invalid());
            }
            ((septets.len() * 7).div_ceil(4), pack_septets(&septets, 0))
        } else {
            let value = encode_bcd(self.digits()).ok_or_else(invalid)?;
            (self.digits().chars().count(), value)
        };
        if value.len() > MAX_DIGITS / 2 {
            return Err(invalid());
        }
        let semi_octets = u8::try_from(semi_octets).map_err(|_| invalid())?;
        let mut out = vec![semi_octets, self.type_of_address()];
        out.extend(value);
        Ok(out)
    }

    /// Reads a TP address field.
    pub(crate) fn decode_field(
        reader: &mut Reader<'_>,
        field: &'static str,
    ) -> Result<Address, PduError> {
        let semi_octets = usize::from(reader.u8(field)?);
        let toa = reader.u8(field)?;
        let value = reader.take(semi_octets.div_ceil(2), field)?;
        Ok(Address::from_value(toa, value, semi_octets))
    }

    /// The SMSC prefix: `00` for none (use the SIM's SMSC), else length in octets, type, digits.
    pub(crate) fn encode_smsc(smsc: Option<&Address>) -> Result<Vec<u8>, PduError> {
        let Some(smsc) = smsc else { return Ok(vec![0]) };
        let invalid = || PduError::InvalidAddress(smsc.number.clone());
        if smsc.ton == TypeOfNumber::Alphanumeric {
            return Err(invalid());
        }
        let value = encode_bcd(smsc.digits()).ok_or_else(invalid)?;
        if value.len() > MAX_DIGITS / 2 {
            return Err(invalid());
        }
        let length = u8::try_from(value.len() + 1).map_err(|_| invalid())?;
        let mut out = vec![length, smsc.type_of_address()];
        out.extend(value);
        Ok(out)
    }

    /// Reads the SMSC prefix; `None` when its length is 0 (or it holds only a type of address).
    pub(crate) fn decode_smsc(reader: &mut Reader<'_>) -> Result<Option<Address>, PduError> {
        const FIELD: &str = "SMSC address";
        let length = usize::from(reader.u8(FIELD)?);
        if length == 0 {
            return Ok(None);
        }
        let toa = reader.u8(FIELD)?;
        let value = reader.take(length - 1, FIELD)?;
        if value.is_empty() {
            return Ok(None);
        }
        Ok(Some(Address::from_value(toa, value, value.len() * 2)))
    }

    fn from_value(toa: u8, value: &[u8], semi_octets: usize) -> Address {
        let ton = TypeOfNumber::from_type_of_address(toa);
        let npi = toa & 0x0F;
        let number = if ton == TypeOfNumber::Alphanumeric {
            decode_gsm7(&unpack_septets(value, semi_octets * 4 / 7, 0))
        } else {
            let digits = decode_bcd(value, semi_octets);
            if ton == TypeOfNumber::International {
                format!("+{digits}")
            } else {
                digits
            }
        };
        Address { number, ton, npi }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.number)
    }
}

fn is_dialable(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'a' | 'b' | 'c')
}

/// Swapped-nibble BCD, `F`-padded; `None` if a character is not dialable.
pub(crate) fn encode_bcd(digits: &str) -> Option<Vec<u8>> {
    let nibble = |c: char| match c {
        '0'..='9' => c.to_digit(10).and_then(|d| u8::try_from(d).ok()),
        '*' => Some(0xA),
        '#' => Some(0xB),
        'a' => Some(0xC),
        'b' => Some(0xD),
        'c' => Some(0xE),
        _ => None,
    };
    let nibbles: Vec<u8> = digits.chars().map(nibble).collect::<Option<_>>()?;
    let octets = nibbles.chunks(2).map(|pair| match pair {
        [low, high] => high << 4 | low,
        [low] => 0xF0 | low,
        _ => 0xFF,
    });
    Some(octets.collect())
}

/// Up to `count` BCD digits, low nibble first; `F` (filler) is skipped.
fn decode_bcd(value: &[u8], count: usize) -> String {
    const SYMBOLS: [char; 16] = [
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'a', 'b', 'c', 'F',
    ];
    value
        .iter()
        .flat_map(|octet| [octet & 0x0F, octet >> 4])
        .take(count)
        .filter(|nibble| *nibble != 0x0F)
        .filter_map(|nibble| SYMBOLS.get(usize::from(nibble)).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::hex;

    #[test]
    fn address_fields() {
        // python-gsmmodem test_pdu.py TestSmsPduAddressFields: text, type, field (trailing
        // octets after the field must be left unread).
        let check = |number: &str, ton: TypeOfNumber, field: &str, trailing: &str| {
            let npi = if ton == TypeOfNumber::Alphanumeric {
                0
            } else {
                1
            };
            let address = Address {
                number: number.to_owned(),
                ton,
                npi,
            };
            assert_eq!(
                address.encode_field().map(|bytes| hex::encode(&bytes)),
                Ok(field.to_owned()),
                "{number}"
            );
            let bytes = hex::decode(&format!("{field}{trailing}")).unwrap_or_default();
            let mut reader = Reader::new(&bytes);
            assert_eq!(
                Address::decode_field(&mut reader, "test"),
                Ok(address),
                "{field}"
            );
            assert_eq!(hex::encode(reader.rest()), trailing);
        };
        check(
            "+9876543210",
            TypeOfNumber::International,
            "0A918967452301",
            "",
        );
        check(
            "+9876543210",
            TypeOfNumber::International,
            "0A918967452301",
            "000000",
        );
        check(
            "+987654321",
            TypeOfNumber::International,
            "099189674523F1",
            "000000",
        );
        check(
            "+27829135934",
            TypeOfNumber::International,
            "0B917228195339F4",
            "",
        );
        check(
            "abc",
            TypeOfNumber::Alphanumeric,
            "06D061F118",
            "D3F1FF0032",
        );
        check(
            "FRANCOIS",
            TypeOfNumber::Alphanumeric,
            "0ED04669D0397C26A7",
            "",
        );
        check(
            "a[]{}€",
            TypeOfNumber::Alphanumeric,
            "14D0E10D6FE3DBA036A94D19",
            "",
        );
        check("0129998765", TypeOfNumber::National, "0AA11092997856", "");
        check("*100#", TypeOfNumber::Unknown, "05811A00FB", "");
    }

    #[test]
    fn smsc_fields() {
        // python-gsmmodem TestSmsPduSmscFields, plus the empty prefix.
        let check = |smsc: Option<&str>, field: &str| {
            let address =
                smsc.map(|number| Address::parse(number).unwrap_or_else(|e| panic!("{e}")));
            assert_eq!(
                Address::encode_smsc(address.as_ref()).map(|bytes| hex::encode(&bytes)),
                Ok(field.to_owned())
            );
            let bytes = hex::decode(field).unwrap_or_default();
            assert_eq!(
                Address::decode_smsc(&mut Reader::new(&bytes)),
                Ok(address),
                "{field}"
            );
        };
        check(None, "00");
        check(Some("+9876543210"), "06918967452301");
        check(Some("+987654321"), "069189674523F1");
        check(Some("+2782913593"), "06917228195339");
        // libGammu writes an empty SMSC as "01 81": a type of address and no digits.
        assert_eq!(
            Address::decode_smsc(&mut Reader::new(&[0x01, 0x81])),
            Ok(None)
        );
    }

    #[test]
    fn parse() {
        let check = |text: &str, expected: Result<(TypeOfNumber, u8), ()>| {
            let got = Address::parse(text)
                .map(|a| (a.ton, a.type_of_address()))
                .map_err(|_| ());
            assert_eq!(got, expected, "{text:?}");
        };
        check("+4915112345678", Ok((TypeOfNumber::International, 0x91)));
        check("01511234", Ok((TypeOfNumber::Unknown, 0x81)));
        check("*100#", Ok((TypeOfNumber::Unknown, 0x81)));
        check("Megafon", Ok((TypeOfNumber::Alphanumeric, 0xD0)));
        check("+", Err(()));
        check("+49 151", Err(()));
        check("", Err(()));
        check("twelve chars", Err(()));
        check("Жора", Err(()));
        check(&format!("+{}", "1".repeat(21)), Err(()));
    }
}
