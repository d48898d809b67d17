//! Properties of the AT framer and reply parsers under proptest: no input makes them panic, and
//! however the byte stream is split into reads, the framer reports the same events.
//!
//! Inputs mix random bytes with fragments of real modem output (research notes transcripts),
//! so splits land inside prompts, two-line URCs and multi-line `+CUSD` texts. Must never write
//! files or use the network.

use proptest::prelude::*;
use smshub_protocol::at::{Event, Framer, reply, sms, ussd};

/// Pieces of real modem output to build inputs from.
const FRAGMENTS: &[&str] = &[
    "\r\n",
    "\r",
    "OK\r\n",
    "ERROR\r\n",
    "+CME ERROR: 515\r\n",
    "+CMS ERROR: 500\r\n",
    "COMMAND NOT SUPPORT\r\n",
    "\r\n> ",
    "> \r\n",
    "+CMGS: 183\r\n",
    "+CMTI: \"SM\",0\r\n",
    "+CDSI: \"SR\",3\r\n",
    "+CMT: ,23\r07918497483252F0840B918496445078F700007121320144744004D4F29C0E\r",
    "+CDS:25\r07914875215652F006360B914892347527F3817003018104808170030181448000\r",
    "+CUSD: 2,\"You have\r\n0 free minutes\",15\r\n",
    "+CUSD: 0,\"AA180C3602\",15\r\n",
    "+ZPASR: \"UMTS\"\r\n",
    "^RSSI:17\r\n",
    "+CSQ: 14,99\r\n",
    "AT+CSQ\r",
    "0011000B911326880736F40000A700\x1a",
    "\"",
    ">",
];

fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => prop::sample::select(FRAGMENTS).prop_map(|it| it.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn run(bytes: &[u8], cuts: &[usize]) -> Vec<Event> {
    let mut framer = Framer::new();
    framer.expect_echo("AT+CSQ");
    let mut events = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.clamp(start, bytes.len());
        events.extend(framer.push(&bytes[start..cut]));
        start = cut;
    }
    events.extend(framer.push(&bytes[start..]));
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn splitting_never_changes_events(bytes in stream(), mut cuts in prop::collection::vec(0usize..600, 0..20)) {
        cuts.sort_unstable();
        let whole = run(&bytes, &[]);
        let split = run(&bytes, &cuts);
        prop_assert_eq!(&whole, &split);
        // Byte by byte too.
        let every: Vec<usize> = (0..bytes.len()).collect();
        prop_assert_eq!(&whole, &run(&bytes, &every));
    }

    #[test]
    fn parsers_never_panic(line in "\\PC{0,80}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for text in [line.as_str(), lossy.as_str()] {
            let _ = reply::parse_csq(text);
            let _ = reply::parse_cops(text);
            let _ = reply::parse_creg(text);
            let _ = reply::parse_cpin(text);
            let _ = reply::parse_sysinfo(text);
            let _ = reply::parse_iccid(text);
            let _ = reply::parse_imsi(text);
            let _ = reply::parse_csca(text);
            let _ = reply::parse_cpms_support(text);
            let _ = reply::parse_cpms_usage(text);
            let _ = reply::parse_cnmi_support(text).map(|it| it.candidates());
            let _ = sms::parse_cmgs(text);
            let _ = sms::parse_stored_notice(text);
            let _ = sms::parse_cmgl(&[text, text]);
            let _ = sms::parse_cmgr(&[text, text]);
            for packed in [false, true] {
                let _ = ussd::parse_cusd(text).map(|it| it.text(packed));
                let _ = ussd::command(text, packed);
            }
        }
        let _ = Framer::new().push(&bytes);
    }

    #[test]
    fn prefixed_random_replies_never_panic(
        tag in prop::sample::select(&["+CSQ:", "+COPS:", "+CREG:", "^SYSINFOEX:", "^SYSINFO:", "+CRSM:", "+CPMS:", "+CNMI:", "+CUSD:", "+CMGL:", "+CMGR:", "+CMTI:"][..]),
        rest in "[ 0-9A-F,\"()\\-]{0,60}",
    ) {
        let line = format!("{tag}{rest}");
        let _ = reply::parse_creg(&line);
        let _ = reply::parse_sysinfo(&line);
        let _ = reply::parse_iccid(&line);
        let _ = reply::parse_cpms_support(&line);
        let _ = reply::parse_cnmi_support(&line).map(|it| it.candidates());
        let _ = ussd::parse_cusd(&line).map(|it| it.text(true));
        let _ = ussd::parse_cusd(&line).map(|it| it.text(false));
        let _ = sms::parse_cmgl(&[line.as_str(), rest.as_str()]);
        let _ = sms::parse_cmgr(&[line.as_str(), rest.as_str()]);
    }
}

#[test]
fn a_reply_split_at_every_byte() {
    // python-gsmmodem issue #11 transcript: ZTE notifications around the prompt and +CMGS.
    let input = b"+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"\r\n+ZPASR: \"UMTS\"\r\n> \r\n+ZPASR: \"UMTS\"\r\n+CMGS: 7\r\nOK\r\n";
    let mut framer = Framer::new();
    let events: Vec<Event> = input.iter().flat_map(|b| framer.push(&[*b])).collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|it| match it {
            Event::Line(_) => "line",
            Event::Final(_) => "final",
            Event::Prompt => "prompt",
            Event::Echo(_) => "echo",
            Event::Urc(_) => "urc",
        })
        .collect();
    assert_eq!(kinds, ["urc", "urc", "prompt", "urc", "line", "final"]);
}
