//! `GET /mobile/v1/message`: the phone pulls its jobs; `PATCH /mobile/v1/message`: it
//! reports their states.
//!
//! The app has no two-phase commit: what it pulls, it stores in its own database and sends.
//! So a pull is where smshub commits the phone's acceptance, before answering: the offers
//! the phone pulls become `accepted` for it (never to be offered to another device), and the
//! answer lists every job `accepted` for the phone and not yet reported, including those of
//! earlier pulls whose answer may have been lost. The app keeps one copy per message id, so a
//! job listed again is not sent again (it re-reports its state instead); jobs it reported
//! `Processed` (handed to Android's SMS manager) are not listed again.
//!
//! Reports map onto smshub's states and never move one backwards (the store's transition
//! table decides): `Sent` → sent; `Delivered` → sent, then delivered; `Failed` → failed, with
//! the Android error in the app's words mapped onto the protocol's codes (a temporary one,
//! such as no service, sends the message again through another device); `Cancelled` → back to
//! the queue unsent; `Pending` and `Processed` change nothing. A report on a message that is
//! not the phone's changes nothing, as on the app's own server.

use std::collections::HashMap;

use bytes::Bytes;
use smshub_protocol::device::ErrorCode;
use uuid::Uuid;
use warp::Rejection;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::GatewayApp;
use super::wire::{AppState, Message, Patch, TextMessage};
use crate::domain::{DeviceId, FailureCode, MessageState, format_millis};
use crate::store::{Change, DeviceRecord, MessageFilter, MessageRecord, Outcome};
use crate::transport::Refused;

/// Most jobs one pull lists, and most reports one `PATCH` carries.
pub const MAX_PER_REQUEST: usize = 1000;

/// `GET /mobile/v1/message?order=lifo|fifo`.
pub(super) async fn pull(
    app: GatewayApp,
    device: DeviceRecord,
    order: Option<String>,
) -> Result<Response, Rejection> {
    let fifo = match order.as_deref() {
        None | Some("lifo") | Some("LIFO") => false,
        Some("fifo") | Some("FIFO") => true,
        Some(_) => {
            return Err(warp::reject::custom(Refused::bad_request(
                "invalid_order",
                "order must be lifo or fifo",
            )));
        }
    };
    if let Some((session, offered)) = app.sessions.take(&device.id) {
        app.link.touch(&device.id, session);
        accept(&app, &device.id, offered).await;
    }
    let filter = MessageFilter {
        state: Some(MessageState::Accepted),
        device_id: Some(device.id.to_string()),
        ..MessageFilter::default()
    };
    let (mut records, _) = app
        .link
        .store()
        .list_messages(&filter, MAX_PER_REQUEST as u64, 0)
        .await
        .map_err(|it| warp::reject::custom(Refused::internal(it)))?;
    // Newest first from the store: LIFO as it is.
    if fifo {
        records.reverse();
    }
    let jobs: Vec<Message> = records
        .into_iter()
        .filter(|it| !app.sessions.is_processed(&device.id, &it.id))
        .map(message_of)
        .collect();
    Ok(warp::reply::json(&jobs).into_response())
}

/// Commits the phone's acceptance of the offers it pulled and tells the dispatcher.
async fn accept(app: &GatewayApp, device: &DeviceId, offered: Vec<crate::registry::Job>) {
    if offered.is_empty() {
        return;
    }
    let ids: Vec<Uuid> = offered.iter().map(|it| it.id).collect();
    let changes = ids
        .iter()
        .map(|id| Change::Accept {
            id: *id,
            device: device.clone(),
        })
        .collect();
    let outcomes = match app.link.submit(changes).await {
        Ok(committed) => committed.await,
        Err(err) => Err(err),
    };
    match outcomes {
        Ok(outcomes) => {
            let (owned, refused): (Vec<_>, Vec<_>) = ids
                .iter()
                .zip(outcomes)
                .partition(|(_, it)| matches!(it, Outcome::Applied | Outcome::Unchanged));
            let owned: Vec<Uuid> = owned.into_iter().map(|(id, _)| *id).collect();
            let refused: Vec<Uuid> = refused.into_iter().map(|(id, _)| *id).collect();
            if !owned.is_empty() {
                app.link.owned(device, owned);
            }
            if !refused.is_empty() {
                app.link.offer_refused(device, refused);
            }
        }
        Err(err) => {
            tracing::error!(error = %err, %device, "could not record an SMS Gateway app's pull");
            app.link.rejected(device, ids, "hub_error".into());
        }
    }
}

/// A job as the app reads it.
fn message_of(record: MessageRecord) -> Message {
    Message {
        id: record.id.to_string(),
        message: record.text.clone(),
        text_message: TextMessage { text: record.text },
        phone_numbers: vec![record.recipient],
        sim_number: record.sim_slot.map(|it| it.saturating_add(1)),
        with_delivery_report: record.delivery_report,
        is_encrypted: false,
        valid_until: record.valid_until.map(format_millis),
        schedule_at: None,
        priority: i8::try_from(record.priority.clamp(-128, 127)).unwrap_or(0),
        state: "Pending",
        created_at: format_millis(record.created_at),
    }
}

/// What one report does: the changes it makes, and how it ends the job for the dispatcher.
struct Step {
    id: Uuid,
    /// The index of the change whose outcome ends the job, and the failure code if it failed.
    ends_by: Option<(usize, Option<FailureCode>)>,
}

/// `PATCH /mobile/v1/message`.
pub(super) async fn report(
    app: GatewayApp,
    device: DeviceRecord,
    body: Bytes,
) -> Result<Response, Rejection> {
    let patches: Vec<Patch> = serde_json::from_slice(&body).map_err(|it| {
        warp::reject::custom(Refused::bad_request(
            "invalid_json",
            format!("the body is not a list of message states: {it}"),
        ))
    })?;
    if patches.len() > MAX_PER_REQUEST {
        return Err(warp::reject::custom(Refused::bad_request(
            "too_many_ids",
            format!("at most {MAX_PER_REQUEST} messages per request"),
        )));
    }
    let mut parsed = Vec::with_capacity(patches.len());
    for patch in patches {
        let Some(state) = AppState::parse(&patch.state) else {
            return Err(warp::reject::custom(Refused::bad_request(
                "invalid_state",
                format!("unknown state {:?}", patch.state),
            )));
        };
        // An id that is no smshub message cannot be this phone's: ignored, as the app's own
        // server ignores messages it does not know.
        if let Ok(id) = Uuid::parse_str(&patch.id) {
            let error = patch
                .recipients
                .iter()
                .flatten()
                .find_map(|it| it.error.clone());
            parsed.push((id, state, error));
        }
    }
    if let Some(session) = app.sessions.session(&device.id) {
        app.link.touch(&device.id, session);
    }
    let ids: Vec<Uuid> = parsed.iter().map(|(id, ..)| *id).collect();
    let records: HashMap<Uuid, MessageRecord> = app
        .link
        .store()
        .get_messages(&ids)
        .await
        .map_err(|it| warp::reject::custom(Refused::internal(it)))?
        .into_iter()
        .filter(|it| it.device_id.as_ref() == Some(&device.id))
        .map(|it| (it.id, it))
        .collect();
    let mut changes = Vec::new();
    let mut steps = Vec::new();
    let mut processed = Vec::new();
    for (id, state, error) in parsed {
        let Some(record) = records.get(&id) else {
            continue;
        };
        let sent = Change::Sent {
            id,
            device: device.id.clone(),
            parts: record.parts.max(1),
        };
        let ends_by = match state {
            AppState::Pending | AppState::Processed | AppState::Cancelling => {
                processed.push(id);
                None
            }
            AppState::Sent => {
                changes.push(sent);
                Some((changes.len() - 1, None))
            }
            AppState::Delivered => {
                // Straight to delivered when the app's report skipped sent: sent first, so
                // the message has its send time and the job ends for the dispatcher.
                let ends = (record.state == MessageState::Accepted).then(|| {
                    changes.push(sent);
                    (changes.len() - 1, None)
                });
                changes.push(Change::Delivered {
                    id,
                    device: device.id.clone(),
                });
                ends
            }
            AppState::Failed => {
                let code = failure_code(error.as_deref());
                let temporary = matches!(&code, FailureCode::Known(it) if it.is_temporary());
                let message = error.unwrap_or_else(|| "the app reported a failure".into());
                changes.push(
                    app.link
                        .failure(id, &device.id, code.clone(), message, temporary),
                );
                Some((changes.len() - 1, Some(code)))
            }
            AppState::Cancelled => {
                // The app gave the job back unsent: it may go through another device.
                let code = FailureCode::NotSent;
                let message = "cancelled on the phone before it was sent".to_string();
                changes.push(
                    app.link
                        .failure(id, &device.id, code.clone(), message, true),
                );
                Some((changes.len() - 1, Some(code)))
            }
        };
        steps.push(Step { id, ends_by });
    }
    app.sessions.processed(&device.id, &processed);
    if changes.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let outcomes = match app.link.submit(changes).await {
        Ok(committed) => committed.await,
        Err(err) => Err(err),
    }
    .map_err(|it| warp::reject::custom(Refused::internal(it)))?;
    let mut ended = Vec::new();
    for step in steps {
        let Some((index, code)) = step.ends_by else {
            continue;
        };
        let Some(outcome) = outcomes.get(index).copied() else {
            continue;
        };
        if matches!(outcome, Outcome::Applied | Outcome::Requeued) {
            ended.push(step.id);
        }
        app.link
            .finish(&device.id, step.id, Ok(outcome), code, "SMS Gateway app");
    }
    app.sessions.ended(&device.id, &ended);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The protocol's code for the app's failure text: Android's `SmsManager` results by name
/// (`RESULT_ERROR_RADIO_OFF`, ...), its own "TTL expired", else a generic failure.
pub fn failure_code(error: Option<&str>) -> FailureCode {
    let text = error.unwrap_or_default().to_ascii_uppercase();
    let code = if text.contains("RADIO_OFF") {
        ErrorCode::RadioOff
    } else if text.contains("NO_SERVICE") {
        ErrorCode::NoService
    } else if text.contains("LIMIT_EXCEEDED") {
        ErrorCode::RateLimited
    } else if text.contains("TTL EXPIRED") || text.contains("EXPIRED") {
        ErrorCode::Expired
    } else if text.contains("INVALID") && text.contains("ADDRESS") {
        ErrorCode::InvalidRecipient
    } else {
        ErrorCode::GenericFailure
    };
    FailureCode::Known(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn android_results_map_onto_the_protocols_codes() {
        let code = |text| failure_code(Some(text));
        assert_eq!(
            code("RESULT_ERROR_RADIO_OFF"),
            FailureCode::Known(ErrorCode::RadioOff)
        );
        assert_eq!(code("TTL expired"), FailureCode::Known(ErrorCode::Expired));
        assert_eq!(
            code("sendSMS: boom"),
            FailureCode::Known(ErrorCode::GenericFailure)
        );
        assert_eq!(
            failure_code(None),
            FailureCode::Known(ErrorCode::GenericFailure)
        );
    }
}
