//! The MQTT bridge's settings: the flags of `smshub serve` ([`MqttArgs`]) and the checked
//! [`MqttConfig`] the bridge runs with (broker address, TLS, credentials, topics, the key
//! sends act under, which events to publish).
//!
//! Must never: connect anywhere (that is `session.rs`); a setting that cannot work is an
//! error at start, not a surprise at the first connection.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio_rustls::rustls::ClientConfig;

use crate::events::access::Filter;

/// Flags of the MQTT bridge; without `--mqtt-url` there is none.
#[derive(Args, Clone, Debug, Default)]
pub struct MqttArgs {
    /// Bridge the event log to an MQTT broker: `mqtt://host:1883`, or `mqtts://host:8883`
    /// for TLS.
    #[arg(long, env = "SMSHUB_MQTT_URL")]
    pub mqtt_url: Option<String>,
    /// A PEM file of the CA that signed the broker's certificate (a private CA); without,
    /// the system's trusted roots.
    #[arg(long, env = "SMSHUB_MQTT_CA_FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// The user name the hub logs in to the broker with.
    #[arg(long, env = "SMSHUB_MQTT_USERNAME")]
    pub mqtt_username: Option<String>,
    /// The password the hub logs in to the broker with.
    #[arg(long, env = "SMSHUB_MQTT_PASSWORD", hide_env_values = true)]
    pub mqtt_password: Option<String>,
    /// The first level of every topic: `PREFIX/events/<type>`, `PREFIX/send`, ...
    #[arg(long, env = "SMSHUB_MQTT_PREFIX", default_value = "smshub")]
    pub mqtt_prefix: String,
    /// The hub's MQTT client id (its broker session and its position in the event log are
    /// kept under it).
    #[arg(long, env = "SMSHUB_MQTT_CLIENT_ID", default_value = "smshub")]
    pub mqtt_client_id: String,
    /// The API key whose scopes sends received on `PREFIX/send` act under; without it, the
    /// bridge only publishes.
    #[arg(long, env = "SMSHUB_MQTT_KEY", hide_env_values = true)]
    pub mqtt_key: Option<String>,
    /// Only these event types are published (comma-separated, `message.*` for a family);
    /// default: all.
    #[arg(long, env = "SMSHUB_MQTT_EVENTS")]
    pub mqtt_events: Option<String>,
}

/// What the MQTT bridge runs with.
#[derive(Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// TLS to the broker; `None`: plain TCP.
    pub tls: Option<Arc<ClientConfig>>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Topic prefix, without a trailing `/`.
    pub prefix: String,
    pub client_id: String,
    /// The API key sends act under; `None`: sends are not accepted.
    pub send_key: Option<String>,
    /// The event types published.
    pub events: Filter,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password or the key.
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("username", &self.username)
            .field("prefix", &self.prefix)
            .field("client_id", &self.client_id)
            .field("accepts_sends", &self.send_key.is_some())
            .field("events", &self.events.types)
            .finish()
    }
}

impl MqttConfig {
    /// A plain-TCP bridge to `host:port` with the default prefix and client id, publishing
    /// every event and accepting no send.
    pub fn new(host: &str, port: u16) -> MqttConfig {
        MqttConfig {
            host: host.to_string(),
            port,
            tls: None,
            username: None,
            password: None,
            prefix: "smshub".into(),
            client_id: "smshub".into(),
            send_key: None,
            events: Filter::default(),
        }
    }

    /// The name of the bridge's position in the event log.
    pub fn consumer_name(&self) -> String {
        format!("mqtt:{}", self.client_id)
    }
}

impl MqttArgs {
    /// The bridge's configuration; `Ok(None)` without `--mqtt-url`.
    pub fn config(&self) -> Result<Option<MqttConfig>, String> {
        let Some(url) = &self.mqtt_url else {
            return Ok(None);
        };
        let (tls, host, port) = parse_url(url)?;
        let tls = if tls {
            Some(crate::client_tls::client_config(
                self.mqtt_ca_file.as_deref(),
                "--mqtt-ca-file",
                "mqtts://",
            )?)
        } else {
            if self.mqtt_ca_file.is_some() {
                return Err("--mqtt-ca-file needs an mqtts:// URL".into());
            }
            None
        };
        let prefix = self.mqtt_prefix.trim_end_matches('/').to_string();
        if prefix.is_empty() || prefix.contains(['+', '#', '\0']) {
            return Err(format!(
                "--mqtt-prefix {:?}: a topic without wildcards",
                self.mqtt_prefix
            ));
        }
        if self.mqtt_client_id.is_empty() {
            return Err("--mqtt-client-id must not be empty".into());
        }
        let types = match &self.mqtt_events {
            Some(text) => Filter::parse_types(text).map_err(|it| format!("--mqtt-events: {it}"))?,
            None => Vec::new(),
        };
        Ok(Some(MqttConfig {
            host,
            port,
            tls,
            username: self.mqtt_username.clone(),
            password: self.mqtt_password.clone(),
            prefix,
            client_id: self.mqtt_client_id.clone(),
            send_key: self.mqtt_key.clone().filter(|it| !it.is_empty()),
            events: Filter {
                types,
                ..Filter::default()
            },
        }))
    }
}

/// `mqtt://host[:1883]` or `mqtts://host[:8883]`: (TLS, host, port).
pub fn parse_url(url: &str) -> Result<(bool, String, u16), String> {
    let bad = || format!("--mqtt-url {url:?}: expected mqtt://HOST:PORT or mqtts://HOST:PORT");
    let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtt://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("mqtts://") {
        (true, rest)
    } else {
        return Err(bad());
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '@', '?']) {
        return Err(bad());
    }
    let default_port = if tls { 8883 } else { 1883 };
    // `[::1]:1883`, `host:1883`, `host`.
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            (host, port.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (rest, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((tls, host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_their_default_ports() {
        let cases = [
            ("mqtt://broker:1884", Some((false, "broker", 1884))),
            ("mqtt://broker", Some((false, "broker", 1883))),
            ("mqtts://broker", Some((true, "broker", 8883))),
            ("mqtts://10.0.0.2:8884/", Some((true, "10.0.0.2", 8884))),
            ("mqtt://[::1]:1883", Some((false, "::1", 1883))),
            ("mqtt://[::1]", Some((false, "::1", 1883))),
            ("http://broker", None),
            ("mqtt://", None),
            ("mqtt://broker:0", None),
            ("mqtt://broker:x", None),
            ("mqtt://user@broker", None),
            ("mqtt://broker/path", None),
        ];
        for (url, expected) in cases {
            let got = parse_url(url).ok();
            let expected = expected.map(|(tls, host, port)| (tls, host.to_string(), port));
            assert_eq!(got, expected, "{url}");
        }
    }

    #[test]
    fn bad_settings_are_refused_at_start() {
        let args = |url: &str| MqttArgs {
            mqtt_url: Some(url.into()),
            mqtt_prefix: "smshub".into(),
            mqtt_client_id: "smshub".into(),
            ..MqttArgs::default()
        };
        assert!(MqttArgs::default().config().unwrap().is_none());
        assert!(args("mqtt://b:1883").config().unwrap().is_some());
        let mut bad = args("mqtt://b:1883");
        bad.mqtt_prefix = "a/#".into();
        assert!(bad.config().is_err());
        let mut bad = args("mqtt://b:1883");
        bad.mqtt_events = Some("nope.*".into());
        assert!(bad.config().is_err());
        let mut bad = args("mqtt://b:1883");
        bad.mqtt_ca_file = Some("/nonexistent".into());
        assert!(bad.config().is_err());
        let mut bad = args("mqtts://b:8883");
        bad.mqtt_ca_file = Some("/nonexistent".into());
        assert!(bad.config().is_err());
    }
}
