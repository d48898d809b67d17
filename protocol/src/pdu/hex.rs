//! Hex text ↔ bytes, and a bounds-checked cursor over PDU bytes.
//!
//! Every read goes through [`Reader`], which answers [`PduError::Truncated`] instead of
//! indexing past the end: this is what keeps the decoders from panicking on any input.

use super::PduError;

/// Uppercase hex of `bytes`, as modems print PDUs.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0F)]));
    }
    out
}

/// The bytes of hex text (either case); surrounding whitespace is ignored.
pub fn decode(text: &str) -> Result<Vec<u8>, PduError> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return Err(PduError::OddHexLength(text.len()));
    }
    let digit = |position: usize, c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(PduError::InvalidHex { position }),
    };
    let pairs = text.as_bytes().as_chunks::<2>().0;
    let mut out = Vec::with_capacity(pairs.len());
    for (i, [high, low]) in pairs.iter().enumerate() {
        out.push(digit(2 * i, *high)? << 4 | digit(2 * i + 1, *low)?);
    }
    Ok(out)
}

/// Serializes bytes as uppercase hex (for the JSON of `smshub pdu decode`).
pub(crate) fn serialize<S: serde::Serializer>(
    bytes: &[u8],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&encode(bytes))
}

/// A cursor over PDU bytes whose reads fail with [`PduError::Truncated`] at the end.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    /// One octet, naming the field it belongs to for the error.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        Ok(self.take(1, field)?.first().copied().unwrap_or(0))
    }

    /// `n` octets.
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PduError> {
        let end = self
            .position
            .checked_add(n)
            .ok_or(PduError::Truncated { field })?;
        let slice = self
            .bytes
            .get(self.position..end)
            .ok_or(PduError::Truncated { field })?;
        self.position = end;
        Ok(slice)
    }

    /// Seven octets (a timestamp or an enhanced validity period).
    pub(crate) fn seven(&mut self, field: &'static str) -> Result<[u8; 7], PduError> {
        <[u8; 7]>::try_from(self.take(7, field)?).map_err(|_| PduError::Truncated { field })
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.position..).unwrap_or(&[]);
        self.position = self.bytes.len();
        rest
    }

    /// Whether every octet has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.position >= self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        assert_eq!(encode(&[0x00, 0xAB, 0x7f]), "00AB7F");
        assert_eq!(decode(" 00ab7F\r\n"), Ok(vec![0x00, 0xAB, 0x7F]));
        assert_eq!(decode("0"), Err(PduError::OddHexLength(1)));
        assert_eq!(decode("0G"), Err(PduError::InvalidHex { position: 1 }));
        assert_eq!(decode("é"), Err(PduError::InvalidHex { position: 0 }));
    }

    #[test]
    fn reader_stops_at_the_end() {
        let mut reader = Reader::new(&[1, 2, 3]);
        assert_eq!(reader.u8("a"), Ok(1));
        assert_eq!(reader.take(3, "b"), Err(PduError::Truncated { field: "b" }));
        assert_eq!(
            reader.take(usize::MAX, "c"),
            Err(PduError::Truncated { field: "c" })
        );
        assert_eq!(reader.take(2, "d"), Ok(&[2, 3][..]));
        assert!(reader.is_empty());
        assert_eq!(reader.rest(), &[] as &[u8]);
    }
}
