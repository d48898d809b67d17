//! Packed GSM 7-bit hex, the form Huawei modems (and others with Gammu's `F_ENCODED_USSD`)
//! want in `AT+CUSD=1,"<hex>",15` and give back in `+CUSD: 0,"<hex>",15`.
//!
//! Padding follows 23.038 §6.1.2.3.1: when the septets would leave 7 spare bits in the last
//! octet (a count of 8n−1), a CR is appended so the receiver does not read an extra '@'; when
//! the text already ends with CR on an octet boundary, one more CR is added. For the common
//! case (7 characters, `AT+CUSD` strings are short) this is exactly ModemManager's Huawei rule
//! "pad when the length is a multiple of 7". Must never panic on any input.

use super::septets::{decode_gsm7, pack_septets, push_gsm7, unpack_septets};
use crate::pdu::PduError;
use crate::pdu::hex;

const CR: u8 = 0x0D;
const QUESTION_MARK: u8 = 0x3F;

/// The packed GSM 7-bit hex of `text` (uppercase), with CR padding; characters without a
/// GSM 7-bit form become `?`.
pub fn pack_gsm7_hex(text: &str) -> String {
    let mut septets = Vec::with_capacity(text.len() + 1);
    for c in text.chars() {
        if push_gsm7(c, &mut septets).is_none() {
            septets.push(QUESTION_MARK);
        }
    }
    let ends_with_cr_on_boundary = septets.len() % 8 == 0 && septets.last() == Some(&CR);
    if septets.len() % 8 == 7 || ends_with_cr_on_boundary {
        septets.push(CR);
    }
    hex::encode(&pack_septets(&septets, 0))
}

/// The text of packed GSM 7-bit hex; a padding CR on an octet boundary is removed.
pub fn unpack_gsm7_hex(hex_text: &str) -> Result<String, PduError> {
    let octets = hex::decode(hex_text)?;
    let mut septets = unpack_septets(&octets, octets.len() * 8 / 7, 0);
    if octets.len() % 7 == 0 && septets.last() == Some(&CR) {
        septets.pop();
    }
    Ok(decode_gsm7(&septets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors() {
        let check = |text: &str, packed: &str| {
            assert_eq!(pack_gsm7_hex(text), packed, "pack {text:?}");
            assert_eq!(
                unpack_gsm7_hex(packed).as_deref(),
                Ok(text),
                "unpack {packed}"
            );
        };
        // Research notes §1.5: the request Huawei wants for *100#.
        check("*100#", "AA180C3602");
        // 7 septets leave 7 spare bits: padded with CR to 8 septets in 7 octets.
        check("1234567", "31D98C56B3DD1A");
        // 8 septets fill 7 octets exactly: nothing to pad.
        check("12345678", "31D98C56B3DD70");
        check("", "");
        // A text that ends in CR on an octet boundary gets a second CR, which the receiver
        // keeps (23.038: CR CR means the same as CR).
        assert_eq!(pack_gsm7_hex("1234567\r"), "31D98C56B3DD1A0D");
        assert_eq!(
            unpack_gsm7_hex("31D98C56B3DD1A0D").as_deref(),
            Ok("1234567\r\r")
        );
    }

    #[test]
    fn gammu_e160_reply() {
        // Gammu tests/at-ussd/02-E160.dump (a real Huawei E160 +CUSD reply): 49 octets hold
        // 56 septets exactly and the last is the padding CR, which 23.038 says to remove
        // (ModemManager's Huawei decode() does; libGammu keeps it).
        let hex_text = "49B41C74ACD3D16171D90D32FBE52072BA0C72CA5DB45CAC76C3CD6CB41B2D060389CB74F9FE4C07D55C371CA85897BF1B";
        assert_eq!(
            unpack_gsm7_hex(hex_text).as_deref(),
            Ok("Ihr Guthaben für die Nr.4915783647410 beträgt 5.78 Euro")
        );
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert!(unpack_gsm7_hex("ABC").is_err());
        assert!(unpack_gsm7_hex("ZZ").is_err());
        assert_eq!(pack_gsm7_hex("я"), pack_gsm7_hex("?"));
    }
}
