//! Who is calling: the credential of a request (an API key, a hub JWT, a session cookie),
//! the principal it stands for, its CSRF check, its rate limit and its scope.
//!
//! A bearer token whose `iss` is "smshub" is a hub JWT; another JWT is for OIDC (refused
//! until it is configured); anything else is an API key. `X-API-Key` is always an API key.
//! A session cookie counts only when no other credential is sent.
//!
//! Cheap on the API-key path: one key lookup (no cache), no other round trip; the rate
//! limiter is skipped entirely when no limit applies.

use std::sync::Arc;

use warp::http::{HeaderValue, Method, StatusCode, header::HeaderName};
use warp::{Filter, Rejection};

use super::ApiState;
use super::error::ApiError;
use crate::auth::limits::{Limited, RateState};
use crate::auth::oidc::OidcError;
use crate::auth::tokens::{self, HubTokens, SESSION_COOKIE, TokenError};
use crate::auth::users::{Lockout, Role};
use crate::auth::{KeyCheck, Principal, RateLimits, Scope, Scopes, Via, bearer};
use crate::domain::{hash_secret, now_millis};
use crate::server::AnswerHeaders;

/// What the API keeps for access control beyond the store.
pub struct Access {
    pub rate_limits: RateLimits,
    pub lockout: Lockout,
    pub hub_tokens: HubTokens,
    /// Session cookies get `Secure` (on when the hub serves TLS).
    pub cookie_secure: bool,
}

/// The credentials a request may carry.
#[derive(Debug, Default)]
pub struct Presented {
    pub method: Method,
    pub api_key: Option<String>,
    pub authorization: Option<String>,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub answer: Option<AnswerHeaders>,
}

/// The credentials of a request, as a filter.
pub fn presented() -> impl Filter<Extract = (Presented,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::optional::<String>("x-api-key"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("cookie"))
        .and(warp::header::optional::<String>("x-csrf-token"))
        .and(warp::ext::optional::<AnswerHeaders>())
        .map(
            |method, api_key, authorization, cookie, csrf, answer| Presented {
                method,
                api_key,
                authorization,
                cookie,
                csrf,
                answer,
            },
        )
}

/// The principal of a request that may use `scope`: `401 unauthorized` without a valid
/// credential, `403 csrf` for a cookie session's unsafe request without its token,
/// `429 rate_limited` past its request limit, `403 forbidden` without the scope.
pub async fn authorize(
    api: &Arc<ApiState>,
    scope: Option<Scope>,
    presented: &Presented,
) -> Result<Principal, ApiError> {
    let principal = identify(api, presented).await?;
    admit(api, scope, presented, principal)
}

/// The checks of [`authorize`] after the caller is known: CSRF for a session, the rate
/// limit, the scope. Also for a principal identified another way (the Basic credentials of
/// capcom6's API, `api::compat::auth`).
pub fn admit(
    api: &ApiState,
    scope: Option<Scope>,
    presented: &Presented,
    principal: Principal,
) -> Result<Principal, ApiError> {
    if let Via::Session { csrf, .. } = &principal.via {
        let safe = matches!(
            presented.method,
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        let matches = presented.csrf.as_deref().is_some_and(|given| {
            subtle::ConstantTimeEq::ct_eq(given.as_bytes(), csrf.as_bytes()).into()
        });
        if !safe && !matches {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "a request with a session cookie needs the X-CSRF-Token header given at login",
            ));
        }
    }
    match api
        .access
        .rate_limits
        .request(principal.owner, &principal.limits)
    {
        Ok(None) => {}
        Ok(Some(state)) => rate_headers(presented, state),
        Err((limited, state)) => {
            rate_headers(presented, state);
            return Err(rate_limited(&limited));
        }
    }
    if let Some(scope) = scope
        && !principal.scopes.contains(scope)
    {
        return Err(ApiError::forbidden(scope));
    }
    Ok(principal)
}

/// `429 rate_limited` with `Retry-After`.
pub fn rate_limited(limited: &Limited) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "over the limit of {} {}; try again in {} s",
            limited.limit, limited.what, limited.retry_after_s
        ),
    );
    err.retry_after = Some(u32::try_from(limited.retry_after_s).unwrap_or(u32::MAX));
    err
}

fn rate_headers(presented: &Presented, state: RateState) {
    let Some(answer) = &presented.answer else {
        return;
    };
    for (name, value) in [
        ("x-ratelimit-limit", u64::from(state.limit)),
        ("x-ratelimit-remaining", u64::from(state.remaining)),
        ("x-ratelimit-reset", state.reset_s),
    ] {
        answer.add(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// The principal a request's credential stands for.
async fn identify(api: &Arc<ApiState>, presented: &Presented) -> Result<Principal, ApiError> {
    let bearer = presented.authorization.as_deref().and_then(bearer);
    if let Some(token) = presented.api_key.as_deref().or(bearer.as_deref()) {
        if presented.api_key.is_none()
            && let Some(issuer) = tokens::jwt_issuer(token)
        {
            return if issuer == tokens::HUB_ISSUER {
                hub_token(&api.access.hub_tokens, token)
            } else if let Some(provider) = &api.oidc {
                provider.verify(token).await.map_err(oidc_error)
            } else {
                Err(ApiError::unauthorized(
                    "bearer tokens of other issuers are not accepted (no OIDC issuer configured)",
                ))
            };
        }
        return api_key(api, token).await;
    }
    if let Some(id) = presented
        .cookie
        .as_deref()
        .and_then(|it| tokens::cookie(it, SESSION_COOKIE))
    {
        return session(api, id).await;
    }
    Err(ApiError::unauthorized(
        "send an API key in the X-API-Key header or as Authorization: Bearer",
    ))
}

async fn api_key(api: &ApiState, secret: &str) -> Result<Principal, ApiError> {
    match api.api_keys.check(secret, now_millis()).await? {
        KeyCheck::Valid(record) => Ok(Principal::of_key(&record)),
        KeyCheck::Expired => Err(ApiError::unauthorized("the API key has expired")),
        KeyCheck::Invalid => Err(ApiError::unauthorized("the API key is not valid")),
    }
}

fn hub_token(tokens: &HubTokens, token: &str) -> Result<Principal, ApiError> {
    let claims = tokens.check(token).map_err(|err| match err {
        TokenError::Expired => ApiError::unauthorized("the token has expired"),
        TokenError::Invalid => ApiError::unauthorized("the token is not valid"),
    })?;
    let owner = uuid::Uuid::parse_str(&claims.sub)
        .map_err(|_| ApiError::unauthorized("the token is not valid"))?;
    let scopes = Scopes::parse(&claims.scope).unwrap_or(Scopes::NONE);
    Ok(Principal::new(
        owner,
        format!("user:{}", claims.name),
        scopes,
        Via::HubToken,
    ))
}

async fn session(api: &ApiState, id: &str) -> Result<Principal, ApiError> {
    let id_hash = hash_secret(id);
    let Some(session) = api.store.find_session(&id_hash, now_millis()).await? else {
        return Err(ApiError::unauthorized(
            "the session has ended; log in again",
        ));
    };
    let scopes = Role::parse(&session.user.role)
        .map(Role::scopes)
        .unwrap_or(Scopes::NONE);
    Ok(Principal::new(
        session.user.id,
        format!("user:{}", session.user.username),
        scopes,
        Via::Session {
            csrf: session.csrf_token,
            id_hash,
        },
    ))
}

/// What a refused OIDC token is answered with: `503` when the provider cannot be reached
/// (the token may be good), `401` otherwise.
fn oidc_error(error: OidcError) -> ApiError {
    match &error {
        OidcError::Provider(_) => {
            let mut answer = ApiError::new(
                warp::http::StatusCode::SERVICE_UNAVAILABLE,
                "identity_provider_unavailable",
                error.to_string(),
            );
            answer.retry_after = Some(10);
            answer
        }
        _ => ApiError::unauthorized(error.to_string()),
    }
}
