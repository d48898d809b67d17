//! The user data header (23.040 §9.2.3.24): information elements in front of the text,
//! of which only concatenation (IEI 0x00 with an 8-bit reference, 0x08 with a 16-bit one) is
//! interpreted; the others are kept as they came.
//!
//! Must never panic on any input: a header longer than the user data, or an element longer
//! than its header, is [`PduError::InvalidUdh`].

use serde::Serialize;

use super::PduError;
use crate::gsm::RefSize;

/// The concatenation reference of a multipart message, the same in all its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcatRef {
    /// IEI 0x00, the common one.
    EightBit(u8),
    /// IEI 0x08, one octet more per part.
    SixteenBit(u16),
}

impl ConcatRef {
    /// The reference as a number.
    pub fn value(self) -> u16 {
        match self {
            ConcatRef::EightBit(value) => u16::from(value),
            ConcatRef::SixteenBit(value) => value,
        }
    }

    /// Whether this is an 8-bit or a 16-bit reference.
    pub fn size(self) -> RefSize {
        match self {
            ConcatRef::EightBit(_) => RefSize::EightBit,
            ConcatRef::SixteenBit(_) => RefSize::SixteenBit,
        }
    }
}

/// Which part of a multipart message this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Concat {
    /// The reference shared by all parts.
    pub reference: ConcatRef,
    /// How many parts the message has.
    pub total: u8,
    /// This part's number, from 1.
    pub seq: u8,
}

/// One information element other than the concatenation one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct InformationElement {
    /// The information element identifier (IEI), e.g. 0x05 for 16-bit application ports.
    pub id: u8,
    /// Its data, without identifier and length.
    #[serde(serialize_with = "super::hex::serialize")]
    pub data: Vec<u8>,
}

impl InformationElement {
    /// Identifier, length and data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.id, u8::try_from(self.data.len()).unwrap_or(u8::MAX)];
        out.extend(self.data.iter().take(usize::from(u8::MAX)));
        out
    }
}

impl From<Concat> for InformationElement {
    fn from(concat: Concat) -> Self {
        let data = match concat.reference {
            ConcatRef::EightBit(reference) => vec![reference, concat.total, concat.seq],
            ConcatRef::SixteenBit(reference) => {
                let [high, low] = reference.to_be_bytes();
                vec![high, low, concat.total, concat.seq]
            }
        };
        let id = match concat.reference {
            ConcatRef::EightBit(_) => 0x00,
            ConcatRef::SixteenBit(_) => 0x08,
        };
        InformationElement { id, data }
    }
}

/// A user data header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Udh {
    /// The first well-formed concatenation element, if any (written first when encoding).
    pub concat: Option<Concat>,
    /// Every other element, in order.
    pub other: Vec<InformationElement>,
}

impl Udh {
    /// A header holding only a concatenation element.
    pub fn with_concat(concat: Concat) -> Udh {
        Udh {
            concat: Some(concat),
            other: Vec::new(),
        }
    }

    /// The header as it goes in the user data: UDHL, then the elements; an element with more
    /// than 255 octets of data, or a header over 139 octets, is [`PduError::UserDataTooLong`].
    pub fn encode(&self) -> Result<Vec<u8>, PduError> {
        let mut elements: Vec<u8> = Vec::new();
        if let Some(concat) = self.concat {
            elements.extend(InformationElement::from(concat).to_bytes());
        }
        for element in &self.other {
            if element.data.len() > usize::from(u8::MAX) {
                return Err(PduError::UserDataTooLong);
            }
            elements.extend(element.to_bytes());
        }
        let length = u8::try_from(elements.len())
            .ok()
            .filter(|it| *it < 140)
            .ok_or(PduError::UserDataTooLong)?;
        let mut out = vec![length];
        out.extend(elements);
        Ok(out)
    }

    /// Reads a header from the start of the user data; returns it and how many octets it took
    /// (UDHL included).
    pub fn decode(user_data: &[u8]) -> Result<(Udh, usize), PduError> {
        let (&length, rest) = user_data.split_first().ok_or(PduError::InvalidUdh)?;
        let mut elements = rest
            .get(..usize::from(length))
            .ok_or(PduError::InvalidUdh)?;
        let mut udh = Udh::default();
        while let [id, length, rest @ ..] = elements {
            let data = rest
                .get(..usize::from(*length))
                .ok_or(PduError::InvalidUdh)?;
            elements = rest.get(usize::from(*length)..).unwrap_or(&[]);
            let concat = match (id, data) {
                (0x00, &[reference, total, seq]) => Some(Concat {
                    reference: ConcatRef::EightBit(reference),
                    total,
                    seq,
                }),
                (0x08, &[high, low, total, seq]) => Some(Concat {
                    reference: ConcatRef::SixteenBit(u16::from_be_bytes([high, low])),
                    total,
                    seq,
                }),
                _ => None,
            };
            match concat {
                Some(concat) if udh.concat.is_none() => udh.concat = Some(concat),
                _ => udh.other.push(InformationElement {
                    id: *id,
                    data: data.to_vec(),
                }),
            }
        }
        // A single octet left over cannot be an element; 23.040 does not allow it.
        if !elements.is_empty() {
            return Err(PduError::InvalidUdh);
        }
        Ok((udh, usize::from(length) + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::hex;

    #[test]
    fn concat_elements() {
        // python-gsmmodem test_pdu.py TestUdhConcatenation: (reference, seq, total) → element.
        let check = |reference: ConcatRef, seq: u8, total: u8, element: &str| {
            let concat = Concat {
                reference,
                total,
                seq,
            };
            assert_eq!(
                hex::encode(&InformationElement::from(concat).to_bytes()),
                element
            );
            let mut udh = hex::decode(element).unwrap_or_default();
            udh.insert(0, u8::try_from(udh.len()).unwrap_or(0));
            assert_eq!(Udh::decode(&udh), Ok((Udh::with_concat(concat), udh.len())));
        };
        check(ConcatRef::EightBit(23), 1, 3, "0003170301");
        check(ConcatRef::SixteenBit(384), 2, 4, "080401800402");
    }

    #[test]
    fn other_elements_are_kept() {
        // 16-bit ports element, then a concatenation element, then a second (ignored) one.
        let bytes = hex::decode("11050404D21466000317030108040001020300").unwrap_or_default();
        let (udh, used) = Udh::decode(&bytes).unwrap_or_default();
        assert_eq!(used, 18);
        assert_eq!(
            udh.concat,
            Some(Concat {
                reference: ConcatRef::EightBit(0x17),
                total: 3,
                seq: 1
            })
        );
        assert_eq!(
            udh.other,
            vec![
                InformationElement {
                    id: 0x05,
                    data: vec![0x04, 0xD2, 0x14, 0x66]
                },
                InformationElement {
                    id: 0x08,
                    data: vec![0x00, 0x01, 0x02, 0x03]
                },
            ]
        );
    }

    #[test]
    fn malformed_headers() {
        let check = |hex_text: &str| {
            let bytes = hex::decode(hex_text).unwrap_or_default();
            assert_eq!(Udh::decode(&bytes), Err(PduError::InvalidUdh), "{hex_text}");
        };
        check("");
        check("05000317");
        check("0400031703");
        check("0100");
    }
}
