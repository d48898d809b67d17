//! REST calls made by another intake (the MQTT bridge): the same credential check and the
//! same handler as the HTTP route, answered as a status and a JSON body rather than an HTTP
//! response, so a send over MQTT is exactly a REST send.
//!
//! Must never: check a request differently from its HTTP route.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use warp::http::Method;

use super::credential::{Presented, authorize};
use super::error::ApiError;
use super::{ApiState, handlers};
use crate::auth::Scope;

/// What the API answered: its status and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The answer an error gets, as the HTTP API gives it.
    pub async fn of_error(err: ApiError) -> Answer {
        answer(err.into_response()).await
    }
}

/// `POST /api/send-sms` with `body`, under the API key `key`.
pub async fn send_sms(api: &Arc<ApiState>, key: &str, body: Bytes) -> Answer {
    let presented = Presented {
        method: Method::POST,
        api_key: Some(key.to_string()),
        ..Presented::default()
    };
    let result = match authorize(api, Some(Scope::MessagesSend), &presented).await {
        Ok(principal) => handlers::send_sms(api.clone(), principal, None, body, false).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(response) => answer(response).await,
        Err(err) => Answer::of_error(err).await,
    }
}

async fn answer(response: warp::reply::Response) -> Answer {
    let status = response.status().as_u16();
    let body = match response.into_body().collect().await {
        Ok(it) => serde_json::from_slice(&it.to_bytes()).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    Answer { status, body }
}
