//! Request handlers: check input, call the store and dispatcher, shape the answer.
//!
//! A handler validates everything before it writes anything, so a bad request changes
//! nothing; and it answers `202` only after the store has committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use smshub_protocol::device::SimInfo;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::ApiState;
use super::dto::*;
use super::error::ApiError;
use super::send::{SendRequest, unknown_device};
use crate::auth;
use crate::auth::Principal;
use crate::dispatch::limits::Limits;
use crate::dispatch::{Event, QueuedMessage};
use crate::domain::{DeviceId, DeviceKind, MessageState, PhoneNumber, now_millis, parse_rfc3339};
use crate::registry::CloseReason;
use crate::store::{Change, MessageFilter, NewMessage, Outcome};

/// Largest page of a list.
const MAX_LIMIT: u64 = 500;

pub(super) fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    // serde reads a struct from an array too (`[]` would be a request with every field left
    // out); every body of this API is an object.
    if body.iter().find(|it| !it.is_ascii_whitespace()) == Some(&b'[') {
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

/// `POST /api/send-sms`: one message per recipient, committed before the `202`;
/// `skip_phone_validation` is the query's `skipPhoneValidation=true`.
pub async fn send_sms(
    api: Arc<ApiState>,
    key: Principal,
    idempotency_header: Option<String>,
    body: Bytes,
    skip_phone_validation: bool,
) -> Result<Response, ApiError> {
    let mut request: SendSmsRequest = parse_json(&body)?;
    if skip_phone_validation {
        request.skip_phone_validation = Some(true);
    }
    Ok(send(&api, &key, idempotency_header, request)
        .await?
        .into_response())
}

/// What a send committed: its messages, and whether it was a replay of an earlier request
/// with the same idempotency key.
pub struct Sent {
    pub messages: Vec<AcceptedMessage>,
    pub replayed: bool,
}

impl Sent {
    /// The answer of `POST /api/send-sms`: `202`, or `200` with `Idempotent-Replayed` for a
    /// replay.
    pub fn into_response(self) -> Response {
        let status = if self.replayed {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        accepted_response(self.messages, status, self.replayed)
    }
}

/// A send (`POST /api/send-sms` and every seed path that sends): a template filled in,
/// every check, then one message per recipient committed and handed to the dispatcher.
pub async fn send(
    api: &Arc<ApiState>,
    key: &Principal,
    idempotency_header: Option<String>,
    mut request: SendSmsRequest,
) -> Result<Sent, ApiError> {
    super::templates::fill_in(api, key, &mut request).await?;
    let now = now_millis();
    let pin = super::sim_cards::pin_of(&request);
    let mut request = SendRequest::parse(request, idempotency_header, &api.config, now)?;
    if let Some(pin) = pin {
        super::sim_cards::pin(api, &mut request, &pin).await?;
    }
    if let Some(device) = &request.device_id
        && api.store.find_device(device.as_str()).await?.is_none()
    {
        return Err(unknown_device(device.as_str()));
    }
    if let Some(slot) = request.sim_slot {
        check_sim_slot(api, request.device_id.as_ref(), slot).await?;
    }
    // A key restricted to some devices (or SIMs) sends only through those: a pinned device
    // outside them is refused, an unpinned message carries them to the dispatcher.
    if let (Some(allowed), Some(device)) = (&key.devices, &request.device_id)
        && !allowed.allows(device, request.sim_slot)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this credential may not send through device {device} (or that SIM)"),
        ));
    }
    let allowed_devices = key.devices.as_ref().map(ToString::to_string);
    api.access
        .rate_limits
        .messages(
            key.owner,
            &key.limits,
            u32::try_from(request.recipients.len()).unwrap_or(u32::MAX),
        )
        .map_err(|it| super::credential::rate_limited(&it))?;
    let messages: Vec<NewMessage> = request
        .recipients
        .iter()
        .map(|recipient| NewMessage {
            id: Uuid::now_v7(),
            api_key_id: Some(key.owner),
            recipient: recipient.clone(),
            text: request.text.clone(),
            parts: request.parts,
            requested_device_id: request.device_id.clone(),
            requested_sim_slot: request.sim_slot,
            delivery_report: request.delivery_report,
            created_at: now,
            priority: request.priority,
            schedule_at: request.schedule_at,
            valid_until: request.valid_until,
            allowed_devices: allowed_devices.clone(),
        })
        .collect();

    if !api.backlog.reserve(
        Some(key.owner),
        messages.len(),
        api.config.max_queued,
        api.config.max_queued_per_key,
    ) {
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "too many messages are waiting for a device; try again later",
        );
        err.retry_after = Some(5);
        return Err(err);
    }
    let change = match (&request.idempotency_key, &request.fingerprint) {
        (Some(idempotency), Some(fingerprint)) => Change::InsertIdempotent {
            api_key_id: key.owner,
            key: idempotency.clone(),
            fingerprint: fingerprint.clone(),
            messages: messages.clone(),
        },
        _ => Change::Insert(messages.clone()),
    };
    let outcome = match api.store.apply(change).await {
        Ok(it) => it,
        Err(err) => {
            api.backlog.release(Some(key.owner), messages.len());
            return Err(err.into());
        }
    };
    if outcome == Outcome::Refused {
        api.backlog.release(Some(key.owner), messages.len());
        let idempotency = request.idempotency_key.unwrap_or_default();
        let fingerprint = request.fingerprint.unwrap_or_default();
        return replay(api, key, &idempotency, &fingerprint).await;
    }
    let queued: Vec<QueuedMessage> = messages
        .iter()
        .map(|it| QueuedMessage {
            id: it.id,
            api_key: it.api_key_id,
            recipient: it.recipient.clone(),
            text: it.text.clone(),
            parts: it.parts,
            delivery_report: it.delivery_report,
            device_id: it.requested_device_id.clone(),
            sim_slot: it.requested_sim_slot,
            created_at: it.created_at,
            priority: it.priority,
            not_before: it.schedule_at,
            valid_until: it.valid_until,
            attempts: 0,
            avoid: Vec::new(),
            allowed: key.devices.clone(),
        })
        .collect();
    api.dispatcher.send(Event::Enqueue(queued));
    let accepted = messages
        .into_iter()
        .map(|it| AcceptedMessage {
            id: it.id.to_string(),
            phone_number: it.recipient.to_string(),
            state: MessageState::Queued.as_str(),
            parts: it.parts,
        })
        .collect();
    Ok(Sent {
        messages: accepted,
        replayed: false,
    })
}

fn accepted_response(
    accepted: Vec<AcceptedMessage>,
    status: StatusCode,
    replayed: bool,
) -> Response {
    let single = accepted.len() == 1;
    let state = if single {
        accepted[0].state
    } else {
        MessageState::Queued.as_str()
    };
    let response = SendSmsResponse {
        id: single.then(|| accepted[0].id.clone()),
        phone_number: single.then(|| accepted[0].phone_number.clone()),
        state,
        messages: accepted,
    };
    let mut reply = warp::reply::with_status(warp::reply::json(&response), status).into_response();
    if replayed {
        reply.headers_mut().insert(
            "idempotent-replayed",
            warp::http::HeaderValue::from_static("true"),
        );
    }
    reply
}

/// Answers a repeated request with the messages the first one created, or `409` if the key
/// was used for a different request.
async fn replay(
    api: &ApiState,
    key: &Principal,
    idempotency: &str,
    fingerprint: &str,
) -> Result<Sent, ApiError> {
    let Some(stored) = api.store.find_idempotency(key.owner, idempotency).await? else {
        return Err(ApiError::internal(
            "an idempotency key was taken but cannot be read",
        ));
    };
    if stored.fingerprint != fingerprint {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_conflict",
            format!("the idempotency key {idempotency:?} was already used for a different request"),
        ));
    }
    let records = api.store.get_messages(&stored.message_ids).await?;
    let accepted = records
        .into_iter()
        .map(|it| AcceptedMessage {
            id: it.id.to_string(),
            phone_number: it.recipient,
            state: it.state.as_str(),
            parts: it.parts,
        })
        .collect();
    Ok(Sent {
        messages: accepted,
        replayed: true,
    })
}

pub async fn get_sms(api: Arc<ApiState>, key: Principal, id: String) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no message with id {id:?}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    // Another tenant's message is as absent as one that never existed.
    let record = api
        .store
        .get_message(uuid)
        .await?
        .filter(|it| key.may_see(it.api_key_id))
        .ok_or_else(not_found)?;
    Ok(warp::reply::json(&detailed(&api, record).await?).into_response())
}

/// A message with its history and, while it waits, why.
async fn detailed(
    api: &ApiState,
    record: crate::store::MessageRecord,
) -> Result<MessageDto, ApiError> {
    let id = record.id;
    let waiting = matches!(
        record.state,
        MessageState::Queued | MessageState::Dispatched
    );
    // The history is the message's event rows, oldest first: every transition appends one,
    // so a retry or requeue never hides an earlier attempt.
    let history = api
        .store
        .message_events(id)
        .await?
        .into_iter()
        .map(|event| HistoryEntry {
            at: crate::domain::format_millis(event.at),
            event: event.event,
            device_id: event.device_id,
            detail: event.detail,
        })
        .collect();
    let mut dto = MessageDto::from(record);
    dto.history = history;
    if waiting {
        dto.waiting_reason = api.dispatcher.why_waiting(id).await;
    }
    Ok(dto)
}

pub async fn cancel_sms(
    api: Arc<ApiState>,
    key: Principal,
    id: String,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no message with id {id:?}"));
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let record = api
        .store
        .get_message(uuid)
        .await?
        .filter(|it| key.may_see(it.api_key_id))
        .ok_or_else(not_found)?;
    let not_cancellable = |state: MessageState| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_cancellable",
            format!(
                "the message is {state}; only a message no device has accepted can be cancelled"
            ),
        )
    };
    if !matches!(
        record.state,
        MessageState::Queued | MessageState::Dispatched
    ) {
        return Err(not_cancellable(record.state));
    }
    match api.dispatcher.cancel(uuid).await? {
        Outcome::Applied => {
            let record = api.store.get_message(uuid).await?.ok_or_else(not_found)?;
            Ok(warp::reply::json(&detailed(&api, record).await?).into_response())
        }
        _ => {
            let state = api
                .store
                .get_message(uuid)
                .await?
                .map(|it| it.state)
                .unwrap_or(record.state);
            Err(not_cancellable(state))
        }
    }
}

pub async fn set_device_limits(
    api: Arc<ApiState>,
    id: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = device_path(&id)?;
    let limits: Option<Limits> = parse_json(&body)?;
    let value = limits.map(|it| serde_json::to_value(it).unwrap_or_default());
    let outcome = api
        .store
        .apply(Change::SetLimits {
            device: id.clone(),
            limits: value.clone(),
        })
        .await?;
    if outcome != Outcome::Applied {
        return Err(ApiError::not_found(format!("no device with id {id:?}")));
    }
    api.dispatcher.send(Event::Limits {
        device_id: id.clone(),
        limits,
    });
    Ok(warp::reply::json(&serde_json::json!({ "id": id, "limits": value })).into_response())
}

/// A list's `offset`: the database counts rows in a signed 64-bit integer, so a larger one is a
/// bad query, not a failed request.
pub(crate) fn offset(given: Option<u64>) -> Result<u64, ApiError> {
    let offset = given.unwrap_or(0);
    if offset > i64::MAX as u64 {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("offset must be at most {}", i64::MAX),
        ));
    }
    Ok(offset)
}

/// `GET /api/sms`: every message, newest first. With `outbox`, `GET /api/sms/outbox`: the
/// messages that went out (`sent`, `delivered`), newest send first.
pub async fn list_sms(
    api: Arc<ApiState>,
    key: Principal,
    query: MessageQuery,
    outbox: bool,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let offset = offset(query.offset)?;
    let state = match &query.state {
        Some(text) => Some(MessageState::parse(text).ok_or_else(|| {
            let known: Vec<&str> = MessageState::ALL.iter().map(|it| it.as_str()).collect();
            ApiError::bad_request(
                "invalid_query",
                format!("state must be one of {known:?}, got {text:?}"),
            )
        })?),
        None => None,
    };
    if outbox && state.is_some_and(|it| it != MessageState::Sent && it != MessageState::Delivered) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "the outbox holds sent and delivered messages only",
        ));
    }
    let recipient = match &query.phone_number {
        Some(number) => Some(
            PhoneNumber::parse(number, api.config.default_region)
                .map_err(|err| ApiError::bad_request("invalid_phone_number", err.to_string()))?
                .to_string(),
        ),
        None => None,
    };
    let instant = |name: &str, text: &Option<String>| -> Result<Option<i64>, ApiError> {
        match text {
            Some(text) => parse_rfc3339(text).map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name} must be an RFC 3339 time, got {text:?}"),
                )
            }),
            None => Ok(None),
        }
    };
    let filter = MessageFilter {
        state,
        outbox,
        device_id: query.device_id.clone(),
        recipient,
        since: instant("since", &query.since)?,
        until: instant("until", &query.until)?,
        owner: (!key.scopes.reads_all_messages()).then_some(key.owner),
        api_key_id: match &query.api_key_id {
            Some(text) => Some(Uuid::parse_str(text.trim()).map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("api_key_id must be an API key's id (a UUID), got {text:?}"),
                )
            })?),
            None => None,
        },
    };
    let (records, total) = api.store.list_messages(&filter, limit, offset).await?;
    let messages = records.into_iter().map(MessageDto::from).collect();
    Ok(warp::reply::json(&MessageList {
        total,
        limit,
        offset,
        messages,
    })
    .into_response())
}

pub async fn list_inbox(api: Arc<ApiState>, query: InboxQuery) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let search = inbox_search(query.q.as_deref())?;
    if query.after.is_some() || query.since.is_some() {
        if search.is_some() {
            return Err(ApiError::bad_request(
                "invalid_query",
                "q is not taken with after or since (a feed returns every SMS)",
            ));
        }
        return inbox_feed(api, query, limit).await;
    }
    let offset = offset(query.offset)?;
    let (records, total) = api
        .store
        .list_inbox(
            query.device_id.as_deref(),
            query.sender.as_deref(),
            search,
            limit,
            offset,
        )
        .await?;
    let messages = records.into_iter().map(InboxDto::from).collect();
    Ok(warp::reply::json(&InboxList {
        total,
        limit,
        offset,
        messages,
    })
    .into_response())
}

/// Longest inbox search, in characters.
const MAX_SEARCH_CHARS: usize = 100;

/// The inbox's `q`: 1 to [`MAX_SEARCH_CHARS`] characters.
fn inbox_search(q: Option<&str>) -> Result<Option<&str>, ApiError> {
    match q {
        None => Ok(None),
        Some(text) if text.is_empty() || text.chars().count() > MAX_SEARCH_CHARS => {
            Err(ApiError::bad_request(
                "invalid_query",
                format!("q must be 1 to {MAX_SEARCH_CHARS} characters"),
            ))
        }
        Some(text) => Ok(Some(text)),
    }
}

/// `GET /api/sms/inbox?after=ID` or `?since=TIME`: the SMS stored after one, oldest first;
/// `next` is the cursor for the following page (the last id, or the one given).
async fn inbox_feed(
    api: Arc<ApiState>,
    query: InboxQuery,
    limit: u64,
) -> Result<Response, ApiError> {
    let after = match &query.after {
        Some(text) => Some(Uuid::parse_str(text).map_err(|_| {
            ApiError::bad_request(
                "invalid_after",
                format!("after must be an SMS id, got {text:?}"),
            )
        })?),
        None => None,
    };
    let since = match &query.since {
        Some(text) => Some(parse_rfc3339(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("since must be an RFC 3339 time, got {text:?}"),
            )
        })?),
        None => None,
    };
    let records = api
        .store
        .inbox_feed(after, since, query.device_id.as_deref(), limit)
        .await?
        .ok_or_else(|| ApiError::bad_request("invalid_after", "no received SMS has this id"))?;
    let next = records
        .last()
        .map(|it| it.id.to_string())
        .or(query.after.clone());
    let messages: Vec<InboxDto> = records.into_iter().map(InboxDto::from).collect();
    Ok(warp::reply::json(&serde_json::json!({
        "messages": messages,
        "next": next,
    }))
    .into_response())
}

pub async fn list_devices(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let records = api.store.list_devices().await?;
    let mut quotas: std::collections::HashMap<_, _> =
        api.dispatcher.quotas().await.into_iter().collect();
    let now = now_millis();
    let devices = records
        .into_iter()
        .map(|record| {
            let live = api.registry.get(&record.id);
            let rest = api.registry.rest(&record.id);
            let traffic = api.history.last_day(&record.id, now);
            // Quotas of online devices only (the dispatcher may not have heard yet of a
            // session that just ended).
            let quota = match (&live, quotas.remove(&record.id)) {
                (Some(_), Some(sims)) => sims.into_iter().map(SimQuotaDto::from).collect(),
                _ => Vec::new(),
            };
            let usage = DeviceUsage {
                quota,
                sent_24h: traffic.sent,
                failed_24h: traffic.failed,
            };
            DeviceDto::new(record, live, rest, usage)
        })
        .collect();
    Ok(warp::reply::json(&DeviceList { devices }).into_response())
}

pub async fn create_device(
    api: Arc<ApiState>,
    key: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateDeviceRequest = parse_json(&body)?;
    let name = request.name.unwrap_or_default();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1 to 64 characters",
        ));
    }
    // Devices registered by hand connect over WebSocket (a phone, a remote worker) or are a
    // modem known ahead; HiLink sticks register themselves when attached.
    let kind = match request.kind.as_deref().unwrap_or("android") {
        "android" => DeviceKind::Android,
        "modem" => DeviceKind::Modem,
        other => {
            return Err(ApiError::bad_request(
                "invalid_kind",
                format!("kind must be \"android\" or \"modem\", got {other:?}"),
            ));
        }
    };
    let created = auth::create_device(&api.store, name, kind).await?;
    super::access::audit(
        &api,
        &key.label,
        "device.create",
        Some(created.id.as_str()),
        true,
    )
    .await;
    let body = CreatedDevice {
        ws_path: format!("/ws/device/{}", created.id),
        id: created.id.into(),
        name: created.name,
        kind: kind.as_str().to_string(),
        token: created.token,
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response())
}

pub async fn delete_device(
    api: Arc<ApiState>,
    key: Principal,
    id: String,
) -> Result<Response, ApiError> {
    let id = device_path(&id)?;
    let outcome = api
        .store
        .apply(Change::DeleteDevice { id: id.clone() })
        .await?;
    if outcome != Outcome::Applied {
        return Err(ApiError::not_found(format!("no device with id {id:?}")));
    }
    super::access::audit(&api, &key.label, "device.delete", Some(id.as_str()), true).await;
    api.registry.close(&id, CloseReason::Removed);
    api.history.forget(&id);
    api.dispatcher.send(Event::Removed { device_id: id });
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A `sim_slot` no device that may take the message has: `400 invalid_sim_slot` rather than a
/// message that waits forever. A device's SIMs are those it reported last (its status, else
/// its `hello`, else the stored ones); a device that reported none may still have the slot,
/// so it keeps the send possible.
async fn check_sim_slot(
    api: &ApiState,
    device: Option<&DeviceId>,
    slot: u8,
) -> Result<(), ApiError> {
    let records = match device {
        Some(device) => api.store.find_device(device).await?.into_iter().collect(),
        None => api.store.list_devices().await?,
    };
    let mut known = Vec::new();
    for record in records {
        // The slots of its last status, else of its `hello`; none reported is "not known".
        let slots: Vec<u8> = match api.registry.get(&record.id) {
            Some(live) => match &live.status {
                Some(status) => status.sims.iter().map(|it| it.slot).collect(),
                None => live.sims.iter().map(|it| it.slot).collect(),
            },
            None => record
                .sims
                .as_ref()
                .and_then(|it| serde_json::from_value::<Vec<SimInfo>>(it.clone()).ok())
                .map(|sims| sims.iter().map(|it| it.slot).collect())
                .unwrap_or_default(),
        };
        let slots = Some(slots).filter(|it| !it.is_empty());
        match slots {
            None => return Ok(()),
            Some(slots) if slots.contains(&slot) => return Ok(()),
            Some(slots) => known.extend(slots),
        }
    }
    if known.is_empty() && device.is_none() {
        // No device yet: the first one may have the slot.
        return Ok(());
    }
    known.sort_unstable();
    known.dedup();
    let whose = match device {
        Some(device) => format!("device {device} has"),
        None => "the devices have".to_string(),
    };
    Err(ApiError::bad_request(
        "invalid_sim_slot",
        format!("no SIM in slot {slot}: {whose} slots {known:?}"),
    ))
}

/// The device a path names. A text that cannot be a device id names no device: 404, like an
/// id that was never issued.
fn device_path(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(id).ok_or_else(|| ApiError::not_found(format!("no device with id {id:?}")))
}

pub async fn stats(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let counts = api.store.count_by_state().await?;
    let mut messages: BTreeMap<&'static str, u64> = MessageState::ALL
        .iter()
        .map(|it| (it.as_str(), counts.get(it).copied().unwrap_or(0)))
        .collect();
    messages.insert("total", counts.values().sum());
    let total = api.store.list_devices().await?.len();
    let devices = DeviceCounts {
        total,
        online: api.registry.len(),
    };
    let waiting = api.dispatcher.queue_len().await;
    Ok(warp::reply::json(&Stats {
        messages,
        devices,
        waiting,
    })
    .into_response())
}

/// Which health probe was asked.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// `/health`: everything, `503` when not ready.
    Summary,
    /// `/health/live`: the process and its database writer run (restart it if not).
    Live,
    /// `/health/ready`: a write can commit and devices can connect (send it traffic if so).
    Ready,
}

pub async fn health(api: Arc<ApiState>, probe: Probe) -> Result<Response, ApiError> {
    let live = api.store.writer_alive();
    let (status, body) = match probe {
        Probe::Live => (
            live,
            serde_json::json!({ "status": if live { "ok" } else { "down" }, "writer": live }),
        ),
        Probe::Ready | Probe::Summary => {
            let writable = live && api.store.can_commit().await;
            let database = writable || api.store.ping().await;
            let devices_can_connect = api.connections.devices_can_connect();
            let ready = writable && devices_can_connect;
            let (pending, clients, devices) = api.connections.counts();
            let mut body = serde_json::json!({
                "status": if ready { "ok" } else { "degraded" },
                "live": live,
                "ready": ready,
                "writer": live,
                "database": database,
                "writable": writable,
                "devices_can_connect": devices_can_connect,
            });
            if matches!(probe, Probe::Summary) {
                body["devices_online"] = api.registry.len().into();
                body["connections"] = serde_json::json!({
                    "pending": pending, "api": clients, "devices": devices,
                });
            }
            (ready, body)
        }
    };
    let mut response = warp::reply::with_status(
        warp::reply::json(&body),
        if status {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
    )
    .into_response();
    if !status {
        response
            .headers_mut()
            .insert(warp::http::header::RETRY_AFTER, 5.into());
    }
    response.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// `GET /api/series`: `window` is `1h` (one point a minute, the default), `6h` (five
/// minutes) or `24h` (fifteen minutes).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// `1h`, `6h` or `24h`.
    pub window: Option<String>,
}

/// The charts' data: the last hour or day, oldest point first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Series {
    pub window: String,
    /// Seconds each point covers.
    pub step_s: u64,
    pub points: Vec<crate::series::Point>,
}

/// A window's minutes and minutes per step: `1h` (one point a minute, the default), `6h`
/// (five minutes) or `24h` (fifteen minutes).
fn window_steps(window: Option<String>) -> Result<(String, usize, usize), ApiError> {
    let window = window.unwrap_or_else(|| "1h".to_string());
    let (minutes, step) = match window.as_str() {
        "1h" => (60, 1),
        "6h" => (360, 5),
        "24h" => (1440, 15),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_window",
                "window must be 1h, 6h or 24h",
            ));
        }
    };
    Ok((window, minutes, step))
}

pub async fn series(query: SeriesQuery) -> Result<Response, ApiError> {
    let (window, minutes, step) = window_steps(query.window)?;
    let points = crate::series::points(minutes, step, crate::domain::now_millis());
    Ok(warp::reply::json(&Series {
        window,
        step_s: step as u64 * 60,
        points,
    })
    .into_response())
}

/// A device's last hour, six hours or day: its steps and its online periods.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DeviceHistoryDto {
    pub device_id: String,
    pub window: String,
    /// Seconds each point covers.
    pub step_s: u64,
    pub points: Vec<crate::history::Point>,
    /// Online, offline and unknown (the hub was not sampling) runs of minutes, oldest first.
    pub periods: Vec<crate::history::Period>,
}

/// `GET /api/devices/{id}/history?window=1h|6h|24h`: kept in memory from the hub's start.
pub async fn device_history(
    api: Arc<ApiState>,
    id: String,
    query: SeriesQuery,
) -> Result<Response, ApiError> {
    let id = device_path(&id)?;
    let (window, _, step) = window_steps(query.window)?;
    if api.store.find_device(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no device with id {id:?}")));
    }
    let span = match window.as_str() {
        "6h" => crate::history::Window::SixHours,
        "24h" => crate::history::Window::Day,
        _ => crate::history::Window::Hour,
    };
    let history = api.history.history(&id, span, now_millis());
    Ok(warp::reply::json(&DeviceHistoryDto {
        device_id: id.to_string(),
        window,
        step_s: step as u64 * 60,
        points: history.points,
        periods: history.periods,
    })
    .into_response())
}

/// Longest manual rest: a week.
const MAX_REST_MINUTES: u32 = 7 * 24 * 60;

/// `POST /api/devices/{id}/rest`: the device is offered nothing new for `minutes` (default
/// 60); the jobs it holds stay its own.
pub async fn rest_device(
    api: Arc<ApiState>,
    key: Principal,
    id: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = device_path(&id)?;
    let request: RestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        Default::default()
    } else {
        parse_json(&body)?
    };
    let minutes = request.minutes.unwrap_or(60);
    if !(1..=MAX_REST_MINUTES).contains(&minutes) {
        return Err(ApiError::bad_request(
            "invalid_minutes",
            format!("minutes must be 1 to {MAX_REST_MINUTES}"),
        ));
    }
    let reason = request
        .reason
        .map(|it| it.trim().to_string())
        .filter(|it| !it.is_empty());
    if reason.as_ref().is_some_and(|it| it.chars().count() > 200) {
        return Err(ApiError::bad_request(
            "invalid_reason",
            "reason must be at most 200 characters",
        ));
    }
    if api.store.find_device(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no device with id {id:?}")));
    }
    let reason = reason.unwrap_or_else(|| format!("rested by {}", key.label));
    let until = now_millis() + i64::from(minutes) * 60_000;
    api.dispatcher.send(Event::Rest {
        device_id: id.clone(),
        minutes: Some(minutes),
        reason: Some(reason.clone()),
    });
    super::access::audit_with(
        &api,
        &key.label,
        "device.rest",
        Some(id.as_str()),
        true,
        Some(format!("{minutes} min: {reason}")),
    )
    .await;
    Ok(warp::reply::json(&RestDto {
        id: id.to_string(),
        rested_until: Some(crate::domain::format_millis(until)),
        rest_reason: Some(reason),
    })
    .into_response())
}

/// `DELETE /api/devices/{id}/rest`: ends the device's rest, an operator's or the breaker's.
pub async fn unrest_device(
    api: Arc<ApiState>,
    key: Principal,
    id: String,
) -> Result<Response, ApiError> {
    let id = device_path(&id)?;
    if api.store.find_device(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no device with id {id:?}")));
    }
    api.dispatcher.send(Event::Rest {
        device_id: id.clone(),
        minutes: None,
        reason: None,
    });
    super::access::audit(&api, &key.label, "device.unrest", Some(id.as_str()), true).await;
    Ok(warp::reply::json(&RestDto {
        id: id.to_string(),
        rested_until: None,
        rest_reason: None,
    })
    .into_response())
}
