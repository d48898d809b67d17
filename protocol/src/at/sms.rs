//! SMS replies and notifications in PDU mode: `+CMGS: <mr>`, stored messages listed by
//! `AT+CMGL=<stat>` or read by `AT+CMGR=<index>`, and the `+CMTI`/`+CDSI` notices that a
//! message or status report was stored.
//!
//! Storage indexes are taken as given: Huawei numbers them from 0 (Gammu `F_SMS_LOCATION_0`).
//! Must never panic on any input.

use super::{fields, is_hex, strip_tag};

/// Reads the TP-MR from `+CMGS: <mr>` (a trailing `,<scts>` is ignored).
pub fn parse_cmgs(line: &str) -> Option<u8> {
    fields(strip_tag(line, "+CMGS")?).first()?.parse().ok()
}

/// `<stat>` of a stored message in PDU mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredStat {
    /// 0: received, unread.
    Unread,
    /// 1: received, read.
    Read,
    /// 2: stored, unsent.
    Unsent,
    /// 3: stored, sent.
    Sent,
    /// Anything else.
    Other(u8),
}

impl StoredStat {
    /// From the number.
    pub fn from_number(value: u8) -> StoredStat {
        match value {
            0 => StoredStat::Unread,
            1 => StoredStat::Read,
            2 => StoredStat::Unsent,
            3 => StoredStat::Sent,
            other => StoredStat::Other(other),
        }
    }

    /// The name in text mode (`REC UNREAD`, ...), lower-cased for JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredStat::Unread => "rec_unread",
            StoredStat::Read => "rec_read",
            StoredStat::Unsent => "sto_unsent",
            StoredStat::Sent => "sto_sent",
            StoredStat::Other(_) => "other",
        }
    }
}

/// A message stored on the modem or SIM, as listed or read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredPdu {
    /// The storage index (`+CMGL` gives it; `+CMGR` does not, the caller knows it).
    pub index: Option<u32>,
    /// Its state.
    pub stat: StoredStat,
    /// The TPDU length the modem announced.
    pub length: Option<u32>,
    /// The PDU hex, SMSC prefix first.
    pub pdu: String,
}

/// Splits `<header>[ <pdu>]`: ModemManager's generic `+CMGR` fixture has the PDU on the
/// header line after a space.
fn header_and_inline_pdu(params: &str) -> (&str, Option<&str>) {
    match params.rsplit_once(' ') {
        Some((head, tail))
            if is_hex(tail)
                && tail.len() > 16
                && head.trim_end().ends_with(|c: char| c.is_ascii_digit()) =>
        {
            (head.trim_end(), Some(tail))
        }
        _ => (params, None),
    }
}

/// Reads the lines of an `AT+CMGL` reply: `+CMGL: <index>,<stat>,[<alpha>],<length>` each
/// followed by its PDU line (the `<alpha>` field may be missing entirely, as from a Pantech
/// phone in ModemManager's fixtures). An empty list is no lines at all.
pub fn parse_cmgl<S: AsRef<str>>(lines: &[S]) -> Vec<StoredPdu> {
    let mut out = Vec::new();
    let mut iter = lines.iter().map(AsRef::as_ref).peekable();
    while let Some(line) = iter.next() {
        let Some(params) = strip_tag(line, "+CMGL") else {
            continue;
        };
        let (header, inline) = header_and_inline_pdu(params);
        let f = fields(header);
        let (Some(index), Some(stat)) = (
            f.first().and_then(|it| it.parse().ok()),
            f.get(1).and_then(|it| it.parse().ok()),
        ) else {
            continue;
        };
        let length = f
            .last()
            .filter(|_| f.len() >= 3)
            .and_then(|it| it.parse().ok());
        let pdu = match inline {
            Some(pdu) => pdu.to_string(),
            None => match iter.peek() {
                Some(next) if is_hex(next) => iter.next().unwrap_or_default().to_string(),
                _ => continue,
            },
        };
        out.push(StoredPdu {
            index: Some(index),
            stat: StoredStat::from_number(stat),
            length,
            pdu,
        });
    }
    out
}

/// Reads the lines of an `AT+CMGR=<index>` reply: `+CMGR: <stat>,[<alpha>],<length>` and the
/// PDU. An empty slot (`+CMGR: 0,,0` with no PDU, smstools3) is `None`.
pub fn parse_cmgr<S: AsRef<str>>(lines: &[S]) -> Option<StoredPdu> {
    let mut iter = lines.iter().map(AsRef::as_ref);
    let params = iter.by_ref().find_map(|line| strip_tag(line, "+CMGR"))?;
    let (header, inline) = header_and_inline_pdu(params);
    let f = fields(header);
    let stat = f.first()?.parse().ok()?;
    let length = f
        .last()
        .filter(|_| f.len() >= 2)
        .and_then(|it| it.parse().ok());
    let pdu = match inline {
        Some(pdu) => pdu.to_string(),
        None => iter.find(|line| is_hex(line))?.to_string(),
    };
    Some(StoredPdu {
        index: None,
        stat: StoredStat::from_number(stat),
        length,
        pdu,
    })
}

/// A stored-message notice: `+CMTI: "SM",3` (a message) or `+CDSI: "SR",1` (a status report).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredNotice {
    /// Whether it announces a status report (`+CDSI`) rather than a message (`+CMTI`).
    pub report: bool,
    /// The storage (`SM`, `ME`, `SR`, `MT`).
    pub storage: String,
    /// Where it is stored (from 0 on Huawei).
    pub index: u32,
}

/// Reads `+CMTI: "<mem>",<index>` or `+CDSI: "<mem>",<index>`.
pub fn parse_stored_notice(line: &str) -> Option<StoredNotice> {
    let (report, params) = match strip_tag(line, "+CMTI") {
        Some(params) => (false, params),
        None => (true, strip_tag(line, "+CDSI")?),
    };
    let f = fields(params);
    let index = f.get(1)?.parse().ok()?;
    Some(StoredNotice {
        report,
        storage: f.first()?.clone(),
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // ModemManager test-modem-helpers.c test_cmgl_response_generic.
    const MM_PDU: &str = "07914306073011F00405812261F700003130916191314095C274D96D2FBBD3E437280CB2BEC961F3DB5D76818EF2F0381D9E83E06F39A8CC2E9FD372F77BEE0249CBE37A594E0E83E2F532085E2F93CB73D0B93CA7A7DFEEB01C447F93DF7310BD3E07CDCB727B7A9C7ECF41E432C8FC96B7C32079189E26874179D0F8DD7E93C3A0B21B246AA641D637396C7EBBCB22D0FD7E77B5D376B3AB3C07";

    #[test]
    fn cmgs() {
        assert_eq!(parse_cmgs("+CMGS: 183"), Some(183));
        assert_eq!(parse_cmgs("+CMGS: 0,\"13/03/08,15:02:16+08\""), Some(0));
        assert_eq!(parse_cmgs("+CMGS: 300"), None);
        assert_eq!(parse_cmgs("+CMGS:"), None);
    }

    #[test]
    fn cmgl() {
        let lines = ["+CMGL: 0,1,,147".to_string(), MM_PDU.to_string()];
        assert_eq!(
            parse_cmgl(&lines),
            vec![StoredPdu {
                index: Some(0),
                stat: StoredStat::Read,
                length: Some(147),
                pdu: MM_PDU.into()
            }]
        );
        // Pantech: no <alpha> field; and stored-sent messages.
        let pantech = [
            "+CMGL: 17,3,35",
            "079100F40D1101000F001000B917118336058F300001954747A0E4ACF41F27298CDCE83C6EF371B0402814020",
            "+CMGL: 15,3,35",
            "079100F40D1101000F001000B917118336058F300001954747A0E4ACF41F27298CDCE83C6EF371B0402814020",
        ];
        let listed = parse_cmgl(&pantech);
        assert_eq!(
            listed
                .iter()
                .map(|it| (it.index, it.stat, it.length))
                .collect::<Vec<_>>(),
            [
                (Some(17), StoredStat::Sent, Some(35)),
                (Some(15), StoredStat::Sent, Some(35))
            ]
        );
        // python-gsmmodem test_modem.py: a stored message at index 0 (Huawei numbering).
        let pgm = [
            "+CMGL: 0,0,,35",
            "07917248014000F3240B917247587706F400003110824115248012C8329BFD06C9C373B8B82C97E741F034",
        ];
        assert_eq!(parse_cmgl(&pgm)[0].index, Some(0));
        assert!(parse_cmgl::<&str>(&[]).is_empty());
        assert!(
            parse_cmgl(&["+CMGL: 1,0,,20", "OK"]).is_empty(),
            "a header without PDU is dropped"
        );
        assert!(parse_cmgl(&["+CMGL: x,0,,20", "0011"]).is_empty());
    }

    #[test]
    fn cmgr() {
        // ModemManager: Telit HE910 puts "" in <alpha>; the generic fixture inlines the PDU.
        let telit = [
            "+CMGR: 0,\"\",50",
            "07916163838428F9040B916121021021F700005190514164220A23C4B0BCFD5E8740C4B0BCFD5E83C26E3248196687C9A0301D440DBBC3677918",
        ];
        let read = parse_cmgr(&telit).unwrap();
        assert_eq!((read.stat, read.length), (StoredStat::Unread, Some(50)));
        let inline = format!("+CMGR: 1,,147 {MM_PDU}");
        assert_eq!(
            parse_cmgr(&[inline]).map(|it| it.pdu),
            Some(MM_PDU.to_string())
        );
        // Gammu tests/at-sms: a real AT+CMGR transcript.
        let gammu = [
            "+CMGR: 3,,29",
            "0791361907001003B17A0C913619397750320000AD11CD701E340FB3C3F23CC81D0689C3BF",
        ];
        assert_eq!(parse_cmgr(&gammu).map(|it| it.stat), Some(StoredStat::Sent));
        // smstools3: an empty slot.
        assert_eq!(parse_cmgr(&["+CMGR: 0,,0"]), None);
        assert_eq!(parse_cmgr::<&str>(&[]), None);
    }

    #[test]
    fn notices() {
        let check = |line: &str, report: bool, storage: &str, index: u32| {
            assert_eq!(
                parse_stored_notice(line),
                Some(StoredNotice {
                    report,
                    storage: storage.into(),
                    index
                }),
                "{line}"
            );
        };
        check("+CMTI: \"ME\",1", false, "ME", 1);
        check("+CMTI: \"SM\",0", false, "SM", 0);
        check("+CDSI: \"SM\",3", true, "SM", 3);
        check("+CDSI:\"SR\",12", true, "SR", 12);
        assert_eq!(parse_stored_notice("+CMTI: \"SM\""), None);
        assert_eq!(parse_stored_notice("+CMT: ,23"), None);
    }
}
