//! `smshub health --url …`: probes a hub's health endpoint and exits 0 only on a `2xx`, so a
//! container `HEALTHCHECK` or a monitoring script needs no curl. Prints the probe's JSON.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

/// `smshub health`.
#[derive(Args, Clone, Debug)]
pub struct HealthArgs {
    /// The probe to ask: `/health/ready` (can take traffic), `/health/live` (should run).
    #[arg(
        long,
        env = "SMSHUB_HEALTH_URL",
        default_value = "http://127.0.0.1:8080/health/ready"
    )]
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout_s: u64,
}

/// The probe's body on a `2xx`, else an error naming the status and the body.
pub async fn run(args: HealthArgs) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_s.max(1)))
        .build()?;
    let response = http
        .get(&args.url)
        .send()
        .await
        .with_context(|| format!("no answer from {}", args.url))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{} answered {status}: {body}", args.url);
    }
    Ok(body)
}
