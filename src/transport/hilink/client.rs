//! The HTTP client of one HiLink stick: it keeps the session cookie and the verification
//! tokens, logs in when credentials are configured, and turns every answer into an XML
//! element or a typed [`ClientError`].
//!
//! Sessions: `GET /api/webserver/SesTokInfo` gives the `SessionID` cookie and a first token
//! (firmwares without it: `GET /api/webserver/token`, or no token at all). Every write carries
//! a `__RequestVerificationToken`; answers may hand out the next ones (in
//! `__RequestVerificationToken`, several separated by `#`, or in `...Tokenone`/`...Tokentwo`
//! after a login), which replace the ones held: a batch is used front to back, the last one
//! is kept for firmwares whose token is reusable. A `125002`/`125003` answer (stale session or
//! token) fetches a new session and tries the call once more; `100003` (login required) logs
//! in once more when credentials are known.
//!
//! What matters for sending is [`ClientError::Unreachable`] versus [`ClientError::NoAnswer`]:
//! the first means the request never left (the connection failed), the second that it may
//! have reached the stick. Must never: retry a call that got no answer, or log a password.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, SET_COOKIE};
use sha2::{Digest, Sha256};
use smshub_protocol::hilink::api::{self, LoginState, SessionInfo};
use smshub_protocol::hilink::{ApiError, Element, ErrorClass, Reply};

use super::{Credentials, Target};

const TOKEN_HEADER: &str = "__RequestVerificationToken";
const TOKEN_ONE: &str = "__RequestVerificationTokenone";
const TOKEN_TWO: &str = "__RequestVerificationTokentwo";
/// The web UI's content type for XML writes.
const FORM: &str = "application/x-www-form-urlencoded; charset=UTF-8";
/// Login-state scheme 4: SHA-256 of the username, the hashed password and the token.
const PASSWORD_SHA256: u32 = 4;

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// Nothing reached the stick: the connection could not be made.
    #[error("the stick cannot be reached: {0}")]
    Unreachable(String),
    /// The request may have reached the stick, but no complete answer came back (timeout,
    /// connection reset).
    #[error("no answer from the stick: {0}")]
    NoAnswer(String),
    /// The stick answered with an error code.
    #[error("the stick answered {0}")]
    Api(ApiError),
    /// The stick answered an HTTP error status without an error document.
    #[error("the stick answered HTTP {0}")]
    Status(u16),
    /// The stick answered something that is not a HiLink document.
    #[error("the stick's answer is not readable: {0}")]
    Malformed(String),
}

impl ClientError {
    /// The stick said nothing at all (what the circuit breaker counts).
    pub fn is_silence(&self) -> bool {
        matches!(self, ClientError::Unreachable(_) | ClientError::NoAnswer(_))
    }

    /// The class of an error answer.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            ClientError::Api(err) => Some(err.class()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// The client of one stick.
pub struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Option<Credentials>,
    /// The `Cookie` header value, once a session is open.
    cookie: Option<String>,
    tokens: VecDeque<String>,
    open: bool,
}

impl Client {
    /// A client for `target`; no request is made yet.
    pub fn new(target: &Target, timeout: Duration) -> Client {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // Shorter than the whole timeout, so a stick that cannot be reached fails as a
            // connection error (nothing sent), never as a request without an answer.
            .connect_timeout((timeout / 2).min(Duration::from_secs(5)))
            .pool_max_idle_per_host(1)
            // A stick is on a local link; a proxy from the environment must not capture it.
            .no_proxy()
            // Some firmwares redirect calls they do not serve to the web UI's HTML page: that
            // is a refusal, not an answer to follow.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Client {
            http,
            base: target.url.clone(),
            credentials: target.credentials.clone(),
            cookie: None,
            tokens: VecDeque::new(),
            open: false,
        }
    }

    /// Forgets the session: the next call opens a new one.
    pub fn reset(&mut self) {
        self.cookie = None;
        self.tokens.clear();
        self.open = false;
    }

    /// `GET /api/{path}`.
    pub async fn get(&mut self, path: &str) -> Result<Element, ClientError> {
        self.call(Method::Get, path, None).await
    }

    /// `POST /api/{path}` with an XML body.
    pub async fn post(&mut self, path: &str, body: &str) -> Result<Element, ClientError> {
        self.call(Method::Post, path, Some(body)).await
    }

    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Element, ClientError> {
        if !self.open {
            self.open_session().await?;
        }
        let mut refreshed = false;
        let mut relogged = false;
        loop {
            let token = self.token_for(method);
            match self.round_trip(method, path, body, token).await {
                // The stick refused the stale session or token: nothing was done, so trying
                // again with a fresh one is safe.
                Err(ClientError::Api(err)) if err.class() == ErrorClass::Session && !refreshed => {
                    tracing::debug!(url = %self.base, path, code = err.code, "stale session; opening a new one");
                    refreshed = true;
                    self.open_session().await?;
                }
                Err(ClientError::Api(err))
                    if err.class() == ErrorClass::LoginRequired
                        && self.credentials.is_some()
                        && !relogged =>
                {
                    relogged = true;
                    self.login().await?;
                }
                other => return other,
            }
        }
    }

    /// Opens a session: cookie and first token, then the login if credentials are set.
    async fn open_session(&mut self) -> Result<(), ClientError> {
        self.reset();
        match self
            .round_trip(Method::Get, "webserver/SesTokInfo", None, None)
            .await
        {
            Ok(response) => {
                if let Some(info) = SessionInfo::from_element(&response) {
                    self.cookie = Some(info.cookie);
                    self.tokens = info.token.into_iter().collect();
                }
            }
            Err(ClientError::Api(err)) if err.class() == ErrorClass::NotSupported => {
                self.token_fallback().await?;
            }
            // No such page (404, or a redirect to the web UI).
            Err(ClientError::Status(_)) => self.token_fallback().await?,
            Err(err) => return Err(err),
        }
        self.open = true;
        if self.credentials.is_some() {
            self.login().await?;
        }
        Ok(())
    }

    /// Older firmwares: `webserver/token`, or nothing (no tokens asked for at all).
    async fn token_fallback(&mut self) -> Result<(), ClientError> {
        match self
            .round_trip(Method::Get, "webserver/token", None, None)
            .await
        {
            Ok(response) => {
                if let Some(token) = api::token_from_element(&response) {
                    self.tokens = VecDeque::from([token]);
                }
                Ok(())
            }
            Err(err) if err.is_silence() => Err(err),
            Err(_) => Ok(()),
        }
    }

    /// Logs in unless the stick says the session is logged in already.
    async fn login(&mut self) -> Result<(), ClientError> {
        let Some(credentials) = self.credentials.clone() else {
            return Ok(());
        };
        let token = self.token_for(Method::Get);
        let state = LoginState::from_element(
            &self
                .round_trip(Method::Get, "user/state-login", None, token)
                .await?,
        );
        if state.logged_in() {
            return Ok(());
        }
        let token = self.token_for(Method::Post);
        let password = scramble(
            &credentials,
            state.password_type,
            token.as_deref().unwrap_or(""),
        );
        let body = api::login_request(&credentials.username, &password, state.password_type);
        match self
            .round_trip(Method::Post, "user/login", Some(&body), token)
            .await
        {
            Ok(_) => Ok(()),
            // 108003: already logged in.
            Err(ClientError::Api(err)) if err.code == 108003 => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The token a call carries: writes use the queued tokens front to back and keep the last
    /// one; reads carry the token only when there is exactly one (as the web UI does).
    fn token_for(&mut self, method: Method) -> Option<String> {
        match method {
            Method::Post if self.tokens.len() > 1 => self.tokens.pop_front(),
            Method::Post => self.tokens.front().cloned(),
            Method::Get if self.tokens.len() == 1 => self.tokens.front().cloned(),
            Method::Get => None,
        }
    }

    /// Picks up a rotated session cookie and verification tokens from an answer.
    fn absorb(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            if let Some(cookie) = value.to_str().ok().and_then(api::session_cookie) {
                self.cookie = Some(cookie);
            }
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|it| it.to_str().ok())
                .map(api::split_tokens)
                .unwrap_or_default()
        };
        let mut fresh = header(TOKEN_ONE);
        fresh.extend(header(TOKEN_TWO));
        if fresh.is_empty() {
            fresh = header(TOKEN_HEADER);
        }
        if !fresh.is_empty() {
            self.tokens = fresh.into();
        }
    }

    /// One HTTP exchange, no retry.
    async fn round_trip(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&str>,
        token: Option<String>,
    ) -> Result<Element, ClientError> {
        let url = format!("{}/api/{path}", self.base);
        let mut request = match method {
            Method::Get => self.http.get(url),
            Method::Post => self
                .http
                .post(url)
                .header(CONTENT_TYPE, FORM)
                .body(body.unwrap_or("").to_string()),
        };
        request = request.header("X-Requested-With", "XMLHttpRequest");
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token);
        }
        let response = request.send().await.map_err(|err| {
            // A connection that was never made carried nothing; anything later may have.
            if err.is_connect() {
                ClientError::Unreachable(describe(&err))
            } else {
                ClientError::NoAnswer(describe(&err))
            }
        })?;
        self.absorb(response.headers());
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| ClientError::NoAnswer(describe(&err)))?;
        let text = String::from_utf8_lossy(&bytes);
        match Reply::parse(&text) {
            Ok(Reply::Error(err)) => Err(ClientError::Api(err)),
            Ok(Reply::Response(element)) if status.is_success() => Ok(element),
            Ok(Reply::Response(_)) => Err(ClientError::Status(status.as_u16())),
            Err(_) if !status.is_success() => Err(ClientError::Status(status.as_u16())),
            Err(err) => Err(ClientError::Malformed(err.to_string())),
        }
    }
}

/// The password as the login wants it: scheme 4 is
/// `base64(sha256hex(username + base64(sha256hex(password)) + token))`, others plain base64.
fn scramble(credentials: &Credentials, password_type: u32, token: &str) -> String {
    if password_type != PASSWORD_SHA256 {
        return BASE64.encode(credentials.password.as_bytes());
    }
    let hashed = BASE64.encode(hex::encode(Sha256::digest(credentials.password.as_bytes())));
    let joined = format!("{}{hashed}{token}", credentials.username);
    BASE64.encode(hex::encode(Sha256::digest(joined.as_bytes())))
}

/// An error's causes, without the URL reqwest puts first.
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_string();
    }
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        err.to_string()
    } else {
        causes.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_scrambling() {
        let credentials = Credentials {
            username: "admin".into(),
            password: "admin".into(),
        };
        assert_eq!(scramble(&credentials, 0, "tok"), "YWRtaW4=");
        // sha256("admin") = 8c6976e5..., its hex in base64, then the outer hash, by hand:
        let inner = BASE64.encode(hex::encode(Sha256::digest(b"admin")));
        assert_eq!(
            inner,
            "OGM2OTc2ZTViNTQxMDQxNWJkZTkwOGJkNGRlZTE1ZGZiMTY3YTljODczZmM0YmI4YTgxZjZmMmFiNDQ4YTkxOA=="
        );
        let outer = BASE64.encode(hex::encode(Sha256::digest(
            format!("admin{inner}tok").as_bytes(),
        )));
        assert_eq!(scramble(&credentials, 4, "tok"), outer);
    }

    /// The distinction sending rests on: a refused connection carried nothing; a connection
    /// that was made and never answered may have delivered the request.
    #[tokio::test]
    async fn refused_is_unreachable_and_silent_is_no_answer() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let target = |port: u16| Target {
            url: format!("http://127.0.0.1:{port}"),
            credentials: None,
        };
        let mut client = Client::new(&target(port), Duration::from_secs(2));
        let err = client.post("sms/send-sms", "<request/>").await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
        assert!(err.is_silence());

        // The kernel accepts into the backlog; nobody ever reads or answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let mut client = Client::new(&target(port), Duration::from_millis(300));
        let err = client.get("device/information").await.unwrap_err();
        assert!(matches!(err, ClientError::NoAnswer(_)), "{err:?}");
        drop(silent);
    }

    #[test]
    fn tokens_rotate() {
        let target = Target {
            url: "http://127.0.0.1:9".into(),
            credentials: None,
        };
        let mut client = Client::new(&target, Duration::from_secs(1));
        client.tokens = VecDeque::from(["a".to_string()]);
        assert_eq!(client.token_for(Method::Post).as_deref(), Some("a"));
        assert_eq!(
            client.token_for(Method::Post).as_deref(),
            Some("a"),
            "a single token is kept"
        );
        let mut headers = HeaderMap::new();
        headers.insert(TOKEN_HEADER, "b#c".parse().unwrap());
        headers.insert(SET_COOKIE, "SessionID=s2; path=/".parse().unwrap());
        client.absorb(&headers);
        assert_eq!(client.cookie.as_deref(), Some("SessionID=s2"));
        assert_eq!(client.token_for(Method::Get), None);
        assert_eq!(client.token_for(Method::Post).as_deref(), Some("b"));
        assert_eq!(client.token_for(Method::Post).as_deref(), Some("c"));
        assert_eq!(client.token_for(Method::Get).as_deref(), Some("c"));
        let mut login = HeaderMap::new();
        login.insert(TOKEN_ONE, "one".parse().unwrap());
        login.insert(TOKEN_TWO, "two".parse().unwrap());
        login.insert(TOKEN_HEADER, "ignored".parse().unwrap());
        client.absorb(&login);
        assert_eq!(
            client.tokens,
            VecDeque::from(["one".to_string(), "two".to_string()])
        );
    }
}
