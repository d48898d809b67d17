//! UCS-2 as phones really send it: big-endian UTF-16, surrogate pairs included.
//!
//! Must never panic: an odd trailing byte is ignored and a lone surrogate becomes U+FFFD.

/// The big-endian UTF-16 bytes of `text`.
pub fn encode_ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// The text of big-endian UTF-16 bytes; lone surrogates become U+FFFD, an odd last byte is ignored.
pub fn decode_ucs2(bytes: &[u8]) -> String {
    let units = bytes
        .as_chunks::<2>()
        .0
        .iter()
        .map(|pair| u16::from_be_bytes(*pair));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors() {
        // python-gsmmodem test_pdu.py TestUcs2, plus an emoji (surrogate pair).
        let check = |text: &str, bytes: &[u8]| {
            assert_eq!(encode_ucs2(text), bytes, "{text:?}");
            assert_eq!(decode_ucs2(bytes), text, "{text:?}");
        };
        check("あ叶葉", &[0x30, 0x42, 0x53, 0xF6, 0x84, 0x49]);
        check("はい", &[0x30, 0x6F, 0x30, 0x44]);
        check("😀", &[0xD8, 0x3D, 0xDE, 0x00]);
        assert_eq!(decode_ucs2(&[0xD8, 0x3D, 0x00]), "\u{FFFD}");
    }
}
