//! USSD (`AT+CUSD`): the command string to send, and what a `+CUSD:` reply says.
//!
//! Replies come in several shapes (research notes §1.5; Gammu `tests/at-ussd/*.dump`,
//! python-gsmmodem `TestUssd`): quoted text with a data coding scheme, text spanning lines,
//! no quotes and no dcs (Huawei E160), UCS-2 hex (dcs 72, or any dcs when `AT+CSCS="UCS2"`),
//! UCS-2 followed by garbage after a NUL (Telit HE910), and Huawei's packed GSM 7-bit hex. The
//! text is decoded by [`UssdReply::text`]. Must never panic on any input.

use super::{is_hex, strip_tag};
use crate::gsm::{decode_ucs2, pack_gsm7_hex, unpack_gsm7_hex};

/// `<m>` of a `+CUSD` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UssdStatus {
    /// 0: no further action required.
    Done,
    /// 1: the network waits for an answer (a menu).
    ActionRequired,
    /// 2: the network ended the session.
    Terminated,
    /// 3: another local client responded.
    OtherClient,
    /// 4: operation not supported.
    NotSupported,
    /// 5: network timeout.
    Timeout,
    /// Anything else.
    Other(u8),
}

impl UssdStatus {
    /// From `<m>`.
    pub fn from_number(value: u8) -> UssdStatus {
        match value {
            0 => UssdStatus::Done,
            1 => UssdStatus::ActionRequired,
            2 => UssdStatus::Terminated,
            3 => UssdStatus::OtherClient,
            4 => UssdStatus::NotSupported,
            5 => UssdStatus::Timeout,
            other => UssdStatus::Other(other),
        }
    }

    /// A short name for JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            UssdStatus::Done => "done",
            UssdStatus::ActionRequired => "action_required",
            UssdStatus::Terminated => "terminated",
            UssdStatus::OtherClient => "other_client",
            UssdStatus::NotSupported => "not_supported",
            UssdStatus::Timeout => "timeout",
            UssdStatus::Other(_) => "other",
        }
    }
}

/// A `+CUSD:` reply before its text is decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UssdReply {
    /// `<m>`.
    pub status: UssdStatus,
    /// `<str>` as sent (hex or text), when present.
    pub raw: Option<String>,
    /// `<dcs>`, when present.
    pub dcs: Option<u8>,
}

/// Reads a `+CUSD:` line (its text may contain newlines: the framer joins lines of an open
/// quote). Quotes are optional; the text runs to the last quote, as a DOTALL match of
/// `\+CUSD:\s*(\d),\s*"(.*)",\s*(\d+)` would.
pub fn parse_cusd(line: &str) -> Option<UssdReply> {
    let params = strip_tag(line, "+CUSD")?;
    let (status, rest) = match params.split_once(',') {
        Some((status, rest)) => (status, Some(rest.trim_start())),
        None => (params, None),
    };
    let status = UssdStatus::from_number(status.trim().parse().ok()?);
    let Some(rest) = rest.filter(|it| !it.is_empty()) else {
        return Some(UssdReply {
            status,
            raw: None,
            dcs: None,
        });
    };
    let (raw, tail) = match rest.strip_prefix('"') {
        Some(quoted) => match quoted.rfind('"') {
            Some(end) => (&quoted[..end], &quoted[end + 1..]),
            None => (quoted, ""),
        },
        None => match rest.rsplit_once(',') {
            Some((text, dcs)) if dcs.trim().parse::<u8>().is_ok() => (text, dcs),
            _ => (rest, ""),
        },
    };
    let dcs = tail.trim().trim_start_matches(',').trim().parse().ok();
    Some(UssdReply {
        status,
        raw: Some(raw.to_string()),
        dcs,
    })
}

/// Whether a USSD data coding scheme (23.038 §5, CBS groups) says UCS-2.
fn dcs_is_ucs2(dcs: u8) -> bool {
    dcs == 0x11 || (dcs & 0x80 == 0 && dcs & 0x40 != 0 && (dcs >> 2) & 0x03 == 2)
}

/// Decodes UCS-2 hex up to the first NUL; `None` when it does not read as text.
fn ucs2_text(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(4) {
        return None;
    }
    let bytes = crate::pdu::hex::decode(hex).ok()?;
    let end = bytes
        .chunks(2)
        .position(|pair| pair == [0, 0])
        .map_or(bytes.len(), |it| it * 2);
    let text = decode_ucs2(&bytes[..end]);
    plausible(&text).then_some(text)
}

/// Text without control characters other than CR, LF and tab, and without U+FFFD.
fn plausible(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
        && !text.contains('\u{fffd}')
}

impl UssdReply {
    /// The text, decoded. `packed` says the modem speaks Huawei's packed GSM 7-bit hex
    /// (Gammu `F_ENCODED_USSD`). Otherwise hex is taken as UCS-2 when the dcs says so or when
    /// it reads as UCS-2 text (modems in `AT+CSCS="UCS2"` send UCS-2 whatever the dcs), as
    /// packed GSM 7-bit when it has hex letters and reads as text, and as plain text otherwise.
    pub fn text(&self, packed: bool) -> Option<String> {
        let raw = self.raw.as_deref()?;
        let compact = raw.trim();
        if is_hex(compact) {
            if packed && let Ok(text) = unpack_gsm7_hex(compact) {
                return Some(text.trim_end_matches('\r').to_string());
            }
            let ucs2_dcs = self.dcs.is_some_and(dcs_is_ucs2);
            if (ucs2_dcs || compact.len() >= 8)
                && let Some(text) = ucs2_text(compact)
            {
                return Some(text);
            }
            if compact.len() >= 8
                && compact.bytes().any(|b| b.is_ascii_alphabetic())
                && let Ok(text) = unpack_gsm7_hex(compact)
                && plausible(&text)
            {
                return Some(text.trim_end_matches('\r').to_string());
            }
        }
        Some(raw.to_string())
    }
}

/// The `AT+CUSD` command for `code` (`*100#`): plain, or packed GSM 7-bit hex for modems that
/// want it (`*100#` → `AT+CUSD=1,"AA180C3602",15`).
pub fn command(code: &str, packed: bool) -> String {
    let body = if packed {
        pack_gsm7_hex(code)
    } else {
        code.replace('"', "")
    };
    format!("AT+CUSD=1,\"{body}\",15")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, packed: bool, status: UssdStatus, text: Option<&str>) {
        let reply = parse_cusd(line).unwrap_or_else(|| panic!("{line}"));
        assert_eq!(
            (reply.status, reply.text(packed).as_deref()),
            (status, text),
            "{line}"
        );
    }

    #[test]
    fn replies() {
        // python-gsmmodem test_modem.py TestUssd.
        check(
            "+CUSD: 0,\"Available Balance: R 96.45 .\",15",
            false,
            UssdStatus::Done,
            Some("Available Balance: R 96.45 ."),
        );
        check(
            "+CUSD: 1,\"Hallo daar\",15",
            false,
            UssdStatus::ActionRequired,
            Some("Hallo daar"),
        );
        check(
            "+CUSD: 2,\"You have the following remaining balances:\n0 free minutes\n20 MORE Weekend minutes \",15",
            false,
            UssdStatus::Terminated,
            Some(
                "You have the following remaining balances:\n0 free minutes\n20 MORE Weekend minutes ",
            ),
        );
        check(
            "+CUSD: 3,\"Other local client responded\",15",
            false,
            UssdStatus::OtherClient,
            Some("Other local client responded"),
        );
        check("+CUSD: 4", false, UssdStatus::NotSupported, None);
        // Gammu tests/at-ussd/02-E160.dump: Huawei packed GSM 7-bit with CR padding.
        check(
            "+CUSD: 0,\"49B41C74ACD3D16171D90D32FBE52072BA0C72CA5DB45CAC76C3CD6CB41B2D060389CB74F9FE4C07D55C371CA85897BF1B\",15",
            true,
            UssdStatus::Done,
            Some("Ihr Guthaben für die Nr.4915783647410 beträgt 5.78 Euro"),
        );
        // The same without knowing the modem packs: recognised by its hex letters.
        check(
            "+CUSD: 0,\"49B41C74ACD3D16171D90D32FBE52072BA0C72CA5DB45CAC76C3CD6CB41B2D060389CB74F9FE4C07D55C371CA85897BF1B\",15",
            false,
            UssdStatus::Done,
            Some("Ihr Guthaben für die Nr.4915783647410 beträgt 5.78 Euro"),
        );
        // Gammu 01-E160.dump: no quotes, no dcs.
        let e160 = parse_cusd("+CUSD: 0, 49B41C74ACD3D16171D90D66666666666666666666B45CAC76C3CD6CB41B2D060389CB74F9FE4C07DD5CB91AA85897BF1B").unwrap();
        assert_eq!(e160.dcs, None);
        assert!(
            e160.text(true)
                .is_some_and(|it| it.starts_with("Ihr Guthaben"))
        );
        // Gammu issue109-E3276.dump: UCS-2 with dcs 72.
        check(
            "+CUSD: 0,\"0414043B044F00200441043F044004300432043A04380020043E002004310430043B0430043D044104350020043D04300431043504400438044204350020002A0031003000350023002E002004230441043B0443043304300020043104350441043F043B04300442043D0430002E\",72",
            false,
            UssdStatus::Done,
            Some("Для справки о балансе наберите *105#. Услуга бесплатна."),
        );
        // Gammu Uissue358-Quectel_M35.dump: UCS-2 although dcs says 15 (CSCS="UCS2").
        let quectel = parse_cusd(
            "+CUSD: 2,\"00480061007600690020006B0065007200650074003A0020003000460074002E\",15",
        )
        .unwrap();
        assert_eq!(quectel.text(false).as_deref(), Some("Havi keret: 0Ft."));
        // Gammu issue377-HE910-D.dump: UCS-2 (dcs 17), then garbage after a NUL.
        let telit = parse_cusd("+CUSD: 2,\"0031003000370000FFFF60B16260EEEEFFFF\",17").unwrap();
        assert_eq!(telit.text(false).as_deref(), Some("107"));
        // Gammu issue178-dell.dump: plain text.
        check(
            "+CUSD: 0,\"On DATA Pack u have 3Gb 817Mb 169kb valid until 21/05/2016   upto time of data recharge done by u.\",15",
            false,
            UssdStatus::Done,
            Some(
                "On DATA Pack u have 3Gb 817Mb 169kb valid until 21/05/2016   upto time of data recharge done by u.",
            ),
        );
        // Plain digits stay digits.
        check(
            "+CUSD: 0,\"1234\",15",
            false,
            UssdStatus::Done,
            Some("1234"),
        );
        assert_eq!(parse_cusd("+CUSD: x,\"a\""), None);
        assert_eq!(parse_cusd("+CMTI: \"SM\",1"), None);
    }

    #[test]
    fn commands() {
        assert_eq!(command("*100#", true), "AT+CUSD=1,\"AA180C3602\",15");
        assert_eq!(command("*223#", false), "AT+CUSD=1,\"*223#\",15");
    }
}
