//! The event consumers' settings, as flags of `smshub serve` ([`EventArgs`]) and as the
//! [`EventsConfig`] the hub runs with.

use std::time::Duration;

use clap::Args;

/// Flags of the event log and its consumers.
#[derive(Args, Clone, Debug)]
pub struct EventArgs {
    /// How long events are kept for streams to resume from and webhooks to replay
    /// (`30s`, `15m`, `12h`, `7d`).
    #[arg(long, env = "SMSHUB_EVENT_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub event_retention: Duration,
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookArgs,
}

/// What the event consumers run with.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// How long events are kept.
    pub retention: Duration,
    /// The webhook sender's settings.
    pub webhooks: crate::webhooks::WebhookConfig,
}

impl Default for EventsConfig {
    fn default() -> EventsConfig {
        EventsConfig {
            retention: Duration::from_secs(7 * 24 * 3600),
            webhooks: crate::webhooks::WebhookConfig::default(),
        }
    }
}

impl EventArgs {
    pub fn config(&self) -> EventsConfig {
        EventsConfig {
            retention: self.event_retention,
            webhooks: self.webhooks.config(),
        }
    }
}

/// `90`, `90s`, `15m`, `12h`, `7d`: a duration (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|it: char| !it.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 15m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_units() {
        for (text, seconds) in [
            ("90", 90),
            ("30s", 30),
            ("15m", 900),
            ("12h", 43_200),
            ("7d", 604_800),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        for bad in ["", "d", "7w", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
