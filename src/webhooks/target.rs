//! Where a webhook may point: `http` or `https` (or only `https` with
//! `--webhook-require-https`), never this machine's loopback, an unspecified or link-local
//! address (cloud metadata services live there) or the hub's own listening address, unless
//! `--webhook-allow-loopback`. Checked when a webhook is created and again on every request,
//! on the addresses the request really connects to ([`Guard`], the HTTP client's resolver),
//! so a name that resolves elsewhere later (DNS rebinding) is caught.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a URL is refused, with the API's stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Invalid(String),
    #[error("https is required for webhook URLs (--webhook-require-https)")]
    HttpsRequired,
    #[error("{0}")]
    NotAllowed(String),
}

impl Refusal {
    /// The API's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Invalid(_) => "invalid_url",
            Refusal::HttpsRequired => "https_required",
            Refusal::NotAllowed(_) => "url_not_allowed",
        }
    }
}

/// What a target may not be.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub require_https: bool,
    pub allow_loopback: bool,
    /// The hub's own listening address.
    pub own: Option<SocketAddr>,
}

impl Policy {
    /// Parses and checks a URL's form (scheme, host, no credentials).
    pub fn parse(&self, text: &str) -> Result<Url, Refusal> {
        let url =
            Url::parse(text.trim()).map_err(|err| Refusal::Invalid(format!("not a URL: {err}")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.require_https => return Err(Refusal::HttpsRequired),
            "http" => {}
            other => {
                return Err(Refusal::Invalid(format!(
                    "the scheme must be http or https, not {other:?}"
                )));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Refusal::Invalid("the URL has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Invalid(
                "credentials in the URL are not accepted; sign with the secret".into(),
            ));
        }
        Ok(url)
    }

    /// Whether the hub may connect to `addr`.
    pub fn allows(&self, addr: SocketAddr) -> Result<(), Refusal> {
        let ip = canonical(addr.ip());
        if self.allow_loopback {
            return Ok(());
        }
        let own = self
            .own
            .is_some_and(|own| canonical(own.ip()) == ip && own.port() == addr.port());
        let local = ip.is_loopback() || ip.is_unspecified() || link_local(ip) || own;
        if local {
            return Err(Refusal::NotAllowed(format!(
                "{ip} is this machine or a link-local address; \
                 start the hub with --webhook-allow-loopback to allow it"
            )));
        }
        Ok(())
    }

    /// Resolves a URL's host and checks every address it resolves to.
    pub async fn check(&self, url: &Url) -> Result<(), Refusal> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|err| Refusal::Invalid(format!("cannot resolve {host:?}: {err}")))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Refusal::Invalid(format!("{host:?} resolves to nothing")));
        }
        addrs.into_iter().try_for_each(|it| self.allows(it))
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The HTTP client's resolver: the system's, keeping only addresses the policy allows.
pub struct Guard(pub Policy);

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|it| policy.allows(*it).is_ok())
                .collect();
            if allowed.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves only to addresses webhooks may not reach").into();
                return Err(refused);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

impl Guard {
    pub fn shared(policy: Policy) -> Arc<Guard> {
        Arc::new(Guard(policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            require_https: false,
            allow_loopback: false,
            own: Some("192.168.1.5:8080".parse().unwrap()),
        }
    }

    #[test]
    fn urls_are_checked_by_form() {
        let open = policy();
        assert!(open.parse("http://receiver.lan/hook").is_ok());
        assert!(open.parse("https://example.com/hook").is_ok());
        for (bad, code) in [
            ("nope", "invalid_url"),
            ("ftp://example.com/", "invalid_url"),
            ("http://user:pw@example.com/", "invalid_url"),
            ("file:///etc/passwd", "invalid_url"),
        ] {
            assert_eq!(open.parse(bad).unwrap_err().code(), code, "{bad}");
        }
        let strict = Policy {
            require_https: true,
            ..open
        };
        assert_eq!(
            strict.parse("http://example.com/").unwrap_err(),
            Refusal::HttpsRequired
        );
    }

    #[test]
    fn loopback_link_local_and_the_hub_itself_are_refused() {
        let open = policy();
        for bad in [
            "127.0.0.1:80",
            "[::1]:80",
            "0.0.0.0:80",
            "169.254.169.254:80",
            "[::ffff:127.0.0.1]:80",
            "192.168.1.5:8080",
        ] {
            assert!(open.allows(bad.parse().unwrap()).is_err(), "{bad}");
        }
        for good in ["192.168.1.5:9000", "10.0.0.2:80", "93.184.216.34:443"] {
            assert!(open.allows(good.parse().unwrap()).is_ok(), "{good}");
        }
        let loose = Policy {
            allow_loopback: true,
            ..open
        };
        assert!(loose.allows("127.0.0.1:80".parse().unwrap()).is_ok());
    }
}
