//! `smshub pdu encode` and `smshub pdu decode`: the PDU codec at the command line, for people
//! debugging modems (Gammu ships the same kind of tool).
//!
//! `encode` gives, one per part, the hex written after `AT+CMGS=<n>` (SMSC prefix `00`, "use
//! the SIM's"); `decode` shows what a PDU from `+CMGR`, `+CMGL`, `+CMT` or `+CDS` holds, as
//! pretty JSON. Must never do I/O itself: the caller prints.

use anyhow::Context;
use smshub_protocol::pdu::{self, Address, Submit};

/// The PDUs of `text` to `to`, in hex, one per part. The concatenation reference is 0 so the
/// output is reproducible.
pub fn encode(
    to: &str,
    text: &str,
    status_report: bool,
    ucs2: bool,
) -> anyhow::Result<Vec<String>> {
    let address = Address::parse(to.trim()).with_context(|| format!("recipient {to:?}"))?;
    let submit = Submit::new(address, text)
        .status_report(status_report)
        .force_ucs2(ucs2);
    let pdus = submit.encode().context("encoding the message")?;
    Ok(pdus.into_iter().map(|it| it.hex).collect())
}

/// What a PDU (hex, SMSC prefix first, as modems print it) holds, as pretty JSON.
pub fn decode(hex: &str) -> anyhow::Result<String> {
    let compact: String = hex.split_whitespace().collect();
    let decoded = pdu::decode(&compact).context("decoding the PDU")?;
    Ok(serde_json::to_string_pretty(&decoded)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_published_vectors() {
        // python-gsmmodem's test_pdu.py: "Hello World!" to +27820001111.
        assert_eq!(
            encode("+27820001111", "Hello World!", false, false).unwrap(),
            ["0001000B917228001011F100000CC8329BFD065DDF72363904"]
        );
        // A status report request sets TP-SRR (first octet 0x21).
        assert!(
            encode("+27820001111", "Hello World!", true, false).unwrap()[0].starts_with("0021")
        );
        // 306 GSM 7-bit characters: two parts of 153 with an 8-bit reference.
        assert_eq!(
            encode("+213770123456", &"a".repeat(306), false, false)
                .unwrap()
                .len(),
            2
        );
        // UCS-2 on request: DCS 08.
        let ucs2 = encode("+213770123456", "Salam", false, true).unwrap();
        assert!(ucs2[0].contains("0008"), "{ucs2:?}");
        assert!(encode("not a number!", "x", false, false).is_err());
    }

    #[test]
    fn decodes_to_json() {
        let json = decode("0001000B917228001011F100000CC8329BFD065DDF72363904").unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], "submit");
        assert_eq!(value["to"]["number"], "+27820001111");
        assert_eq!(value["body"]["text"], "Hello World!");
        // Gammu tests/atgen: a status report, MR 54, delivered.
        let report =
            decode("07914875215652F006360B914892347527F3817003018104808170030181448000").unwrap();
        let value: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(
            (value["type"].as_str(), value["message_reference"].as_u64()),
            (Some("status_report"), Some(54))
        );
        assert_eq!(value["status"]["class"], "delivered");
        // Spaces and line breaks in pasted hex are ignored; garbage is an error.
        assert!(decode("0001000B917228001011F1 00000CC8329BFD065DDF72363904\n").is_ok());
        assert!(decode("ZZ").is_err());
    }
}
