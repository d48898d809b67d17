//! Handlers of the modem routes (`/api/modems/...`, the paths of the multi-modem manager
//! smshub replaces): detection,
//! attaching and detaching ports, status, SIM info, messages stored on a modem, sending through
//! one modem, USSD and balance. HiLink sticks are modems here too: `connect` takes their
//! `http://` URL instead of a port, and every other route works the same for them.
//!
//! They only check input and call [`crate::transport::attached::Modems`] (`api.modems`); the
//! modem's own task does the AT (or HiLink HTTP) work. Sending goes through the message store
//! and the dispatcher like `POST /api/send-sms` pinned to the modem, so it is durable and
//! tracked. Must never talk to a serial port or a stick directly, or open a path outside
//! `/dev/`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::error::ApiError;
use super::{ApiState, authorized, json_body, run, with_api};
use crate::auth::{Principal, Scope};
use crate::registry::{Outbound, UssdCall};
use crate::transport::hilink;
use crate::transport::modem::detect;
use crate::transport::radio::device as radio_device;
use crate::transport::radio::{ModemError, ModemState, ModemStatus, UssdAnswer};

/// Every modem route, each behind its scope, as one filter: mount it with
/// `.or(modems::routes(api.clone())).unify()` beside the other API routes.
pub fn routes(api: Arc<ApiState>) -> warp::filters::BoxedFilter<(Response,)> {
    let h = |scope| with_api(api.clone()).and(authorized(api.clone(), scope));
    let detect = warp::path!("api" / "modems" / "detect")
        .and(warp::post())
        .and(h(Scope::ModemsWrite))
        .and(json_body())
        .and_then(|api, _key, body| run(modems_detect(api, body)));
    let connect = warp::path!("api" / "modems" / "connect")
        .and(warp::post())
        .and(h(Scope::ModemsWrite))
        .and(json_body())
        .and_then(|api, _key, body| run(modems_connect(api, body)));
    let disconnect = warp::path!("api" / "modems" / "disconnect")
        .and(warp::post())
        .and(h(Scope::ModemsWrite))
        .and(json_body())
        .and_then(|api, _key, body| run(modems_disconnect(api, body)));
    let status_all = warp::path!("api" / "modems" / "status")
        .and(warp::get())
        .and(h(Scope::DevicesRead))
        .and_then(|api, _key| run(modems_status(api)));
    let status = warp::path!("api" / "modems" / String / "status")
        .and(warp::get())
        .and(h(Scope::DevicesRead))
        .and_then(|id, api, _key| run(modem_status(api, id)));
    let sim = warp::path!("api" / "modems" / String / "sim-info")
        .and(warp::get())
        .and(h(Scope::DevicesRead))
        .and_then(|id, api, _key| run(modem_sim_info(api, id)));
    let list = warp::path!("api" / "modems" / String / "sms")
        .and(warp::get())
        .and(h(Scope::DevicesRead))
        .and_then(|id, api, _key| run(modem_list_sms(api, id)));
    let send = warp::path!("api" / "modems" / String / "sms" / "send")
        .and(warp::post())
        .and(h(Scope::MessagesSend))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(json_body())
        .and_then(|id, api, key, idempotency, body| {
            run(modem_send_sms(api, key, id, idempotency, body))
        });
    let delete = warp::path!("api" / "modems" / String / "sms" / u32)
        .and(warp::delete())
        .and(h(Scope::ModemsWrite))
        .and_then(|id, index, api, _key| run(modem_delete_sms(api, id, index)));
    let ussd = warp::path!("api" / "modems" / String / "ussd")
        .and(warp::post())
        .and(h(Scope::ModemsWrite))
        .and(json_body())
        .and_then(|id, api, _key, body| run(modem_ussd(api, id, body)));
    let balance = warp::path!("api" / "modems" / String / "balance")
        .and(warp::get())
        .and(h(Scope::ModemsWrite))
        .and(super::query::<BalanceQuery>())
        .and_then(|id, api, _key, query| run(modem_balance(api, id, query)));
    detect
        .or(connect)
        .unify()
        .or(disconnect)
        .unify()
        .or(status_all)
        .unify()
        .or(status)
        .unify()
        .or(sim)
        .unify()
        .or(list)
        .unify()
        .or(send)
        .unify()
        .or(delete)
        .unify()
        .or(ussd)
        .unify()
        .or(balance)
        .unify()
        .boxed()
}

pub(super) fn modem_error(err: ModemError) -> ApiError {
    let (status, code) = match &err {
        ModemError::NotFound(_) => (StatusCode::NOT_FOUND, "modem_not_found"),
        ModemError::NotReady(_) => (StatusCode::CONFLICT, "modem_not_ready"),
        ModemError::Command(_) => (StatusCode::BAD_GATEWAY, "modem_error"),
        ModemError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "modem_timeout"),
        ModemError::Port(_) => (StatusCode::SERVICE_UNAVAILABLE, "modem_unavailable"),
        ModemError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        ModemError::NoBalanceCode => (StatusCode::UNPROCESSABLE_ENTITY, "no_balance_code"),
        ModemError::SmsNotFound(_) => (StatusCode::NOT_FOUND, "sms_not_found"),
        ModemError::Unreachable(_) => (StatusCode::SERVICE_UNAVAILABLE, "modem_unavailable"),
        ModemError::Refused(_) => (StatusCode::BAD_GATEWAY, "modem_error"),
    };
    ApiError::new(status, code, err.to_string())
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    warp::reply::json(value).into_response()
}

fn parse<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
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

/// Body of `POST /api/modems/connect` and `/disconnect`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PortRequest {
    /// The serial port, e.g. `/dev/ttyUSB2`, or a HiLink stick's URL, e.g.
    /// `http://192.168.8.1` (`connect`); any modem id (`disconnect`).
    #[serde(default, alias = "modem_id", alias = "id", alias = "url")]
    pub port: Option<String>,
    /// A HiLink stick's web UI login, when it asks for one (else the URL's userinfo, else the
    /// hub's `--hilink-user`/`--hilink-password`).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// Body of `POST /api/modems/detect`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct DetectRequest {
    /// Also attach the modems found.
    #[serde(default)]
    pub connect: bool,
}

/// Body of `POST /api/modems/{id}/ussd`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UssdRequest {
    #[serde(default, alias = "ussd_code", alias = "command")]
    pub code: Option<String>,
    /// SIM slot of a remote device (a phone or `smshub worker`); `0` when absent. Local
    /// modems have one SIM and ignore it.
    #[serde(default, alias = "sim", alias = "sim_slot")]
    pub slot: Option<u8>,
}

/// Query of `GET /api/modems/{id}/balance`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// SIM slot of a remote device (a phone or `smshub worker`); `0` when absent. Local
    /// modems have one SIM and ignore it.
    pub slot: Option<u8>,
}

/// `POST /api/modems/detect`: the serial ports that answer AT, one per modem, and the sticks in
/// HiLink (network-only) mode, which have none; attaches the modems when `{"connect": true}`.
pub async fn modems_detect(api: Arc<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let request: DetectRequest = parse(&body)?;
    let found = api.modems.detect().await;
    let attached = if request.connect {
        api.modems.scan().await
    } else {
        Vec::new()
    };
    Ok(json(&serde_json::json!({
        "detected": found.ports,
        "hilink": found.hilink,
        "connected": attached,
    })))
}

/// `POST /api/modems/connect` with `{"port": "/dev/ttyUSB2"}` (or `{"url":
/// "http://192.168.8.1"}` for a HiLink stick): attaches the modem, remembers it to attach it
/// again at every start (a stick by its URL, without the credentials of the request), and
/// answers with its state once it is ready or has failed once.
pub async fn modems_connect(api: Arc<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let request: PortRequest = parse(&body)?;
    let port = request
        .port
        .map(|it| it.trim().to_string())
        .unwrap_or_default();
    if hilink::is_url(&port) {
        let defaults = api.modems.hilink_config();
        let username = request.username.or_else(|| defaults.username.clone());
        let password = request.password.or_else(|| defaults.password.clone());
        let target = hilink::Target::parse(&port, username.as_deref(), password.as_deref())
            .map_err(|err| ApiError::bad_request("invalid_url", err))?;
        let key = target.url.clone();
        let status = api.modems.connect_hilink(target).await;
        api.modems.remember(&key).await;
        return Ok(json(&status));
    }
    if !port.starts_with("/dev/") || port.contains("..") {
        return Err(ApiError::bad_request(
            "invalid_port",
            format!("port must be a device under /dev/ or a HiLink http:// URL, got {port:?}"),
        ));
    }
    // The allow-list applies to connect as to detection; without one, USB and ACM serial
    // ports only (never a console, a log or a null device).
    let allow = &api.modems.config().allow;
    if !detect::allowed(&port, allow) {
        let allowed = if allow.is_empty() {
            "ttyUSB*, ttyACM*".to_string()
        } else {
            allow.join(", ")
        };
        return Err(ApiError::bad_request(
            "port_not_allowed",
            format!("{port} is not on the modem allow-list ({allowed}; see --modem-allow)"),
        ));
    }
    if !std::path::Path::new(&port).exists() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "port_not_found",
            format!("there is no {port}"),
        ));
    }
    let status = api.modems.connect(&port).await;
    api.modems.remember(&port).await;
    Ok(json(&status))
}

/// `POST /api/modems/disconnect` with `{"port": ...}` (or a device id or IMEI): detaches the
/// modem and forgets it, so it is not attached at the next start; a remembered modem that is
/// not attached (its port was gone at start) is forgotten too.
pub async fn modems_disconnect(api: Arc<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let request: PortRequest = parse(&body)?;
    let Some(id) = request.port.filter(|it| !it.trim().is_empty()) else {
        return Err(ApiError::bad_request(
            "missing_port",
            "give the port (or modem id) to disconnect",
        ));
    };
    let id = id.trim();
    match api.modems.disconnect(id).await {
        Ok(status) => {
            api.modems.forget(&status.port).await;
            Ok(json(&status))
        }
        // Remembered but not attached (its port was gone at start): forgotten.
        Err(ModemError::NotFound(_)) if api.modems.forget(id).await => {
            let status = ModemStatus {
                state: ModemState::Disconnected,
                ..ModemStatus::new(id)
            };
            Ok(json(&status))
        }
        Err(err) => Err(modem_error(err)),
    }
}

/// `GET /api/modems/status`: every attached modem.
pub async fn modems_status(api: Arc<ApiState>) -> Result<Response, ApiError> {
    Ok(json(
        &serde_json::json!({ "modems": api.modems.status_list() }),
    ))
}

/// `GET /api/modems/{id}/status`.
pub async fn modem_status(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    Ok(json(&api.modems.status(&id).map_err(modem_error)?))
}

/// `GET /api/modems/{id}/sim-info`.
pub async fn modem_sim_info(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    Ok(json(&api.modems.sim_info(&id).map_err(modem_error)?))
}

/// `GET /api/modems/{id}/sms`: messages stored on the modem.
pub async fn modem_list_sms(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    let messages = api.modems.list_sms(&id).await.map_err(modem_error)?;
    Ok(json(&serde_json::json!({ "messages": messages })))
}

/// `DELETE /api/modems/{id}/sms/{index}`: `204`, or `404 sms_not_found` when the index holds
/// no message (the modem's task reads the index first: `AT+CMGD` on an empty index answers
/// `OK` on many modems, so its answer alone proves nothing).
pub async fn modem_delete_sms(
    api: Arc<ApiState>,
    id: String,
    index: u32,
) -> Result<Response, ApiError> {
    api.modems
        .delete_sms(&id, index)
        .await
        .map_err(modem_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/modems/{id}/sms/send`: a message sent through this modem only, stored and
/// tracked like `POST /api/send-sms` with `device_id` (the seed's `to`/`text` names work too).
pub async fn modem_send_sms(
    api: Arc<ApiState>,
    key: Principal,
    id: String,
    idempotency: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let status = api.modems.status(&id).map_err(modem_error)?;
    let Some(device_id) = status.device_id else {
        return Err(modem_error(ModemError::NotReady(
            "not identified yet".to_string(),
        )));
    };
    let mut request: serde_json::Value = parse(&body)?;
    let Some(fields) = request.as_object_mut() else {
        return Err(ApiError::bad_request(
            "invalid_request",
            "request body must be a JSON object",
        ));
    };
    for (alias, name) in [
        ("to", "phone_number"),
        ("number", "phone_number"),
        ("text", "message"),
    ] {
        if let Some(value) = fields.remove(alias) {
            fields.entry(name).or_insert(value);
        }
    }
    fields.insert(
        "device_id".to_string(),
        serde_json::Value::String(device_id),
    );
    let body = Bytes::from(serde_json::to_vec(&request).map_err(ApiError::internal)?);
    super::handlers::send_sms(api, key, idempotency, body, false).await
}

/// `POST /api/modems/{id}/ussd` with `{"code": "*100#"}`.
pub async fn modem_ussd(api: Arc<ApiState>, id: String, body: Bytes) -> Result<Response, ApiError> {
    let request: UssdRequest = parse(&body)?;
    let Some(code) = request.code else {
        return Err(ApiError::bad_request(
            "missing_code",
            "give the USSD code, e.g. {\"code\": \"*100#\"}",
        ));
    };
    match api.modems.ussd(&id, &code).await {
        Ok(answer) => Ok(json(&answer)),
        Err(ModemError::NotFound(_)) if api.registry.get(&id).is_some() => {
            remote_ussd(&api, &id, request.slot.unwrap_or(0), code.trim()).await
        }
        Err(err) => Err(modem_error(err)),
    }
}

/// How long a remote device may take to answer a USSD request.
const REMOTE_USSD_TIMEOUT: Duration = Duration::from_secs(60);

/// USSD on a connected remote device (device protocol `ussd` frame, spec §8.2): `409
/// ussd_unsupported` when its `hello` did not announce `capabilities.ussd`, `504
/// modem_timeout` after [`REMOTE_USSD_TIMEOUT`], `503 modem_unavailable` when the session
/// ends first, `502 modem_error` when the device answers an error. The answer has the same
/// shape as a local modem's.
async fn remote_ussd(api: &ApiState, id: &str, slot: u8, code: &str) -> Result<Response, ApiError> {
    let text = remote_ussd_text(api, id, slot, code).await?;
    Ok(json(&serde_json::json!({
        "code": code,
        "status": "done",
        "text": text,
        "dcs": null,
        "slot": slot,
    })))
}

/// The text a remote device answers to `code` on SIM `slot` (errors as [`remote_ussd`]).
async fn remote_ussd_text(
    api: &ApiState,
    id: &str,
    slot: u8,
    code: &str,
) -> Result<String, ApiError> {
    let live = api.registry.get(id);
    if !live.is_some_and(|it| it.capabilities.ussd) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ussd_unsupported",
            format!("device {id:?} did not announce USSD support"),
        ));
    }
    let gone = || modem_error(ModemError::Port("the device disconnected".to_string()));
    let tx = api.registry.sender(id).ok_or_else(gone)?;
    let (call, answer) = UssdCall::new(slot, code.to_string());
    tx.send(Outbound::Ussd(Box::new(call)))
        .await
        .map_err(|_| gone())?;
    let outcome = match tokio::time::timeout(REMOTE_USSD_TIMEOUT, answer).await {
        Err(_) => return Err(modem_error(ModemError::Timeout)),
        Ok(Err(_)) => return Err(gone()),
        Ok(Ok(outcome)) => outcome,
    };
    match outcome {
        Ok(text) => Ok(text),
        Err((code, message)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "modem_error",
            format!("the device answered {code}: {message}"),
        )),
    }
}

/// `GET /api/modems/{id}/balance`: the balance USSD of the SIM's operator, on a modem of
/// this hub or, failing that, on SIM `slot` of a connected remote device (its operator from
/// the SIM's MCC-MNC at `hello`).
pub async fn modem_balance(
    api: Arc<ApiState>,
    id: String,
    query: BalanceQuery,
) -> Result<Response, ApiError> {
    match api.modems.balance(&id).await {
        Ok(balance) => Ok(json(&balance)),
        Err(ModemError::NotFound(_)) if api.registry.get(&id).is_some() => {
            remote_balance(&api, &id, query.slot.unwrap_or(0)).await
        }
        Err(err) => Err(modem_error(err)),
    }
}

/// The balance of SIM `slot` of a connected remote device, by its operator's balance code.
async fn remote_balance(api: &ApiState, id: &str, slot: u8) -> Result<Response, ApiError> {
    let mcc_mnc = api
        .registry
        .get(id)
        .and_then(|live| live.sims.into_iter().find(|it| it.slot == slot))
        .and_then(|sim| sim.mcc_mnc);
    let profile = mcc_mnc
        .as_deref()
        .and_then(|it| api.modems.operators().get(it))
        .cloned();
    let Some(code) = profile.as_ref().and_then(|it| it.balance_ussd.clone()) else {
        return Err(modem_error(ModemError::NoBalanceCode));
    };
    let text = remote_ussd_text(api, id, slot, &code).await?;
    let answer = UssdAnswer {
        code: code.clone(),
        status: "done",
        text: Some(text),
        dcs: None,
    };
    Ok(json(&radio_device::balance(profile, code, answer)))
}
