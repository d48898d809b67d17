//! `GET /devices` and `DELETE /devices/{id}` of capcom6's API: smshub's device registry in
//! that API's `Device` shape; a delete is the native one.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::json;
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::api::handlers;
use crate::auth::Principal;
use crate::domain::format_millis;

/// A SIM as that API shows it (`simNumber` is 1-based).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatSimCard {
    pub slot_index: u32,
    pub sim_number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
}

/// That API's `Device`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatDevice {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// The last time it was seen (smshub keeps no other update time).
    pub updated_at: String,
    /// Now for a device online now.
    pub last_seen: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sim_cards: Vec<CompatSimCard>,
}

/// `GET /devices`: every device, oldest first.
pub async fn list(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let now = crate::domain::now_millis();
    let devices: Vec<CompatDevice> = api
        .store
        .list_devices()
        .await?
        .into_iter()
        .map(|record| {
            let live = api.registry.get(&record.id);
            let last_seen = if live.is_some() {
                now
            } else {
                record.last_seen_at.unwrap_or(record.created_at)
            };
            let sim_cards = live
                .map(|it| {
                    it.sims
                        .iter()
                        .map(|sim| CompatSimCard {
                            slot_index: u32::from(sim.slot),
                            sim_number: u32::from(sim.slot) + 1,
                            phone_number: sim.phone_number.clone(),
                            carrier_name: sim.operator.clone(),
                            iccid: sim.iccid.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            CompatDevice {
                id: record.id.to_string(),
                name: record.name,
                created_at: format_millis(record.created_at),
                updated_at: format_millis(record.last_seen_at.unwrap_or(record.created_at)),
                last_seen: format_millis(last_seen),
                sim_cards,
            }
        })
        .collect();
    Ok(json(&devices, StatusCode::OK))
}

/// `DELETE /devices/{id}`: the native delete (`204`, `404`).
pub async fn delete(api: Arc<ApiState>, who: Principal, id: String) -> Result<Response, ApiError> {
    handlers::delete_device(api, who, id).await
}
