//! The PDU codec against published vectors, and its properties under proptest.
//!
//! Vectors come from the research notes (shared/research/modem_anchors.md): python-gsmmodem's
//! test_pdu.py, Gammu's tests/at-sms and tests/atgen dumps (real modem output) and libGammu runs.
//! Decoded PDUs are compared through `describe`, one line per PDU, so each case is one row.
//! These tests must never depend on anything outside the crate (no Python, no files).

use proptest::prelude::*;
use smshub_protocol::gsm::{self, Encoding, RefSize};
use smshub_protocol::pdu::{
    self, Address, Alphabet, Body, Concat, ConcatRef, DataCoding, DecodedPdu, Deliver,
    DeliveryStatus, InformationElement, PduError, Reassembler, StatusClass, StatusReport, Submit,
    Timestamp, TypeOfNumber, Udh, Validity, hex,
};

fn address(text: &str) -> Address {
    Address::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn describe(pdu: &DecodedPdu) -> String {
    let smsc = |smsc: &Option<Address>| smsc.as_ref().map_or("-".to_owned(), |a| a.number.clone());
    let udh = |udh: &Option<Udh>| match udh {
        None => String::new(),
        Some(Udh {
            concat: Some(c), ..
        }) => {
            let bits = if c.reference.size() == RefSize::EightBit {
                8
            } else {
                16
            };
            format!(
                " concat={bits}:{} {}/{}",
                c.reference.value(),
                c.seq,
                c.total
            )
        }
        Some(_) => " udh".to_owned(),
    };
    let body = |body: &Body| match body {
        Body::Text(text) => format!("text={text:?}"),
        Body::Data(data) => format!("data={}", hex::encode(data)),
    };
    match pdu {
        DecodedPdu::Deliver(d) => format!(
            "deliver smsc={} from={}({:?}) at={} dcs={:02X}{} {}",
            smsc(&d.smsc),
            d.sender,
            d.sender.ton,
            d.timestamp,
            d.coding.raw,
            udh(&d.udh),
            body(&d.body)
        ),
        DecodedPdu::Submit(s) => {
            let validity = match s.validity {
                Validity::None => "none".to_owned(),
                Validity::Relative(_) => format!("{}min", s.validity.minutes().unwrap_or(0)),
                Validity::Absolute(at) => at.to_string(),
                Validity::Enhanced(octets) => hex::encode(&octets),
            };
            format!(
                "submit smsc={} mr={} to={}({:?}) vp={validity} srr={} dcs={:02X}{} {}",
                smsc(&s.smsc),
                s.message_reference,
                s.to,
                s.to.ton,
                s.status_report,
                s.coding.raw,
                udh(&s.udh),
                body(&s.body)
            )
        }
        DecodedPdu::StatusReport(r) => format!(
            "status_report smsc={} mr={} to={} scts={} dt={} st={:02X} {:?}",
            smsc(&r.smsc),
            r.message_reference,
            r.recipient,
            r.sc_timestamp,
            r.discharge_time,
            r.status.0,
            r.status.class()
        ),
    }
}

#[test]
fn decodes_published_pdus() {
    let check = |hex_text: &str, expected: &str| {
        let got = pdu::decode(hex_text).map(|pdu| describe(&pdu));
        assert_eq!(got.as_deref(), Ok(expected), "{hex_text}");
    };
    // SUBMIT "Hello World!" to +27820001111 (python-gsmmodem; libGammu and smspdudecoder agree).
    check(
        "0001000B917228001011F100000CC8329BFD065DDF72363904",
        r#"submit smsc=- mr=0 to=+27820001111(International) vp=none srr=false dcs=00 text="Hello World!""#,
    );
    // +CMGL fixture (python-gsmmodem test_modem.py).
    check(
        "07917248014000F3240B917247587706F400003110824115248012C8329BFD06C9C373B8B82C97E741F034",
        r#"deliver smsc=+27841004003 from=+27748577604(International) at=2013-01-28T14:51:42+02:00 dcs=00 text="Hello raspberry pi""#,
    );
    // +CMGR of a stored SUBMIT (Gammu tests/at-sms): relative VP 0xAD = 7 days, SRR set.
    check(
        "0791361907001003B17A0C913619397750320000AD11CD701E340FB3C3F23CC81D0689C3BF",
        r#"submit smsc=+639170000130 mr=122 to=+639193770523(International) vp=10080min srr=true dcs=00 text="May salary na ba?""#,
    );
    // +CMT (Gammu tests/atgen/smsd-incoming-cmt.c).
    check(
        "07918497483252F0840B918496445078F700007121320144744004D4F29C0E",
        r#"deliver smsc=+48798423250 from=+48694405877(International) at=2017-12-23T10:44:47+01:00 dcs=00 text="Test""#,
    );
    // +CDS (Gammu tests/atgen): MR 54, delivered.
    check(
        "07914875215652F006360B914892347527F3817003018104808170030181448000",
        "status_report smsc=+84571265250 mr=54 to=+84294357723 scts=2018-07-30T10:18:40+02:00 dt=2018-07-30T10:18:44+02:00 st=00 Delivered",
    );
    // Status report without SMSC (python-gsmmodem): MR 214, RA +31628870634.
    check(
        "0006D60B911326880736F4111011719551401110117195714000",
        "status_report smsc=- mr=214 to=+31628870634 scts=2011-01-11T17:59:15+01:00 dt=2011-01-11T17:59:17+01:00 st=00 Delivered",
    );
    // python-gsmmodem test_decode vectors.
    check(
        "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
        r#"deliver smsc=+2782913593 from=+27821234567(International) at=2013-03-08T15:02:16+02:00 dcs=00 text="Test2""#,
    );
    check(
        "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
        r#"deliver smsc=+85290000000 from=+85291234567(International) at=2007-04-12T23:25:42+08:00 dcs=00 text="It is easy to read text messages via AT commands.""#,
    );
    // The same with a negative zone: TZ octet 2B is -32 quarter hours (libGammu: -08:00).
    check(
        "07915892000000F0040B915892214365F700007040213252242B31493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
        r#"deliver smsc=+85290000000 from=+85291234567(International) at=2007-04-12T23:25:42-08:00 dcs=00 text="It is easy to read text messages via AT commands.""#,
    );
    check(
        "06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910",
        r#"deliver smsc=+2782913593 from=+27821234567(International) at=2013-03-26T13:35:25+02:00 dcs=00 text="@{tést}!""#,
    );
    check(
        "07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701",
        r#"submit smsc=+31624000000 mr=13 to=+31628870634(International) vp=4320min srr=true dcs=00 text="www.diafaan.com""#,
    );
    // GSM 7-bit after an 8-bit concatenation header (one fill bit, set by this sender).
    check(
        "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E064941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7E565D0DB0D82C55EB0DB4B068BCD5C20",
        r#"deliver smsc=+2781191 from=2781188(Unknown) at=2013-06-25T16:40:48+02:00 dcs=00 concat=8:195 1/1 text="Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. ""#,
    );
    check(
        "07914346466554F601000B914316565811F9000806304253F68449",
        r#"submit smsc=+34646456456 mr=0 to=+34616585119(International) vp=none srr=false dcs=08 text="あ叶葉""#,
    );
    // TP-UDL claims more than there is: decoded as far as it goes (libGammu rejects it).
    check(
        "0041010C910661345542F60008A0050003000301306F3044",
        r#"submit smsc=- mr=1 to=+60164355246(International) vp=none srr=false dcs=08 concat=8:0 1/3 text="はい""#,
    );
    check(
        "0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421",
        "submit smsc=+2781191 mr=0 to=+27821234567(International) vp=none srr=false dcs=04 data=48656C6C6F20776F726C6421",
    );
    check(
        "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301",
        r#"submit smsc=- mr=0 to=+27820001111(International) vp=2013-07-10T13:39:00+02:00 srr=false dcs=00 text="Timestamp validity test""#,
    );
    // A ZTE status report with a broken recipient (python-gsmmodem): decoded, digits as found.
    check(
        "0297F1061C0F910B487228297020F5317062419272803170624192138000",
        "status_report smsc=+1 mr=28 to=+#08427829207025 scts=2013-07-26T14:29:27+02:00 dt=2013-07-26T14:29:31+02:00 st=00 Delivered",
    );
    // Alphanumeric sender, UCS-2, part 1 of 2.
    check(
        "07919762020033F1400DD0CDF2396C7EBB010008415072411084618C0500035602010053004D005300200063006F00640065003A00200034003800350036002C00200063006F006E006600690072006D006100740069006F006E0020006F00660020006100730073006F00630069006100740069006F006E0020006200650074007700650065006E0020006100630063006F0075006E007400200061006E00640020004D00650067",
        r#"deliver smsc=+79262000331 from=Megafon(Alphanumeric) at=2014-05-27T14:01:48+04:00 dcs=08 concat=8:86 1/2 text="SMS code: 4856, confirmation of association between account and Meg""#,
    );
    // Alphanumeric sender "FRANCOIS" (python-gsmmodem address vector) in a DELIVER.
    check(
        "00040ED04669D0397C26A700005111720000008004D4F29C0E",
        r#"deliver smsc=- from=FRANCOIS(Alphanumeric) at=2015-11-27T00:00:00+02:00 dcs=00 text="Test""#,
    );
    // 16-bit reference (libGammu's 060804093703 01 header) with 8-bit data after it.
    check(
        "0044039121F30004515022113321000B06080409370301CAFEBABE",
        "deliver smsc=- from=+123(International) at=2015-05-22T11:33:12+00:00 dcs=04 concat=16:2359 1/3 data=CAFEBABE",
    );
    // Other elements (16-bit application ports) are kept and do not hide the concatenation.
    check(
        "0044039121F3000051502211332100100B050404D21466000317020120D3",
        r#"deliver smsc=- from=+123(International) at=2015-05-22T11:33:12+00:00 dcs=00 concat=8:23 1/2 text="Hi""#,
    );
}

#[test]
fn rejects_malformed_pdus() {
    let check = |hex_text: &str, expected: PduError| {
        assert_eq!(pdu::decode(hex_text), Err(expected), "{hex_text:?}");
    };
    check(
        "",
        PduError::Truncated {
            field: "SMSC address",
        },
    );
    check(
        "07917248",
        PduError::Truncated {
            field: "SMSC address",
        },
    );
    check(
        "00",
        PduError::Truncated {
            field: "first octet",
        },
    );
    check("0003", PduError::ReservedMessageType);
    check("ABC", PduError::OddHexLength(3));
    // Gammu tests/atgen: "+CDS:25\rBAD\r".
    check("BAD", PduError::OddHexLength(3));
    check("0G", PduError::InvalidHex { position: 1 });
    check("0001000B9172280010", PduError::Truncated { field: "TP-DA" });
    check(
        "0001000B917228001011F10000",
        PduError::Truncated { field: "TP-UDL" },
    );
    check(
        "0004039121F3000051502211",
        PduError::Truncated { field: "TP-SCTS" },
    );
    check(
        "0006D60B911326880736F41110117195514011101171957140",
        PduError::Truncated { field: "TP-ST" },
    );
    // UDHI set, a header of 4 octets in 4 octets of user data (UDHL itself needs one more).
    check(
        "0044039121F30000515022113321000404A00030",
        PduError::InvalidUdh,
    );
}

#[test]
fn decodes_without_smsc_prefix() {
    let with = pdu::decode("07918497483252F0840B918496445078F700007121320144744004D4F29C0E");
    let without = pdu::decode_tpdu("840B918496445078F700007121320144744004D4F29C0E");
    let strip = |pdu: DecodedPdu| match pdu {
        DecodedPdu::Deliver(deliver) => Some(Deliver {
            smsc: None,
            ..deliver
        }),
        _ => None,
    };
    assert_eq!(with.map(strip), without.map(strip));
    assert!(matches!(
        pdu::decode_tpdu_bytes(&[0x84]),
        Err(PduError::Truncated { field: "TP-OA" })
    ));
}

#[test]
fn encodes_published_submits() {
    let check = |submit: &Submit, expected: &[&str]| {
        let got = submit.encode().unwrap_or_else(|e| panic!("{e}"));
        let hexes: Vec<&str> = got.iter().map(|part| part.hex.as_str()).collect();
        assert_eq!(hexes, expected, "{:?}", submit.text);
        for part in &got {
            let smsc_octets = usize::from(
                hex::decode(&part.hex)
                    .unwrap_or_default()
                    .first()
                    .copied()
                    .unwrap_or(0),
            ) + 1;
            assert_eq!(
                part.tpdu_len,
                part.hex.len() / 2 - smsc_octets,
                "{}",
                part.hex
            );
        }
    };
    check(
        &Submit::new(address("+27820001111"), "Hello World!"),
        &["0001000B917228001011F100000CC8329BFD065DDF72363904"],
    );
    // UCS-2, 52 weeks, explicit SMSC (python-gsmmodem).
    check(
        &Submit::new(address("+123456789"), "世界您好！")
            .validity(Validity::relative_minutes(52 * 7 * 24 * 60))
            .smsc(address("+44000000000")),
        &["07914400000000F01100099121436587F90008F40A4E16754C60A8597DFF01"],
    );
    // Status report request with relative validity: first octet 0x31 (python-gsmmodem's text-mode CSMP 49).
    check(
        &Submit::new(address("+27820001111"), "Hi")
            .status_report(true)
            .validity(Validity::Relative(167)),
        &["0031000B917228001011F10000A702C834"],
    );
    assert_eq!(
        Submit::new(address("+27820001111"), "Hello World!")
            .encode()
            .map(|p| p[0].tpdu_len),
        Ok(24)
    );
}

#[test]
fn encodes_published_submits_with_other_header_fields() {
    // python-gsmmodem's vectors set TP-MR and TP-RD, which the builder leaves to the modem; set
    // them on the per-part PDUs it makes.
    let check = |submit: Submit, mr: u8, reject_duplicates: bool, expected: &[&str]| {
        let pdus = submit.pdus().unwrap_or_else(|e| panic!("{e}"));
        let hexes: Vec<String> = pdus
            .into_iter()
            .map(|pdu| pdu::SubmitPdu {
                message_reference: mr,
                reject_duplicates,
                ..pdu
            })
            .map(|pdu| {
                pdu.encode()
                    .map(|part| part.hex)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        assert_eq!(hexes, expected);
    };
    let national = |number: &str| Address {
        number: number.to_owned(),
        ton: TypeOfNumber::National,
        npi: 1,
    };
    // (The test passes its "reject duplicates" flag into the status report parameter: SRR.)
    let mut local = Submit::new(national("0126541234"), "Test message: local numbers")
        .validity(Validity::relative_minutes(3 * 24 * 60))
        .status_report(true);
    local.smsc = Some(national("12345"));
    check(
        local,
        13,
        false,
        &["04A12143F5310D0AA110624521430000A91BD4F29C0E6A97E7F3F0B9AC03B1DFE3301BE4AEB7C565F91C"],
    );
    // Three parts, 8-bit reference 0 (python-gsmmodem test_encodeSmsSubmit_concatenated).
    let lorem = "Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.Ut enim ad minim veniam, quinostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.Duis aute irure dolor in reprehenderit in voluptate velit esse cillum doloe eu fugiat nulla pariatur.Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum";
    check(
        Submit::new(address("+15125551234"), lorem),
        0,
        true,
        &[
            "0045000B915121551532F40000A0050003000301986F79B90D4AC3E7F53688FC66BFE5A0799A0E0AB7CB741668FC76CFCB637A995E9783C2E4343C3D4F8FD3EE33A8CC4ED359A079990C22BF41E5747DDE7E9341F4721BFE9683D2EE719A9C26D7DD74509D0E6287C56F791954A683C86FF65B5E06B5C36777181466A7E3F5B0AB4A0795DDE936284C06B5D3EE741B642FBBD3E1360B14AFA7DD",
            "0045000B915121551532F40000A0050003000302DE73BABC4E0695F165F9384D0FD3D36F37A8CE6687DBE337881D16BFE5E939C89D9EA741753A28CC4EC7EB6938A88C0795C3A0F1BBDD7E93DFA0F1DB3D2FC7EB61BA8B584FCF41E13ABD0C4ACBEBF23288FC66BFE5A0B41B242FC3E56574D94D2ECBD37450DA0DB2BFD975383D4C2F83EC65769A0E2ACFE765D038CD66D7DB20F29BFD2E83CA",
            "0045000B915121551532F400008C050003000303EA2073FD9C0ED341EE3A9B1D06C1C3F274985E97BB8AF871194E2FD7E5A079DA4D07BDC7E370791CA683C675789A1CA687E920F7DB0D82CBDF6972D94D6781E675371D947683C675363C0C8AD7D3A0B7D99C1EA7C32072795E96D7DD7450FBCD66A7E9A0B03BDD06A5C9A0F29C0E6287C56F79BD0D",
        ],
    );
}

#[test]
fn part_counts_follow_the_reference_size() {
    // Research notes §2.9 (libGammu EncodeSMS): 306 GSM 7-bit characters are 2 parts with an
    // 8-bit reference and 3 with a 16-bit one; 134 UCS-2 characters likewise.
    let check = |text: &str, reference: ConcatRef, encoding: Encoding, parts: usize| {
        let submit = Submit::new(address("+4915112345678"), text).reference(reference);
        assert_eq!(submit.encoding(), encoding);
        assert_eq!(submit.segmentation().parts, parts, "{reference:?}");
        assert_eq!(submit.encode().map(|p| p.len()), Ok(parts), "{reference:?}");
    };
    check(&"a".repeat(306), ConcatRef::EightBit(1), Encoding::Gsm7, 2);
    check(
        &"a".repeat(306),
        ConcatRef::SixteenBit(1),
        Encoding::Gsm7,
        3,
    );
    check(&"я".repeat(134), ConcatRef::EightBit(1), Encoding::Ucs2, 2);
    check(
        &"я".repeat(134),
        ConcatRef::SixteenBit(1),
        Encoding::Ucs2,
        3,
    );
    check(
        &"a".repeat(160),
        ConcatRef::SixteenBit(1),
        Encoding::Gsm7,
        1,
    );
    check(&"€".repeat(81), ConcatRef::EightBit(1), Encoding::Gsm7, 2);
    assert_eq!(
        gsm::segment(&"a".repeat(306)).parts,
        2,
        "the hub's count uses the 8-bit reference"
    );
    let forced = Submit::new(address("+4915112345678"), "plain").force_ucs2(true);
    assert_eq!(
        (forced.encoding(), forced.segmentation().units),
        (Encoding::Ucs2, 5)
    );
    let too_long = Submit::new(address("+4915112345678"), "a".repeat(153 * 255 + 1));
    assert_eq!(too_long.encode(), Err(PduError::TooManyParts(256)));
}

#[test]
fn serializes_to_json() {
    let decoded = pdu::decode("07914875215652F006360B914892347527F3817003018104808170030181448000");
    let json = decoded
        .map(|pdu| serde_json::to_value(pdu).unwrap_or_default())
        .unwrap_or_default();
    let expected = serde_json::json!({
        "type": "status_report",
        "smsc": {"number": "+84571265250", "ton": "international", "npi": 1},
        "message_reference": 54,
        "recipient": {"number": "+84294357723", "ton": "international", "npi": 1},
        "sc_timestamp": {"year": 2018, "month": 7, "day": 30, "hour": 10, "minute": 18, "second": 40, "tz_quarters": 8},
        "discharge_time": {"year": 2018, "month": 7, "day": 30, "hour": 10, "minute": 18, "second": 44, "tz_quarters": 8},
        "status": {"code": 0, "class": "delivered", "description": "received by the recipient"},
        "more_messages": false,
        "qualifier": false,
        "protocol_id": null,
        "coding": null,
        "udh": null,
        "body": null
    });
    assert_eq!(json, expected);
    let deliver = pdu::decode("0044039121F30004515022113321000B06080409370301CAFEBABE");
    let json = deliver
        .map(|pdu| serde_json::to_value(pdu).unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(
        json["udh"]["concat"],
        serde_json::json!({"reference": {"sixteen_bit": 2359}, "total": 3, "seq": 1})
    );
    assert_eq!(json["body"], serde_json::json!({"data": "CAFEBABE"}));
    assert_eq!(
        json["coding"],
        serde_json::json!({"raw": 4, "alphabet": "eight_bit", "class": null, "compressed": false})
    );
}

#[test]
fn reencodes_decoded_pdus_exactly() {
    // Decoding then encoding a well-formed PDU gives it back octet for octet. (Not every real
    // one is: the +CMGR SUBMIT above has a 1 in the spare bit of its last octet.)
    for hex_text in [
        "07917248014000F3240B917247587706F400003110824115248012C8329BFD06C9C373B8B82C97E741F034",
        "07918497483252F0840B918496445078F700007121320144744004D4F29C0E",
        "07914875215652F006360B914892347527F3817003018104808170030181448000",
        "0006D60B911326880736F4111011719551401110117195714000",
        "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301",
        "0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421",
        "0044039121F30004515022113321000B06080409370301CAFEBABE",
    ] {
        let encoded = match pdu::decode(hex_text) {
            Ok(DecodedPdu::Deliver(d)) => d.encode(),
            Ok(DecodedPdu::Submit(s)) => s.encode(),
            Ok(DecodedPdu::StatusReport(r)) => r.encode(),
            Err(e) => panic!("{hex_text}: {e}"),
        };
        assert_eq!(encoded.map(|p| p.hex), Ok(hex_text.to_owned()));
    }
}

fn deliver_part(
    sender: &Address,
    concat: Option<Concat>,
    text: &str,
    alphabet: Alphabet,
) -> Deliver {
    Deliver {
        smsc: None,
        sender: sender.clone(),
        protocol_id: 0,
        coding: DataCoding::of(alphabet),
        timestamp: Timestamp {
            year: 2024,
            month: 2,
            day: 29,
            hour: 23,
            minute: 59,
            second: 59,
            tz_quarters: -14,
        },
        more_messages: false,
        status_report_indication: false,
        reply_path: false,
        udh: concat.map(Udh::with_concat),
        body: Body::Text(text.to_owned()),
    }
}

#[test]
fn reassembles_in_any_order_ignoring_duplicates() {
    let alice = address("+4915112345678");
    let bob = address("Bob");
    let part = |sender: &Address, reference, seq, text: &str| {
        deliver_part(
            sender,
            Some(Concat {
                reference,
                total: 3,
                seq,
            }),
            text,
            Alphabet::Gsm7,
        )
    };
    let mut reassembler = Reassembler::new();
    assert_eq!(
        reassembler.push(part(&alice, ConcatRef::EightBit(7), 3, "!"), 10),
        None
    );
    assert_eq!(
        reassembler.push(part(&alice, ConcatRef::SixteenBit(7), 1, "other "), 10),
        None
    );
    assert_eq!(
        reassembler.push(part(&bob, ConcatRef::EightBit(7), 1, "bob "), 10),
        None
    );
    assert_eq!(
        reassembler.push(part(&alice, ConcatRef::EightBit(7), 1, "Hello "), 11),
        None
    );
    assert_eq!(
        reassembler.push(part(&alice, ConcatRef::EightBit(7), 1, "duplicate "), 12),
        None
    );
    assert_eq!(reassembler.pending(), 3);
    let message = reassembler.push(part(&alice, ConcatRef::EightBit(7), 2, "world"), 13);
    assert_eq!(
        message.as_ref().map(|m| (&m.body, m.parts, &m.sender)),
        Some((&Body::Text("Hello world!".into()), 3, &alice))
    );
    assert_eq!(reassembler.pending(), 2);
    // Not concatenated (or nonsense concatenation): out at once.
    let single = reassembler.push(deliver_part(&alice, None, "one", Alphabet::Gsm7), 14);
    assert_eq!(single.map(|m| m.body), Some(Body::Text("one".into())));
    let bogus = Concat {
        reference: ConcatRef::EightBit(1),
        total: 2,
        seq: 3,
    };
    let single = reassembler.push(deliver_part(&alice, Some(bogus), "odd", Alphabet::Gsm7), 14);
    assert_eq!(single.map(|m| m.parts), Some(1));
    // Expiry: nothing is older than 5 at time 14; everything is older than 1 at 100.
    assert!(reassembler.expire(14, 5).is_empty());
    let expired = reassembler.expire(100, 1);
    let mut senders: Vec<(String, usize)> = expired
        .iter()
        .map(|e| (e.key.sender.number.clone(), e.parts.len()))
        .collect();
    senders.sort();
    assert_eq!(
        senders,
        vec![("+4915112345678".to_owned(), 1), ("Bob".to_owned(), 1)]
    );
    assert_eq!(reassembler.pending(), 0);

    // A part read again later (a modem's storage swept every minute) is no progress: the
    // message still expires from its last new part.
    assert_eq!(
        reassembler.push(part(&alice, ConcatRef::EightBit(9), 1, "a"), 200),
        None
    );
    for now in [250, 300, 350] {
        assert_eq!(
            reassembler.push(part(&alice, ConcatRef::EightBit(9), 1, "a"), now),
            None
        );
    }
    assert_eq!(reassembler.expire(350, 100).len(), 1);
}

#[test]
fn reassembles_data_parts_as_data() {
    let sender = address("+123");
    let mut reassembler = Reassembler::new();
    let data = |seq, bytes: &[u8]| Deliver {
        coding: DataCoding::of(Alphabet::EightBit),
        body: Body::Data(bytes.to_vec()),
        ..deliver_part(
            &sender,
            Some(Concat {
                reference: ConcatRef::EightBit(1),
                total: 2,
                seq,
            }),
            "",
            Alphabet::EightBit,
        )
    };
    assert_eq!(reassembler.push(data(2, &[3, 4]), 0), None);
    assert_eq!(
        reassembler.push(data(1, &[1, 2]), 0).map(|m| m.body),
        Some(Body::Data(vec![1, 2, 3, 4]))
    );
}

#[test]
fn information_elements_encode_as_published() {
    // python-gsmmodem TestUdhConcatenation and TestUdhPortAddress.
    let check = |element: InformationElement, expected: &str| {
        assert_eq!(hex::encode(&element.to_bytes()), expected);
    };
    check(
        Concat {
            reference: ConcatRef::EightBit(23),
            total: 3,
            seq: 1,
        }
        .into(),
        "0003170301",
    );
    check(
        Concat {
            reference: ConcatRef::SixteenBit(384),
            total: 4,
            seq: 2,
        }
        .into(),
        "080401800402",
    );
    check(
        InformationElement {
            id: 0x04,
            data: vec![100, 50],
        },
        "04026432",
    );
    check(
        InformationElement {
            id: 0x05,
            data: vec![0x04, 0xD2, 0x14, 0x66],
        },
        "050404D21466",
    );
}

// ---------------------------------------------------------------------------------------------
// Properties.

/// Characters of the GSM 7-bit alphabet, extension table included (ESC itself excluded).
fn gsm7_char() -> impl Strategy<Value = char> {
    let chars: Vec<char> = (0u32..0x250)
        .filter_map(char::from_u32)
        .filter(|c| gsm::gsm7_cost(*c).is_some())
        .collect();
    let greek: Vec<char> = "ΔΦΓΛΩΠΨΣΘΞ€".chars().collect();
    prop_oneof![3 => prop::sample::select(chars), 1 => prop::sample::select(greek), 1 => prop::sample::select(vec!['{', '}', '[', ']', '~', '|', '^', '\\', '\u{0c}'])]
}

/// Any character, with emoji (surrogate pairs) and GSM 7-bit characters weighted up.
fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        2 => any::<char>(),
        2 => (0x1F300u32..0x1FAFF).prop_map(|c| char::from_u32(c).unwrap_or('😀')),
        2 => gsm7_char(),
        1 => prop::sample::select(vec!['я', 'ü', 'ß', 'é', '中', '\u{1b}', '\u{feff}']),
    ]
}

fn text_of(chars: impl Strategy<Value = char>, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(chars, 0..max).prop_map(|chars| chars.into_iter().collect())
}

fn concat_ref() -> impl Strategy<Value = ConcatRef> {
    prop_oneof![
        any::<u8>().prop_map(ConcatRef::EightBit),
        any::<u16>().prop_map(ConcatRef::SixteenBit)
    ]
}

fn digits(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(b"0123456789*#abc".to_vec()), min..=max)
        .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
}

fn number() -> impl Strategy<Value = Address> {
    (
        digits(1, 20),
        0u8..7,
        prop::sample::select(vec![0u8, 1, 8, 9]),
    )
        .prop_map(|(digits, ton, npi)| {
            let ton = TypeOfNumber::from_type_of_address(ton << 4);
            let ton = if ton == TypeOfNumber::Alphanumeric {
                TypeOfNumber::Unknown
            } else {
                ton
            };
            let number = if ton == TypeOfNumber::International {
                format!("+{digits}")
            } else {
                digits
            };
            Address { number, ton, npi }
        })
}

fn any_address() -> impl Strategy<Value = Address> {
    let alphanumeric = text_of(gsm7_char(), 12)
        .prop_filter("1 to 11 septets", |t| {
            (1..=11).contains(&gsm::encode_gsm7(t).map_or(0, |s| s.len()))
        })
        .prop_map(|number| Address {
            number,
            ton: TypeOfNumber::Alphanumeric,
            npi: 0,
        });
    prop_oneof![3 => number(), 1 => alphanumeric]
}

fn smsc() -> impl Strategy<Value = Option<Address>> {
    prop::option::of(
        (digits(1, 20), any::<bool>()).prop_map(|(digits, international)| match international {
            true => Address {
                number: format!("+{digits}"),
                ton: TypeOfNumber::International,
                npi: 1,
            },
            false => Address {
                number: digits,
                ton: TypeOfNumber::Unknown,
                npi: 1,
            },
        }),
    )
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (
        1990u16..2090,
        0u8..100,
        0u8..100,
        0u8..100,
        0u8..100,
        0u8..100,
        -79i8..=79,
    )
        .prop_map(
            |(year, month, day, hour, minute, second, tz_quarters)| Timestamp {
                year,
                month,
                day,
                hour,
                minute,
                second,
                tz_quarters,
            },
        )
}

fn udh() -> impl Strategy<Value = Option<Udh>> {
    let concat =
        (concat_ref(), any::<u8>(), any::<u8>()).prop_map(|(reference, total, seq)| Concat {
            reference,
            total,
            seq,
        });
    let other = (
        prop::sample::select(vec![0x01u8, 0x04, 0x05, 0x0A, 0x24, 0x25, 0x70]),
        prop::collection::vec(any::<u8>(), 0..5),
    )
        .prop_map(|(id, data)| InformationElement { id, data });
    prop::option::of(
        (prop::option::of(concat), prop::collection::vec(other, 0..3))
            .prop_map(|(concat, other)| Udh { concat, other }),
    )
}

/// A data coding and a body that fits it (and 140 octets with a header of up to 25 octets).
fn coded_body() -> impl Strategy<Value = (DataCoding, Body)> {
    let gsm7 = (
        prop::sample::select(vec![
            0x00u8, 0x10, 0x13, 0x0C, 0x40, 0x90, 0xC8, 0xD0, 0xF0, 0xF3,
        ]),
        text_of(gsm7_char(), 60),
    )
        .prop_map(|(raw, text)| (DataCoding::from_octet(raw), Body::Text(text)));
    let ucs2 = (
        prop::sample::select(vec![0x08u8, 0x18, 0x1B, 0x48, 0xE0]),
        text_of(any_char(), 28),
    )
        .prop_map(|(raw, text)| (DataCoding::from_octet(raw), Body::Text(text)));
    let data = (
        prop::sample::select(vec![0x04u8, 0x14, 0xF4, 0xF7, 0x20, 0x28, 0x3C]),
        prop::collection::vec(any::<u8>(), 0..110),
    )
        .prop_map(|(raw, data)| (DataCoding::from_octet(raw), Body::Data(data)));
    prop_oneof![gsm7, ucs2, data]
}

fn deliver() -> impl Strategy<Value = Deliver> {
    (
        smsc(),
        any_address(),
        any::<u8>(),
        coded_body(),
        timestamp(),
        any::<[bool; 3]>(),
        udh(),
    )
        .prop_map(
            |(smsc, sender, protocol_id, (coding, body), timestamp, [more, sri, rp], udh)| {
                Deliver {
                    smsc,
                    sender,
                    protocol_id,
                    coding,
                    timestamp,
                    more_messages: more,
                    status_report_indication: sri,
                    reply_path: rp,
                    udh,
                    body,
                }
            },
        )
}

fn status_report() -> impl Strategy<Value = StatusReport> {
    let tail = prop::option::of((any::<u8>(), prop::option::of(coded_body()), udh()));
    (
        smsc(),
        any::<u8>(),
        any_address(),
        timestamp(),
        timestamp(),
        any::<u8>(),
        any::<[bool; 2]>(),
        tail,
    )
        .prop_map(
            |(
                smsc,
                message_reference,
                recipient,
                sc_timestamp,
                discharge_time,
                status,
                [more, qualifier],
                tail,
            )| {
                let mut report = StatusReport {
                    smsc,
                    message_reference,
                    recipient,
                    sc_timestamp,
                    discharge_time,
                    status: DeliveryStatus(status),
                    more_messages: more,
                    qualifier,
                    protocol_id: None,
                    coding: None,
                    udh: None,
                    body: None,
                };
                if let Some((protocol_id, coded, udh)) = tail {
                    report.protocol_id = Some(protocol_id);
                    if let Some((coding, body)) = coded {
                        (report.coding, report.body, report.udh) = (Some(coding), Some(body), udh);
                    }
                }
                report
            },
        )
}

/// The user data octets of a TPDU written by `Submit` (no SMSC prefix).
fn user_data_octets(tpdu: &[u8], validity: Validity) -> usize {
    let address_octets = usize::from(tpdu.get(2).copied().unwrap_or(0)).div_ceil(2) + 2;
    let validity_octets = match validity {
        Validity::None => 0,
        Validity::Relative(_) => 1,
        _ => 7,
    };
    tpdu.len() - (2 + address_octets + 2 + validity_octets + 1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn submit_round_trips_and_reassembles(
        text in prop_oneof![text_of(gsm7_char(), 700), text_of(any_char(), 400)],
        reference in concat_ref(),
        status_report in any::<bool>(),
        validity in prop_oneof![Just(Validity::None), any::<u8>().prop_map(Validity::Relative)],
        force_ucs2 in any::<bool>(),
        smsc in smsc(),
        to in number(),
    ) {
        let mut submit = Submit::new(to.clone(), text.clone()).reference(reference).status_report(status_report).validity(validity).force_ucs2(force_ucs2);
        submit.smsc = smsc.clone();
        let encoding = submit.encoding();
        prop_assert_eq!(encoding == Encoding::Gsm7, !force_ucs2 && text.chars().all(|c| gsm::gsm7_cost(c).is_some()));
        let parts = submit.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parts.len(), submit.segmentation().parts);
        let total = parts.len();
        let capacity = gsm::capacity(encoding, total > 1, reference.size());
        let mut texts = Vec::new();
        let mut reassembler = Reassembler::new();
        let mut delivered = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            let bytes = hex::decode(&part.hex).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let smsc_octets = usize::from(bytes.first().copied().unwrap_or(0)) + 1;
            prop_assert_eq!(part.tpdu_len, bytes.len() - smsc_octets);
            prop_assert!(user_data_octets(bytes.get(smsc_octets..).unwrap_or(&[]), validity) <= 140);
            let Ok(DecodedPdu::Submit(decoded)) = pdu::decode(&part.hex) else {
                return Err(TestCaseError::fail(format!("not a SUBMIT: {}", part.hex)));
            };
            prop_assert_eq!(&decoded.to, &to);
            prop_assert_eq!(&decoded.smsc, &smsc);
            prop_assert_eq!(decoded.status_report, status_report);
            prop_assert_eq!(decoded.validity, validity);
            let expected_concat = (total > 1).then(|| Concat { reference, total: total as u8, seq: index as u8 + 1 });
            prop_assert_eq!(decoded.udh.as_ref().and_then(|u| u.concat), expected_concat);
            let part_text = decoded.body.text().unwrap_or_default().to_owned();
            // Whole characters only: a cut escape or surrogate pair would not decode back.
            let units = gsm::segment_as(&part_text, encoding, reference.size()).map(|s| s.units);
            prop_assert!(units.is_some_and(|u| u <= capacity), "{} units > {}", units.unwrap_or(0), capacity);
            texts.push(part_text);
            delivered.push(Deliver {
                smsc: None,
                sender: decoded.to.clone(),
                protocol_id: 0,
                coding: decoded.coding,
                timestamp: Timestamp { year: 2025, month: 1, day: 1, hour: 0, minute: 0, second: 0, tz_quarters: 0 },
                more_messages: false,
                status_report_indication: false,
                reply_path: false,
                udh: decoded.udh,
                body: decoded.body,
            });
        }
        prop_assert_eq!(texts.concat(), text.clone());
        // Reassemble backwards, the last part twice: one message, the original text.
        let mut order: Vec<&Deliver> = delivered.iter().rev().collect();
        order.extend(delivered.last());
        order.rotate_right(1);
        let outputs: Vec<_> = order.into_iter().filter_map(|deliver| reassembler.push(deliver.clone(), 0)).collect();
        prop_assert_eq!(outputs.len(), if total > 1 { 1 } else { 2 });
        prop_assert_eq!(outputs.first().map(|m| m.body.clone()), Some(Body::Text(text)));
        prop_assert_eq!(reassembler.pending(), 0);
    }

    #[test]
    fn deliver_round_trips(deliver in deliver()) {
        let encoded = deliver.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(pdu::decode(&encoded.hex), Ok(DecodedPdu::Deliver(deliver)));
    }

    #[test]
    fn status_report_round_trips(report in status_report()) {
        let encoded = report.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(pdu::decode(&encoded.hex), Ok(DecodedPdu::StatusReport(report)));
    }

    #[test]
    fn ussd_hex_round_trips(text in text_of(gsm7_char(), 200)) {
        let packed = gsm::pack_gsm7_hex(&text);
        let unpacked = gsm::unpack_gsm7_hex(&packed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // A wanted trailing CR on an octet boundary comes back doubled (23.038 allows it).
        prop_assert!(unpacked == text || unpacked == format!("{text}\r"), "{:?} -> {} -> {:?}", text, packed, unpacked);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = pdu::decode_bytes(&bytes).map(|p| serde_json::to_string(&p));
        let _ = pdu::decode_tpdu_bytes(&bytes).map(|p| serde_json::to_string(&p));
        let _ = Udh::decode(&bytes);
        let _ = gsm::decode_gsm7(&bytes);
        let _ = gsm::decode_ucs2(&bytes);
        let _ = gsm::unpack_septets(&bytes, usize::MAX, 3);
    }

    #[test]
    fn decoders_never_panic_on_text(text in "[0-9A-Fa-f]{0,120}|\\PC{0,60}") {
        let _ = pdu::decode(&text).map(|p| describe(&p));
        let _ = pdu::decode_tpdu(&text);
        let _ = gsm::unpack_gsm7_hex(&text);
        let _ = Address::parse(&text);
    }

    #[test]
    fn decoders_never_panic_on_damaged_pdus(
        deliver in deliver(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let Ok(encoded) = deliver.encode() else { return Ok(()) };
        let mut bytes = hex::decode(&encoded.hex).unwrap_or_default();
        for (index, value) in damage {
            let i = index.index(bytes.len());
            if let Some(byte) = bytes.get_mut(i) { *byte = value; }
        }
        let _ = pdu::decode_bytes(&bytes).map(|p| describe(&p));
        let cut = cut.index(bytes.len() + 1);
        let _ = pdu::decode_bytes(bytes.get(..cut).unwrap_or(&[]));
        let mut reassembler = Reassembler::new();
        if let Ok(DecodedPdu::Deliver(d)) = pdu::decode_bytes(&bytes) {
            let _ = reassembler.push(d, 0);
        }
    }
}

#[test]
fn status_classes_cover_every_octet() {
    let check = |code: u8, class: StatusClass| {
        assert_eq!(DeliveryStatus(code).class(), class, "{code:#04X}")
    };
    check(0x00, StatusClass::Delivered);
    check(0x20, StatusClass::StillTrying);
    check(0x46, StatusClass::PermanentFailure);
    check(0x60, StatusClass::TemporaryFailure);
    for code in 0..=u8::MAX {
        let _ = DeliveryStatus(code).description();
    }
}
