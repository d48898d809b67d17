//! Bearer JWTs from an OpenID provider (`--oidc-issuer`): the provider's discovery document
//! and JWKS, fetched with timeouts and cached; a token whose `kid` is not in the cache makes
//! one refresh (at most one per `refresh_every`, 10 s by default), so a rotated provider key is picked up
//! and a flood of made-up `kid`s costs the provider nothing.
//!
//! A token is checked for its signature (RS256 or ES256 only), `iss`, `aud`, `exp` and
//! `nbf`; its scopes come from one claim (a space-separated string or an array), unknown
//! names ignored. Its principal's owner is a UUID derived from issuer and subject, so the
//! same person keeps the same tenant across tokens. Must never: block a request on the
//! provider for longer than the fetch timeout, or accept a hub token (`iss` "smshub").

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use super::{Principal, Scope, Scopes};

/// The issuer of the hub's own tokens: never the OpenID provider's.
pub const HUB_ISSUER: &str = "smshub";
/// How long one fetch from the provider may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The OpenID provider to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The issuer URL, as in the tokens' `iss` (`https://id.example.com/realms/sms`).
    pub issuer: String,
    /// The audience the tokens must name (`aud`).
    pub audience: String,
    /// The claim that holds the scopes (`scope`).
    pub scope_claim: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// The shortest time between two fetches of the keys caused by unknown `kid`s.
    pub refresh_every: Duration,
}

impl OidcConfig {
    /// A provider with the default claim (`scope`), leeway (30 s) and refresh interval (10 s).
    pub fn new(issuer: &str, audience: &str) -> OidcConfig {
        OidcConfig {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            scope_claim: "scope".to_string(),
            leeway: Duration::from_secs(30),
            refresh_every: Duration::from_secs(10),
        }
    }
}

/// Why an OIDC token was refused (a `401`; the message is safe to show).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the bearer token is not valid: {0}")]
    Invalid(String),
    #[error("the token's signing key is not among the provider's keys")]
    UnknownKey,
    #[error("the OpenID provider could not be reached: {0}")]
    Provider(String),
}

/// Validates tokens of one provider.
pub struct Oidc {
    config: OidcConfig,
    client: reqwest::Client,
    /// Keys by `kid`, with their algorithm.
    keys: RwLock<HashMap<String, (Algorithm, DecodingKey)>>,
    /// When the keys were last fetched (one fetch at a time).
    fetched: Mutex<Option<Instant>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(flatten)]
    rest: HashMap<String, serde_json::Value>,
}

impl Oidc {
    pub fn new(mut config: OidcConfig) -> Result<Oidc, OidcError> {
        super::super::server::tls::install_crypto_provider();
        config.issuer = config.issuer.trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|err| OidcError::Provider(err.to_string()))?;
        Ok(Oidc {
            config,
            client,
            keys: RwLock::new(HashMap::new()),
            fetched: Mutex::new(None),
        })
    }

    /// The principal of a valid token.
    pub async fn verify(&self, token: &str) -> Result<Principal, OidcError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| OidcError::Invalid(err.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(OidcError::Invalid(format!(
                "algorithm {:?} is not accepted (RS256, ES256)",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        let (alg, key) = match self.key(&kid).await {
            Some(it) => it,
            None => {
                self.refresh().await?;
                self.key(&kid).await.ok_or(OidcError::UnknownKey)?
            }
        };
        if alg != header.alg {
            return Err(OidcError::Invalid(
                "the key is not for this algorithm".into(),
            ));
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.config.issuer, &format!("{}/", self.config.issuer)]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway.as_secs();
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|err| OidcError::Invalid(err.to_string()))?;
        Ok(self.principal(data.claims))
    }

    fn principal(&self, claims: Claims) -> Principal {
        let scopes = match claims.rest.get(&self.config.scope_claim) {
            Some(serde_json::Value::String(text)) => scopes_of(text.split_whitespace()),
            Some(serde_json::Value::Array(items)) => {
                scopes_of(items.iter().filter_map(serde_json::Value::as_str))
            }
            _ => Scopes::NONE,
        };
        let name = format!("{}#{}", self.config.issuer, claims.sub);
        Principal::new(
            Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes()),
            format!("oidc:{}", claims.sub),
            scopes,
            crate::auth::Via::Oidc,
        )
    }

    async fn key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        self.keys.read().await.get(kid).cloned()
    }

    /// Fetches the provider's keys, unless they were fetched within `refresh_every`.
    async fn refresh(&self) -> Result<(), OidcError> {
        let mut fetched = self.fetched.lock().await;
        if fetched.is_some_and(|at| at.elapsed() < self.config.refresh_every) {
            return Ok(());
        }
        *fetched = Some(Instant::now());
        let keys = self.fetch_keys().await.inspect_err(|error| {
            tracing::warn!(%error, issuer = %self.config.issuer, "OIDC keys not fetched");
        })?;
        tracing::info!(issuer = %self.config.issuer, keys = keys.len(), "OIDC keys fetched");
        *self.keys.write().await = keys;
        Ok(())
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, (Algorithm, DecodingKey)>, OidcError> {
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer);
        let discovery: Discovery = self.get_json(&url).await?;
        if discovery.issuer.trim_end_matches('/') != self.config.issuer {
            return Err(OidcError::Provider(format!(
                "the discovery document names issuer {:?}",
                discovery.issuer
            )));
        }
        let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let alg = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(it)
                    if it.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (alg, key));
            }
        }
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let provider = |err: reqwest::Error| OidcError::Provider(format!("{url}: {err}"));
        self.client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(provider)?
            .json()
            .await
            .map_err(provider)
    }
}

fn scopes_of<'a>(names: impl Iterator<Item = &'a str>) -> Scopes {
    names.filter_map(|it| it.parse::<Scope>().ok()).collect()
}

/// Whether `token` is a JWT issued by someone other than the hub (its payload is read
/// unverified, only to route it).
pub fn is_foreign_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    #[derive(Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Issuer>(&bytes).ok())
        .and_then(|it| it.iss)
        .is_some_and(|iss| iss != HUB_ISSUER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_foreign_jwts_go_to_the_provider() {
        let jwt = |payload: &str| {
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", engine.encode(payload))
        };
        assert!(is_foreign_jwt(&jwt(r#"{"iss":"https://id.example"}"#)));
        assert!(!is_foreign_jwt(&jwt(r#"{"iss":"smshub"}"#)));
        assert!(!is_foreign_jwt(&jwt(r#"{"sub":"x"}"#)));
        assert!(!is_foreign_jwt("shk_ABCDEF0123456789"));
        assert!(!is_foreign_jwt("a.b.c.d"));
    }
}
