//! The one error type of the REST API and the one place rejections become responses.
//!
//! Every error is `{"error":{"code":"...","message":"..."}}` with a stable `code`; clients
//! branch on the code, people read the message.

use std::convert::Infallible;

use warp::http::StatusCode;
use warp::reject::Reject;
use warp::{Rejection, Reply};

use crate::transport::android::Refused;

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u32>,
}

impl Reject for ApiError {}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// The credential is valid but lacks `scope`.
    pub fn forbidden(scope: crate::auth::Scope) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this credential lacks the `{scope}` scope"),
        )
    }

    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %err, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the hub could not complete the request; it is logged",
        )
    }

    pub fn into_response(self) -> warp::reply::Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110: a 401 names the scheme the client should use.
            response.headers_mut().insert(
                warp::http::header::WWW_AUTHENTICATE,
                warp::http::HeaderValue::from_static("Bearer realm=\"smshub\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(warp::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> ApiError {
        if err.is_unavailable() {
            // Disk full, read-only database, writer restarting: nothing was committed, and
            // trying again later is the right thing to do.
            tracing::warn!(error = %err, "the database cannot take writes; answering 503");
            let mut answer = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the hub cannot store anything right now; nothing was changed, try again later",
            );
            answer.retry_after = Some(STORE_RETRY_AFTER_S);
            return answer;
        }
        ApiError::internal(err)
    }
}

/// `Retry-After` of a `503 store_unavailable`, in seconds.
const STORE_RETRY_AFTER_S: u32 = 5;

/// Turns any rejection into the JSON error shape.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let err = if let Some(err) = rejection.find::<ApiError>() {
        err.clone()
    } else if let Some(refused) = rejection.find::<Refused>() {
        ApiError::new(refused.status, refused.code, refused.message.clone())
    } else if rejection.is_not_found() {
        ApiError::not_found("no such endpoint")
    } else if let Some(err) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request("invalid_query", err.to_string())
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "send a Content-Length header",
        )
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send JSON",
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
        )
    } else if let Some(err) = rejection.find::<warp::reject::MissingHeader>() {
        ApiError::bad_request("missing_header", err.to_string())
    } else if let Some(err) = rejection.find::<warp::reject::InvalidHeader>() {
        // A header that is not visible ASCII (e.g. a non-ASCII `Idempotency-Key`).
        ApiError::bad_request("invalid_header", err.to_string())
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        ApiError::internal(format!("{rejection:?}"))
    };
    Ok(err.into_response())
}
