//! capcom6's SMS Gateway for Android™ 3rd-party API, so applications written against its
//! client libraries (PyPI and npm `android-sms-gateway`, Go, PHP, ...) use smshub unchanged:
//! every route under `/3rdparty/v1` and again under `/api/3rdparty/v1`.
//!
//! - [`auth`]: `Authorization: Basic` (a user's name and password, or any name and an API key
//!   as the password), else every credential the native API takes; `POST /auth/token`.
//! - [`messages`]: send, state, list, cancel. A message of that API is the group of smshub
//!   messages one send made (one per recipient), named by the send's idempotency key: the
//!   client's `id`, or one made here.
//! - [`states`]: smshub's states in that API's words, in one place.
//! - [`devices`], [`inbox`], [`webhooks`], [`settings`] (only the webhooks' signing key),
//!   [`health`]: the other resources.
//! - [`mobile`]: the app's side, where it needs the API's credentials: registering a phone
//!   (`POST /mobile/v1/device`) and one-time codes (`GET /mobile/v1/user/code`); the rest of
//!   the app's mobile API is the transport `transport/gateway_app`.
//!
//! Every send goes through `handlers::send`, every cancel through the dispatcher, every read
//! through the store: there is no second send path. Errors keep smshub's shape
//! (`{"error":{"code","message"}}`, which those clients do not parse; they read the status).
//!
//! Must never: accept a request the native API would refuse for the same credential.

pub(crate) mod auth;
pub(crate) mod devices;
pub(crate) mod health;
pub(crate) mod inbox;
pub(crate) mod messages;
pub(crate) mod mobile;
pub(crate) mod settings;
pub(crate) mod states;
pub(crate) mod webhooks;

use std::sync::Arc;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::{ApiState, json_body, run, with_api};
use crate::auth::Scope;

/// Every route of that API, under both prefixes.
pub fn routes(api: Arc<ApiState>) -> BoxedFilter<(Response,)> {
    let prefix = warp::path("3rdparty")
        .and(warp::path("v1"))
        .map(|| "/3rdparty/v1")
        .or(warp::path("api")
            .and(warp::path("3rdparty"))
            .and(warp::path("v1"))
            .map(|| "/api/3rdparty/v1"))
        .unify()
        .boxed();
    let authorized = |scope| auth::authorized(api.clone(), Some(scope));
    // `messages`, and the deprecated `message` the npm client 3.0 calls.
    let messages = || {
        warp::path("messages")
            .or(warp::path("message"))
            .unify()
            .boxed()
    };
    let send = prefix
        .clone()
        .and(messages())
        .and(warp::path::end())
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(authorized(Scope::MessagesSend))
        .and(json_body())
        .and(super::query::<messages::SendQuery>())
        .and_then(|prefix, api, who, body, query| {
            run(messages::send(api, who, body, query, prefix))
        });
    let list = prefix
        .clone()
        .and(messages())
        .and(warp::path::end())
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(Scope::MessagesRead))
        .and(super::query::<messages::ListQuery>())
        .and_then(|_, api, who, query| run(messages::list(api, who, query)));
    let get = prefix
        .clone()
        .and(messages())
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(Scope::MessagesRead))
        .and_then(|_, id, api, who| run(messages::get(api, who, id)));
    let cancel = prefix
        .clone()
        .and(messages())
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(Scope::MessagesSend))
        .and_then(|_, id, api, who| run(messages::cancel(api, who, id)));
    let list_devices = prefix
        .clone()
        .and(warp::path("devices"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(Scope::DevicesRead))
        .and_then(|_, api, _who| run(devices::list(api)));
    let delete_device = prefix
        .clone()
        .and(warp::path("devices"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(Scope::DevicesWrite))
        .and_then(|_, id, api, who| run(devices::delete(api, who, id)));
    let inbox = prefix
        .clone()
        .and(warp::path("inbox"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(Scope::InboxRead))
        .and(super::query::<inbox::InboxQuery>())
        .and_then(|_, api, _who, query| run(inbox::list(api, query)));
    let list_webhooks = prefix
        .clone()
        .and(warp::path("webhooks"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(Scope::WebhooksWrite))
        .and_then(|_, api, who| run(webhooks::list(api, who)));
    let create_webhook = prefix
        .clone()
        .and(warp::path("webhooks"))
        .and(warp::path::end())
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(authorized(Scope::WebhooksWrite))
        .and(json_body())
        .and_then(|_, api, who, body| run(webhooks::create(api, who, body)));
    let delete_webhook = prefix
        .clone()
        .and(warp::path("webhooks"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::delete())
        .and(with_api(api.clone()))
        .and(authorized(Scope::WebhooksWrite))
        .and_then(|_, id, api, who| run(webhooks::delete(api, who, id)));
    let get_settings = prefix
        .clone()
        .and(warp::path("settings"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_api(api.clone()))
        .and(authorized(Scope::WebhooksWrite))
        .and_then(|_, api, who| run(settings::get(api, who)));
    let update_settings = prefix
        .clone()
        .and(warp::path("settings"))
        .and(warp::path::end())
        .and(warp::put().or(warp::patch()).unify())
        .and(with_api(api.clone()))
        .and(authorized(Scope::WebhooksWrite))
        .and(json_body())
        .and_then(|_, api, who, body| run(settings::update(api, who, body)));
    let health = prefix
        .clone()
        .and(warp::path("health"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_api(api.clone()))
        .and_then(|_, api| run(health::health(api)));
    let token = prefix
        .and(warp::path("auth"))
        .and(warp::path("token"))
        .and(warp::path::end())
        .and(warp::post())
        .and(with_api(api.clone()))
        .and(auth::authorized(api.clone(), None))
        .and(json_body())
        .and_then(|_, api, who, body| run(auth::token(api, who, body)));
    send.or(list)
        .unify()
        .or(get)
        .unify()
        .or(cancel)
        .unify()
        .or(list_devices)
        .unify()
        .or(delete_device)
        .unify()
        .or(inbox)
        .unify()
        .or(list_webhooks)
        .unify()
        .or(create_webhook)
        .unify()
        .or(delete_webhook)
        .unify()
        .or(get_settings)
        .unify()
        .or(update_settings)
        .unify()
        .or(health)
        .unify()
        .or(token)
        .unify()
        .or(mobile::routes(api))
        .unify()
        .boxed()
}

/// A JSON answer with `status`.
fn json(value: &impl serde::Serialize, status: warp::http::StatusCode) -> Response {
    use warp::Reply;
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}
