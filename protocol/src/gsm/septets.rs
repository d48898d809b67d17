//! GSM 7-bit: text ↔ septet values (23.038 §6.2.1), and septets ↔ packed octets (§6.1.2.1).
//!
//! Septet values are kept one per `u8` (0..=127) between the two steps, so that a user data
//! header and its fill bits can be placed in front before packing. Must never panic on any
//! input: decoding is total (unknown escapes fall back as 23.038 says), and unpacking stops
//! where the data ends.

use super::{GSM7_BASIC, GSM7_EXTENSION};

/// The escape septet that introduces an extension-table character.
pub(crate) const ESC: u8 = 0x1B;

/// The septet values of `text` (two for an extension character), or `None` if a character
/// has no GSM 7-bit form.
pub fn encode_gsm7(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        push_gsm7(c, &mut out)?;
    }
    Some(out)
}

/// Appends the septets of `c` to `out`, or returns `None` (and appends nothing) if it has none.
pub(crate) fn push_gsm7(c: char, out: &mut Vec<u8>) -> Option<()> {
    if c != '\u{1b}'
        && let Some(value) = GSM7_BASIC.iter().position(|it| *it == c)
    {
        out.push(u8::try_from(value).ok()?);
        return Some(());
    }
    let (_, value) = GSM7_EXTENSION.iter().find(|(it, _)| *it == c)?;
    out.extend([ESC, *value]);
    Some(())
}

/// The text of septet values (only the low 7 bits of each byte count).
///
/// An escape followed by a value the extension table lacks shows that value from the basic
/// table, and a doubled escape shows a space (23.038 §6.2.1.1). A lone escape at the very end
/// is dropped.
pub fn decode_gsm7(septets: &[u8]) -> String {
    let basic = |septet: u8| {
        GSM7_BASIC
            .get(usize::from(septet & 0x7F))
            .copied()
            .unwrap_or(' ')
    };
    let mut out = String::with_capacity(septets.len());
    let mut iter = septets.iter().map(|s| s & 0x7F);
    while let Some(septet) = iter.next() {
        if septet != ESC {
            out.push(basic(septet));
            continue;
        }
        match iter.next() {
            None => {}
            Some(ESC) => out.push(' '),
            Some(next) => match GSM7_EXTENSION.iter().find(|(_, value)| *value == next) {
                Some((c, _)) => out.push(*c),
                None => out.push(basic(next)),
            },
        }
    }
    out
}

/// Packs septet values into octets, least significant bit first, after `fill_bits` zero bits.
///
/// `fill_bits` (0..=6) aligns the text after a user data header to a septet boundary; larger
/// values are reduced modulo 8.
pub fn pack_septets(septets: &[u8], fill_bits: usize) -> Vec<u8> {
    let fill_bits = fill_bits % 8;
    let bits = fill_bits + septets.len() * 7;
    let mut out = vec![0u8; bits.div_ceil(8)];
    for (i, septet) in septets.iter().enumerate() {
        let position = fill_bits + i * 7;
        let value = u16::from(septet & 0x7F) << (position % 8);
        let [low, high] = value.to_le_bytes();
        if let Some(octet) = out.get_mut(position / 8) {
            *octet |= low;
        }
        if let Some(octet) = out.get_mut(position / 8 + 1) {
            *octet |= high;
        }
    }
    out
}

/// Unpacks up to `count` septet values from `octets`, skipping `fill_bits` leading bits.
///
/// Stops early, without error, when the octets run out; the caller compares lengths if it
/// cares.
pub fn unpack_septets(octets: &[u8], count: usize, fill_bits: usize) -> Vec<u8> {
    let available = (octets.len() * 8).saturating_sub(fill_bits) / 7;
    let count = count.min(available);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let position = fill_bits + i * 7;
        let low = octets.get(position / 8).copied().unwrap_or(0);
        let high = octets.get(position / 8 + 1).copied().unwrap_or(0);
        let word = u16::from_le_bytes([low, high]) >> (position % 8);
        out.push((word & 0x7F) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from python-gsmmodem's test_pdu.py (TestGsm7): text, septets, packed octets.
    const VECTORS: &[(&str, &[u8], &[u8])] = &[
        ("123", &[49, 50, 51], &[49, 217, 12]),
        ("12345678", b"12345678", &[49, 217, 140, 86, 179, 221, 112]),
        (
            "123456789",
            b"123456789",
            &[49, 217, 140, 86, 179, 221, 112, 57],
        ),
        (
            "Hello World!",
            b"Hello World!",
            &[200, 50, 155, 253, 6, 93, 223, 114, 54, 57, 4],
        ),
        (
            "[{abc}]~",
            &[
                0x1B, 0x3C, 0x1B, 0x28, 0x61, 0x62, 0x63, 0x1B, 0x29, 0x1B, 0x3E, 0x1B, 0x3D,
            ],
            &[27, 222, 6, 21, 22, 143, 55, 169, 141, 111, 211, 3],
        ),
        (
            "{åΦΓΛΩΠΨΣΘ€}",
            &[27, 40, 15, 18, 19, 20, 21, 22, 23, 24, 25, 27, 101, 27, 41],
            &[27, 212, 67, 50, 161, 84, 44, 23, 76, 102, 83, 222, 164, 0],
        ),
        (
            "a[]{}€",
            &[97, 27, 60, 27, 62, 27, 40, 27, 41, 27, 101],
            &[225, 13, 111, 227, 219, 160, 54, 169, 77, 25],
        ),
    ];

    #[test]
    fn vectors() {
        for (text, septets, packed) in VECTORS {
            assert_eq!(
                encode_gsm7(text).as_deref(),
                Some(*septets),
                "encode {text:?}"
            );
            assert_eq!(decode_gsm7(septets), *text, "decode {text:?}");
            assert_eq!(pack_septets(septets, 0), *packed, "pack {text:?}");
            assert_eq!(
                unpack_septets(packed, septets.len(), 0),
                *septets,
                "unpack {text:?}"
            );
        }
    }

    #[test]
    fn unencodable_and_odd_inputs() {
        assert_eq!(encode_gsm7("a世b"), None);
        assert_eq!(encode_gsm7("\u{1b}"), None, "ESC itself is not a character");
        // Unknown escape shows the basic character; doubled escape shows a space; trailing escape is dropped.
        assert_eq!(decode_gsm7(&[0x1B, 0x41, 0x1B, 0x1B, 0x42, 0x1B]), "A B");
        assert_eq!(decode_gsm7(&[0xC1]), "A", "high bit ignored");
        assert_eq!(unpack_septets(&[0xFF], 100, 0), vec![0x7F]);
        assert_eq!(unpack_septets(&[], 5, 3), Vec::<u8>::new());
    }

    #[test]
    fn fill_bits_shift_the_text() {
        let packed = pack_septets(b"AB", 1);
        assert_eq!(packed, vec![0x82, 0x42]);
        assert_eq!(unpack_septets(&packed, 2, 1), b"AB".to_vec());
    }
}
