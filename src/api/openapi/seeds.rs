//! `#[utoipa::path]`s of the seed paths (`api::seeds`: the paths the clients of the systems
//! smshub replaces call) and of the templates (`api::templates`). Never called; they only
//! carry the attributes.

#![allow(dead_code)]

use super::schemas::ErrorBody;
use crate::api::dto::SendSmsResponse;
use crate::api::modems::UssdRequest;
use crate::api::seeds::elixir::{V1Message, V1MessageList, V1MessageRequest, V1Query};
use crate::api::seeds::flask::{FlaskSmsRequest, LogsQuery};
use crate::api::seeds::manager::RechargeRequest;
use crate::api::templates::{TemplateDto, TemplateList, TemplateRequest};

const NO_MODEM: &str = "`no_modem`: no modem is connected, or `modem_not_ready`";
const MODEM_404: &str = "`modem_not_found`: no modem by that id";

// ---- templates ----

/// Templates of this credential's tenant, oldest first.
#[utoipa::path(get, path = "/api/templates", tag = "templates",
    responses((status = 200, description = "the templates", body = TemplateList)))]
fn list_templates() {}

/// Store a template: a text with `{{name}}` fields that `POST /api/send-sms` fills in from
/// `params` when given its `template_id`.
#[utoipa::path(post, path = "/api/templates", tag = "templates",
    request_body(content = TemplateRequest, example = json!({"name": "otp", "body": "Hi {{name}}, your code is {{code}}"})),
    responses(
        (status = 201, description = "stored", body = TemplateDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`, `invalid_template`", body = ErrorBody),
    ))]
fn create_template() {}

/// One template.
#[utoipa::path(get, path = "/api/templates/{id}", tag = "templates",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    responses(
        (status = 200, description = "the template", body = TemplateDto),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn show_template() {}

/// Replace a template's name and text.
#[utoipa::path(put, path = "/api/templates/{id}", tag = "templates",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    request_body(content = TemplateRequest, example = json!({"name": "otp", "body": "{{code}} is your code, {{name}}"})),
    responses(
        (status = 200, description = "the template now", body = TemplateDto),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_name`, `invalid_template`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn replace_template() {}

/// Delete a template.
#[utoipa::path(delete, path = "/api/templates/{id}", tag = "templates",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn delete_template() {}

// ---- the multi-modem manager ----

/// Health in the multi-modem manager's shape (`modems`, `queue`, `database`) and the Elixir
/// gateway's (`status`, `modem {connected, signal_strength, network}`, `queue {pending,
/// executing}`, `database`), in one answer.
#[utoipa::path(get, path = "/api/health", tag = "seeds",
    responses(
        (status = 200, description = "healthy", body = serde_json::Value, example = json!({"status": "healthy", "modem": {"connected": true, "signal_strength": 80, "network": "Djezzy"}, "modems": {"total": 1, "connected": 1, "modems": []}, "queue": {"pending": 5, "executing": 2, "waiting": 5}, "database": "connected"})),
    ))]
fn seed_health() {}

/// Uptime, memory, messages by state, the queue, devices and modems.
#[utoipa::path(get, path = "/api/performance", tag = "seeds",
    responses((status = 200, description = "the figures", body = serde_json::Value)))]
fn performance() {}

/// `GET /api/modems/{id}/status` of the first connected modem.
#[utoipa::path(get, path = "/api/status", tag = "seeds",
    responses(
        (status = 200, description = "the modem's status", body = serde_json::Value),
        (status = 409, description = NO_MODEM, body = ErrorBody),
    ))]
fn legacy_status() {}

/// `GET /api/modems/{id}/sim-info` of the first connected modem.
#[utoipa::path(get, path = "/api/sim-info", tag = "seeds",
    responses(
        (status = 200, description = "the SIM", body = serde_json::Value),
        (status = 409, description = NO_MODEM, body = ErrorBody),
    ))]
fn legacy_sim_info() {}

/// `POST /api/modems/{id}/sms/send` through the first connected modem.
#[utoipa::path(post, path = "/api/sms/send", tag = "seeds",
    request_body(content = serde_json::Value, example = json!({"to": "+213770123456", "text": "Salam"})),
    responses(
        (status = 202, description = "committed", body = SendSmsResponse),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_phone_number`, `empty_message`, `message_too_long`", body = ErrorBody),
        (status = 409, description = NO_MODEM, body = ErrorBody),
    ))]
fn legacy_send() {}

/// `POST /api/modems/{id}/ussd` on the first connected modem.
#[utoipa::path(post, path = "/api/ussd", tag = "seeds",
    request_body(content = Option<UssdRequest>, example = json!({"code": "*100#"})),
    responses(
        (status = 200, description = "the reply", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_code`", body = ErrorBody),
        (status = 409, description = NO_MODEM, body = ErrorBody),
        (status = 502, description = "`modem_error`", body = ErrorBody),
        (status = 504, description = "`modem_timeout`", body = ErrorBody),
    ))]
fn legacy_ussd() {}

/// `GET /api/modems/{id}/balance` of the first connected modem.
#[utoipa::path(get, path = "/api/balance", tag = "seeds",
    responses(
        (status = 200, description = "the balance", body = serde_json::Value),
        (status = 409, description = NO_MODEM, body = ErrorBody),
        (status = 422, description = "`no_balance_code`", body = ErrorBody),
        (status = 502, description = "`modem_error`", body = ErrorBody),
        (status = 504, description = "`modem_timeout`", body = ErrorBody),
    ))]
fn legacy_balance() {}

/// Top up the SIM with a voucher, by the top-up USSD of its operator profile.
#[utoipa::path(post, path = "/api/modems/{id}/recharge", tag = "modems",
    params(("id" = String, Path, min_length = 1, description = "device id, IMEI or port name", example = "861234567890123")),
    request_body(content = RechargeRequest, example = json!({"code": "12345678901234"})),
    responses(
        (status = 200, description = "the network's reply", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_voucher`", body = ErrorBody),
        (status = 404, description = MODEM_404, body = ErrorBody),
        (status = 409, description = "`modem_not_ready`", body = ErrorBody),
        (status = 422, description = "`no_recharge_code`: the operator profile has none", body = ErrorBody),
        (status = 502, description = "`modem_error`", body = ErrorBody),
        (status = 504, description = "`modem_timeout`", body = ErrorBody),
    ))]
fn modem_recharge() {}

/// The data balance, by the data-balance USSD of the SIM's operator profile.
#[utoipa::path(get, path = "/api/modems/{id}/data-balance", tag = "modems",
    params(("id" = String, Path, min_length = 1, description = "device id, IMEI or port name", example = "861234567890123")),
    responses(
        (status = 200, description = "the data balance", body = serde_json::Value),
        (status = 404, description = MODEM_404, body = ErrorBody),
        (status = 409, description = "`modem_not_ready`", body = ErrorBody),
        (status = 422, description = "`no_data_balance_code`: the operator profile has none", body = ErrorBody),
        (status = 502, description = "`modem_error`", body = ErrorBody),
        (status = 504, description = "`modem_timeout`", body = ErrorBody),
    ))]
fn modem_data_balance() {}

// ---- the Flask gateway ----

/// The Flask gateway's send: `POST /api/send-sms` with `recipient`, `message` and
/// `sim_card_id`.
#[utoipa::path(post, path = "/api/sms", tag = "seeds",
    params(("Idempotency-Key" = Option<String>, Header, description = "a repeat with the same key returns the same message", example = "order-1234")),
    request_body(content = FlaskSmsRequest, example = json!({"recipient": "+14155552671", "message": "Hello"})),
    responses(
        (status = 201, description = "committed", body = serde_json::Value, example = json!({"message_id": "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", "sender_sim": null, "status": "queued", "recipient": "+14155552671"})),
        (status = 200, description = "a replay of the same idempotency key", body = serde_json::Value),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_recipient`, `invalid_phone_number`, `empty_message`, `message_too_long`", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`", body = ErrorBody),
    ))]
fn flask_send() {}

/// Memory, database size, message counts (total, incoming, outgoing, by state), per SIM and
/// per day (the last 30 days).
#[utoipa::path(get, path = "/api/statistics", tag = "seeds",
    responses((status = 200, description = "the statistics", body = serde_json::Value)))]
fn statistics() {}

/// Recent log events (kept in memory) and audit entries, newest first.
#[utoipa::path(get, path = "/api/logs", tag = "seeds", params(LogsQuery),
    responses(
        (status = 200, description = "`{logs: [...]}`", body = serde_json::Value),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    ))]
fn logs() {}

// ---- the Elixir gateway ----

/// The Elixir gateway's send: `phone` and `content`, answered in its message shape.
#[utoipa::path(post, path = "/api/v1/messages", tag = "seeds",
    params(("Idempotency-Key" = Option<String>, Header, description = "a repeat with the same key returns the same message", example = "order-1234")),
    request_body(content = V1MessageRequest, example = json!({"phone": "+33612345678", "content": "Votre code: 123456"})),
    responses(
        (status = 201, description = "committed", body = V1Message),
        (status = 200, description = "a replay of the same idempotency key", body = V1Message),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_recipient`, `invalid_phone_number`, `empty_message`, `message_too_long`", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`", body = ErrorBody),
    ))]
fn v1_create() {}

/// Messages in the Elixir gateway's shape, newest first.
#[utoipa::path(get, path = "/api/v1/messages", tag = "seeds", params(V1Query),
    responses(
        (status = 200, description = "a page", body = V1MessageList),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
    ))]
fn v1_list() {}

/// One message in the Elixir gateway's shape.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "seeds",
    params(("id" = String, Path, min_length = 1, example = "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")),
    responses(
        (status = 200, description = "the message", body = V1Message),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn v1_show() {}
