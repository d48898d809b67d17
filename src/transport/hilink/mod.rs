//! Huawei HiLink sticks (E3372h, E303, E3131 in HiLink firmware) as devices. A HiLink stick is
//! a network device (`http://192.168.8.1`) with an HTTP/XML API instead of an AT port; to the
//! rest of the hub it is one more modem: it shows in [`crate::transport::attached::Modems`] (the
//! `/api/modems/...` routes) with `transport: "hilink"`, registers in the same registry, takes
//! jobs from the same dispatcher and reports through the same store changes.
//!
//! - [`client`]: the HTTP client: session cookie and verification tokens (`SesTokInfo`,
//!   rotating one-time tokens), optional login, one retry after a stale session.
//! - [`calls`]: what a stick is asked, with nothing of the hub: the circuit breaker's count,
//!   sending to an outcome, the inbox sweep, the radio, USSD. Shared with the remote worker.
//! - [`driver`]: one task per stick: identify, register, send (`send-sms`, then `send-status`
//!   until the stick says sent or failed), take incoming SMS (`check-notifications`,
//!   `sms-count`, `sms-list`, store, then `delete-sms`), refresh status, USSD and balance; a
//!   circuit breaker takes the stick offline after repeated silence and brings it back with
//!   backoff (the loop serial modems use too, [`crate::transport::radio::supervisor`]).
//! - The wire format (request bodies, answer readers, error codes) is
//!   [`smshub_protocol::hilink`], with no I/O.
//!
//! Invariants, as for serial modems: a message is handed to the stick only after its
//! acceptance by this device is committed; a `send-sms` whose request may have reached the
//! stick and got no answer fails `outcome_unknown` and is never resent; an incoming message is
//! deleted from the stick only after the hub committed it; one broken stick never blocks
//! another (each has its own task, client and timeouts).

pub mod calls;
pub mod client;
pub mod driver;

use std::fmt;
use std::time::Duration;

use crate::domain::DeviceKind;

/// The device kind of a HiLink stick, in the registry and the database, and the `transport`
/// of its modem status.
pub const KIND: DeviceKind = DeviceKind::Hilink;

/// How HiLink sticks are driven.
#[derive(Debug, Clone)]
pub struct HilinkConfig {
    /// Longest wait for one HTTP answer.
    pub request_timeout: Duration,
    /// Longest wait for `send-status` to say sent or failed after `send-sms` answered `OK`;
    /// beyond, the message fails `outcome_unknown`.
    pub send_timeout: Duration,
    /// Pause between two `send-status` polls.
    pub send_poll: Duration,
    /// Longest wait for a USSD answer.
    pub ussd_timeout: Duration,
    /// Pause between two `ussd/get` polls.
    pub ussd_poll: Duration,
    /// How often `check-notifications` is polled for new messages.
    pub poll: Duration,
    /// How often `sms-count` is read to sweep the inbox (catches messages already read in the
    /// stick's web UI) and prune the sent box.
    pub sweep: Duration,
    /// How often signal, network and operator are refreshed.
    pub refresh: Duration,
    /// First wait before reconnecting; it doubles per failed attempt up to `max_backoff`.
    pub retry: Duration,
    pub max_backoff: Duration,
    /// Calls in a row without an answer after which the stick is taken offline.
    pub breaker_failures: u32,
    /// `send-sms` answers "busy" (113018, 100004): how often to try again on the spot, and
    /// how long to wait in between, before the message goes back to the queue.
    pub busy_retries: u32,
    pub busy_wait: Duration,
    /// Delete the copies the stick files in its sent box, so its storage (500 messages on an
    /// E3372) never fills up and blocks sending. The hub's store keeps the history.
    pub prune_sent: bool,
    /// Credentials for sticks whose URL carries none (web UI login, when enabled).
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Default for HilinkConfig {
    fn default() -> Self {
        HilinkConfig {
            request_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(90),
            send_poll: Duration::from_secs(1),
            ussd_timeout: Duration::from_secs(30),
            ussd_poll: Duration::from_secs(1),
            poll: Duration::from_secs(5),
            sweep: Duration::from_secs(60),
            refresh: Duration::from_secs(30),
            retry: Duration::from_secs(5),
            max_backoff: Duration::from_secs(120),
            breaker_failures: 3,
            busy_retries: 3,
            busy_wait: Duration::from_secs(2),
            prune_sent: true,
            username: None,
            password: None,
        }
    }
}

/// A web UI login.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A stick to attach: where it answers and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http://host[:port][/path]`, without credentials or a trailing slash; the stick's key
    /// among the hub's modems.
    pub url: String,
    pub credentials: Option<Credentials>,
}

/// Whether `text` names a HiLink stick (an `http://` or `https://` URL) rather than a port.
pub fn is_url(text: &str) -> bool {
    let lower = text.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

impl Target {
    /// Reads a stick URL. Credentials come from the URL's userinfo
    /// (`http://admin:secret@192.168.8.1`), else from `username`/`password`.
    pub fn parse(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Target, String> {
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|err| format!("{url:?} is not a URL: {err}"))?;
        match parsed.scheme() {
            "http" => {}
            "https" => {
                return Err("HiLink sticks serve plain HTTP; https is not supported".to_string());
            }
            other => return Err(format!("a HiLink stick is an http:// URL, not {other}:")),
        }
        let Some(host) = parsed.host_str() else {
            return Err(format!("{url:?} has no host"));
        };
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!("{url:?}: give the stick's address only"));
        }
        let decode =
            |text: &str| percent_decode(text).ok_or_else(|| format!("{url:?}: bad percent-escape"));
        let from_url = if parsed.username().is_empty() {
            None
        } else {
            Some(Credentials {
                username: decode(parsed.username())?,
                password: decode(parsed.password().unwrap_or(""))?,
            })
        };
        let credentials = from_url.or_else(|| {
            username
                .filter(|it| !it.is_empty())
                .map(|username| Credentials {
                    username: username.to_string(),
                    password: password.unwrap_or("").to_string(),
                })
        });
        let port = parsed.port().map(|it| format!(":{it}")).unwrap_or_default();
        let path = parsed.path().trim_end_matches('/');
        Ok(Target {
            url: format!("http://{host}{port}{path}"),
            credentials,
        })
    }
}

/// `url` with any `user:password@` removed, for status and logs when it could not be parsed.
pub fn redact(url: &str) -> String {
    let trimmed = url.trim();
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return trimmed.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => trimmed.to_string(),
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'%' {
            let hex = std::str::from_utf8(bytes.get(idx + 1..idx + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            idx += 3;
        } else {
            out.push(bytes[idx]);
            idx += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let plain = Target::parse("http://192.168.8.1/", None, None).unwrap();
        assert_eq!(plain.url, "http://192.168.8.1");
        assert_eq!(plain.credentials, None);
        let with_port = Target::parse("HTTP://127.0.0.1:8081", Some("admin"), Some("pw")).unwrap();
        assert_eq!(with_port.url, "http://127.0.0.1:8081");
        assert_eq!(
            with_port
                .credentials
                .as_ref()
                .map(|it| it.username.as_str()),
            Some("admin")
        );
        let userinfo = Target::parse("http://admin:p%40ss@192.168.8.1", Some("x"), None).unwrap();
        assert_eq!(userinfo.url, "http://192.168.8.1");
        assert_eq!(
            userinfo.credentials,
            Some(Credentials {
                username: "admin".into(),
                password: "p@ss".into()
            })
        );
        assert!(
            !format!("{userinfo:?}").contains("p@ss"),
            "the password is never logged"
        );
        for bad in [
            "https://192.168.8.1",
            "ftp://x",
            "http://",
            "192.168.8.1",
            "http://h/?a=1",
        ] {
            assert!(Target::parse(bad, None, None).is_err(), "{bad}");
        }
        assert!(is_url(" http://192.168.8.1") && !is_url("/dev/ttyUSB0"));
        assert_eq!(redact("https://a:b@h:1/x"), "https://h:1/x");
        assert_eq!(redact("http://h/a@b"), "http://h/a@b");
        assert_eq!(redact("nonsense"), "nonsense");
    }
}
