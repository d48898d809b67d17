//! The OpenAPI 3.1 document of the hub, generated from the code with `utoipa`, served at
//! `/openapi.json`, and Swagger UI (vendored in the binary, works offline) at `/docs`.
//!
//! The routes' attributes live in [`paths`], the documentation-only shapes in [`schemas`];
//! the request and answer bodies are the API's own DTOs (`api::dto`). Each route's scope
//! comes from [`SCOPES`]; the answers every route shares are added by [`Common`]. The route
//! table of `api::allow` and this document are checked against each other by
//! `tests/it/openapi.rs`. Must never be on the per-request path of other routes.

mod access;
mod compat;
mod mobile;
mod paths;
pub mod schemas;
mod seeds;
mod sims;
mod webhooks;

use std::sync::{Arc, LazyLock};

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, SecurityRequirement};
use utoipa::{Modify, OpenApi};
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::auth::Scope;
use compat::Prefixes;

/// The scope each `/api` route needs (the `Scope::…` its filter in `api/mod.rs` or
/// `api/modems.rs` passes to `authorized`). Keep it in step when you add a route: the
/// OpenAPI sync test fails on an `/api` operation without a scope.
pub const SCOPES: &[(&str, &str, Scope)] = &[
    ("post", "/api/send-sms", Scope::MessagesSend),
    ("get", "/api/sms/{id}", Scope::MessagesRead),
    ("delete", "/api/sms/{id}", Scope::MessagesSend),
    ("get", "/api/sms", Scope::MessagesRead),
    ("get", "/api/sms/outbox", Scope::MessagesRead),
    ("get", "/api/sms/inbox", Scope::InboxRead),
    ("get", "/api/devices", Scope::DevicesRead),
    ("post", "/api/devices", Scope::DevicesWrite),
    ("delete", "/api/devices/{id}", Scope::DevicesWrite),
    ("put", "/api/devices/{id}/limits", Scope::DevicesWrite),
    ("post", "/api/devices/{id}/rest", Scope::DevicesWrite),
    ("delete", "/api/devices/{id}/rest", Scope::DevicesWrite),
    ("get", "/api/stats", Scope::DevicesRead),
    ("get", "/api/series", Scope::DevicesRead),
    ("get", "/api/devices/{id}/history", Scope::DevicesRead),
    ("post", "/api/modems/detect", Scope::ModemsWrite),
    ("post", "/api/modems/connect", Scope::ModemsWrite),
    ("post", "/api/modems/disconnect", Scope::ModemsWrite),
    ("get", "/api/modems/status", Scope::DevicesRead),
    ("get", "/api/modems/{id}/status", Scope::DevicesRead),
    ("get", "/api/modems/{id}/sim-info", Scope::DevicesRead),
    ("get", "/api/modems/{id}/sms", Scope::DevicesRead),
    ("post", "/api/modems/{id}/sms/send", Scope::MessagesSend),
    ("delete", "/api/modems/{id}/sms/{index}", Scope::ModemsWrite),
    ("post", "/api/modems/{id}/ussd", Scope::ModemsWrite),
    ("get", "/api/modems/{id}/balance", Scope::ModemsWrite),
    ("get", "/api/keys", Scope::KeysAdmin),
    ("post", "/api/keys", Scope::KeysAdmin),
    ("get", "/api/keys/{id}", Scope::KeysAdmin),
    ("delete", "/api/keys/{id}", Scope::KeysAdmin),
    ("post", "/api/keys/{id}/rotate", Scope::KeysAdmin),
    ("post", "/api/generate-api-key", Scope::KeysAdmin),
    ("get", "/api/audit", Scope::Admin),
    ("get", "/api/users", Scope::Admin),
    ("post", "/api/users", Scope::Admin),
    ("patch", "/api/users/{username}", Scope::Admin),
    ("delete", "/api/users/{username}", Scope::Admin),
    ("post", "/api/devices/pairing", Scope::DevicesWrite),
    ("post", "/api/devices/{id}/token", Scope::DevicesWrite),
    ("delete", "/api/devices/{id}/token", Scope::DevicesWrite),
    ("get", "/api/events", Scope::MessagesRead),
    ("get", "/ws", Scope::MessagesRead),
    ("post", "/api/webhooks", Scope::WebhooksWrite),
    ("get", "/api/webhooks", Scope::WebhooksWrite),
    ("get", "/api/webhooks/{id}", Scope::WebhooksWrite),
    ("delete", "/api/webhooks/{id}", Scope::WebhooksWrite),
    (
        "post",
        "/api/webhooks/{id}/rotate-secret",
        Scope::WebhooksWrite,
    ),
    ("post", "/api/webhooks/{id}/enable", Scope::WebhooksWrite),
    ("get", "/api/webhooks/{id}/deliveries", Scope::WebhooksWrite),
    (
        "post",
        "/api/webhooks/{id}/deliveries/{delivery_id}/retry",
        Scope::WebhooksWrite,
    ),
    ("post", "/api/webhooks/{id}/replay", Scope::WebhooksWrite),
    // Templates and the seed paths.
    ("get", "/api/templates", Scope::MessagesRead),
    ("post", "/api/templates", Scope::MessagesSend),
    ("get", "/api/templates/{id}", Scope::MessagesRead),
    ("put", "/api/templates/{id}", Scope::MessagesSend),
    ("delete", "/api/templates/{id}", Scope::MessagesSend),
    ("get", "/api/health", Scope::DevicesRead),
    ("get", "/api/performance", Scope::DevicesRead),
    ("get", "/api/status", Scope::DevicesRead),
    ("get", "/api/sim-info", Scope::DevicesRead),
    ("post", "/api/sms/send", Scope::MessagesSend),
    ("post", "/api/ussd", Scope::ModemsWrite),
    ("get", "/api/balance", Scope::ModemsWrite),
    ("post", "/api/modems/{id}/recharge", Scope::ModemsWrite),
    ("get", "/api/modems/{id}/data-balance", Scope::ModemsWrite),
    ("post", "/api/sms", Scope::MessagesSend),
    ("get", "/api/statistics", Scope::DevicesRead),
    ("get", "/api/logs", Scope::Admin),
    ("post", "/api/v1/messages", Scope::MessagesSend),
    ("get", "/api/v1/messages", Scope::MessagesRead),
    ("get", "/api/v1/messages/{id}", Scope::MessagesRead),
    // capcom6's SMS Gateway API (`api::compat`), under both prefixes.
    ("post", "/3rdparty/v1/messages", Scope::MessagesSend),
    ("get", "/3rdparty/v1/messages", Scope::MessagesRead),
    ("get", "/3rdparty/v1/messages/{id}", Scope::MessagesRead),
    ("delete", "/3rdparty/v1/messages/{id}", Scope::MessagesSend),
    ("post", "/3rdparty/v1/message", Scope::MessagesSend),
    ("get", "/3rdparty/v1/message", Scope::MessagesRead),
    ("get", "/3rdparty/v1/message/{id}", Scope::MessagesRead),
    ("delete", "/3rdparty/v1/message/{id}", Scope::MessagesSend),
    ("get", "/3rdparty/v1/devices", Scope::DevicesRead),
    ("delete", "/3rdparty/v1/devices/{id}", Scope::DevicesWrite),
    ("get", "/3rdparty/v1/inbox", Scope::InboxRead),
    ("get", "/3rdparty/v1/webhooks", Scope::WebhooksWrite),
    ("post", "/3rdparty/v1/webhooks", Scope::WebhooksWrite),
    ("delete", "/3rdparty/v1/webhooks/{id}", Scope::WebhooksWrite),
    ("get", "/3rdparty/v1/settings", Scope::WebhooksWrite),
    ("put", "/3rdparty/v1/settings", Scope::WebhooksWrite),
    ("patch", "/3rdparty/v1/settings", Scope::WebhooksWrite),
    ("post", "/api/3rdparty/v1/messages", Scope::MessagesSend),
    ("get", "/api/3rdparty/v1/messages", Scope::MessagesRead),
    ("get", "/api/3rdparty/v1/messages/{id}", Scope::MessagesRead),
    (
        "delete",
        "/api/3rdparty/v1/messages/{id}",
        Scope::MessagesSend,
    ),
    ("post", "/api/3rdparty/v1/message", Scope::MessagesSend),
    ("get", "/api/3rdparty/v1/message", Scope::MessagesRead),
    ("get", "/api/3rdparty/v1/message/{id}", Scope::MessagesRead),
    (
        "delete",
        "/api/3rdparty/v1/message/{id}",
        Scope::MessagesSend,
    ),
    ("get", "/api/3rdparty/v1/devices", Scope::DevicesRead),
    (
        "delete",
        "/api/3rdparty/v1/devices/{id}",
        Scope::DevicesWrite,
    ),
    ("get", "/api/3rdparty/v1/inbox", Scope::InboxRead),
    ("get", "/api/3rdparty/v1/webhooks", Scope::WebhooksWrite),
    ("post", "/api/3rdparty/v1/webhooks", Scope::WebhooksWrite),
    (
        "delete",
        "/api/3rdparty/v1/webhooks/{id}",
        Scope::WebhooksWrite,
    ),
    ("get", "/api/3rdparty/v1/settings", Scope::WebhooksWrite),
    ("put", "/api/3rdparty/v1/settings", Scope::WebhooksWrite),
    ("patch", "/api/3rdparty/v1/settings", Scope::WebhooksWrite),
    ("get", "/api/sim-cards", Scope::DevicesRead),
    ("post", "/api/sim-cards", Scope::DevicesWrite),
    ("get", "/api/sim-cards/{id}", Scope::DevicesRead),
    ("patch", "/api/sim-cards/{id}", Scope::DevicesWrite),
    ("put", "/api/sim-cards/{id}", Scope::DevicesWrite),
    ("delete", "/api/sim-cards/{id}", Scope::DevicesWrite),
    ("get", "/api/routing-rules", Scope::DevicesRead),
    ("post", "/api/routing-rules", Scope::Admin),
    ("get", "/api/routing-rules/{id}", Scope::DevicesRead),
    ("patch", "/api/routing-rules/{id}", Scope::Admin),
    ("put", "/api/routing-rules/{id}", Scope::Admin),
    ("delete", "/api/routing-rules/{id}", Scope::Admin),
];

/// `/api` operations that need no credential (the request carries its own proof: a password,
/// a pairing code).
pub const OPEN: &[(&str, &str)] = &[
    ("post", "/api/auth/login"),
    ("post", "/api/auth"),
    ("post", "/api/auth/token"),
    ("post", "/api/devices/pair"),
    ("get", "/3rdparty/v1/health"),
    ("get", "/api/3rdparty/v1/health"),
];

/// `/api` operations any valid credential may call, whatever its scopes.
pub const ANY_CREDENTIAL: &[(&str, &str)] = &[
    ("post", "/api/auth/logout"),
    ("get", "/api/auth/me"),
    ("post", "/3rdparty/v1/auth/token"),
    ("post", "/api/3rdparty/v1/auth/token"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "smshub",
        description = "A self-hosted SMS hub: Android phones over WebSocket and USB GSM modems behind one REST API.\n\nEvery `/api` call needs a credential (an API key in `X-API-Key` or `Authorization: Bearer`, a hub token from `/api/auth/token`, an OIDC token, or a session cookie from `/api/auth/login` with `X-CSRF-Token` on unsafe methods) with the scope each operation names; the few that need none say so. Errors are always `{\"error\":{\"code\",\"message\"}}`; each answer lists the codes it can carry. A refused request changes nothing.",
        license(name = "MIT"),
    ),
    paths(
        paths::send_sms, paths::get_sms, paths::cancel_sms, paths::list_sms,
        paths::list_outbox, paths::list_inbox,
        paths::list_devices, paths::create_device, paths::delete_device,
        paths::set_device_limits, paths::stats, paths::series, paths::device_history,
        paths::modems_detect, paths::modems_connect, paths::modems_disconnect,
        paths::modems_status, paths::modem_status, paths::modem_sim_info,
        paths::modem_list_sms, paths::modem_send_sms, paths::modem_delete_sms,
        paths::modem_ussd, paths::modem_balance,
        paths::health, paths::health_live, paths::health_ready, paths::metrics,
        paths::openapi, paths::docs, paths::docs_file, paths::dashboard,
        paths::dashboard_asset, paths::device_socket,
        access::list_keys, access::create_key, access::show_key, access::revoke_key,
        access::rotate_key, access::generate_api_key, access::audit,
        access::list_users, access::create_user, access::update_user, access::delete_user,
        access::rest_device, access::unrest_device,
        access::login, access::flask_login, access::token, access::logout, access::me,
        access::create_pairing, access::redeem_pairing, access::rotate_device_token,
        access::revoke_device_token, access::events, access::events_socket,
        webhooks::create_webhook, webhooks::list_webhooks, webhooks::show_webhook,
        webhooks::delete_webhook, webhooks::rotate_webhook_secret, webhooks::enable_webhook,
        webhooks::list_deliveries, webhooks::retry_delivery, webhooks::replay_webhook,
        seeds::list_templates, seeds::create_template, seeds::show_template,
        seeds::replace_template, seeds::delete_template,
        seeds::seed_health, seeds::performance, seeds::legacy_status, seeds::legacy_sim_info,
        seeds::legacy_send, seeds::legacy_ussd, seeds::legacy_balance, seeds::modem_recharge,
        seeds::modem_data_balance, seeds::flask_send, seeds::statistics, seeds::logs,
        seeds::v1_create, seeds::v1_list, seeds::v1_show,
        compat::send, compat::send_deprecated, compat::list, compat::list_deprecated,
        compat::get, compat::get_deprecated, compat::cancel, compat::cancel_deprecated,
        compat::devices, compat::delete_device, compat::inbox, compat::webhooks,
        compat::create_webhook, compat::delete_webhook, compat::get_settings,
        compat::put_settings, compat::patch_settings, compat::health, compat::token,
        mobile::register, mobile::get_device, mobile::patch_device, mobile::user_code,
        mobile::events, mobile::pull, mobile::pull_plural, mobile::report, mobile::report_plural,
        mobile::settings, mobile::webhooks, mobile::hooks,
        sims::list_sim_cards, sims::create_sim_card, sims::show_sim_card,
        sims::patch_sim_card, sims::put_sim_card, sims::delete_sim_card,
        sims::list_routing_rules, sims::create_routing_rule, sims::show_routing_rule,
        sims::patch_routing_rule, sims::put_routing_rule, sims::delete_routing_rule,
    ),
    components(schemas(schemas::ErrorBody, schemas::ErrorDetail)),
    modifiers(&Prefixes, &Security, &Common),
    tags(
        (name = "messages", description = "send, follow, cancel and list SMS"),
        (name = "devices", description = "phones and modems as workers; the device WebSocket"),
        (name = "modems", description = "USB/serial modems and HiLink sticks on the hub's host"),
        (name = "access", description = "API keys, people and sessions, the audit log"),
        (name = "events", description = "the event log, live: Server-Sent Events and a WebSocket"),
        (name = "webhooks", description = "events delivered to your endpoints, signed (Standard Webhooks), retried until acknowledged"),
        (name = "operations", description = "health probes, metrics, this document, the dashboard"),
        (name = "templates", description = "message templates with `{{name}}` fields"),
        (name = "sms-gateway", description = "capcom6's SMS Gateway for Android 3rd-party API (its client libraries work unchanged), under `/3rdparty/v1` and `/api/3rdparty/v1`; `Authorization: Basic` with a user's name and password, or any name and an API key"),
        (name = "sms-gateway-app", description = "the mobile API of capcom6's SMS Gateway for Android app, so phones running it join smshub unchanged (devices of kind `sms-gateway-app`): registration, its event stream, pulls and state reports, settings, and the webhooks it posts back; a device's token as `Authorization: Bearer`"),
        (name = "seeds", description = "the paths of the systems smshub replaces (the multi-modem manager, the Flask and Elixir gateways), on the same handlers as the native routes"),
    ),
)]
pub struct ApiDoc;

/// The document, built once.
pub static DOCUMENT: LazyLock<Document> = LazyLock::new(ApiDoc::openapi);

/// Security schemes and each `/api` operation's scope, in its security requirement and
/// its description.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "an API key (`smshub keys create`)",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "an API key, a hub token or an OIDC token as `Authorization: Bearer`",
                    ))
                    .build(),
            ),
        );
        for (method, path, scope) in SCOPES {
            let Some(operation) = operation(doc, method, path) else {
                continue;
            };
            let scope = scope.as_str();
            operation.security = Some(vec![
                SecurityRequirement::new("api_key", [scope]),
                SecurityRequirement::new("bearer", [scope]),
            ]);
            let note = format!("Needs the `{scope}` scope (or `admin`).");
            append(operation, &note);
        }
        for (method, path) in OPEN {
            if let Some(operation) = operation(doc, method, path) {
                operation.security = Some(vec![SecurityRequirement::default()]);
                append(operation, "No credential needed.");
            }
        }
        for (method, path) in ANY_CREDENTIAL {
            if let Some(operation) = operation(doc, method, path) {
                let none: [&str; 0] = [];
                operation.security = Some(vec![
                    SecurityRequirement::new("api_key", none),
                    SecurityRequirement::new("bearer", none),
                ]);
                append(operation, "Any valid credential, whatever its scopes.");
            }
        }
    }
}

fn append(operation: &mut Operation, note: &str) {
    operation.description = Some(match operation.description.take() {
        Some(text) => format!("{text}\n\n{note}"),
        None => note.to_string(),
    });
}

/// The answers every route shares: `401`/`403` where a credential is needed, `408`/`413`
/// where a body is read, `503` and `500` everywhere.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                let open = OPEN.contains(&(method, path.as_str()));
                let api = path.starts_with("/api/") && !open;
                let body = operation.request_body.is_some();
                let mut add = |status: &str, codes: &str| {
                    let text = operation
                        .responses
                        .responses
                        .get(status)
                        .and_then(|it| match it {
                            utoipa::openapi::RefOr::T(it) => Some(it.description.clone()),
                            _ => None,
                        });
                    let description = match text {
                        Some(text) => format!("{text}, {codes}"),
                        None => codes.to_string(),
                    };
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                        )
                        .build();
                    operation
                        .responses
                        .responses
                        .insert(status.to_string(), response.into());
                };
                if api {
                    add("401", "`unauthorized`: no credential, or not a valid one");
                    add("403", "`forbidden`: the credential lacks the scope");
                    add(
                        "503",
                        "`store_unavailable` (the database cannot take writes now; nothing was stored), `queue_full`, `too_many_connections` (all with `Retry-After`)",
                    );
                }
                if body {
                    add("408", "`request_timeout`: the body did not arrive in time");
                    add("413", "`payload_too_large`: the body is over 256 KiB");
                }
                add("500", "`internal`: logged by the hub");
            }
        }
    }
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
        ("head", item.head.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation?)))
}

fn operation<'a>(doc: &'a mut Document, method: &str, path: &str) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(path)?;
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        "delete" => item.delete.as_mut(),
        "patch" => item.patch.as_mut(),
        _ => None,
    }
}

/// `GET /openapi.json`, `GET /docs` (a redirect to `/docs/`) and `GET /docs/{file}`.
pub fn routes() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let json: Arc<Vec<u8>> = Arc::new(DOCUMENT.to_json().unwrap_or_default().into_bytes());
    let document = warp::path!("openapi.json")
        .and(warp::get())
        .map(move || reply(StatusCode::OK, "application/json", json.to_vec()));
    let config = Arc::new(utoipa_swagger_ui::Config::new(["/openapi.json"]));
    let redirect = warp::path!("docs")
        .and(warp::get())
        .and(warp::path::full())
        .and_then(|full: warp::path::FullPath| async move {
            // `/docs` and `/docs/` both match `path!("docs")`; only the first needs the slash.
            if full.as_str().ends_with('/') {
                return Err(warp::reject::not_found());
            }
            let mut response = Response::new(Vec::new().into());
            *response.status_mut() = StatusCode::FOUND;
            response
                .headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/docs/"));
            Ok::<_, Rejection>(response)
        });
    let files = warp::path("docs")
        .and(warp::path::tail())
        .and(warp::get())
        .and_then(move |tail: warp::path::Tail| {
            let config = config.clone();
            async move {
                match utoipa_swagger_ui::serve(tail.as_str(), config) {
                    Ok(Some(file)) => Ok(reply(
                        StatusCode::OK,
                        &file.content_type,
                        file.bytes.into_owned(),
                    )),
                    Ok(None) => Err(warp::reject::not_found()),
                    Err(err) => Err(warp::reject::custom(super::ApiError::internal(err))),
                }
            }
        });
    document.or(redirect).unify().or(files).unify()
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
