//! Who calls capcom6's API, and `POST /auth/token`.
//!
//! `Authorization: Basic` carries a username and password there. Here the pair is either a
//! smshub user's (checked as a login is: argon2id, the same lockout, failures audited; the
//! user's role gives the scopes), or any username with an API key (`shk_…`) as the password
//! (the key's scopes, devices and limits). Every other credential of the native API (an API
//! key in `X-API-Key` or as a bearer token, a hub JWT, a session) works as it does there.
//! Then the native checks: CSRF for sessions, rate limits, the scope.
//!
//! `POST /auth/token` turns a user's credential into a hub JWT with the scopes asked for
//! (that API's names mapped onto smshub's, never more than the user has), for at most the
//! 15 minutes every hub JWT lives.
//!
//! Must never: let a credential do more than it may on the native API.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json;
use crate::api::ApiState;
use crate::api::access::{LoginRequest, check_login, client};
use crate::api::credential::{self, Presented};
use crate::api::error::ApiError;
use crate::api::handlers::parse_json;
use crate::auth::tokens::{Claims, HUB_ISSUER};
use crate::auth::users::Role;
use crate::auth::{API_KEY_PREFIX, KeyCheck, Principal, Scope, Scopes, Via};
use crate::domain::{format_millis, now_millis};

/// The longest a token lives: every hub JWT is trusted until it expires, so never long.
const MAX_TTL_S: u64 = 15 * 60;

/// The caller, with `scope` (any valid credential with `None`).
pub fn authorized(
    api: Arc<ApiState>,
    scope: Option<Scope>,
) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    credential::presented()
        .and(client())
        .and(warp::any().map(move || api.clone()))
        .and_then(
            move |presented: Presented, client: String, api: Arc<ApiState>| async move {
                principal(&api, scope, &presented, &client)
                    .await
                    .map_err(warp::reject::custom)
            },
        )
}

/// The principal of the credential `presented` by `client`, if it may use `scope`.
pub async fn principal(
    api: &Arc<ApiState>,
    scope: Option<Scope>,
    presented: &Presented,
    client: &str,
) -> Result<Principal, ApiError> {
    match basic(presented.authorization.as_deref()) {
        Some(Ok((username, password))) => {
            let principal = by_password(api, client, username, password).await?;
            credential::admit(api, scope, presented, principal)
        }
        Some(Err(err)) => Err(err),
        None => credential::authorize(api, scope, presented).await,
    }
}

/// The username and password of `Authorization: Basic`; `None` for another scheme.
fn basic(header: Option<&str>) -> Option<Result<(String, String), ApiError>> {
    let header = header?.trim();
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let malformed =
        || ApiError::unauthorized("the Basic credentials are not base64 of name:password");
    let decoded = match base64::engine::general_purpose::STANDARD.decode(value.trim()) {
        Ok(it) => it,
        Err(_) => return Some(Err(malformed())),
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Some(Err(malformed()));
    };
    Some(match text.split_once(':') {
        Some((username, password)) => Ok((username.to_string(), password.to_string())),
        None => Err(malformed()),
    })
}

/// The principal of a Basic pair: an API key as the password, else a user's login.
async fn by_password(
    api: &ApiState,
    client: &str,
    username: String,
    password: String,
) -> Result<Principal, ApiError> {
    if password.starts_with(API_KEY_PREFIX) {
        return match api.api_keys.check(&password, now_millis()).await? {
            KeyCheck::Valid(record) => Ok(Principal::of_key(&record)),
            KeyCheck::Expired => Err(ApiError::unauthorized("the API key has expired")),
            KeyCheck::Invalid => Err(ApiError::unauthorized("the API key is not valid")),
        };
    }
    let request = LoginRequest { username, password };
    let user = check_login(api, client, &request).await?;
    let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
    Ok(Principal::new(
        user.id,
        format!("user:{}", user.username),
        role.scopes(),
        Via::Password,
    ))
}

/// `POST /auth/token`: that API's `TokenRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"scopes": ["messages:send", "messages:read"], "ttl": 600}))]
pub struct TokenRequest {
    /// That API's scope names (`messages:send`, `devices:list`, ...) or smshub's.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Seconds, at most 900 (longer is cut to it); default 900.
    #[serde(default)]
    pub ttl: Option<u64>,
}

/// That API's `TokenResponse`, with each field both in camelCase (the Python client) and
/// snake_case (the Go client).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub id: String,
    #[serde(rename = "tokenType")]
    pub token_type_camel: &'static str,
    #[serde(rename = "accessToken")]
    pub access_token_camel: String,
    #[serde(rename = "expiresAt")]
    pub expires_at_camel: String,
    pub token_type: &'static str,
    pub access_token: String,
    pub expires_at: String,
    /// The smshub scopes granted.
    #[schema(value_type = Vec<String>)]
    pub scopes: Scopes,
}

/// The smshub scope a scope name of that API stands for: `Ok(None)` for one smshub has no
/// use for (settings, logs, tokens); smshub's own names are taken as they are.
fn scope_of(name: &str) -> Result<Option<Scope>, ApiError> {
    Ok(Some(match name {
        "messages:send" | "messages:cancel" => Scope::MessagesSend,
        "messages:read" | "messages:list" | "messages:export" => Scope::MessagesRead,
        "devices:list" => Scope::DevicesRead,
        "devices:delete" => Scope::DevicesWrite,
        "inbox:list" | "inbox:read" | "inbox:refresh" => Scope::InboxRead,
        "webhooks:list" | "webhooks:write" | "webhooks:delete" => Scope::WebhooksWrite,
        "settings:read" | "settings:write" | "logs:read" | "tokens:manage" | "tokens:refresh" => {
            return Ok(None);
        }
        other => other
            .parse()
            .map_err(|it: String| ApiError::bad_request("invalid_scope", it))?,
    }))
}

/// `POST /auth/token`: `201` with a hub JWT of the user behind the credential (a Basic
/// username and password, a session or a hub JWT); `403` for an API key, which is already
/// the credential a script needs.
pub async fn token(api: Arc<ApiState>, who: Principal, body: Bytes) -> Result<Response, ApiError> {
    let request: TokenRequest = parse_json(&body)?;
    if !matches!(who.via, Via::Password | Via::Session { .. } | Via::HubToken) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "tokens are made for users (a username and password): an API key is already a credential to call with",
        ));
    }
    if request.scopes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_scope",
            "scopes must name at least one scope",
        ));
    }
    let mut granted = Scopes::NONE;
    for name in &request.scopes {
        if let Some(scope) = scope_of(name)?
            && who.scopes.contains(scope)
        {
            granted = granted.with(scope);
        }
    }
    if granted == Scopes::NONE {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the credential has none of the scopes asked for",
        ));
    }
    let username = who.label.trim_start_matches("user:");
    let user = api
        .store
        .find_user(username)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the credential's user is gone"))?;
    let ttl = request.ttl.unwrap_or(MAX_TTL_S).clamp(1, MAX_TTL_S);
    let now = now_millis() / 1000;
    let exp = now + i64::try_from(ttl).unwrap_or(0);
    let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
    let claims = Claims {
        iss: HUB_ISSUER.to_string(),
        sub: user.id.to_string(),
        name: user.username.clone(),
        role: role.as_str().to_string(),
        scope: granted.to_string(),
        iat: now,
        exp,
    };
    let token = api.access.hub_tokens.issue(&claims);
    let expires_at = format_millis(exp * 1000);
    let body = TokenResponse {
        id: uuid::Uuid::new_v4().to_string(),
        token_type_camel: "Bearer",
        access_token_camel: token.clone(),
        expires_at_camel: expires_at.clone(),
        token_type: "Bearer",
        access_token: token,
        expires_at,
        scopes: granted,
    };
    Ok(json(&body, StatusCode::CREATED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_and_bad_ones_refused() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("ana:secret:with:colons");
        let header = format!("Basic {encoded}");
        assert_eq!(
            basic(Some(&header)).and_then(Result::ok),
            Some(("ana".to_string(), "secret:with:colons".to_string()))
        );
        assert!(basic(Some("Bearer shk_x")).is_none());
        assert!(basic(None).is_none());
        for bad in ["Basic !!!", "Basic bm9jb2xvbg==", "basic //8="] {
            assert!(matches!(basic(Some(bad)), Some(Err(_))), "{bad}");
        }
    }

    #[test]
    fn scope_names_map_onto_smshub_scopes() {
        assert_eq!(
            scope_of("messages:send").ok().flatten(),
            Some(Scope::MessagesSend)
        );
        assert_eq!(
            scope_of("messages:list").ok().flatten(),
            Some(Scope::MessagesRead)
        );
        assert_eq!(
            scope_of("devices:delete").ok().flatten(),
            Some(Scope::DevicesWrite)
        );
        assert_eq!(
            scope_of("inbox:read").ok().flatten(),
            Some(Scope::InboxRead)
        );
        assert_eq!(scope_of("tokens:manage").ok().flatten(), None);
        assert_eq!(
            scope_of("keys:admin").ok().flatten(),
            Some(Scope::KeysAdmin)
        );
        assert!(scope_of("nope").is_err());
    }
}
