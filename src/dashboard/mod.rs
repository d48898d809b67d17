//! The operator's console: static assets embedded in the binary and served at `/` and
//! `/assets/{file}` (plain ES modules, no build step; `assets/app.js` says which module does
//! what). The page signs in as a user (a session cookie) or with an API key and then uses
//! the same REST API and event stream as any client.
//!
//! Must never: give the page a privileged back door, or let it load anything from
//! elsewhere (the [`CSP`] allows this origin only, and no inline script or style).

use rust_embed::RustEmbed;
use warp::http::HeaderValue;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

#[derive(RustEmbed)]
#[folder = "src/dashboard/assets/"]
struct Assets;

/// The page loads only its own assets and talks only to this hub; it is never framed. No
/// inline script or style (`'self'` only); images may be `data:` (the pairing QR code, an
/// SVG the API draws).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

/// `GET /` and `GET /assets/{file}`.
pub fn routes() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let index = warp::path::end()
        .and(warp::get())
        .and_then(|| serve("index.html"));
    let asset = warp::path!("assets" / String)
        .and(warp::get())
        .and_then(|name: String| async move { serve(&name).await });
    index.or(asset).unify()
}

async fn serve(name: &str) -> Result<Response, Rejection> {
    let file = Assets::get(name).ok_or_else(warp::reject::not_found)?;
    let mime = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    let mut response = warp::reply::Response::new(file.data.into_owned().into());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(mime));
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Ok(response.into_response())
}
