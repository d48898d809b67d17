//! The webhook sender's settings, as flags of `smshub serve` ([`WebhookArgs`], part of the
//! events' flags) and as the [`WebhookConfig`] the hub runs with.

use std::time::Duration;

use clap::Args;

use crate::events::config::parse_duration;

/// Flags of the webhook sender.
#[derive(Args, Clone, Debug)]
pub struct WebhookArgs {
    /// How long one request to a webhook may take before it counts as failed.
    #[arg(long, env = "SMSHUB_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_span)]
    pub webhook_timeout: Duration,
    /// How long a delivery is retried before it is given up (`3d`).
    #[arg(long, env = "SMSHUB_WEBHOOK_RETRY_FOR", default_value = "3d", value_parser = parse_span)]
    pub webhook_retry_for: Duration,
    /// An endpoint whose every attempt failed for this long is disabled.
    #[arg(long, env = "SMSHUB_WEBHOOK_DISABLE_AFTER", default_value = "1d", value_parser = parse_span)]
    pub webhook_disable_after: Duration,
    /// The first retry's delay; each next one doubles it, with jitter, up to
    /// `--webhook-backoff-max` (`500ms`, `5s`).
    #[arg(long, env = "SMSHUB_WEBHOOK_BACKOFF", default_value = "5s", value_parser = parse_span)]
    pub webhook_backoff: Duration,
    /// The longest delay between two attempts.
    #[arg(long, env = "SMSHUB_WEBHOOK_BACKOFF_MAX", default_value = "1h", value_parser = parse_span)]
    pub webhook_backoff_max: Duration,
    /// How long the previous secret stays valid after a rotation.
    #[arg(long, env = "SMSHUB_WEBHOOK_SECRET_OVERLAP", default_value = "24h", value_parser = parse_span)]
    pub webhook_secret_overlap: Duration,
    /// Refuse `http://` webhook URLs.
    #[arg(long, env = "SMSHUB_WEBHOOK_REQUIRE_HTTPS")]
    pub webhook_require_https: bool,
    /// Allow webhook targets on this machine's loopback (tests, a receiver beside the hub).
    #[arg(long, env = "SMSHUB_WEBHOOK_ALLOW_LOOPBACK")]
    pub webhook_allow_loopback: bool,
}

/// What the webhook sender runs with.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub timeout: Duration,
    pub retry_for: Duration,
    pub disable_after: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub secret_overlap: Duration,
    pub require_https: bool,
    pub allow_loopback: bool,
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(3 * 86_400),
            disable_after: Duration::from_secs(86_400),
            backoff: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            secret_overlap: Duration::from_secs(86_400),
            require_https: false,
            allow_loopback: false,
        }
    }
}

impl WebhookArgs {
    pub fn config(&self) -> WebhookConfig {
        WebhookConfig {
            timeout: self.webhook_timeout,
            retry_for: self.webhook_retry_for,
            disable_after: self.webhook_disable_after,
            backoff: self.webhook_backoff,
            backoff_max: self.webhook_backoff_max.max(self.webhook_backoff),
            secret_overlap: self.webhook_secret_overlap,
            require_https: self.webhook_require_https,
            allow_loopback: self.webhook_allow_loopback,
        }
    }
}

impl WebhookConfig {
    /// The delay before attempt `attempts + 1`, after `attempts` failed ones: the backoff
    /// doubled per failure up to the maximum, of which a random part (`jitter`, 0 to 1) is
    /// taken off so endpoints that failed together are not retried together.
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let full = self
            .backoff
            .saturating_mul(1 << doublings)
            .min(self.backoff_max);
        full.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// A duration as [`parse_duration`] reads it, or in milliseconds (`500ms`).
pub fn parse_span(text: &str) -> Result<Duration, String> {
    match text.trim().strip_suffix("ms") {
        Some(ms) => ms
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{text:?} is not a duration like 500ms, 30s or 7d")),
        None => parse_duration(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_maximum_with_jitter_below() {
        let config = WebhookConfig {
            backoff: Duration::from_secs(5),
            backoff_max: Duration::from_secs(60),
            ..WebhookConfig::default()
        };
        for (attempts, jitter, seconds) in [
            (1, 0.0, 5.0),
            (2, 0.0, 10.0),
            (3, 0.0, 20.0),
            (5, 0.0, 60.0),
            (40, 0.0, 60.0),
            (1, 1.0, 2.5),
            (3, 0.5, 15.0),
        ] {
            assert_eq!(
                config.delay(attempts, jitter).as_secs_f64(),
                seconds,
                "{attempts} {jitter}"
            );
        }
        assert_eq!(parse_span("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_span("3d"), Ok(Duration::from_secs(259_200)));
        assert!(parse_span("xms").is_err());
    }
}
