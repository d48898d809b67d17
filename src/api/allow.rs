//! The `Allow` header of a `405` (RFC 9110 §15.5.6: a 405 must say which methods the
//! resource takes). warp's rejection does not carry them, so they are read from this table
//! of the hub's paths; keep it in step with the routes (`tests/it/hardening.rs` checks it).

/// The methods the resource at `path` takes, as an `Allow` value.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    Some(match segments.as_slice() {
        [""] => "GET",
        ["assets", _] => "GET",
        ["health"] | ["health", "live" | "ready"] => "GET, HEAD",
        ["ws", "device", _] => "GET",
        ["api", "send-sms"] => "POST",
        ["api", "sms"] | ["api", "sms", "inbox" | "outbox"] => "GET",
        ["api", "sms", _] => "GET, DELETE",
        ["api", "devices"] => "GET, POST",
        ["api", "devices", "pairing" | "pair"] => "POST",
        ["api", "devices", _] => "DELETE",
        ["api", "devices", _, "token"] => "POST, DELETE",
        ["api", "devices", _, "limits"] => "PUT",
        ["api", "stats"] => "GET",
        ["api", "modems", "detect" | "connect" | "disconnect"] => "POST",
        ["api", "modems", "status"] => "GET",
        [
            "api",
            "modems",
            _,
            "status" | "sim-info" | "sms" | "balance",
        ] => "GET",
        ["api", "modems", _, "sms", "send"] => "POST",
        ["api", "modems", _, "sms", _] => "DELETE",
        ["api", "modems", _, "ussd"] => "POST",
        _ => return None,
    })
}

/// Adds `Allow` to a `405` answer for `path`.
pub fn add_allow(path: &str, mut response: warp::reply::Response) -> warp::reply::Response {
    if response.status() == warp::http::StatusCode::METHOD_NOT_ALLOWED
        && let Some(methods) = allowed_methods(path)
    {
        response.headers_mut().insert(
            warp::http::header::ALLOW,
            warp::http::HeaderValue::from_static(methods),
        );
    }
    response
}
