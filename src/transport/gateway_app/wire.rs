//! The app's mobile API on the wire: the JSON it sends and expects, field names as its own
//! server and client code spell them (`android-sms-gateway/client-go`, `smsgateway`
//! package: `MobileMessage`, `MobilePatchMessageItem`, `SimCard`, `DeviceSettings`; the
//! app's `GatewayApi.kt`). Kept apart from smshub's types; `session`, `pull`, `device` and
//! `hooks` translate.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A job as `GET /mobile/v1/message` lists it (`MobileMessage`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    /// The text again under its deprecated name, for apps older than `textMessage`.
    pub message: String,
    pub text_message: TextMessage,
    pub phone_numbers: Vec<String>,
    /// 1-based; `None` lets the app choose.
    pub sim_number: Option<u8>,
    pub with_delivery_report: bool,
    pub is_encrypted: bool,
    pub valid_until: Option<String>,
    pub schedule_at: Option<String>,
    pub priority: i8,
    /// Always `Pending`: the app sends only messages in that state.
    pub state: &'static str,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
pub struct TextMessage {
    pub text: String,
}

/// One entry of `PATCH /mobile/v1/message` (`MobilePatchMessageItem`).
#[derive(Debug, Deserialize)]
pub struct Patch {
    pub id: String,
    pub state: String,
    #[serde(default)]
    pub recipients: Option<Vec<RecipientState>>,
    /// When each state was reached, by the phone's clock (kept for the log only).
    #[serde(default)]
    #[allow(dead_code)]
    pub states: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientState {
    #[allow(dead_code)]
    pub phone_number: Option<String>,
    #[allow(dead_code)]
    pub state: Option<String>,
    pub error: Option<String>,
}

/// A SIM card as the app reports it (`SimCard`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimCard {
    pub slot_index: i64,
    #[serde(default)]
    pub sim_number: Option<i64>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub carrier_name: Option<String>,
    #[serde(default)]
    pub iccid: Option<String>,
}

/// `PATCH /mobile/v1/device` (`MobileUpdateRequest`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceUpdate {
    pub id: String,
    /// Its Firebase token; smshub reaches the phone over its event stream, not Firebase.
    #[allow(dead_code)]
    pub push_token: Option<String>,
    pub sim_cards: Option<Vec<SimCard>>,
}

/// The envelope of a webhook the app posts (`WebHookEventDTO`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    pub device_id: String,
    pub event: String,
    #[serde(default)]
    pub payload: Value,
}

/// The events smshub asks the app to post back to it.
pub const HOOK_EVENTS: [&str; 2] = ["system:ping", "sms:received"];

/// The states the app reports (`ProcessingState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    Pending,
    Processed,
    Sent,
    Delivered,
    Failed,
    Cancelling,
    Cancelled,
}

impl AppState {
    pub fn parse(text: &str) -> Option<AppState> {
        Some(match text {
            "Pending" => AppState::Pending,
            "Processed" => AppState::Processed,
            "Sent" => AppState::Sent,
            "Delivered" => AppState::Delivered,
            "Failed" => AppState::Failed,
            "Cancelling" => AppState::Cancelling,
            "Cancelled" => AppState::Cancelled,
            _ => return None,
        })
    }
}
