//! Shapes the document names that have no DTO of their own: the one error body, the health
//! probes' answers and the limits answer (their handlers build them with `json!`). They
//! must match what the handlers write; schemathesis (`tests/schemathesis.sh`) checks every
//! answer against them.

#![allow(dead_code)]

use utoipa::ToSchema;

/// Every error: a stable `code` clients branch on and a `message` people read.
#[derive(ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "no message with id \"0190a1b2\""}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// Stable, e.g. `invalid_phone_number`; each answer lists the codes it can carry.
    pub code: String,
    pub message: String,
}

/// `GET /health/live`.
#[derive(ToSchema)]
#[schema(example = json!({"status": "ok", "writer": true}))]
pub struct Liveness {
    /// `ok` or `down`.
    pub status: String,
    /// The database writer runs.
    pub writer: bool,
}

/// `GET /health/ready`.
#[derive(ToSchema)]
pub struct Readiness {
    /// `ok` or `degraded`.
    pub status: String,
    pub live: bool,
    pub ready: bool,
    pub writer: bool,
    /// The database answers.
    pub database: bool,
    /// A write can commit now.
    pub writable: bool,
    /// The device connection cap is not reached.
    pub devices_can_connect: bool,
}

/// `GET /health`: readiness plus counts.
#[derive(ToSchema)]
pub struct HealthSummary {
    pub status: String,
    pub live: bool,
    pub ready: bool,
    pub writer: bool,
    pub database: bool,
    pub writable: bool,
    pub devices_can_connect: bool,
    pub devices_online: u64,
    pub connections: ConnectionCounts,
}

/// Open connections by kind.
#[derive(ToSchema)]
pub struct ConnectionCounts {
    /// Accepted, not yet classified.
    pub pending: u64,
    pub api: u64,
    pub devices: u64,
}

/// Answer of `PUT /api/devices/{id}/limits`.
#[derive(ToSchema)]
pub struct DeviceLimits {
    pub id: String,
    pub limits: Option<crate::dispatch::limits::Limits>,
}
