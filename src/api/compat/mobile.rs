//! Phones joining through capcom6's app: `POST /mobile/v1/device` and
//! `GET /mobile/v1/user/code`, the two routes of the app's mobile API that take the API's
//! credentials. Everything else the app calls is a transport (`transport/gateway_app`).
//!
//! `POST /mobile/v1/device` registers the phone as a device of kind `sms-gateway-app` and
//! answers its id and token, with one of:
//! - `Authorization: Bearer` and an API key with `devices:write` (the app's "private token"
//!   of private-server mode);
//! - `Authorization: Basic` and a smshub user who may write devices (an operator or admin),
//!   or any name and such an API key as the password;
//! - `Authorization: Code` and a pairing code (`POST /api/devices/pairing`, or
//!   `GET /mobile/v1/user/code`), redeemed once, with the same per-address limit as
//!   `POST /api/devices/pair`.
//!
//! smshub makes no user for a phone: `login` is the user's name when one signed in, else
//! empty, and `password` is never sent (applications use smshub's users and keys).
//!
//! Must never: register a device for a credential that could not register one on the
//! native API.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::auth::principal;
use crate::api::access::{audit, client};
use crate::api::credential::{self, Presented};
use crate::api::credentials::{check_name, limit_redeeming, redeem_pairing};
use crate::api::error::ApiError;
use crate::api::handlers::parse_json;
use crate::api::{ApiState, run, with_api};
use crate::auth::pairing::DEFAULT_TTL;
use crate::auth::{self, Principal, Scope, Via};
use crate::server::PeerAddr;
use crate::transport::gateway_app::{self, SimCard};
use crate::transport::link::hello_changes;

/// `POST /mobile/v1/device` (`MobileRegisterRequest`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// The device's name (the app sends `MANUFACTURER/PRODUCT`); cut to 64 characters.
    pub name: Option<String>,
    /// Its Firebase token: not used (smshub reaches the phone on its event stream).
    #[allow(dead_code)]
    pub push_token: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub sim_cards: Option<Vec<SimCard>>,
}

/// `MobileRegisterResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The device's id.
    pub id: String,
    /// The device's token, shown once: `Authorization: Bearer` on every later call.
    pub token: String,
    /// The user who registered the phone, else empty.
    pub login: String,
}

/// `MobileUserCodeResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCode {
    /// A pairing code, redeemed once by `POST /mobile/v1/device` with `Authorization: Code`.
    pub code: String,
    pub valid_until: String,
}

/// Who registers the phone.
enum Registrar {
    Code(String),
    Credential(Principal),
}

/// The two routes.
pub fn routes(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let register = warp::path!("mobile" / "v1" / "device")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(registrar(api.clone()))
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::header::optional::<String>("user-agent"))
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .and_then(|api, registrar, peer, agent, body| {
            run(register(api, registrar, peer, agent, body))
        });
    let code = warp::path!("mobile" / "v1" / "user" / "code")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(super::auth::authorized(api, Some(Scope::DevicesWrite)))
        .and_then(|api, who| run(user_code(api, who)));
    register.or(code).unify()
}

/// A pairing code (`Authorization: Code`), else any credential with `devices:write`.
fn registrar(api: Arc<ApiState>) -> impl Filter<Extract = (Registrar,), Error = Rejection> + Clone {
    credential::presented()
        .and(client())
        .and(warp::any().map(move || api.clone()))
        .and_then(
            |presented: Presented, client: String, api: Arc<ApiState>| async move {
                let code = presented.authorization.as_deref().and_then(|it| {
                    let (scheme, code) = it.trim().split_once(' ')?;
                    scheme
                        .eq_ignore_ascii_case("code")
                        .then(|| code.trim().to_string())
                });
                if let Some(code) = code {
                    return Ok(Registrar::Code(code));
                }
                principal(&api, Some(Scope::DevicesWrite), &presented, &client)
                    .await
                    .map(Registrar::Credential)
                    .map_err(warp::reject::custom)
            },
        )
}

async fn register(
    api: Arc<ApiState>,
    registrar: Registrar,
    peer: Option<PeerAddr>,
    agent: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: RegisterRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RegisterRequest::default()
    } else {
        parse_json(&body)?
    };
    let asked = request
        .name
        .as_deref()
        .map(|it| it.trim().chars().take(64).collect::<String>())
        .filter(|it| !it.is_empty())
        .map(|it| check_name(&it))
        .transpose()?;
    let (name, actor, login, code) = match registrar {
        Registrar::Code(code) => {
            limit_redeeming(&api, peer)?;
            let named = redeem_pairing(&api, &code)?;
            (
                named.or(asked),
                "pairing code".to_string(),
                String::new(),
                Some(code),
            )
        }
        Registrar::Credential(who) => {
            let login = match &who.via {
                Via::Password => who
                    .label
                    .strip_prefix("user:")
                    .unwrap_or_default()
                    .to_string(),
                _ => String::new(),
            };
            (asked, who.label.clone(), login, None)
        }
    };
    let name = name.unwrap_or_else(|| "SMS Gateway app".to_string());
    let created = match auth::create_device(&api.store, &name, gateway_app::KIND).await {
        Ok(it) => it,
        Err(err) => {
            if let Some(code) = code {
                api.pairings.unredeem(&code);
            }
            return Err(err.into());
        }
    };
    let version = agent.as_deref().and_then(gateway_app::app_version);
    let sims = gateway_app::sims_of(request.sim_cards.as_deref().unwrap_or_default());
    api.store
        .apply_all(hello_changes(
            &created.id,
            Some(name.clone()),
            version,
            &sims,
        ))
        .await?;
    audit(
        &api,
        &actor,
        "device.create",
        Some(created.id.as_str()),
        true,
    )
    .await;
    tracing::info!(device = %created.id, %name, "SMS Gateway app registered");
    let body = Registered {
        id: created.id.to_string(),
        token: created.token,
        login,
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response())
}

/// `GET /mobile/v1/user/code`: a pairing code for another phone.
async fn user_code(api: Arc<ApiState>, _who: Principal) -> Result<Response, ApiError> {
    let Some(code) = api.pairings.create(None, DEFAULT_TTL) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_pairing_codes",
            "too many pairing codes are open; let some expire first",
        ));
    };
    let valid_until = chrono::Utc::now()
        + chrono::Duration::from_std(code.expires_in).unwrap_or(chrono::Duration::zero());
    let body = UserCode {
        code: code.code,
        valid_until: valid_until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    Ok(warp::reply::json(&body).into_response())
}
