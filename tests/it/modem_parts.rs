//! A long message through a serial modem survives a transient error on one of its parts
//! (issue 13, "a long message must survive one bad part"): the emulated modem refuses a random
//! part with transient `+CMS ERROR`s (38, 41, 42, 47, 331, 332, 500, 512+), the driver writes
//! that part again with the same concatenation reference and part number, and the recipient
//! gets one complete, correctly linked message (checked by the emulator and by libGammu), for
//! GSM 7-bit and UCS-2 texts, with and without delivery reports. A part refused more often
//! than `part_retries` allows, or refused with a permanent error, fails the message.

use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::json;
use smshub::transport::modem::ModemConfig;

use crate::gammu::{Expected, check_received};
use crate::modem::{fast_config, hub_with_modem_config};

/// The transient errors real modems answer in the middle of a long message.
const TRANSIENT: &[u16] = &[38, 41, 42, 47, 331, 332, 500, 512, 513, 514, 532];

fn config() -> ModemConfig {
    ModemConfig {
        part_retry_wait: Duration::from_millis(20),
        ..fast_config()
    }
}

#[tokio::test]
async fn a_long_message_survives_transient_errors_on_one_part() {
    let (hub, _modems, emulator, status) = hub_with_modem_config("huawei_e1752", config()).await;
    let device_id = status.device_id.clone().expect("a device id");
    // Three parts each: 400 GSM 7-bit characters, and 150 UCS-2 characters.
    let latin: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let arabic = "مرحبا بكم في خدمة الرسائل القصيرة، هذه رسالة طويلة تتجاوز سبعين حرفا. ".repeat(2);
    let cases = [
        ("+213770000001", latin.as_str(), false),
        ("+213770000002", latin.as_str(), true),
        ("+213770000003", arabic.as_str(), false),
        ("+213770000004", arabic.as_str(), true),
    ];
    let mut rng = rand::rng();
    for (to, text, report) in cases {
        let seq: u8 = rng.random_range(1..=3);
        // As many refusals as the default three retries allow, or fewer.
        let codes: Vec<u16> = (0..rng.random_range(1..=3))
            .map(|_| *TRANSIENT.choose(&mut rng).expect("a code"))
            .collect();
        let case = format!("{to}: part {seq} refused with {codes:?}");
        let refused_before = emulator.refused_parts().len();
        emulator.refuse_part(seq, &codes);
        let id = hub
            .send_sms(json!({
                "phone_number": to,
                "message": text,
                "device_id": device_id,
                "delivery_report": report,
            }))
            .await;
        let sent = hub.wait_state(&id, "sent").await;
        assert_eq!(sent["parts"], 3, "{case}: {sent}");
        assert_eq!(sent["attempts"], 1, "{case}: no second attempt: {sent}");

        let message = emulator
            .sent()
            .into_iter()
            .find(|it| it.to == to)
            .unwrap_or_else(|| panic!("{case}: the modem has the whole message"));
        assert_eq!(message.text, text, "{case}: linked in order");
        assert_eq!(message.parts, 3, "{case}");
        assert_eq!(message.status_report, report, "{case}");
        assert!(
            emulator.errors().is_empty(),
            "{case}: every part taken once: {:?}",
            emulator.errors()
        );
        let refused = &emulator.refused_parts()[refused_before..];
        let reference = message.reference.expect("a concatenation reference");
        let expected: Vec<(u16, u8, u8, u16)> = codes
            .iter()
            .map(|code| (reference, seq, 3, *code))
            .collect();
        assert_eq!(
            refused, expected,
            "{case}: the refused part was the same part of the same message"
        );

        if report {
            assert_eq!(emulator.report_all(0x00), 3, "{case}: a report per part");
            hub.wait_state(&id, "delivered").await;
        }
    }
    check_received(
        &emulator,
        &cases
            .iter()
            .map(|(to, text, status_report)| Expected {
                to,
                text,
                status_report: *status_report,
            })
            .collect::<Vec<_>>(),
    );
}

#[tokio::test]
async fn a_part_refused_too_often_or_for_good_fails_the_message() {
    let (hub, _modems, emulator, status) = hub_with_modem_config("simcom_sim800", config()).await;
    let device_id = status.device_id.clone().expect("a device id");
    let text: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();

    // One refusal more than the three retries: the message fails, parts 1 went out.
    emulator.refuse_part(2, &[41, 41, 41, 41]);
    let id = hub
        .send_sms(json!({"phone_number": "+213661234567", "message": text, "device_id": device_id}))
        .await;
    let failed = hub.wait_state(&id, "failed").await;
    assert_eq!(
        (
            failed["error"]["code"].as_str(),
            failed["error"]["temporary"].as_bool()
        ),
        (Some("generic_failure"), Some(false)),
        "{failed}"
    );
    let reason = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("part 2 of 3") && reason.contains("(4 tries); parts 1 to 1 were sent"),
        "{failed}"
    );
    assert_eq!(emulator.refused_parts().len(), 4);
    assert_eq!(emulator.accepted().len(), 1, "part 3 never written");

    // A permanent error is not retried.
    emulator.refuse_part(2, &[21]);
    let id = hub
        .send_sms(json!({"phone_number": "+213661234568", "message": text, "device_id": device_id}))
        .await;
    let failed = hub.wait_state(&id, "failed").await;
    assert_eq!(failed["error"]["code"], "rejected", "{failed}");
    assert_eq!(emulator.refused_parts().len(), 5, "refused once");
    assert_eq!(emulator.accepted().len(), 2);
}
