//! SIM cards as things an operator manages (`/api/sim-cards`, in the Flask gateway's shape:
//! `id`, `number`, `status`) and routing rules by number (`/api/routing-rules`).
//!
//! Every change is committed through the store's writer first, then told to the dispatcher,
//! which keeps cards and rules in memory (restored at start). A handler checks all its input
//! before it writes anything. Must never: decide where a message goes (the dispatcher does).

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::error::ApiError;
use super::handlers::parse_json;
use super::{ApiState, authorized, json_body, run, with_api};
use crate::auth::Scope;
use crate::dispatch::Event;
use crate::dispatch::core::{RoutingRule, SimCard};
use crate::dispatch::limits::Limits;
use crate::domain::{DeviceId, PhoneNumber, format_millis, now_millis};
use crate::store::{Change, Outcome};
use crate::store::{RoutingRuleRecord, SimCardChange, SimCardRecord, SimCounters};

/// Highest SIM slot a device may have.
const MAX_SLOT: i64 = 7;
/// Longest label or rule name.
const MAX_NAME: usize = 64;
/// Most prefixes in one rule.
const MAX_PREFIXES: usize = 100;

/// A SIM card: what the operator set, where it is, how it is doing, what it sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimCardDto {
    pub id: String,
    pub iccid: Option<String>,
    pub device_id: Option<String>,
    pub slot: Option<u8>,
    pub label: Option<String>,
    /// Its phone number, E.164 (the Flask gateway's `number`).
    pub number: Option<String>,
    /// `active` or `disabled` (the Flask gateway's `status`).
    pub status: &'static str,
    pub enabled: bool,
    /// Its home operator, as its device reported it.
    pub operator: Option<String>,
    /// Its own sending limits, replacing its device's.
    #[schema(value_type = Option<Limits>)]
    pub limits: Option<serde_json::Value>,
    /// Whether its device is connected now.
    pub online: bool,
    /// Live, from its device's last status.
    pub signal_dbm: Option<i32>,
    pub signal_level: Option<u8>,
    pub registered: Option<bool>,
    /// The network it is registered on now.
    pub network_operator: Option<String>,
    pub network: Option<String>,
    pub sent_today: u64,
    pub failed_today: u64,
    pub sent_this_month: u64,
    pub failed_this_month: u64,
    pub created_at: String,
    pub last_seen_at: Option<String>,
}

/// `POST /api/sim-cards`: register a card by ICCID, or by device and slot.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSimCard {
    #[serde(default)]
    pub iccid: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub slot: Option<i64>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub number: Option<String>,
    /// `active` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub limits: Option<Limits>,
}

/// `PATCH`/`PUT /api/sim-cards/{id}`: fields left out stay; `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSimCard {
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub label: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub number: Option<Option<String>>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<Limits>)]
    pub limits: Option<Option<Limits>>,
}

/// A routing rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingRuleDto {
    pub id: String,
    pub name: String,
    pub priority: i32,
    pub prefixes: Vec<String>,
    pub via_operator: Option<String>,
    pub via_label: Option<String>,
    pub enabled: bool,
    pub created_at: String,
}

/// `POST /api/routing-rules`, and the fields of `PATCH` (left out: unchanged).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRuleRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// Higher is tried first (-1000 to 1000; 0 if left out).
    #[serde(default)]
    pub priority: Option<i64>,
    /// E.164 prefixes: `+` and 1 to 15 digits.
    #[serde(default)]
    pub prefixes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub via_operator: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub via_label: Option<Option<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn some<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The routes of this module.
pub fn routes(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let list = warp::path!("api" / "sim-cards")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api.clone(), Scope::DevicesRead))
        .and_then(|api, _key| run(list_cards(api)));
    let create = warp::path!("api" / "sim-cards")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(authorized(api.clone(), Scope::DevicesWrite))
        .and(json_body())
        .and_then(|api, _key, body| run(create_card(api, body)));
    let show = warp::path!("api" / "sim-cards" / String)
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api.clone(), Scope::DevicesRead))
        .and_then(|id, api, _key| run(show_card(api, id)));
    let update = warp::path!("api" / "sim-cards" / String)
        .and(warp::patch().or(warp::put()).unify())
        .and(with_api(api.clone()))
        .and(authorized(api.clone(), Scope::DevicesWrite))
        .and(json_body())
        .and_then(|id, api, _key, body| run(update_card(api, id, body)));
    let delete = warp::path!("api" / "sim-cards" / String)
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(api.clone(), Scope::DevicesWrite))
        .and_then(|id, api, _key| run(delete_card(api, id)));
    let rules = warp::path!("api" / "routing-rules")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api.clone(), Scope::DevicesRead))
        .and_then(|api, _key| run(list_rules(api)));
    let create_rule = warp::path!("api" / "routing-rules")
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(authorized(api.clone(), Scope::Admin))
        .and(json_body())
        .and_then(|api, _key, body| run(put_rule(api, None, body)));
    let show_rule = warp::path!("api" / "routing-rules" / String)
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api.clone(), Scope::DevicesRead))
        .and_then(|id, api, _key| run(show_rule(api, id)));
    let update_rule = warp::path!("api" / "routing-rules" / String)
        .and(warp::patch().or(warp::put()).unify())
        .and(with_api(api.clone()))
        .and(authorized(api.clone(), Scope::Admin))
        .and(json_body())
        .and_then(|id, api, _key, body| run(put_rule(api, Some(id), body)));
    let delete_rule = warp::path!("api" / "routing-rules" / String)
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::Admin))
        .and_then(|id, api, _key| run(delete_rule(api, id)));
    list.or(create)
        .unify()
        .or(show)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or(rules)
        .unify()
        .or(create_rule)
        .unify()
        .or(show_rule)
        .unify()
        .or(update_rule)
        .unify()
        .or(delete_rule)
        .unify()
}

fn not_found(what: &str) -> ApiError {
    ApiError::not_found(format!("no such {what}"))
}

fn card_dto(api: &ApiState, card: SimCardRecord, counters: SimCounters) -> SimCardDto {
    let live = card
        .device_id
        .as_deref()
        .and_then(|it| api.registry.get(it));
    let status = live.as_ref().and_then(|it| {
        it.status
            .as_ref()?
            .sims
            .iter()
            .find(|sim| Some(sim.slot) == card.slot)
            .cloned()
    });
    SimCardDto {
        id: card.id.to_string(),
        iccid: card.iccid,
        device_id: card.device_id,
        slot: card.slot,
        label: card.label,
        number: card.phone_number,
        status: if card.enabled { "active" } else { "disabled" },
        enabled: card.enabled,
        operator: card.operator,
        limits: card.limits,
        online: live.is_some(),
        signal_dbm: status.as_ref().and_then(|it| it.signal_dbm),
        signal_level: status.as_ref().and_then(|it| it.signal_level),
        registered: status.as_ref().map(|it| it.registered),
        network_operator: status.as_ref().and_then(|it| it.operator.clone()),
        network: status.as_ref().and_then(|it| it.network.clone()),
        sent_today: counters.sent_today,
        failed_today: counters.failed_today,
        sent_this_month: counters.sent_month,
        failed_this_month: counters.failed_month,
        created_at: format_millis(card.created_at),
        last_seen_at: card.last_seen_at.map(format_millis),
    }
}

fn counters_of(
    all: &std::collections::HashMap<(String, u8), SimCounters>,
    card: &SimCardRecord,
) -> SimCounters {
    match (&card.device_id, card.slot) {
        (Some(device), Some(slot)) => all
            .get(&(device.clone(), slot))
            .copied()
            .unwrap_or_default(),
        _ => SimCounters::default(),
    }
}

/// `GET /api/sim-cards`.
async fn list_cards(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let counters = api.store.sim_counters(now_millis()).await?;
    let cards: Vec<SimCardDto> = api
        .store
        .list_sim_cards()
        .await?
        .into_iter()
        .map(|card| {
            let counted = counters_of(&counters, &card);
            card_dto(&api, card, counted)
        })
        .collect();
    Ok(warp::reply::json(&cards).into_response())
}

async fn find_card(api: &ApiState, id: &str) -> Result<SimCardRecord, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| not_found("SIM card"))?;
    api.store
        .get_sim_card(id)
        .await?
        .ok_or_else(|| not_found("SIM card"))
}

async fn reply_card(api: &ApiState, card: SimCardRecord, status: StatusCode) -> Response {
    let counters = api
        .store
        .sim_counters(now_millis())
        .await
        .unwrap_or_default();
    let counted = counters_of(&counters, &card);
    warp::reply::with_status(warp::reply::json(&card_dto(api, card, counted)), status)
        .into_response()
}

/// `GET /api/sim-cards/{id}`.
async fn show_card(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    let card = find_card(&api, &id).await?;
    Ok(reply_card(&api, card, StatusCode::OK).await)
}

fn check_iccid(iccid: &str) -> Result<String, ApiError> {
    let body = iccid.strip_suffix(['F', 'f']).unwrap_or(iccid);
    if !(18..=22).contains(&iccid.len()) || !body.chars().all(|it| it.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_iccid",
            "an ICCID is 18 to 22 digits (the last may be F)",
        ));
    }
    Ok(iccid.to_ascii_uppercase())
}

fn check_label(label: &str, code: &'static str) -> Result<String, ApiError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > MAX_NAME {
        return Err(ApiError::bad_request(
            code,
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    Ok(label.to_string())
}

fn check_number(api: &ApiState, number: &str) -> Result<String, ApiError> {
    PhoneNumber::parse(number, api.config.default_region)
        .map(|it| it.to_string())
        .map_err(|err| ApiError::bad_request("invalid_phone_number", err.to_string()))
}

fn check_status(status: &str) -> Result<bool, ApiError> {
    match status {
        "active" | "enabled" => Ok(true),
        "disabled" | "inactive" => Ok(false),
        _ => Err(ApiError::bad_request(
            "invalid_status",
            "status is active or disabled",
        )),
    }
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "sim_card_exists", message)
}

/// `POST /api/sim-cards`.
async fn create_card(api: Arc<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let request: CreateSimCard = parse_json(&body)?;
    let iccid = request.iccid.as_deref().map(check_iccid).transpose()?;
    let slot = match request.slot {
        None => None,
        Some(slot) if (0..=MAX_SLOT).contains(&slot) => u8::try_from(slot).ok(),
        Some(slot) => {
            return Err(ApiError::bad_request(
                "invalid_sim_slot",
                format!("slot must be 0 to {MAX_SLOT}, got {slot}"),
            ));
        }
    };
    let device = match &request.device_id {
        None => None,
        Some(id) => Some(DeviceId::parse(id).ok_or_else(|| super::send::unknown_device(id))?),
    };
    if iccid.is_none() && (device.is_none() || slot.is_none()) {
        return Err(ApiError::bad_request(
            "missing_sim_identity",
            "give iccid, or device_id and slot",
        ));
    }
    if device.is_some() != slot.is_some() {
        return Err(ApiError::bad_request(
            "missing_sim_identity",
            "device_id and slot go together",
        ));
    }
    let label = request
        .label
        .as_deref()
        .map(|it| check_label(it, "invalid_label"))
        .transpose()?;
    let number = request
        .number
        .as_deref()
        .map(|it| check_number(&api, it))
        .transpose()?;
    let mut enabled = request
        .status
        .as_deref()
        .map(check_status)
        .transpose()?
        .unwrap_or(true);
    if let Some(it) = request.enabled {
        enabled = it;
    }
    if let Some(device) = &device
        && api.store.find_device(device.as_str()).await?.is_none()
    {
        return Err(super::send::unknown_device(device.as_str()));
    }
    let existing = api.store.list_sim_cards().await?;
    if let Some(iccid) = &iccid
        && existing.iter().any(|it| it.iccid.as_ref() == Some(iccid))
    {
        return Err(conflict(format!("a SIM card with ICCID {iccid} exists")));
    }
    if let (Some(device), Some(slot)) = (&device, slot)
        && existing.iter().any(|it| {
            it.device_id.as_deref() == Some(device.as_str())
                && it.slot == Some(slot)
                && (iccid.is_none() || it.iccid.is_none())
        })
    {
        return Err(conflict(format!(
            "a SIM card in slot {slot} of {device} exists"
        )));
    }
    let now = now_millis();
    let card = SimCardRecord {
        id: Uuid::new_v4(),
        iccid,
        device_id: device.map(|it| it.to_string()),
        slot,
        label,
        phone_number: number,
        operator: None,
        enabled,
        limits: request
            .limits
            .map(|it| serde_json::to_value(it).unwrap_or_default()),
        created_at: now,
        updated_at: now,
        last_seen_at: None,
    };
    api.store
        .apply(Change::SimCards(SimCardChange::Put(card.clone())))
        .await?;
    api.dispatcher
        .send(Event::SimCard(SimCard::from_record(&card)));
    Ok(reply_card(&api, card, StatusCode::CREATED).await)
}

/// `PATCH`/`PUT /api/sim-cards/{id}`.
async fn update_card(api: Arc<ApiState>, id: String, body: Bytes) -> Result<Response, ApiError> {
    let mut card = find_card(&api, &id).await?;
    let request: UpdateSimCard = parse_json(&body)?;
    if let Some(label) = request.label {
        card.label = label
            .as_deref()
            .map(|it| check_label(it, "invalid_label"))
            .transpose()?;
    }
    if let Some(number) = request.number {
        card.phone_number = number
            .as_deref()
            .map(|it| check_number(&api, it))
            .transpose()?;
    }
    if let Some(status) = &request.status {
        card.enabled = check_status(status)?;
    }
    if let Some(enabled) = request.enabled {
        card.enabled = enabled;
    }
    if let Some(limits) = request.limits {
        card.limits = limits.map(|it| serde_json::to_value(it).unwrap_or_default());
    }
    card.updated_at = now_millis();
    api.store
        .apply(Change::SimCards(SimCardChange::Put(card.clone())))
        .await?;
    api.dispatcher
        .send(Event::SimCard(SimCard::from_record(&card)));
    Ok(reply_card(&api, card, StatusCode::OK).await)
}

/// `DELETE /api/sim-cards/{id}`: the card is forgotten (a device that reports it again
/// registers it anew, enabled and without limits).
async fn delete_card(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    let card = find_card(&api, &id).await?;
    let outcome = api
        .store
        .apply(Change::SimCards(SimCardChange::Delete { id: card.id }))
        .await?;
    if outcome != Outcome::Applied {
        return Err(not_found("SIM card"));
    }
    api.dispatcher.send(Event::SimCardRemoved(card.id));
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn rule_dto(rule: RoutingRuleRecord) -> RoutingRuleDto {
    RoutingRuleDto {
        id: rule.id.to_string(),
        name: rule.name,
        priority: rule.priority,
        prefixes: rule.prefixes,
        via_operator: rule.via_operator,
        via_label: rule.via_label,
        enabled: rule.enabled,
        created_at: format_millis(rule.created_at),
    }
}

/// `GET /api/routing-rules`: highest priority first.
async fn list_rules(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let rules: Vec<RoutingRuleDto> = api
        .store
        .list_routing_rules()
        .await?
        .into_iter()
        .map(rule_dto)
        .collect();
    Ok(warp::reply::json(&rules).into_response())
}

async fn find_rule(api: &ApiState, id: &str) -> Result<RoutingRuleRecord, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| not_found("routing rule"))?;
    api.store
        .get_routing_rule(id)
        .await?
        .ok_or_else(|| not_found("routing rule"))
}

/// `GET /api/routing-rules/{id}`.
async fn show_rule(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    let rule = find_rule(&api, &id).await?;
    Ok(warp::reply::json(&rule_dto(rule)).into_response())
}

fn check_prefix(prefix: &str) -> Result<String, ApiError> {
    let digits = prefix.strip_prefix('+').unwrap_or("");
    if digits.is_empty() || digits.len() > 15 || !digits.chars().all(|it| it.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_prefix",
            format!("{prefix:?} is not an E.164 prefix (+ and 1 to 15 digits)"),
        ));
    }
    Ok(prefix.to_string())
}

/// `POST /api/routing-rules` (`id` `None`) or `PATCH`/`PUT /api/routing-rules/{id}`.
async fn put_rule(
    api: Arc<ApiState>,
    id: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let existing = match &id {
        Some(id) => Some(find_rule(&api, id).await?),
        None => None,
    };
    let request: RoutingRuleRequest = parse_json(&body)?;
    let now = now_millis();
    let creating = existing.is_none();
    let mut rule = existing.unwrap_or(RoutingRuleRecord {
        id: Uuid::new_v4(),
        name: String::new(),
        priority: 0,
        prefixes: Vec::new(),
        via_operator: None,
        via_label: None,
        enabled: true,
        created_at: now,
    });
    match request.name.as_deref() {
        Some(name) => rule.name = check_label(name, "invalid_name")?,
        None if creating => {
            return Err(ApiError::bad_request(
                "invalid_name",
                "give the rule a name",
            ));
        }
        None => {}
    }
    if let Some(priority) = request.priority {
        if !(-1000..=1000).contains(&priority) {
            return Err(ApiError::bad_request(
                "invalid_priority",
                format!("priority must be -1000 to 1000, got {priority}"),
            ));
        }
        rule.priority = i32::try_from(priority).unwrap_or(0);
    }
    if let Some(prefixes) = &request.prefixes {
        if prefixes.is_empty() || prefixes.len() > MAX_PREFIXES {
            return Err(ApiError::bad_request(
                "invalid_prefix",
                format!("give 1 to {MAX_PREFIXES} prefixes"),
            ));
        }
        rule.prefixes = prefixes
            .iter()
            .map(|it| check_prefix(it.trim()))
            .collect::<Result<_, _>>()?;
    }
    if rule.prefixes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_prefix",
            "give the prefixes the rule applies to, e.g. [\"+49\"]",
        ));
    }
    if let Some(operator) = request.via_operator {
        rule.via_operator = operator
            .as_deref()
            .map(|it| check_label(it, "invalid_via"))
            .transpose()?;
    }
    if let Some(label) = request.via_label {
        rule.via_label = label
            .as_deref()
            .map(|it| check_label(it, "invalid_via"))
            .transpose()?;
    }
    if rule.via_operator.is_none() && rule.via_label.is_none() {
        return Err(ApiError::bad_request(
            "invalid_via",
            "give via_operator or via_label: the SIMs the rule sends through",
        ));
    }
    if let Some(enabled) = request.enabled {
        rule.enabled = enabled;
    }
    api.store
        .apply(Change::SimCards(SimCardChange::PutRule(rule.clone())))
        .await?;
    api.dispatcher.send(Event::Route {
        rule: RoutingRule::from_record(&rule),
        enabled: rule.enabled,
    });
    let status = if creating {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(warp::reply::with_status(warp::reply::json(&rule_dto(rule)), status).into_response())
}

/// `DELETE /api/routing-rules/{id}`.
async fn delete_rule(api: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    let rule = find_rule(&api, &id).await?;
    let outcome = api
        .store
        .apply(Change::SimCards(SimCardChange::DeleteRule { id: rule.id }))
        .await?;
    if outcome != Outcome::Applied {
        return Err(not_found("routing rule"));
    }
    api.dispatcher.send(Event::RouteRemoved(rule.id));
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The SIM card a send asks for (`sim_card_id`, else `sim`), if any.
pub(super) fn pin_of(request: &super::dto::SendSmsRequest) -> Option<String> {
    request.sim_card_id.clone().or_else(|| request.sim.clone())
}

/// Pins a send to the device and slot of the card `given` names (id, ICCID or label):
/// `unknown_sim_card` when none does, `sim_card_disabled`, `sim_card_not_placed` when no
/// device has reported it, `conflicting_sim` when the request names another device or slot.
pub(super) async fn pin(
    api: &ApiState,
    request: &mut super::send::SendRequest,
    given: &str,
) -> Result<(), ApiError> {
    let cards = api.store.list_sim_cards().await?;
    let by_id = Uuid::parse_str(given).ok();
    let matching: Vec<&SimCardRecord> = cards
        .iter()
        .filter(|it| {
            Some(it.id) == by_id
                || it
                    .iccid
                    .as_deref()
                    .is_some_and(|iccid| iccid.eq_ignore_ascii_case(given))
                || it.label.as_deref() == Some(given)
        })
        .collect();
    let card = match matching.as_slice() {
        [one] => *one,
        [] => {
            return Err(ApiError::bad_request(
                "unknown_sim_card",
                format!("no SIM card is {given:?} (an id, ICCID or label from /api/sim-cards)"),
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "unknown_sim_card",
                format!("several SIM cards are labelled {given:?}; name one by id"),
            ));
        }
    };
    if !card.enabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "sim_card_disabled",
            format!("SIM card {} is disabled", card.id),
        ));
    }
    let (Some(device), Some(slot)) = (
        card.device_id.as_deref().and_then(DeviceId::parse),
        card.slot,
    ) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "sim_card_not_placed",
            format!("no device has reported SIM card {} yet", card.id),
        ));
    };
    if request.device_id.as_ref().is_some_and(|it| *it != device)
        || request.sim_slot.is_some_and(|it| it != slot)
    {
        return Err(ApiError::bad_request(
            "conflicting_sim",
            "the SIM card is in another device or slot than the request names",
        ));
    }
    request.device_id = Some(device);
    request.sim_slot = Some(slot);
    Ok(())
}
