//! The data coding scheme octet (TP-DCS, 23.038 §4): which alphabet the user data uses, the
//! message class, and whether it is compressed.
//!
//! Every octet value decodes to something (reserved groups fall back to GSM 7-bit, as 23.038
//! asks); must never panic.

use serde::Serialize;

/// The alphabet of the user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Alphabet {
    /// GSM 03.38 default alphabet, packed septets.
    Gsm7,
    /// 8-bit data, e.g. WAP push or binary SMS.
    EightBit,
    /// UCS-2 (big-endian UTF-16).
    Ucs2,
}

/// A decoded TP-DCS octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DataCoding {
    /// The octet as sent.
    pub raw: u8,
    /// The alphabet it selects.
    pub alphabet: Alphabet,
    /// Message class 0-3 when given (0 = "flash", shown and not stored).
    pub class: Option<u8>,
    /// Compressed user data (23.042), which nobody sends and this codec does not expand.
    pub compressed: bool,
}

impl DataCoding {
    /// Decodes a TP-DCS octet.
    pub fn from_octet(raw: u8) -> DataCoding {
        let general = |alphabet_bits: u8| match alphabet_bits & 0x03 {
            1 => Alphabet::EightBit,
            2 => Alphabet::Ucs2,
            _ => Alphabet::Gsm7,
        };
        let (alphabet, class, compressed) = match raw >> 4 {
            // General data coding (00xx) and automatic deletion group (01xx).
            0x0..=0x7 => {
                let class = (raw & 0x10 != 0).then_some(raw & 0x03);
                (general(raw >> 2), class, raw & 0x20 != 0)
            }
            // Message waiting indication, UCS-2 text.
            0xE => (Alphabet::Ucs2, None, false),
            // Data coding / message class.
            0xF => {
                let alphabet = if raw & 0x04 != 0 {
                    Alphabet::EightBit
                } else {
                    Alphabet::Gsm7
                };
                (alphabet, Some(raw & 0x03), false)
            }
            // Reserved groups and message waiting indication with GSM 7-bit text.
            _ => (Alphabet::Gsm7, None, false),
        };
        DataCoding {
            raw,
            alphabet,
            class,
            compressed,
        }
    }

    /// The plain coding of an alphabet, no class: 0x00, 0x04 or 0x08.
    pub fn of(alphabet: Alphabet) -> DataCoding {
        let raw = match alphabet {
            Alphabet::Gsm7 => 0x00,
            Alphabet::EightBit => 0x04,
            Alphabet::Ucs2 => 0x08,
        };
        DataCoding::from_octet(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octets() {
        let check = |raw: u8, alphabet: Alphabet, class: Option<u8>, compressed: bool| {
            assert_eq!(
                DataCoding::from_octet(raw),
                DataCoding {
                    raw,
                    alphabet,
                    class,
                    compressed
                },
                "{raw:#04X}"
            );
        };
        check(0x00, Alphabet::Gsm7, None, false);
        check(0x04, Alphabet::EightBit, None, false);
        check(0x08, Alphabet::Ucs2, None, false);
        check(0x0C, Alphabet::Gsm7, None, false);
        check(0x10, Alphabet::Gsm7, Some(0), false);
        check(0x18, Alphabet::Ucs2, Some(0), false);
        check(0x26, Alphabet::EightBit, None, true);
        check(0x48, Alphabet::Ucs2, None, false);
        check(0xC8, Alphabet::Gsm7, None, false);
        check(0xE0, Alphabet::Ucs2, None, false);
        check(0xF0, Alphabet::Gsm7, Some(0), false);
        check(0xF5, Alphabet::EightBit, Some(1), false);
        check(0x90, Alphabet::Gsm7, None, false);
    }
}
