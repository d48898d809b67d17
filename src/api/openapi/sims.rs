//! The documentation of the SIM card and routing rule routes (`api/sim_cards.rs`): their
//! `#[utoipa::path]` attributes. Never called.

#![allow(dead_code)]

use super::schemas::ErrorBody;
use crate::api::sim_cards::{
    CreateSimCard, RoutingRuleDto, RoutingRuleRequest, SimCardDto, UpdateSimCard,
};

/// Every SIM card, with its live signal and operator and what it sent today and this month.
///
/// A SIM becomes a card the first time a device reports it; cards can also be registered
/// ahead.
#[utoipa::path(get, path = "/api/sim-cards", tag = "devices",
    responses((status = 200, description = "the cards", body = Vec<SimCardDto>)))]
fn list_sim_cards() {}

/// Register a SIM card by ICCID, or by device and slot, before a device reports it.
#[utoipa::path(post, path = "/api/sim-cards", tag = "devices",
    request_body(content = CreateSimCard, example = json!({"iccid": "89490200001234567890", "label": "de-sim", "number": "+4915112345678", "status": "active", "limits": {"per_hour": 60}})),
    responses(
        (status = 201, description = "registered", body = SimCardDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_sim_identity`, `invalid_iccid`, `invalid_sim_slot`, `unknown_device`, `invalid_label`, `invalid_phone_number`, `invalid_status`", body = ErrorBody),
        (status = 409, description = "`sim_card_exists`: a card with that ICCID, or in that slot, exists", body = ErrorBody),
    ))]
fn create_sim_card() {}

/// One SIM card.
#[utoipa::path(get, path = "/api/sim-cards/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "5f0c6a7e-1d2b-4c3a-9e8f-7a6b5c4d3e2f")),
    responses(
        (status = 200, description = "the card", body = SimCardDto),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn show_sim_card() {}

/// Change a SIM card's label, number, status (`enabled`) or limits; `null` clears.
///
/// A disabled card gets no job; its own limits replace its device's.
#[utoipa::path(patch, path = "/api/sim-cards/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "5f0c6a7e-1d2b-4c3a-9e8f-7a6b5c4d3e2f")),
    request_body(content = UpdateSimCard, example = json!({"label": "de-sim", "enabled": false})),
    responses(
        (status = 200, description = "the card now", body = SimCardDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_label`, `invalid_phone_number`, `invalid_status`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn patch_sim_card() {}

/// The same as `PATCH` (the Flask gateway's method).
#[utoipa::path(put, path = "/api/sim-cards/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "5f0c6a7e-1d2b-4c3a-9e8f-7a6b5c4d3e2f")),
    request_body(content = UpdateSimCard, example = json!({"number": "+4915112345678", "status": "active"})),
    responses(
        (status = 200, description = "the card now", body = SimCardDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_label`, `invalid_phone_number`, `invalid_status`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn put_sim_card() {}

/// Forget a SIM card (a device that reports it again registers it anew).
#[utoipa::path(delete, path = "/api/sim-cards/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "5f0c6a7e-1d2b-4c3a-9e8f-7a6b5c4d3e2f")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn delete_sim_card() {}

/// Routing rules, highest priority first.
#[utoipa::path(get, path = "/api/routing-rules", tag = "devices",
    responses((status = 200, description = "the rules", body = Vec<RoutingRuleDto>)))]
fn list_routing_rules() {}

/// Send numbers of some prefixes only through SIMs of an operator or label.
///
/// A message whose number several rules match tries them highest priority first; one that
/// no SIM under its rules can take waits, and its `waiting_reason` names the rule.
#[utoipa::path(post, path = "/api/routing-rules", tag = "devices",
    request_body(content = RoutingRuleRequest, example = json!({"name": "germany", "prefixes": ["+49"], "via_label": "de-sim", "priority": 10})),
    responses(
        (status = 201, description = "created", body = RoutingRuleDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`, `invalid_priority`, `invalid_prefix`, `invalid_via`", body = ErrorBody),
    ))]
fn create_routing_rule() {}

/// One routing rule.
#[utoipa::path(get, path = "/api/routing-rules/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "5f0c6a7e-1d2b-4c3a-9e8f-7a6b5c4d3e2f")),
    responses(
        (status = 200, description = "the rule", body = RoutingRuleDto),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn show_routing_rule() {}

/// Change a routing rule (fields left out stay).
#[utoipa::path(patch, path = "/api/routing-rules/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "5f0c6a7e-1d2b-4c3a-9e8f-7a6b5c4d3e2f")),
    request_body(content = RoutingRuleRequest, example = json!({"enabled": false})),
    responses(
        (status = 200, description = "the rule now", body = RoutingRuleDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`, `invalid_priority`, `invalid_prefix`, `invalid_via`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn patch_routing_rule() {}

/// The same as `PATCH`.
#[utoipa::path(put, path = "/api/routing-rules/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "5f0c6a7e-1d2b-4c3a-9e8f-7a6b5c4d3e2f")),
    request_body(content = RoutingRuleRequest, example = json!({"priority": 5})),
    responses(
        (status = 200, description = "the rule now", body = RoutingRuleDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`, `invalid_priority`, `invalid_prefix`, `invalid_via`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn put_routing_rule() {}

/// Delete a routing rule.
#[utoipa::path(delete, path = "/api/routing-rules/{id}", tag = "devices",
    params(("id" = String, Path, min_length = 1, example = "5f0c6a7e-1d2b-4c3a-9e8f-7a6b5c4d3e2f")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn delete_routing_rule() {}
