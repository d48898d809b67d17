//! The live event streams: `GET /api/events` (Server-Sent Events) and `GET /ws` (a WebSocket,
//! the modem manager's path), both reading the event log through an `events::Reader`.
//!
//! Both resume: `Last-Event-ID` (SSE) or `?after=ID` replays what was committed after that
//! event, then continues live, without a gap or a repeat (one cursor in the log). Heartbeats
//! every [`HEARTBEAT`]: an SSE comment, a WebSocket ping. Must never: queue events in memory
//! for a client (a slow client only reads the table later).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use uuid::Uuid;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::error::ApiError;
use super::{ApiState, authorized, query, with_api};
use crate::auth::{Principal, Scope};
use crate::events::Reader;
use crate::events::access::Filter as EventFilter;

/// How often an idle stream says it is alive (proxies close silent connections).
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The query of both streams.
#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    /// Comma-separated types, `message.*` for a family.
    pub types: Option<String>,
    pub device_id: Option<String>,
    pub message_id: Option<Uuid>,
    /// Replay from after this event id.
    pub after: Option<String>,
}

impl StreamQuery {
    fn filter(&self) -> Result<EventFilter, ApiError> {
        let types = match &self.types {
            Some(text) => EventFilter::parse_types(text)
                .map_err(|it| ApiError::bad_request("invalid_types", it))?,
            None => Vec::new(),
        };
        Ok(EventFilter {
            types,
            device_id: self.device_id.clone(),
            message_id: self.message_id,
        })
    }
}

/// `GET /api/events`: Server-Sent Events, one `event:` per type, `id:` the event's id.
pub fn sse(api: Arc<ApiState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "events")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesRead))
        .and(query::<StreamQuery>())
        .and(warp::header::optional::<String>("last-event-id"))
        .and_then(
            |api: Arc<ApiState>, principal: Principal, query: StreamQuery, last: Option<String>| async move {
                let reader = open(&api, principal, &query, last.as_deref())
                    .map_err(warp::reject::custom)?;
                // The reader runs in a task of its own (its database futures are not `Sync`,
                // as the response body must be), one batch ahead of the client at most.
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                tokio::spawn(async move {
                    let mut reader = reader;
                    while let Ok(batch) = reader.next().await {
                        if tx.send(batch).await.is_err() {
                            return;
                        }
                    }
                });
                let events = futures_util::stream::unfold(rx, |mut rx| async move {
                    let batch = rx.recv().await?;
                    let frames: Vec<Result<warp::sse::Event, std::convert::Infallible>> = batch
                        .iter()
                        .map(|it| {
                            Ok(warp::sse::Event::default()
                                .id(it.id.to_string())
                                .event(it.kind.clone())
                                .data(serde_json::to_string(it).unwrap_or_default()))
                        })
                        .collect();
                    Some((futures_util::stream::iter(frames), rx))
                })
                .flatten();
                let keep = warp::sse::keep_alive().interval(HEARTBEAT).stream(events);
                Ok::<Response, Rejection>(warp::sse::reply(keep).into_response())
            },
        )
}

/// `GET /ws`: the same events as JSON text frames; pings every [`HEARTBEAT`].
pub fn websocket(
    api: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("ws")
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(api, Scope::MessagesRead))
        .and(query::<StreamQuery>())
        .and(warp::ws())
        .and_then(
            |api: Arc<ApiState>, principal: Principal, query: StreamQuery, ws: warp::ws::Ws| async move {
                let reader =
                    open(&api, principal, &query, None).map_err(warp::reject::custom)?;
                Ok::<Response, Rejection>(
                    ws.on_upgrade(move |socket| serve_socket(socket, reader))
                        .into_response(),
                )
            },
        )
}

/// A reader for a stream's query, after `Last-Event-ID` if given, else `?after`, else now.
fn open(
    api: &ApiState,
    principal: Principal,
    query: &StreamQuery,
    last_event_id: Option<&str>,
) -> Result<Reader, ApiError> {
    let filter = query.filter()?;
    let after = match last_event_id.or(query.after.as_deref()) {
        Some(text) => Some(text.trim().parse::<i64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_after",
                "Last-Event-ID and after must be an event id (a number)",
            )
        })?),
        None => None,
    };
    Ok(Reader::new(
        api.store.events().clone(),
        principal,
        filter,
        after,
    ))
}

async fn serve_socket(socket: warp::ws::WebSocket, mut reader: Reader) {
    let (mut tx, mut rx) = socket.split();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            batch = reader.next() => {
                let Ok(batch) = batch else { break };
                for event in batch {
                    let text = serde_json::to_string(&event).unwrap_or_default();
                    if tx.send(warp::ws::Message::text(text)).await.is_err() {
                        return;
                    }
                }
            }
            _ = heartbeat.tick() => {
                if tx.send(warp::ws::Message::ping(Vec::new())).await.is_err() {
                    return;
                }
            }
            incoming = rx.next() => match incoming {
                Some(Ok(message)) if !message.is_close() => {}
                _ => break,
            },
        }
    }
    let _ = tx.close().await;
}
