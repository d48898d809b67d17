//! `GET /health` of capcom6's API: that API's `HealthResponse` (`pass`, `warn`, `fail`)
//! from smshub's own readiness: the database takes writes, and how many devices are online.
//! Open, as there.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::json;
use crate::api::ApiState;
use crate::api::error::ApiError;

/// One check.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatHealthCheck {
    pub description: String,
    pub observed_unit: String,
    pub observed_value: i64,
    /// `pass`, `warn` or `fail`.
    pub status: &'static str,
}

/// That API's `HealthResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatHealth {
    /// `pass`, `warn` (no device online) or `fail` (the database takes no writes).
    pub status: &'static str,
    pub version: &'static str,
    pub release_id: i64,
    pub checks: std::collections::BTreeMap<String, CompatHealthCheck>,
}

/// `GET /health`: always `200`; the status says how it is.
pub async fn health(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let writable = api.store.writer_alive() && api.store.can_commit().await;
    let online = i64::try_from(api.registry.len()).unwrap_or(i64::MAX);
    let mut checks = std::collections::BTreeMap::new();
    checks.insert(
        "db:writable".to_string(),
        CompatHealthCheck {
            description: "the database takes writes".to_string(),
            observed_unit: "boolean".to_string(),
            observed_value: i64::from(writable),
            status: if writable { "pass" } else { "fail" },
        },
    );
    checks.insert(
        "devices:online".to_string(),
        CompatHealthCheck {
            description: "devices connected now".to_string(),
            observed_unit: "devices".to_string(),
            observed_value: online,
            status: if online > 0 { "pass" } else { "warn" },
        },
    );
    let status = if !writable {
        "fail"
    } else if online == 0 {
        "warn"
    } else {
        "pass"
    };
    let body = CompatHealth {
        status,
        version: env!("CARGO_PKG_VERSION"),
        release_id: 0,
        checks,
    };
    Ok(json(&body, StatusCode::OK))
}
