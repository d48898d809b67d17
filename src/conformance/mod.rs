//! `smshub conformance`: a scripted hub for app authors. It listens for one worker (a
//! device id and token of the author's choosing), drives it through the rules of device
//! protocol v1 (`rules.rs`) and prints a report: rule, spec section, pass or fail, and what
//! the worker did; the exit status is 1 when any rule failed.
//!
//! It shares nothing with the real hub but the wire types: no store, no dispatcher, no
//! transport, so it judges a worker by the spec alone.

pub mod rules;
pub mod session;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use rules::{Ctx, Finding, Timing};
use session::{Door, Server};

/// `smshub conformance`.
#[derive(Debug, Clone, Args)]
pub struct ConformanceArgs {
    /// Where the worker connects: ws://ADDR/ws/device/DEVICE_ID.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// The device id the worker uses.
    #[arg(long, default_value = "conformance")]
    pub device_id: String,
    /// The token the worker presents (bearer header or `?token=`).
    #[arg(long, default_value = "conformance-token")]
    pub token: String,
    /// The `heartbeat_s` given in `welcome` (the idle and dead-link rules take 2-3 times it).
    #[arg(long, default_value_t = 5)]
    pub heartbeat_s: u32,
    /// How long the worker may take to answer, in seconds.
    #[arg(long, default_value_t = 10)]
    pub patience_s: u64,
    /// How long a reconnect may take, in seconds (the spec's backoff reaches 60 s).
    #[arg(long, default_value_t = 65)]
    pub reconnect_s: u64,
    /// How long the hub watches for something that must not happen, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    pub quiet_ms: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the conformance hub until the worker went through every rule; returns the report
/// and whether every rule passed.
pub async fn run(args: ConformanceArgs) -> anyhow::Result<(String, bool)> {
    let door = Door {
        device_id: args.device_id.clone(),
        token: args.token.clone(),
    };
    let server = Server::bind(args.listen, door.clone()).await?;
    eprintln!(
        "smshub conformance: waiting for a worker at ws://{}/ws/device/{} (token as configured)",
        server.addr(),
        args.device_id
    );
    let timing = Timing {
        heartbeat_s: args.heartbeat_s.max(1),
        patience: Duration::from_secs(args.patience_s.max(1)),
        reconnect: Duration::from_secs(args.reconnect_s.max(1)),
        quiet: Duration::from_millis(args.quiet_ms),
    };
    let mut ctx = Ctx::new(server, door, timing);
    let findings = rules::run_all(&mut ctx).await;
    let passed = findings.iter().all(|it| it.pass);
    let report = if args.json {
        serde_json::to_string_pretty(&serde_json::json!({
            "passed": findings.iter().filter(|it| it.pass).count(),
            "failed": findings.iter().filter(|it| !it.pass).count(),
            "rules": findings,
        }))?
    } else {
        table(&findings)
    };
    Ok((report, passed))
}

/// The report as a table, then a summary line.
pub fn table(findings: &[Finding]) -> String {
    let key = findings.iter().map(|it| it.rule.len()).max().unwrap_or(4);
    let section = findings
        .iter()
        .map(|it| it.section.len())
        .max()
        .unwrap_or(7);
    let mut out = format!(
        "{:key$}  {:section$}  {:6}  what the worker did\n",
        "rule", "section", "result"
    );
    for it in findings {
        out.push_str(&format!(
            "{:key$}  {:section$}  {:6}  {}\n",
            it.rule,
            it.section,
            if it.pass { "pass" } else { "FAIL" },
            it.did
        ));
    }
    let passed = findings.iter().filter(|it| it.pass).count();
    out.push_str(&format!(
        "\n{passed} of {} rules passed{}\n",
        findings.len(),
        if passed == findings.len() {
            ""
        } else {
            " (sections refer to android-client-spec/README.md)"
        }
    ));
    out
}
