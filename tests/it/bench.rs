//! Smoke runs of `smshub bench`: small, real hubs, real phones, real HTTP. They check that the
//! harness works end to end, reports zero errors and prints every required key with a sane
//! value. They must never assert on timings: speed is what the harness reports, not what a
//! test can demand of a shared machine.

use std::process::Command;

use serde_json::Value;

/// Keys every message-mode JSON line carries, with a number.
const REQUIRED: &[&str] = &[
    "accepted_per_s",
    "e2e_per_s",
    "p50_submit_ms",
    "p99_submit_ms",
    "p99_to_device_ms",
    "hub_rss_mb",
    "hub_cpu_ms_per_msg",
    "errors",
    "messages",
    "devices",
];

/// Checks a message-mode report: every required key present and numeric, no errors, every
/// message accepted, percentiles ordered.
fn check_messages(report: &Value, devices: u64, messages: u64, delivery_report: bool) {
    for key in REQUIRED {
        assert!(
            report[key].is_number(),
            "{key} missing or not a number in {report}"
        );
    }
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["devices"], devices, "{report}");
    assert_eq!(report["connected"], devices, "{report}");
    assert_eq!(report["messages"], messages, "{report}");
    assert_eq!(report["accepted"], messages, "{report}");
    for key in ["accepted_per_s", "e2e_per_s", "hub_rss_mb"] {
        assert!(report[key].as_f64().unwrap() > 0.0, "{key} in {report}");
    }
    assert!(
        report["hub_cpu_ms_per_msg"].as_f64().unwrap() >= 0.0,
        "{report}"
    );
    for prefix in ["submit", "to_device", "e2e"] {
        let get = |p: &str| report[format!("{p}_{prefix}_ms")].as_f64().unwrap();
        assert!(
            get("p50") <= get("p90") && get("p90") <= get("p99") && get("p99") <= get("max"),
            "{prefix}: {report}"
        );
    }
    // A job reaches the phone before its `sent` can be stored.
    assert!(
        report["p50_to_device_ms"].as_f64() <= report["p50_e2e_ms"].as_f64(),
        "{report}"
    );
    assert_eq!(
        report["delivered_per_s"].is_number(),
        delivery_report,
        "{report}"
    );
    assert_eq!(
        report["p99_delivered_ms"].is_number(),
        delivery_report,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_run_reports_every_figure_and_no_error() {
    let args = smshub::bench::BenchArgs::from_flags([
        "--in-process",
        "--devices",
        "3",
        "--messages",
        "200",
        "--warmup",
        "20",
        "--concurrency",
        "8",
        "--timeout",
        "90",
        "--hub-log",
        "warn",
        "--no-progress",
    ])
    .expect("flags parse");
    let report = smshub::bench::measure(args)
        .await
        .expect("the run completes");
    let json: Value = serde_json::from_str(&report.json_line()).expect("the JSON line is JSON");
    check_messages(&json, 3, 200, false);
    assert_eq!(json["hub"], "in-process");
    assert_eq!(json["memory_includes_load"], true);
}

/// Runs the real binary and returns its last stdout line as JSON.
fn bench(flags: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .arg("bench")
        .args(flags)
        .args(["--timeout", "90", "--hub-log", "warn", "--no-progress"])
        .output()
        .expect("smshub bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|err| panic!("last line is not JSON ({err}): {stdout}"))
}

#[test]
fn a_spawned_hub_with_batches_and_delivery_reports_reports_every_figure() {
    let report = bench(&[
        "--devices",
        "3",
        "--messages",
        "200",
        "--warmup",
        "10",
        "--batch",
        "10",
        "--delivery-report",
    ]);
    check_messages(&report, 3, 200, true);
    assert_eq!(report["hub"], "spawned");
    assert_eq!(report["requests"], 20, "{report}");
    assert_eq!(report["memory_includes_load"], false);
    assert!(
        report["durability"].as_str().unwrap().starts_with("full"),
        "{report}"
    );
}

#[test]
fn connect_only_reports_memory_per_phone_and_cpu_at_rest() {
    let report = bench(&[
        "--connect-only",
        "--devices",
        "20",
        "--window-s",
        "1",
        "--heartbeat-s",
        "1",
    ]);
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["mode"], "connect-only");
    assert_eq!(report["connected"], 20, "{report}");
    assert!(report["hub_rss_mb"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["rss_per_device_kb"].is_number(), "{report}");
    assert!(report["idle_cpu_pct"].as_f64().unwrap() >= 0.0, "{report}");
    // With a 1 s heartbeat, a 1 s window sees the phones heartbeat.
    assert!(report["heartbeats"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn non_loopback_hubs_and_bad_options_are_refused() {
    for flags in [
        &["--hub", "http://10.1.2.3:8080", "--api-key", "shk_x"][..],
        &["--batch", "0"][..],
        &["--batch", "1001"][..],
        &["--devices", "0"][..],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_smshub"))
            .arg("bench")
            .args(flags)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flags:?} was accepted");
    }
}
