//! [`Refused`]: why a transport refused a device's request before it became a session (a
//! missing or wrong token, a request that is not a WebSocket upgrade, a bad body). The HTTP
//! layer's one `recover` turns it into the hub's JSON error shape.

use warp::http::StatusCode;

/// Why a device's connection was refused before it became a session.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: StatusCode,
    /// A stable error code (`unauthorized`, `websocket_required`).
    pub code: &'static str,
    pub message: String,
}

impl warp::reject::Reject for Refused {}

impl Refused {
    pub fn unauthorized(message: &str) -> Refused {
        Refused {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.to_string(),
        }
    }

    pub fn websocket_required() -> Refused {
        Refused {
            status: StatusCode::BAD_REQUEST,
            code: "websocket_required",
            message: "this endpoint speaks WebSocket (version 13) only".to_string(),
        }
    }

    /// The store failed while serving the device's request.
    pub fn internal(err: impl std::fmt::Display) -> Refused {
        tracing::error!(error = %err, "the store failed while serving a device's request");
        Refused {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "the hub could not complete the request; it is logged".to_string(),
        }
    }

    /// A request whose body or query the device got wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Refused {
        Refused {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// A device asking about something that is not its own.
    pub fn forbidden(message: &str) -> Refused {
        Refused {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.to_string(),
        }
    }

    /// Too many requests of this kind from the device for now.
    pub fn rate_limited(message: &str) -> Refused {
        Refused {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: message.to_string(),
        }
    }
}
