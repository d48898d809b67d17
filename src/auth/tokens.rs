//! Hub tokens for people: login sessions (a cookie with a random id, stored hashed, plus a
//! CSRF token) and short-lived HS256 JWTs for scripts (`iss` = "smshub", signed with a secret
//! the hub generates once and keeps in its database).
//!
//! Must never: store a session id or log a token.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::generate_secret;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "smshub_session";
/// The `iss` of hub JWTs: a bearer token with this issuer is the hub's own.
pub const HUB_ISSUER: &str = "smshub";
/// Where the JWT signing secret is stored.
pub const JWT_SECRET_NAME: &str = "jwt_hs256";

/// A new session id (the cookie's value) and its CSRF token.
pub fn new_session() -> (String, String) {
    (generate_secret("shs_"), generate_secret(""))
}

/// A new signing secret.
pub fn new_jwt_secret() -> String {
    generate_secret("")
}

/// The claims of a hub JWT.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The username.
    pub name: String,
    pub role: String,
    /// Space-separated scopes.
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a hub JWT was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

/// Signs and checks hub JWTs.
pub struct HubTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl HubTokens {
    pub fn new(secret: &str) -> Result<HubTokens, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[HUB_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        Ok(HubTokens {
            encoding: EncodingKey::from_secret(secret.as_bytes()).map_err(|it| it.to_string())?,
            decoding: DecodingKey::from_secret(secret.as_bytes()).map_err(|it| it.to_string())?,
            validation,
        })
    }

    pub fn issue(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    pub fn check(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|it| it.claims)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// The issuer of a bearer token that has the form of a JWT (three base64url parts, the
/// middle one a JSON object with `iss`); `None` for anything else (an API key).
pub fn jwt_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    serde_json::from_slice::<Iss>(&bytes).ok()?.iss
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value.trim())
    })
}

/// The `Set-Cookie` value of a session: HttpOnly, SameSite=Strict, `Secure` when asked.
pub fn session_cookie(id: &str, max_age_s: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: HUB_ISSUER.into(),
            sub: "u1".into(),
            name: "alice".into(),
            role: "admin".into(),
            scope: "admin".into(),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn hub_tokens_round_trip_and_expire() {
        let tokens = HubTokens::new("secret").unwrap();
        let now = chrono::Utc::now().timestamp();
        let token = tokens.issue(&claims(now + 60));
        assert_eq!(jwt_issuer(&token).as_deref(), Some(HUB_ISSUER));
        assert_eq!(tokens.check(&token).unwrap().name, "alice");
        let old = tokens.issue(&claims(now - 60));
        assert_eq!(tokens.check(&old).unwrap_err(), TokenError::Expired);
        let other = HubTokens::new("another").unwrap().issue(&claims(now + 60));
        assert_eq!(tokens.check(&other).unwrap_err(), TokenError::Invalid);
        assert_eq!(jwt_issuer("shk_abc"), None);
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(
            cookie("a=1; smshub_session=xyz", SESSION_COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie("a=1", SESSION_COOKIE), None);
        assert!(session_cookie("x", 60, true).ends_with("; Secure"));
    }
}
