//! Cross-origin requests from browsers (`--cors-origin`): off unless origins are named.
//!
//! A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is
//! answered `204` with the methods and headers the API takes; from another origin, `403
//! origin_not_allowed`. Every answer to an allowed origin names it in
//! `Access-Control-Allow-Origin` and exposes the rate-limit headers. Credentials travel in
//! headers (`X-API-Key`, `Authorization`), never cookies: no `Allow-Credentials`. Must never:
//! cost a request without an `Origin` header more than one header lookup.

use std::sync::Arc;

use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::error::ApiError;

/// Methods a preflight is told the API takes.
const METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
/// Request headers a preflight is told the API reads.
const HEADERS: &str = "Authorization, Content-Type, X-API-Key, Idempotency-Key, X-CSRF-Token";
/// Answer headers a browser script may read.
const EXPOSED: &str =
    "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Location";
/// How long a browser may cache a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

/// The allowed origins.
#[derive(Debug)]
pub struct Cors {
    any: bool,
    origins: Vec<String>,
}

impl Cors {
    /// CORS for `origins` (`*` allows any); `None` (off) when there are none.
    pub fn new(origins: &[String]) -> Option<Arc<Cors>> {
        let origins: Vec<String> = origins
            .iter()
            .map(|it| it.trim().trim_end_matches('/').to_string())
            .filter(|it| !it.is_empty())
            .collect();
        if origins.is_empty() {
            return None;
        }
        Some(Arc::new(Cors {
            any: origins.iter().any(|it| it == "*"),
            origins,
        }))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    fn allow(&self, origin: &str) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        self.origins
            .iter()
            .any(|it| it.eq_ignore_ascii_case(origin))
            .then(|| HeaderValue::from_str(origin).ok())
            .flatten()
    }

    /// Adds the CORS headers to an answer for `origin`.
    fn decorate(&self, origin: &str, mut response: Response) -> Response {
        let Some(allowed) = self.allow(origin) else {
            return response;
        };
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
        response
    }

    fn preflight(&self, origin: &str) -> Response {
        let Some(allowed) = self.allow(origin) else {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!("cross-origin requests from {origin} are not allowed"),
            )
            .into_response();
        };
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        response
    }
}

/// Answers a CORS preflight; rejects anything else (and everything when CORS is off).
pub fn preflight(
    cors: Option<Arc<Cors>>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>(
            "access-control-request-method",
        ))
        .and_then(
            move |method: Method, origin: Option<String>, requested: Option<String>| {
                let cors = cors.clone();
                async move {
                    match (cors, origin, requested) {
                        (Some(cors), Some(origin), Some(_)) if method == Method::OPTIONS => {
                            Ok(cors.preflight(&origin))
                        }
                        _ => Err(warp::reject::not_found()),
                    }
                }
            },
        )
}

/// Adds the CORS headers to `response` when the request came from an allowed origin.
pub fn decorate(cors: Option<&Cors>, origin: Option<&str>, response: Response) -> Response {
    match (cors, origin) {
        (Some(cors), Some(origin)) => cors.decorate(origin, response),
        _ => response,
    }
}
