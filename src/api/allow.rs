//! The hub's route table: every path template with the methods it takes. It answers three
//! questions warp's filters cannot: the `Allow` header of a `405` (RFC 9110 §15.5.6: a 405
//! must say which methods the resource takes), the route template a request matched (the
//! `route` label of the request metrics, never the raw path), and the list the OpenAPI
//! document is checked against (`tests/it/openapi.rs`: a route in this table and not in the
//! document, or the reverse, fails the test). Add a route here when you add it to the API.

/// One route: a path template (`{name}` matches one segment) and its methods.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    /// The `Allow` value of a `405`.
    pub allow: &'static str,
}

const fn route(path: &'static str, methods: &'static [&'static str], allow: &'static str) -> Route {
    Route {
        path,
        methods,
        allow,
    }
}

const GET: &[&str] = &["GET"];
const POST: &[&str] = &["POST"];
const PROBE: &[&str] = &["GET", "HEAD"];

/// Every route, the first match wins (a literal segment before a `{name}` beside it).
pub const ROUTES: &[Route] = &[
    route("/", GET, "GET"),
    route("/assets/{file}", GET, "GET"),
    route("/docs", GET, "GET"),
    route("/docs/{file}", GET, "GET"),
    route("/openapi.json", GET, "GET"),
    route("/metrics", GET, "GET"),
    route("/health", PROBE, "GET, HEAD"),
    route("/health/live", PROBE, "GET, HEAD"),
    route("/health/ready", PROBE, "GET, HEAD"),
    route("/ws", GET, "GET"),
    route("/ws/device/{id}", GET, "GET"),
    // capcom6's app, on its mobile API (`transport/gateway_app`, `api/compat/mobile.rs`).
    route(
        "/mobile/v1/device",
        &["GET", "POST", "PATCH"],
        "GET, POST, PATCH",
    ),
    route("/mobile/v1/user/code", GET, "GET"),
    route("/mobile/v1/events", GET, "GET"),
    route("/mobile/v1/message", &["GET", "PATCH"], "GET, PATCH"),
    route("/mobile/v1/messages", &["GET", "PATCH"], "GET, PATCH"),
    route("/mobile/v1/settings", GET, "GET"),
    route("/mobile/v1/webhooks", GET, "GET"),
    route("/mobile/v1/hooks", POST, "POST"),
    route("/api/events", GET, "GET"),
    route("/api/send-sms", POST, "POST"),
    // `POST /api/sms` is the Flask gateway's send (`api::seeds`).
    route("/api/sms", &["GET", "POST"], "GET, POST"),
    route("/api/sms/inbox", GET, "GET"),
    route("/api/sms/outbox", GET, "GET"),
    // The multi-modem manager's legacy send: a literal before `/api/sms/{id}`.
    route("/api/sms/send", POST, "POST"),
    route("/api/sms/{id}", &["GET", "DELETE"], "GET, DELETE"),
    route("/api/devices", &["GET", "POST"], "GET, POST"),
    route("/api/devices/pairing", POST, "POST"),
    route("/api/devices/pair", POST, "POST"),
    route("/api/devices/{id}", &["DELETE"], "DELETE"),
    route(
        "/api/devices/{id}/token",
        &["POST", "DELETE"],
        "POST, DELETE",
    ),
    route("/api/devices/{id}/limits", &["PUT"], "PUT"),
    route(
        "/api/devices/{id}/rest",
        &["POST", "DELETE"],
        "POST, DELETE",
    ),
    route("/api/devices/{id}/history", GET, "GET"),
    route("/api/stats", GET, "GET"),
    route("/api/series", GET, "GET"),
    route("/api/keys", &["GET", "POST"], "GET, POST"),
    route("/api/keys/{id}", &["GET", "DELETE"], "GET, DELETE"),
    route("/api/keys/{id}/rotate", POST, "POST"),
    route("/api/generate-api-key", POST, "POST"),
    route("/api/audit", GET, "GET"),
    route("/api/users", &["GET", "POST"], "GET, POST"),
    route(
        "/api/users/{username}",
        &["PATCH", "DELETE"],
        "PATCH, DELETE",
    ),
    route("/api/auth", POST, "POST"),
    route("/api/auth/login", POST, "POST"),
    route("/api/auth/token", POST, "POST"),
    route("/api/auth/logout", POST, "POST"),
    route("/api/auth/me", GET, "GET"),
    route("/api/modems/detect", POST, "POST"),
    route("/api/modems/connect", POST, "POST"),
    route("/api/modems/disconnect", POST, "POST"),
    route("/api/modems/status", GET, "GET"),
    route("/api/modems/{id}/status", GET, "GET"),
    route("/api/modems/{id}/sim-info", GET, "GET"),
    route("/api/modems/{id}/sms", GET, "GET"),
    route("/api/modems/{id}/balance", GET, "GET"),
    route("/api/modems/{id}/sms/send", POST, "POST"),
    route("/api/modems/{id}/sms/{index}", &["DELETE"], "DELETE"),
    route("/api/modems/{id}/ussd", POST, "POST"),
    route("/api/webhooks", &["GET", "POST"], "GET, POST"),
    route("/api/webhooks/{id}", &["GET", "DELETE"], "GET, DELETE"),
    route("/api/webhooks/{id}/rotate-secret", POST, "POST"),
    route("/api/webhooks/{id}/enable", POST, "POST"),
    route("/api/webhooks/{id}/deliveries", GET, "GET"),
    route(
        "/api/webhooks/{id}/deliveries/{delivery_id}/retry",
        POST,
        "POST",
    ),
    route("/api/webhooks/{id}/replay", POST, "POST"),
    // Templates and the seed paths (`api::templates`, `api::seeds`).
    route("/api/templates", &["GET", "POST"], "GET, POST"),
    route(
        "/api/templates/{id}",
        &["GET", "PUT", "DELETE"],
        "GET, PUT, DELETE",
    ),
    route("/api/health", GET, "GET"),
    route("/api/performance", GET, "GET"),
    route("/api/status", GET, "GET"),
    route("/api/sim-info", GET, "GET"),
    route("/api/ussd", POST, "POST"),
    route("/api/balance", GET, "GET"),
    route("/api/modems/{id}/recharge", POST, "POST"),
    route("/api/modems/{id}/data-balance", GET, "GET"),
    route("/api/statistics", GET, "GET"),
    route("/api/logs", GET, "GET"),
    route("/api/v1/messages", &["GET", "POST"], "GET, POST"),
    route("/api/v1/messages/{id}", GET, "GET"),
    // capcom6's SMS Gateway 3rd-party API (`api::compat`), under both of its prefixes;
    // `message` is its deprecated name of `messages`.
    route("/3rdparty/v1/messages", &["GET", "POST"], "GET, POST"),
    route(
        "/3rdparty/v1/messages/{id}",
        &["GET", "DELETE"],
        "GET, DELETE",
    ),
    route("/3rdparty/v1/message", &["GET", "POST"], "GET, POST"),
    route(
        "/3rdparty/v1/message/{id}",
        &["GET", "DELETE"],
        "GET, DELETE",
    ),
    route("/3rdparty/v1/devices", GET, "GET"),
    route("/3rdparty/v1/devices/{id}", &["DELETE"], "DELETE"),
    route("/3rdparty/v1/inbox", GET, "GET"),
    route("/3rdparty/v1/webhooks", &["GET", "POST"], "GET, POST"),
    route("/3rdparty/v1/webhooks/{id}", &["DELETE"], "DELETE"),
    route(
        "/3rdparty/v1/settings",
        &["GET", "PUT", "PATCH"],
        "GET, PUT, PATCH",
    ),
    route("/3rdparty/v1/health", GET, "GET"),
    route("/3rdparty/v1/auth/token", POST, "POST"),
    route("/api/3rdparty/v1/messages", &["GET", "POST"], "GET, POST"),
    route(
        "/api/3rdparty/v1/messages/{id}",
        &["GET", "DELETE"],
        "GET, DELETE",
    ),
    route("/api/3rdparty/v1/message", &["GET", "POST"], "GET, POST"),
    route(
        "/api/3rdparty/v1/message/{id}",
        &["GET", "DELETE"],
        "GET, DELETE",
    ),
    route("/api/3rdparty/v1/devices", GET, "GET"),
    route("/api/3rdparty/v1/devices/{id}", &["DELETE"], "DELETE"),
    route("/api/3rdparty/v1/inbox", GET, "GET"),
    route("/api/3rdparty/v1/webhooks", &["GET", "POST"], "GET, POST"),
    route("/api/3rdparty/v1/webhooks/{id}", &["DELETE"], "DELETE"),
    route(
        "/api/3rdparty/v1/settings",
        &["GET", "PUT", "PATCH"],
        "GET, PUT, PATCH",
    ),
    route("/api/3rdparty/v1/health", GET, "GET"),
    route("/api/3rdparty/v1/auth/token", POST, "POST"),
    route("/api/sim-cards", &["GET", "POST"], "GET, POST"),
    route(
        "/api/sim-cards/{id}",
        &["GET", "PATCH", "PUT", "DELETE"],
        "GET, PATCH, PUT, DELETE",
    ),
    route("/api/routing-rules", &["GET", "POST"], "GET, POST"),
    route(
        "/api/routing-rules/{id}",
        &["GET", "PATCH", "PUT", "DELETE"],
        "GET, PATCH, PUT, DELETE",
    ),
];

/// The route `path` (without its query) belongs to. Cheap: no allocation, one pass over
/// the table comparing segments.
pub fn find(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| matches(route.path, path))
}

fn matches(template: &str, path: &str) -> bool {
    let mut want = template.trim_matches('/').split('/');
    let mut have = path.trim_matches('/').split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') => {
                if h.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

/// Adds `Allow` to a `405` answer for the path of `route` (from [`find`]).
pub fn add_allow(
    route: Option<&'static Route>,
    mut response: warp::reply::Response,
) -> warp::reply::Response {
    if response.status() == warp::http::StatusCode::METHOD_NOT_ALLOWED
        && let Some(route) = route
    {
        response.headers_mut().insert(
            warp::http::header::ALLOW,
            warp::http::HeaderValue::from_static(route.allow),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_template() {
        let cases = [
            ("/", Some("/")),
            ("/api/sms/inbox", Some("/api/sms/inbox")),
            ("/api/sms/abc", Some("/api/sms/{id}")),
            ("/api/sms/", Some("/api/sms")),
            ("/api/modems/x/sms/3", Some("/api/modems/{id}/sms/{index}")),
            ("/api/modems/x/sms/send", Some("/api/modems/{id}/sms/send")),
            ("/api/devices/abc/limits", Some("/api/devices/{id}/limits")),
            ("/api/devices//limits", None),
            ("/nope", None),
            ("/api/sms/a/b", None),
        ];
        for (path, want) in cases {
            assert_eq!(find(path).map(|it| it.path), want, "{path}");
        }
    }

    #[test]
    fn allow_lists_the_methods() {
        for route in ROUTES {
            assert_eq!(route.allow, route.methods.join(", "), "{}", route.path);
        }
    }
}
