//! The access-control routes: API keys (`/api/keys`), logins, sessions and tokens
//! (`/api/auth/...`, with the Flask gateway's `POST /api/auth` and
//! `POST /api/generate-api-key`), and the audit log (`GET /api/audit`).
//!
//! Must never: answer a secret twice (a key or session id is shown once), or log one.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use warp::Filter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use super::error::ApiError;
use super::{ApiState, authorized, json_body, query, run, signed_in, with_api};
use crate::auth::keys::{KeySpec, KeyView, find_keys, parse_expires};
use crate::auth::tokens::{self, Claims, HUB_ISSUER};
use crate::auth::users::{Role, verify_password};
use crate::auth::{KeyLimits, Principal, Scope, Scopes, Via, create_key, rotate_api_key};
use crate::dispatch::AllowedDevices;
use crate::domain::{Millis, format_millis, hash_secret, now_millis, parse_rfc3339};
use crate::server::PeerAddr;
use crate::store::{AccessChange, AuditEntry, AuditFilter, Change, Outcome, UserRecord};

/// How long a login session lasts.
const SESSION_TTL_S: u64 = 12 * 3600;
/// How long a hub JWT lasts.
const TOKEN_TTL_S: i64 = 15 * 60;

/// Every access-control route.
pub fn routes(api: Arc<ApiState>) -> warp::filters::BoxedFilter<(Response,)> {
    let keys = |scope| with_api(api.clone()).and(authorized(api.clone(), scope));
    let list = warp::path!("api" / "keys")
        .and(warp::get())
        .and(keys(Scope::KeysAdmin))
        .and_then(|api, _key| run(list_keys(api)));
    let create = warp::path!("api" / "keys")
        .and(warp::post())
        .and(keys(Scope::KeysAdmin))
        .and(json_body())
        .and_then(|api, key, body| run(create_key_route(api, key, body)));
    let show = warp::path!("api" / "keys" / String)
        .and(warp::get())
        .and(keys(Scope::KeysAdmin))
        .and_then(|id, api, _key| run(show_key(api, id)));
    let revoke = warp::path!("api" / "keys" / String)
        .and(warp::delete())
        .and(keys(Scope::KeysAdmin))
        .and_then(|id, api, key| run(revoke_key(api, key, id)));
    let rotate = warp::path!("api" / "keys" / String / "rotate")
        .and(warp::post())
        .and(keys(Scope::KeysAdmin))
        .and_then(|id, api, key| run(rotate_key(api, key, id)));
    let generate = warp::path!("api" / "generate-api-key")
        .and(warp::post())
        .and(keys(Scope::KeysAdmin))
        .and_then(|api, key| run(generate_api_key(api, key)));
    let audit_log = warp::path!("api" / "audit")
        .and(warp::get())
        .and(keys(Scope::Admin))
        .and(query::<AuditQuery>())
        .and_then(|api, _key, query| run(list_audit(api, query)));
    let login = warp::path!("api" / "auth" / "login")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(client())
        .and(json_body())
        .and_then(|api, client, body| run(login_route(api, client, body, Answer::Session)));
    let flask_login = warp::path!("api" / "auth")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(client())
        .and(json_body())
        .and_then(|api, client, body| run(login_route(api, client, body, Answer::FlaskToken)));
    let token_with_password = warp::path!("api" / "auth" / "token")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(client())
        .and(json_body())
        .and_then(|api, client, body: Bytes| async move {
            if body.iter().all(u8::is_ascii_whitespace) {
                // No password: the session's user (below).
                return Err(warp::reject::not_found());
            }
            run(login_route(api, client, body, Answer::Token)).await
        });
    let token_of_session = warp::path!("api" / "auth" / "token")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(signed_in(api.clone()))
        .and_then(|api, principal| run(token_for(api, principal)));
    let logout = warp::path!("api" / "auth" / "logout")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(signed_in(api.clone()))
        .and_then(|api, principal| run(logout_route(api, principal)));
    let me = warp::path!("api" / "auth" / "me")
        .and(warp::get())
        .and(signed_in(api.clone()))
        .and_then(|principal| run(async move { Ok(me_route(principal)) }));
    list.or(create)
        .unify()
        .or(show)
        .unify()
        .or(revoke)
        .unify()
        .or(rotate)
        .unify()
        .or(generate)
        .unify()
        .or(audit_log)
        .unify()
        .or(login)
        .unify()
        .or(flask_login)
        .unify()
        .or(token_with_password)
        .unify()
        .or(token_of_session)
        .unify()
        .or(logout)
        .unify()
        .or(me)
        .unify()
        .boxed()
}

/// The client's address, for the login lockout.
pub(super) fn client() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone
{
    warp::ext::optional::<PeerAddr>().map(|it: Option<PeerAddr>| match it {
        Some(PeerAddr(addr)) => addr.ip().to_string(),
        None => "unknown".to_string(),
    })
}

/// Writes an audit entry; a failure to write it is logged (the store answers `503` for the
/// action itself when it cannot write).
pub(super) async fn audit(
    api: &ApiState,
    actor: &str,
    action: &str,
    target: Option<&str>,
    ok: bool,
) {
    audit_with(api, actor, action, target, ok, None).await;
}

pub(super) async fn audit_with(
    api: &ApiState,
    actor: &str,
    action: &str,
    target: Option<&str>,
    ok: bool,
    detail: Option<String>,
) {
    let entry = AuditEntry {
        at: now_millis(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.map(str::to_string),
        ok,
        detail,
    };
    if let Err(err) = api
        .store
        .apply(Change::Access(AccessChange::Audit(entry)))
        .await
    {
        tracing::warn!(error = %err, action, "audit entry not written");
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().find(|it| !it.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid_request",
            "request body: expected a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|err| {
        let code = if err.is_syntax() || err.is_eof() {
            "invalid_json"
        } else {
            "invalid_request"
        };
        ApiError::bad_request(code, format!("request body: {err}"))
    })
}

fn json(value: &impl serde::Serialize, status: StatusCode) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

async fn list_keys(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let now = now_millis();
    let keys: Vec<KeyView> = api
        .store
        .list_api_keys()
        .await?
        .into_iter()
        .map(|it| KeyView::new(&api.api_keys.with_last_use(it), now))
        .collect();
    Ok(json(&serde_json::json!({ "keys": keys }), StatusCode::OK))
}

/// The one key an id or prefix names, else `404`.
async fn one_key(api: &ApiState, id: &str) -> Result<crate::store::ApiKeyRecord, ApiError> {
    let mut found = find_keys(&api.store, id).await?;
    // A prefix may name a revoked key and its active successor; the active one counts.
    found.sort_by_key(|it| it.revoked);
    found
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("no API key with id or prefix {id:?}")))
}

async fn show_key(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    let record = api.api_keys.with_last_use(one_key(&api, &id).await?);
    Ok(json(&KeyView::new(&record, now_millis()), StatusCode::OK))
}

/// `scopes` as a list of names or one space- or comma-separated text.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopesField {
    List(Vec<String>),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKeyRequest {
    name: Option<String>,
    scopes: Option<ScopesField>,
    /// RFC 3339, or a duration like `30d`.
    expires_at: Option<String>,
    devices: Option<Vec<String>>,
    rate_limits: Option<KeyLimits>,
}

fn key_spec(request: CreateKeyRequest, now: Millis) -> Result<KeySpec, ApiError> {
    let name = request.name.unwrap_or_default();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 64 characters",
        ));
    }
    let scopes = match request.scopes {
        None => Ok(Scopes::NONE
            .with(Scope::MessagesSend)
            .with(Scope::MessagesRead)),
        Some(ScopesField::Text(text)) => Scopes::parse(&text),
        Some(ScopesField::List(list)) => Scopes::parse(&list.join(" ")),
    }
    .map_err(|err| ApiError::bad_request("invalid_scope", err))?;
    if scopes == Scopes::NONE {
        return Err(ApiError::bad_request(
            "invalid_scope",
            "a key needs a scope",
        ));
    }
    let expires_at = request
        .expires_at
        .map(|it| parse_expires(&it, now))
        .transpose()
        .map_err(|err| ApiError::bad_request("invalid_time", err))?;
    if expires_at.is_some_and(|it| it <= now) {
        return Err(ApiError::bad_request(
            "invalid_time",
            "expires_at is in the past",
        ));
    }
    let devices = AllowedDevices::parse(&request.devices.unwrap_or_default().join(","))
        .map_err(|err| ApiError::bad_request("invalid_request", format!("devices: {err}")))?;
    Ok(KeySpec {
        name: name.to_string(),
        scopes,
        expires_at,
        devices,
        limits: request.rate_limits.unwrap_or_default(),
    })
}

/// The answer to a created or rotated key: the secret, shown this once.
fn created(key: &crate::auth::NewApiKey, spec_view: KeyView) -> Response {
    let mut body = serde_json::to_value(spec_view).unwrap_or_default();
    body["key"] = key.secret.clone().into();
    body["api_key"] = key.secret.clone().into();
    json(&body, StatusCode::CREATED)
}

async fn create_key_route(
    api: Arc<ApiState>,
    creator: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    let now = now_millis();
    let spec = key_spec(parse_json(&body)?, now)?
        .within(&creator)
        .map_err(|err| ApiError::new(StatusCode::FORBIDDEN, "forbidden", err))?;
    let key = create_key(&api.store, &spec, Some(&creator.label)).await?;
    audit(&api, &creator.label, "key.create", Some(&key.prefix), true).await;
    tracing::info!(key = %key.prefix, by = %creator.label, "API key created");
    let record = one_key(&api, &key.id.to_string()).await?;
    Ok(created(&key, KeyView::new(&record, now)))
}

async fn revoke_key(api: Arc<ApiState>, by: Principal, id: String) -> Result<Response, ApiError> {
    let record = one_key(&api, &id).await?;
    let outcome = api
        .store
        .apply(Change::RevokeApiKey {
            id: Some(record.id),
            prefix: None,
        })
        .await?;
    if outcome != Outcome::Applied {
        return Err(ApiError::not_found(format!("no unrevoked API key {id:?}")));
    }
    audit(&api, &by.label, "key.revoke", Some(&record.prefix), true).await;
    tracing::info!(key = %record.prefix, by = %by.label, "API key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rotate_key(api: Arc<ApiState>, by: Principal, id: String) -> Result<Response, ApiError> {
    let old = one_key(&api, &id).await?;
    // Rotating is creating a key like it: the creator must hold what it grants.
    let scopes = Scopes::parse(&old.scopes).unwrap_or(Scopes::NONE);
    if let Some(missing) = scopes.iter().find(|it| !by.scopes.contains(*it)) {
        return Err(ApiError::forbidden(missing));
    }
    let Some(key) = rotate_api_key(&api.store, &old, Some(&by.label)).await? else {
        return Err(ApiError::not_found(format!("no unrevoked API key {id:?}")));
    };
    audit_with(
        &api,
        &by.label,
        "key.rotate",
        Some(&old.prefix),
        true,
        Some(format!("replaced by {}", key.prefix)),
    )
    .await;
    tracing::info!(old = %old.prefix, new = %key.prefix, by = %by.label, "API key rotated");
    let record = one_key(&api, &key.id.to_string()).await?;
    let mut response = created(&key, KeyView::new(&record, now_millis()));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// `POST /api/generate-api-key` (the Flask gateway's): a new key with the caller's scopes.
async fn generate_api_key(api: Arc<ApiState>, by: Principal) -> Result<Response, ApiError> {
    let spec = KeySpec {
        name: format!("generated by {}", by.label),
        scopes: by.scopes,
        expires_at: None,
        devices: by.devices.clone(),
        limits: KeyLimits::default(),
    };
    let key = create_key(&api.store, &spec, Some(&by.label)).await?;
    audit(&api, &by.label, "key.create", Some(&key.prefix), true).await;
    let body = serde_json::json!({
        "api_key": key.secret,
        "id": key.id,
        "prefix": key.prefix,
        "scopes": spec.scopes,
    });
    Ok(json(&body, StatusCode::CREATED))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    limit: Option<u64>,
}

async fn list_audit(api: Arc<ApiState>, query: AuditQuery) -> Result<Response, ApiError> {
    let since = match &query.since {
        Some(text) => Some(parse_rfc3339(text).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "since must be an RFC 3339 time")
        })?),
        None => None,
    };
    let filter = AuditFilter {
        actor: query.actor,
        action: query.action,
        since,
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
    };
    let entries: Vec<serde_json::Value> = api
        .store
        .list_audit(&filter)
        .await?
        .into_iter()
        .map(|it| {
            serde_json::json!({
                "at": format_millis(it.at),
                "actor": it.actor,
                "action": it.action,
                "target": it.target,
                "ok": it.ok,
                "detail": it.detail,
            })
        })
        .collect();
    Ok(json(
        &serde_json::json!({ "entries": entries }),
        StatusCode::OK,
    ))
}

#[derive(Deserialize)]
pub(super) struct LoginRequest {
    pub(super) username: String,
    pub(super) password: String,
}

/// What a successful login answers.
#[derive(Clone, Copy)]
enum Answer {
    /// A session cookie and its CSRF token (`/api/auth/login`).
    Session,
    /// A JWT (`/api/auth/token`).
    Token,
    /// The Flask gateway's `{token, username, role}` (`/api/auth`).
    FlaskToken,
}

/// Checks a username and password, with the lockout: `429` while locked, `401` for a wrong
/// pair (the same for an unknown user, so names cannot be probed).
pub(super) async fn check_login(
    api: &ApiState,
    client: &str,
    request: &LoginRequest,
) -> Result<UserRecord, ApiError> {
    let username = request.username.trim();
    let ip_key = format!("ip:{client}");
    let user_key = format!("user:{username}");
    let keys = [user_key.as_str(), ip_key.as_str()];
    if let Some(wait) = api.access.lockout.locked(&keys, Instant::now()) {
        audit_with(
            api,
            username,
            "login",
            None,
            false,
            Some("locked out".into()),
        )
        .await;
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many failed logins; try again in {wait} s"),
        );
        err.retry_after = Some(u32::try_from(wait).unwrap_or(u32::MAX));
        return Err(err);
    }
    let user = api.store.find_user(username).await?;
    let ok = match &user {
        Some(user) => verify_password(&request.password, &user.password_hash),
        None => {
            // As slow as a real check, so a missing user is not told apart by time.
            let _ = verify_password(&request.password, dummy_hash());
            false
        }
    };
    match user {
        Some(user) if ok => {
            api.access.lockout.succeeded(&user_key);
            Ok(user)
        }
        _ => {
            api.access.lockout.failed(&keys, Instant::now());
            audit_with(
                api,
                username,
                "login",
                None,
                false,
                Some(format!("from {client}")),
            )
            .await;
            Err(ApiError::unauthorized("wrong username or password"))
        }
    }
}

/// An argon2id hash of a random password, checked against for unknown users.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        crate::auth::users::hash_password(&crate::auth::users::generate_password())
            .unwrap_or_default()
    })
}

async fn login_route(
    api: Arc<ApiState>,
    client: String,
    body: Bytes,
    answer: Answer,
) -> Result<Response, ApiError> {
    let request: LoginRequest = parse_json(&body)?;
    let user = check_login(&api, &client, &request).await?;
    let label = format!("user:{}", user.username);
    match answer {
        Answer::Session => {
            let (id, csrf) = tokens::new_session();
            let expires_at = now_millis() + (SESSION_TTL_S as i64) * 1000;
            api.store
                .apply(Change::Access(AccessChange::CreateSession {
                    id_hash: hash_secret(&id),
                    user_id: user.id,
                    csrf_token: csrf.clone(),
                    expires_at,
                }))
                .await?;
            audit_with(
                &api,
                &label,
                "login",
                None,
                true,
                Some(format!("from {client}")),
            )
            .await;
            let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
            let body = serde_json::json!({
                "username": user.username,
                "role": role.as_str(),
                "scopes": role.scopes(),
                "csrf_token": csrf,
                "expires_at": format_millis(expires_at),
            });
            let mut response = json(&body, StatusCode::OK);
            let cookie = tokens::session_cookie(&id, SESSION_TTL_S, api.access.cookie_secure);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            no_store(&mut response);
            Ok(response)
        }
        Answer::Token | Answer::FlaskToken => {
            audit_with(
                &api,
                &label,
                "login",
                None,
                true,
                Some(format!("token, from {client}")),
            )
            .await;
            let mut response = token_answer(&api, &user, matches!(answer, Answer::FlaskToken))?;
            no_store(&mut response);
            Ok(response)
        }
    }
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A hub JWT for `user`.
pub(super) fn token_answer(
    api: &ApiState,
    user: &UserRecord,
    flask: bool,
) -> Result<Response, ApiError> {
    let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
    let now = now_millis() / 1000;
    let claims = Claims {
        iss: HUB_ISSUER.to_string(),
        sub: user.id.to_string(),
        name: user.username.clone(),
        role: role.as_str().to_string(),
        scope: role.scopes().to_string(),
        iat: now,
        exp: now + TOKEN_TTL_S,
    };
    let token = api.access.hub_tokens.issue(&claims);
    let body = if flask {
        serde_json::json!({ "token": token, "username": user.username, "role": role.as_str() })
    } else {
        serde_json::json!({
            "token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_S,
            "role": role.as_str(),
            "scopes": role.scopes(),
        })
    };
    Ok(json(&body, StatusCode::OK))
}

/// `POST /api/auth/token` with a session (no body): a JWT for the session's user.
async fn token_for(api: Arc<ApiState>, principal: Principal) -> Result<Response, ApiError> {
    if !matches!(principal.via, Via::Session { .. }) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "send {\"username\", \"password\"}, or call this with a login session",
        ));
    }
    let username = principal.label.trim_start_matches("user:");
    let user = api
        .store
        .find_user(username)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the session's user is gone"))?;
    token_answer(&api, &user, false)
}

async fn logout_route(api: Arc<ApiState>, principal: Principal) -> Result<Response, ApiError> {
    if let Via::Session { id_hash, .. } = &principal.via {
        api.store
            .apply(Change::Access(AccessChange::RevokeSession {
                id_hash: id_hash.clone(),
            }))
            .await?;
    }
    audit(&api, &principal.label, "logout", None, true).await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cookie = tokens::session_cookie("", 0, api.access.cookie_secure);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

fn me_route(principal: Principal) -> Response {
    let via = match principal.via {
        Via::ApiKey => "api_key",
        Via::Session { .. } => "session",
        Via::HubToken => "token",
        Via::Oidc => "oidc",
        Via::Password => "password",
    };
    let body = serde_json::json!({
        "label": principal.label,
        "owner": principal.owner,
        "scopes": principal.scopes,
        "via": via,
        "devices": principal.devices.map(|it| it.items()),
    });
    json(&body, StatusCode::OK)
}
