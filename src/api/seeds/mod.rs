//! The seed paths: the paths the clients of the systems smshub replaces call, answered by the
//! same handlers as the native routes and in the seed's shape. One file per seed:
//! [`manager`] (the multi-modem manager's health, performance and legacy single-modem
//! paths), [`flask`] (the Flask gateway's send, statistics and logs), [`elixir`] (the Elixir
//! gateway's `/api/v1/messages`). The FastAPI WebSocket gateway's paths are native
//! (`/api/send-sms`, `/api/sms/{id}`, `/api/devices`); its `skip_phone_validation` lives in
//! `api::send`.
//!
//! Where a seed path collides with a native one, the native meaning wins: the multi-modem
//! manager's legacy `GET /api/sms` (a modem's stored messages) and `DELETE /api/sms/{id}`
//! (delete one of them) are smshub's message list and cancel; use
//! `GET /api/modems/{id}/sms` and `DELETE /api/modems/{id}/sms/{index}`.
//!
//! Must never: hold logic of its own beyond renaming fields and reshaping answers.

pub(crate) mod elixir;
pub(crate) mod flask;
pub(crate) mod manager;

use std::sync::Arc;

use warp::Filter;
use warp::reply::Response;

use super::ApiState;

/// Every seed path, as one filter.
pub fn routes(api: Arc<ApiState>) -> warp::filters::BoxedFilter<(Response,)> {
    manager::started();
    manager::routes(api.clone())
        .or(flask::routes(api.clone()))
        .unify()
        .or(elixir::routes(api))
        .unify()
        .boxed()
}
