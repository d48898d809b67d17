//! libGammu (python-gammu) reads what the emulated modem received: the PDUs the hub's modem
//! driver wrote after `AT+CMGS`, decoded and linked by `protocol/tests/oracle/gammu_oracle.py
//! --decode`, so the end-to-end send tests are judged by code nobody here wrote.
//!
//! Without python-gammu the check prints "skipped" to stderr and passes, unless
//! `SMSHUB_REQUIRE_ORACLE=1` (CI) makes that a failure, as in `protocol/tests/gammu_oracle.rs`.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::modem_emulator::Emulator;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/protocol/tests/oracle/gammu_oracle.py"
);

/// Whether python-gammu can be imported; panics instead when CI requires the oracle.
fn available() -> bool {
    let imported = Command::new("python3")
        .args(["-c", "import gammu"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if imported {
        return true;
    }
    if std::env::var("SMSHUB_REQUIRE_ORACLE").as_deref() == Ok("1") {
        panic!(
            "SMSHUB_REQUIRE_ORACLE=1 but `python3 -c 'import gammu'` fails: pip install python-gammu"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped: python-gammu not installed (pip install python-gammu; SMSHUB_REQUIRE_ORACLE=1 makes this fail)"
    );
    false
}

/// libGammu's reading of `pdus`: `{"parts": [...], "messages": [...]}`.
fn decode(pdus: &[String]) -> Value {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .arg("--decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start python3 {SCRIPT}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(json!(pdus).to_string().as_bytes())
            .expect("writing to the oracle");
    }
    let output = child.wait_with_output().expect("the oracle runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "libGammu refused a PDU the modem received: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("oracle output {stdout}: {e}"))
}

/// A message the test sent, as libGammu must read it off the wire.
pub struct Expected<'a> {
    pub to: &'a str,
    pub text: &'a str,
    pub status_report: bool,
}

/// Checks with libGammu every PDU `emulator` took (answered `+CMGS`; a refused part does not
/// reach the recipient): each expected message is there once,
/// linked from its parts to its recipient and text; every part is an SMS-SUBMIT with the
/// status-report bit as asked and the length the driver announced in `AT+CMGS`; the parts of a
/// long message share one concatenation reference (the one the emulator saw) and are numbered
/// 1..n of n. Returns libGammu's reading, or `None` when the oracle is skipped.
pub fn check_received(emulator: &Emulator, expected: &[Expected<'_>]) -> Option<Value> {
    if !available() {
        return None;
    }
    let (announced, pdus): (Vec<u64>, Vec<String>) = emulator
        .accepted()
        .into_iter()
        .map(|(length, pdu)| (length as u64, pdu))
        .unzip();
    let reading = decode(&pdus);
    let parts = reading["parts"].as_array().expect("parts");
    let messages = reading["messages"].as_array().expect("messages");
    assert_eq!(parts.len(), pdus.len(), "{reading}");
    let lengths: Vec<u64> = parts
        .iter()
        .map(|it| it["tpdu_len"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        announced, lengths,
        "AT+CMGS lengths against libGammu's TPDU lengths"
    );
    let sent = emulator.sent();
    for want in expected {
        let linked: Vec<&Value> = messages
            .iter()
            .filter(|it| it["number"] == want.to && it["text"] == want.text)
            .collect();
        assert_eq!(
            linked.len(),
            1,
            "libGammu links one message to {} with the text sent: {reading}",
            want.to
        );
        let mine: Vec<&Value> = parts
            .iter()
            .filter(|it| it["number"] == want.to)
            .filter(|it| want.text.contains(it["text"].as_str().unwrap_or("\u{0}")))
            .collect();
        let total = linked[0]["parts"].as_u64().expect("parts") as usize;
        assert_eq!(mine.len(), total, "{reading}");
        let emulated = sent
            .iter()
            .find(|it| it.to == want.to && it.text == want.text)
            .unwrap_or_else(|| panic!("the emulator saw {}: {sent:?}", want.to));
        let mut seqs = Vec::new();
        for part in &mine {
            assert_eq!(part["type"], "Submit", "{part}");
            assert_eq!(
                part["status_report"], want.status_report,
                "status-report request: {part}"
            );
            if total > 1 {
                let concat = &part["concat"];
                assert_eq!(
                    concat["reference"].as_u64(),
                    emulated.reference.map(u64::from),
                    "{part}"
                );
                assert_eq!(concat["total"].as_u64(), Some(total as u64), "{part}");
                seqs.push(concat["seq"].as_u64().unwrap_or(0));
            } else {
                assert_eq!(part["concat"], Value::Null, "{part}");
            }
        }
        seqs.sort_unstable();
        if total > 1 {
            assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>(), "{reading}");
        }
    }
    Some(reading)
}
