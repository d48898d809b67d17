//! Request handlers: check input, call the store and dispatcher, shape the answer.
//!
//! A handler validates everything before it writes anything, so a bad request changes
//! nothing; and it answers `202` only after the store has committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::dto::*;
use super::error::ApiError;
use crate::app::Hub;
use crate::auth;
use crate::dispatch::{Event, QueuedMessage};
use crate::domain::{MessageState, PhoneNumber, is_valid_device_id, now_millis, parse_rfc3339};
use crate::registry::close_code;
use crate::store::{ApiKeyRecord, Change, MessageFilter, NewMessage};

/// Most recipients in one request.
pub const MAX_RECIPIENTS: usize = 1000;
/// Largest page of a list.
const MAX_LIMIT: u64 = 500;

fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| {
        let code = if err.is_syntax() || err.is_eof() { "invalid_json" } else { "invalid_request" };
        ApiError::bad_request(code, format!("request body: {err}"))
    })
}

pub async fn send_sms(hub: Arc<Hub>, key: ApiKeyRecord, body: Bytes) -> Result<Response, ApiError> {
    let request: SendSmsRequest = parse_json(&body)?;
    let mut recipients: Vec<String> = Vec::new();
    recipients.extend(request.phone_number.clone());
    recipients.extend(request.phone_numbers.clone().unwrap_or_default());
    if recipients.is_empty() {
        return Err(ApiError::bad_request("missing_recipient", "give phone_number or phone_numbers"));
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(ApiError::bad_request(
            "too_many_recipients",
            format!("at most {MAX_RECIPIENTS} recipients per request, got {}", recipients.len()),
        ));
    }
    let numbers = recipients
        .iter()
        .map(|it| PhoneNumber::parse(it, hub.config.default_region))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| ApiError::bad_request("invalid_phone_number", err.to_string()))?;
    let text = request.message.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("empty_message", "message must not be empty"));
    }
    let segmentation = smshub_protocol::gsm::segment(&text);
    if segmentation.parts as u32 > hub.config.max_parts {
        return Err(ApiError::bad_request(
            "message_too_long",
            format!(
                "the message needs {} SMS parts ({} {} units); the limit is {}",
                segmentation.parts,
                segmentation.units,
                match segmentation.encoding {
                    smshub_protocol::gsm::Encoding::Gsm7 => "GSM 7-bit",
                    smshub_protocol::gsm::Encoding::Ucs2 => "UCS-2",
                },
                hub.config.max_parts
            ),
        ));
    }
    if let Some(slot) = request.sim_slot
        && slot > 7
    {
        return Err(ApiError::bad_request("invalid_sim_slot", format!("sim_slot must be 0 to 7, got {slot}")));
    }
    if let Some(device) = &request.device_id
        && (!is_valid_device_id(device) || hub.store.find_device(device).await?.is_none())
    {
        return Err(ApiError::bad_request("unknown_device", format!("no device with id {device:?}")));
    }

    let now = now_millis();
    let messages: Vec<NewMessage> = numbers
        .iter()
        .map(|number| NewMessage {
            id: Uuid::new_v4(),
            api_key_id: Some(key.id),
            recipient: number.to_string(),
            body: text.clone(),
            parts: segmentation.parts as u32,
            requested_device_id: request.device_id.clone(),
            requested_sim_slot: request.sim_slot,
            delivery_report: request.delivery_report.unwrap_or(false),
            created_at: now,
        })
        .collect();
    hub.store.apply(Change::Insert(messages.clone())).await?;
    let queued: Vec<QueuedMessage> = messages
        .iter()
        .map(|it| QueuedMessage {
            id: it.id,
            to: it.recipient.clone(),
            text: it.body.clone(),
            parts: it.parts,
            delivery_report: it.delivery_report,
            device_id: it.requested_device_id.clone(),
            sim_slot: it.requested_sim_slot,
            created_at: it.created_at,
            avoid: Vec::new(),
        })
        .collect();
    hub.dispatcher.send(Event::Enqueue(queued));

    let accepted: Vec<AcceptedMessage> = messages
        .into_iter()
        .map(|it| AcceptedMessage {
            id: it.id.to_string(),
            phone_number: it.recipient,
            state: MessageState::Queued.as_str(),
            parts: it.parts,
        })
        .collect();
    let single = accepted.len() == 1;
    let response = SendSmsResponse {
        id: single.then(|| accepted[0].id.clone()),
        phone_number: single.then(|| accepted[0].phone_number.clone()),
        state: MessageState::Queued.as_str(),
        messages: accepted,
    };
    Ok(warp::reply::with_status(warp::reply::json(&response), StatusCode::ACCEPTED).into_response())
}

pub async fn get_sms(hub: Arc<Hub>, id: String) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no message with id {id:?}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let record = hub.store.get_message(uuid).await?.ok_or_else(not_found)?;
    Ok(warp::reply::json(&MessageDto::from(record)).into_response())
}

pub async fn list_sms(hub: Arc<Hub>, query: MessageQuery) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let offset = query.offset.unwrap_or(0);
    let state = match &query.state {
        Some(text) => Some(MessageState::parse(text).ok_or_else(|| {
            let known: Vec<&str> = MessageState::ALL.iter().map(|it| it.as_str()).collect();
            ApiError::bad_request("invalid_query", format!("state must be one of {known:?}, got {text:?}"))
        })?),
        None => None,
    };
    let recipient = match &query.phone_number {
        Some(number) => Some(
            PhoneNumber::parse(number, hub.config.default_region)
                .map_err(|err| ApiError::bad_request("invalid_phone_number", err.to_string()))?
                .to_string(),
        ),
        None => None,
    };
    let instant = |name: &str, text: &Option<String>| -> Result<Option<i64>, ApiError> {
        match text {
            Some(text) => parse_rfc3339(text).map(Some).ok_or_else(|| {
                ApiError::bad_request("invalid_query", format!("{name} must be an RFC 3339 time, got {text:?}"))
            }),
            None => Ok(None),
        }
    };
    let filter = MessageFilter {
        state,
        device_id: query.device_id.clone(),
        recipient,
        since: instant("since", &query.since)?,
        until: instant("until", &query.until)?,
    };
    let (records, total) = hub.store.list_messages(&filter, limit, offset).await?;
    let messages = records.into_iter().map(MessageDto::from).collect();
    Ok(warp::reply::json(&MessageList { total, limit, offset, messages }).into_response())
}

pub async fn list_inbox(hub: Arc<Hub>, query: InboxQuery) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let offset = query.offset.unwrap_or(0);
    let (records, total) =
        hub.store.list_inbox(query.device_id.as_deref(), query.sender.as_deref(), limit, offset).await?;
    let messages = records.into_iter().map(InboxDto::from).collect();
    Ok(warp::reply::json(&InboxList { total, limit, offset, messages }).into_response())
}

pub async fn list_devices(hub: Arc<Hub>) -> Result<Response, ApiError> {
    let records = hub.store.list_devices().await?;
    let devices = records
        .into_iter()
        .map(|record| {
            let live = hub.registry.get(&record.id);
            DeviceDto::new(record, live)
        })
        .collect();
    Ok(warp::reply::json(&DeviceList { devices }).into_response())
}

pub async fn create_device(hub: Arc<Hub>, body: Bytes) -> Result<Response, ApiError> {
    let request: CreateDeviceRequest = parse_json(&body)?;
    let name = request.name.unwrap_or_default();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_request("invalid_name", "name must be 1 to 64 characters"));
    }
    let kind = request.kind.unwrap_or_else(|| "android".into());
    if kind != "android" && kind != "modem" {
        return Err(ApiError::bad_request(
            "invalid_kind",
            format!("kind must be \"android\" or \"modem\", got {kind:?}"),
        ));
    }
    let created = auth::create_device(&hub.store, name, &kind).await?;
    let body = CreatedDevice {
        ws_path: format!("/ws/device/{}", created.id),
        id: created.id,
        name: created.name,
        kind,
        token: created.token,
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response())
}

pub async fn delete_device(hub: Arc<Hub>, id: String) -> Result<Response, ApiError> {
    let outcome = hub.store.apply(Change::DeleteDevice { id: id.clone() }).await?;
    if outcome != crate::store::Outcome::Applied {
        return Err(ApiError::not_found(format!("no device with id {id:?}")));
    }
    if let Some(tx) = hub.registry.sender(&id) {
        let _ = tx.try_send(crate::registry::Outbound::Close { code: close_code::REMOVED, reason: "device removed" });
    }
    hub.dispatcher.send(Event::Removed { device_id: id });
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn stats(hub: Arc<Hub>) -> Result<Response, ApiError> {
    let counts = hub.store.count_by_state().await?;
    let mut messages: BTreeMap<&'static str, u64> =
        MessageState::ALL.iter().map(|it| (it.as_str(), counts.get(it).copied().unwrap_or(0))).collect();
    messages.insert("total", counts.values().sum());
    let total = hub.store.list_devices().await?.len();
    let devices = DeviceCounts { total, online: hub.registry.len() };
    let waiting = hub.dispatcher.queue_len().await;
    Ok(warp::reply::json(&Stats { messages, devices, waiting }).into_response())
}

pub async fn health(hub: Arc<Hub>) -> Result<Response, ApiError> {
    let database = hub.store.ping().await;
    let body = serde_json::json!({
        "status": if database { "ok" } else { "degraded" },
        "database": database,
        "devices_online": hub.registry.len(),
    });
    let status = if database { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok(warp::reply::with_status(warp::reply::json(&body), status).into_response())
}
