//! OIDC bearer tokens against a real OpenID provider: the npm `oidc-provider` (a certified
//! implementation) run under Node from `tests/oidc/provider.mjs`, minting JWT access tokens
//! with the client_credentials grant. Installed by `.ci/run` (`npm install --prefix
//! tests/oidc`); installed here too when missing, so the test never skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{TestHub, free_port};

const AUDIENCE: &str = "urn:smshub";

/// A running provider; killed on drop.
struct Provider {
    child: Child,
    port: u16,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

fn install_once() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        if oidc_dir().join("node_modules/oidc-provider").is_dir() {
            return;
        }
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(oidc_dir())
            .status()
            .expect("npm runs (Node.js is needed for the OIDC tests)");
        assert!(status.success(), "npm install --prefix tests/oidc failed");
    });
}

impl Provider {
    /// Starts the provider on `port` with signing keys named after `kid`.
    async fn start(port: u16, kid: &str) -> Provider {
        install_once();
        let mut child = Command::new("node")
            .arg(oidc_dir().join("provider.mjs"))
            .env("PORT", port.to_string())
            .env("KID", kid)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let url = format!("http://127.0.0.1:{port}/.well-known/openid-configuration");
        crate::support::wait_until_up(&url, &mut child, "oidc-provider").await;
        Provider { child, port }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A JWT access token for `client` with `scope`, for `resource` (its audience).
    async fn token(&self, client: &str, scope: &str, resource: &str) -> String {
        let body = format!(
            "grant_type=client_credentials&client_id={client}&client_secret=secret&scope={scope}&resource={resource}"
        )
        .replace(' ', "%20");
        let answer = reqwest::Client::new()
            .post(format!("{}/token", self.issuer()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request");
        let json: serde_json::Value = answer.json().await.unwrap();
        json["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {json}"))
            .to_string()
    }
}

async fn oidc_hub(provider: &Provider) -> TestHub {
    let issuer = provider.issuer();
    TestHub::spawn_with(move |config| {
        let mut oidc = smshub::auth::oidc::OidcConfig::new(&issuer, AUDIENCE);
        oidc.leeway = Duration::ZERO;
        oidc.refresh_every = Duration::ZERO;
        config.oidc = Some(oidc);
    })
    .await
}

async fn get(hub: &TestHub, path: &str, token: &str) -> (u16, serde_json::Value) {
    let answer = hub
        .http
        .get(hub.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or_default())
}

#[tokio::test]
async fn provider_tokens_are_checked_for_signature_audience_expiry_and_scope() {
    let port = free_port();
    let provider = Provider::start(port, "k1").await;
    let hub = oidc_hub(&provider).await;

    // Valid, RS256 and ES256.
    let token = provider.token("hub-test", "devices:read", AUDIENCE).await;
    let (status, body) = get(&hub, "/api/devices", &token).await;
    assert_eq!(status, 200, "{body}");
    let token = provider.token("ec", "devices:read", AUDIENCE).await;
    assert_eq!(get(&hub, "/api/devices", &token).await.0, 200);

    // Without the scope the route needs: 403 naming it.
    let token = provider.token("hub-test", "devices:read", AUDIENCE).await;
    let (status, body) = get(&hub, "/api/sms/inbox", &token).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("inbox:read")
    );
    // Scopes the hub does not know are ignored; those it knows count.
    let token = provider
        .token("hub-test", "legacy:read inbox:read", AUDIENCE)
        .await;
    assert_eq!(get(&hub, "/api/sms/inbox", &token).await.0, 200);

    // Another audience.
    let token = provider
        .token("hub-test", "devices:read", "urn:other")
        .await;
    let (status, body) = get(&hub, "/api/devices", &token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    // Expired (a 1 s token, no leeway).
    let token = provider.token("short", "devices:read", AUDIENCE).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = get(&hub, "/api/devices", &token).await;
    assert_eq!(status, 401, "{body}");

    // A tampered token.
    let token = provider.token("hub-test", "devices:read", AUDIENCE).await;
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = provider.token("hub-test", "admin", AUDIENCE).await;
    parts[1] = other.split('.').nth(1).unwrap();
    assert_eq!(get(&hub, "/api/devices", &parts.join(".")).await.0, 401);

    // API keys still work beside OIDC.
    assert_eq!(hub.get("/api/devices").await.0, 200);
}

#[tokio::test]
async fn a_rotated_provider_key_is_fetched_and_the_old_one_refused() {
    let port = free_port();
    let provider = Provider::start(port, "k1").await;
    let hub = oidc_hub(&provider).await;
    let old = provider.token("hub-test", "devices:read", AUDIENCE).await;
    assert_eq!(get(&hub, "/api/devices", &old).await.0, 200);

    // The provider restarts with new keys: its old tokens' `kid` is unknown.
    drop(provider);
    let provider = Provider::start(port, "k2").await;
    let new = provider.token("hub-test", "devices:read", AUDIENCE).await;
    let (status, body) = get(&hub, "/api/devices", &new).await;
    assert_eq!(status, 200, "the new key is fetched: {body}");
    let (status, body) = get(&hub, "/api/devices", &old).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signing key"),
        "{body}"
    );
    drop(provider);
    // With the provider gone, known keys still validate: no request waits on it.
    assert_eq!(get(&hub, "/api/devices", &new).await.0, 200);
}
