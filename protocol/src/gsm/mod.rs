//! The GSM 03.38 default alphabet and UCS-2, and how a text splits into SMS parts.
//!
//! The hub counts parts with [`segment`] when a message is accepted (for limits and quotas),
//! and the PDU codec ([`crate::pdu`]) splits texts with the same [`split`], so the two never
//! disagree. An escape pair (extension character) or a UTF-16 surrogate pair is never split
//! across parts.
//!
//! Must never: do I/O, panic on any input, or know about AT commands or modems.
//!
//! - [`septets`]: text ↔ GSM 7-bit septet values, and packing septets into octets.
//! - [`ucs2`]: text ↔ big-endian UTF-16.
//! - [`ussd`]: the packed GSM 7-bit hex that Huawei modems want for USSD.

pub mod septets;
mod split;
pub mod ucs2;
pub mod ussd;

pub use septets::{decode_gsm7, encode_gsm7, pack_septets, unpack_septets};
pub use ucs2::{decode_ucs2, encode_ucs2};
pub use ussd::{pack_gsm7_hex, unpack_gsm7_hex};

/// The GSM 03.38 default alphabet, indexed by septet value.
pub(crate) const GSM7_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table: characters written as ESC (0x1B) followed by this septet.
pub(crate) const GSM7_EXTENSION: [(char, u8); 10] = [
    ('\u{0c}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GSM 03.38 default alphabet, 7 bits per septet, 160 septets per single SMS.
    Gsm7,
    /// UCS-2 (UTF-16 code units), 70 per single SMS.
    Ucs2,
}

/// How a text splits into SMS parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segmentation {
    pub encoding: Encoding,
    /// Septets (GSM 7-bit, escapes count 2) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Number of SMS parts, with an 8-bit concatenation reference when more than one.
    pub parts: usize,
}

/// The size of the concatenation reference in the user data header of a multipart message.
///
/// The header takes 6 octets with an 8-bit reference and 7 with a 16-bit one, which is why a
/// part holds 153 or 152 septets (67 or 66 UCS-2 code units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefSize {
    /// Information element 0x00: `05 00 03 <ref> <total> <seq>`.
    EightBit,
    /// Information element 0x08: `06 08 04 <ref hi> <ref lo> <total> <seq>`.
    SixteenBit,
}

impl RefSize {
    /// Octets of the whole user data header (UDHL included) that carries only this reference.
    pub const fn udh_octets(self) -> usize {
        match self {
            RefSize::EightBit => 6,
            RefSize::SixteenBit => 7,
        }
    }
}

/// How many units (septets or UTF-16 code units) one part can hold.
///
/// `multipart` says whether the part carries a concatenation header of `ref_size`.
pub const fn capacity(encoding: Encoding, multipart: bool, ref_size: RefSize) -> usize {
    let octets = if multipart {
        140 - ref_size.udh_octets()
    } else {
        140
    };
    match encoding {
        Encoding::Gsm7 => octets * 8 / 7,
        Encoding::Ucs2 => octets / 2,
    }
}

/// The septet cost of one character in the GSM 7-bit alphabet, or `None` if it has none.
pub fn gsm7_cost(c: char) -> Option<usize> {
    if c != '\u{1b}' && GSM7_BASIC.contains(&c) {
        Some(1)
    } else if GSM7_EXTENSION.iter().any(|(it, _)| *it == c) {
        Some(2)
    } else {
        None
    }
}

/// The units `c` takes in `encoding`, or `None` if GSM 7-bit cannot carry it.
fn cost(encoding: Encoding, c: char) -> Option<usize> {
    match encoding {
        Encoding::Gsm7 => gsm7_cost(c),
        Encoding::Ucs2 => Some(c.len_utf16()),
    }
}

/// The smallest encoding that carries `text`: GSM 7-bit when every character has a form there.
pub fn smallest_encoding(text: &str) -> Encoding {
    if text.chars().all(|c| gsm7_cost(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// Chooses the smallest encoding for `text` and counts its parts.
pub fn segment(text: &str) -> Segmentation {
    let encoding = smallest_encoding(text);
    // `smallest_encoding` only picks GSM 7-bit when every character fits, so this never
    // falls back; UCS-2 carries everything.
    segment_as(text, encoding, RefSize::EightBit).unwrap_or_else(|| Segmentation {
        encoding: Encoding::Ucs2,
        units: text.encode_utf16().count(),
        parts: split::split(text, Encoding::Ucs2, RefSize::EightBit).map_or(1, |p| p.len()),
    })
}

/// Counts the parts of `text` in a given encoding and reference size, or `None` if GSM 7-bit
/// was asked for and a character has no GSM 7-bit form.
pub fn segment_as(text: &str, encoding: Encoding, ref_size: RefSize) -> Option<Segmentation> {
    let units = text
        .chars()
        .map(|c| cost(encoding, c))
        .sum::<Option<usize>>()?;
    let parts = split::split(text, encoding, ref_size)?.len();
    Some(Segmentation {
        encoding,
        units,
        parts,
    })
}

/// Splits `text` into the texts of its SMS parts, or `None` if GSM 7-bit was asked for and a
/// character has no GSM 7-bit form. An empty text is one empty part.
pub fn split(text: &str, encoding: Encoding, ref_size: RefSize) -> Option<Vec<&str>> {
    split::split(text, encoding, ref_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_counts() {
        let check = |text: &str, encoding: Encoding, units: usize, parts: usize| {
            assert_eq!(
                segment(text),
                Segmentation {
                    encoding,
                    units,
                    parts
                },
                "{text:?}"
            );
        };
        check("", Encoding::Gsm7, 0, 1);
        check("Hello World!", Encoding::Gsm7, 12, 1);
        check(&"a".repeat(160), Encoding::Gsm7, 160, 1);
        check(&"a".repeat(161), Encoding::Gsm7, 161, 2);
        check(&"a".repeat(306), Encoding::Gsm7, 306, 2);
        check(&"€".repeat(80), Encoding::Gsm7, 160, 1);
        check(&"€".repeat(81), Encoding::Gsm7, 162, 2);
        check(&"я".repeat(70), Encoding::Ucs2, 70, 1);
        check(&"я".repeat(134), Encoding::Ucs2, 134, 2);
        check(&"😀".repeat(35), Encoding::Ucs2, 70, 1);
    }

    #[test]
    fn part_counts_by_reference_size() {
        // Per-part capacities from the research notes (checked with libGammu's EncodeSMS).
        let check = |text: &str, ref_size: RefSize, encoding: Encoding, parts: usize| {
            let got = segment_as(text, encoding, ref_size).map(|s| s.parts);
            assert_eq!(
                got,
                Some(parts),
                "{ref_size:?} {encoding:?} {} chars",
                text.chars().count()
            );
        };
        check(&"a".repeat(306), RefSize::EightBit, Encoding::Gsm7, 2);
        check(&"a".repeat(306), RefSize::SixteenBit, Encoding::Gsm7, 3);
        check(&"a".repeat(304), RefSize::SixteenBit, Encoding::Gsm7, 2);
        check(&"я".repeat(134), RefSize::EightBit, Encoding::Ucs2, 2);
        check(&"я".repeat(134), RefSize::SixteenBit, Encoding::Ucs2, 3);
        check(&"я".repeat(132), RefSize::SixteenBit, Encoding::Ucs2, 2);
        check("plain", RefSize::EightBit, Encoding::Ucs2, 1);
        assert_eq!(segment_as("я", Encoding::Gsm7, RefSize::EightBit), None);
    }

    #[test]
    fn capacities() {
        let check = |encoding, multipart, ref_size, expected| {
            assert_eq!(
                capacity(encoding, multipart, ref_size),
                expected,
                "{encoding:?} {multipart} {ref_size:?}"
            );
        };
        check(Encoding::Gsm7, false, RefSize::EightBit, 160);
        check(Encoding::Gsm7, true, RefSize::EightBit, 153);
        check(Encoding::Gsm7, true, RefSize::SixteenBit, 152);
        check(Encoding::Ucs2, false, RefSize::SixteenBit, 70);
        check(Encoding::Ucs2, true, RefSize::EightBit, 67);
        check(Encoding::Ucs2, true, RefSize::SixteenBit, 66);
    }
}
