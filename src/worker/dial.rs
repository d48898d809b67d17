//! Dialling the hub: the WebSocket upgrade to `/ws/device/{id}` with the token in the
//! `Authorization` header, over TCP or TLS (rustls with the system's roots, or the CAs of
//! `--ca-file`), and the wait between attempts: exponential backoff with full jitter (spec §3).
//! The worker dials out, so it works behind NAT.
//!
//! Must never: log the token, or retry after a `401` (the token is wrong or revoked).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::config::Token;

/// How long the TCP connection, the TLS handshake and the upgrade may take together.
const DIAL_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest frame, as the spec says (§2.3).
const MAX_FRAME: usize = 64 * 1024;

/// A socket to the hub, plain or TLS.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

/// The open WebSocket.
pub type Ws = WebSocketStream<Box<dyn Socket>>;

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// `401`: the token is wrong, rotated or revoked, or the device was removed. Not retried.
    #[error("the hub refused the device token (401)")]
    Unauthorized,
    /// Anything else (network, DNS, TLS, 5xx): retried with backoff.
    #[error("{0}")]
    Failed(String),
}

/// What the worker dials with.
pub struct Dialer {
    url: String,
    token: Token,
    tls: Option<Arc<ClientConfig>>,
}

impl Dialer {
    /// A dialer for `url` (`ws://` or `wss://`); TLS settings are read now.
    pub fn new(url: &str, token: Token, ca_file: Option<&Path>) -> anyhow::Result<Dialer> {
        let tls = if url.starts_with("wss://") {
            Some(
                crate::client_tls::client_config(ca_file, "--ca-file", "wss://")
                    .map_err(anyhow::Error::msg)?,
            )
        } else {
            None
        };
        Ok(Dialer {
            url: url.to_string(),
            token,
            tls,
        })
    }

    /// One attempt.
    pub async fn connect(&self) -> Result<Ws, DialError> {
        tokio::time::timeout(DIAL_TIMEOUT, self.connect_inner())
            .await
            .unwrap_or_else(|_| Err(DialError::Failed("the hub did not answer in time".into())))
    }

    async fn connect_inner(&self) -> Result<Ws, DialError> {
        let failed =
            |what: &str, err: &dyn std::fmt::Display| DialError::Failed(format!("{what}: {err}"));
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|err| failed("bad hub URL", &err))?;
        let bearer =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).map_err(|_| {
                DialError::Failed("the token has characters a header cannot carry".into())
            })?;
        request.headers_mut().insert("Authorization", bearer);
        let uri = request.uri().clone();
        let host = uri
            .host()
            .ok_or_else(|| DialError::Failed("the hub URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = uri.scheme_str() == Some("wss");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|err| failed(&format!("cannot reach {host}:{port}"), &err))?;
        let _ = tcp.set_nodelay(true);
        let socket: Box<dyn Socket> = match (&self.tls, tls) {
            (Some(config), true) => {
                let name = ServerName::try_from(host.clone())
                    .map_err(|err| failed("bad host name", &err))?;
                let stream = TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|err| failed("TLS", &err))?;
                Box::new(stream)
            }
            _ => Box::new(tcp),
        };
        let config = WebSocketConfig::default()
            .max_frame_size(Some(MAX_FRAME))
            .max_message_size(Some(MAX_FRAME));
        match tokio_tungstenite::client_async_with_config(request, socket, Some(config)).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response))
                if response.status() == 401 =>
            {
                Err(DialError::Unauthorized)
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(DialError::Failed(
                format!("the hub answered {}", response.status()),
            )),
            Err(err) => Err(failed("WebSocket upgrade", &err)),
        }
    }
}

/// The wait before the next attempt after `failures` failed or short sessions in a row:
/// uniform in `[0, min(max, 1 s × 2^(failures − 1))]` (full jitter).
pub fn backoff(failures: u32, max: Duration) -> Duration {
    let ceiling = backoff_ceiling(failures, max);
    let ms = rand::rng().random_range(0..=ceiling.as_millis() as u64);
    Duration::from_millis(ms)
}

/// The ceiling of [`backoff`].
pub fn backoff_ceiling(failures: u32, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    Duration::from_secs(1u64 << exp).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_below_it() {
        let max = Duration::from_secs(60);
        let ceilings: Vec<u64> = (1..=8)
            .map(|it| backoff_ceiling(it, max).as_secs())
            .collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        for failures in 1..10 {
            assert!(backoff(failures, max) <= backoff_ceiling(failures, max));
        }
    }
}
