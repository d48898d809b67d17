//! An emulated Huawei E3372h in HiLink firmware: a real HTTP server on `127.0.0.1:0` that
//! answers the `/api/...` calls smshub makes the way a stick does, with the XML bodies in
//! `hilink_data/` (shapes from real sticks, see its README).
//!
//! It behaves like the firmware where it matters: `SesTokInfo` opens a session and hands out
//! a one-time verification token; every write must carry a live token and gets the next one
//! (or a `#`-separated batch) in `__RequestVerificationToken`; a stale session answers
//! `125002`, a spent token `125003`; an optional login (`password_type` 4, SHA-256) guards
//! everything else with `100003`. `send-sms` files a copy in the sent box and `send-status`
//! shows the number as in progress for a few polls before listing it under `SucPhone` or
//! `FailPhone`; USSD answers `111019` while "the network" is thinking. Tests steer it: busy
//! answers, failed sends, a `send-sms` that never answers or whose connection drops after the
//! request, refused deletes, expired sessions, and unplugging (the port closes) and replugging.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use smshub_protocol::hilink::Element;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warp::Filter;
use warp::http::{Method, Response};
use warp::reply::Reply;

const SES_TOK_INFO: &str = include_str!("hilink_data/ses_tok_info.xml");
const ERROR: &str = include_str!("hilink_data/error.xml");
const OK: &str = include_str!("hilink_data/ok.xml");
const DEVICE_INFORMATION: &str = include_str!("hilink_data/device_information.xml");
const MONITORING_STATUS: &str = include_str!("hilink_data/monitoring_status.xml");
const DEVICE_SIGNAL: &str = include_str!("hilink_data/device_signal.xml");
const CURRENT_PLMN: &str = include_str!("hilink_data/net_current_plmn.xml");
const SMS_COUNT: &str = include_str!("hilink_data/sms_count.xml");
const CHECK_NOTIFICATIONS: &str = include_str!("hilink_data/check_notifications.xml");
const SMS_LIST: &str = include_str!("hilink_data/sms_list.xml");
const SMS_LIST_MESSAGE: &str = include_str!("hilink_data/sms_list_message.xml");
const SEND_STATUS: &str = include_str!("hilink_data/send_status.xml");
const USSD_GET: &str = include_str!("hilink_data/ussd_get.xml");

/// The stick's IMEI, as `device_information.xml` gives it.
pub const IMEI: &str = "866785030000017";

/// How the emulated stick is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tokens handed out per write (more than one: a `#`-separated batch).
    pub token_batch: usize,
    /// A web login (username, password) that guards the API.
    pub login: Option<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token_batch: 1,
            login: None,
        }
    }
}

/// A message in one of the stick's boxes.
#[derive(Debug, Clone)]
pub struct Stored {
    pub index: u32,
    pub phone: String,
    pub content: String,
    pub date: String,
    /// `0` unread, `1` read, `3` sent.
    pub smstat: u8,
}

/// What `send-sms` was asked to send.
#[derive(Debug, Clone)]
pub struct Sent {
    pub to: String,
    pub content: String,
    pub length: String,
    pub reserved: String,
}

struct Sending {
    phone: String,
    polls_left: u32,
    fail: bool,
}

struct Ussd {
    answer: String,
    polls_left: u32,
}

struct Stick {
    options: Options,
    session: Option<String>,
    tokens: HashSet<String>,
    counter: u64,
    logged_in: bool,
    inbox: Vec<Stored>,
    sent_box: Vec<Stored>,
    next_index: u32,
    sent: Vec<Sent>,
    sending: Option<Sending>,
    ussd: Option<Ussd>,
    ussd_answers: HashMap<String, String>,
    service: bool,
    busy_next: u32,
    fail_next: u32,
    hang_next: u32,
    drop_next: u32,
    refuse_deletes: bool,
    sessions: u32,
    stale: u32,
    busy: u32,
    ussd_pending: u32,
    logins: u32,
    login_failures: u32,
    delete_refusals: u32,
}

/// A running emulated stick.
pub struct Emulator {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    addr: SocketAddr,
    state: Arc<Mutex<Stick>>,
    server: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Emulator {
    pub async fn start(options: Options) -> Emulator {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let ussd_answers = HashMap::from([
            (
                "*100#".to_string(),
                "Votre solde est de 1250,50 DA. Bonus: 0 DA.".to_string(),
            ),
            ("*710#".to_string(), "Internet: 2.5 Go restants".to_string()),
        ]);
        let state = Arc::new(Mutex::new(Stick {
            options,
            session: None,
            tokens: HashSet::new(),
            counter: 0,
            logged_in: false,
            inbox: Vec::new(),
            sent_box: Vec::new(),
            next_index: 40000,
            sent: Vec::new(),
            sending: None,
            ussd: None,
            ussd_answers,
            service: true,
            busy_next: 0,
            fail_next: 0,
            hang_next: 0,
            drop_next: 0,
            refuse_deletes: false,
            sessions: 0,
            stale: 0,
            busy: 0,
            ussd_pending: 0,
            logins: 0,
            login_failures: 0,
            delete_refusals: 0,
        }));
        let emulator = Emulator {
            url: format!("http://{addr}"),
            addr,
            state,
            server: Mutex::new(None),
        };
        emulator.serve(listener);
        emulator
    }

    fn serve(&self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let server = warp::serve(routes(self.state.clone()))
            .incoming(listener)
            .graceful(async move {
                let _ = stopped.await;
            })
            .run();
        let task = tokio::spawn(server);
        *self.server.lock().unwrap() = Some((stop, task));
    }

    /// Closes the port, as when the stick is pulled out: connections are refused.
    pub async fn unplug(&self) {
        let running = self.server.lock().unwrap().take();
        if let Some((stop, task)) = running {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Opens the port again on the same address; the stick has rebooted (no session).
    pub async fn replug(&self) {
        {
            let mut stick = self.stick();
            stick.session = None;
            stick.tokens.clear();
            stick.logged_in = false;
        }
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.serve(listener);
    }

    fn stick(&self) -> std::sync::MutexGuard<'_, Stick> {
        self.state.lock().unwrap()
    }

    /// Puts a received message in the inbox; returns its index.
    pub fn deliver(&self, phone: &str, content: &str, date: &str, read: bool) -> u32 {
        let mut stick = self.stick();
        let index = stick.next_index;
        stick.next_index += 1;
        stick.inbox.push(Stored {
            index,
            phone: phone.to_string(),
            content: content.to_string(),
            date: date.to_string(),
            smstat: u8::from(read),
        });
        index
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.stick().sent.clone()
    }

    pub fn inbox(&self) -> Vec<Stored> {
        self.stick().inbox.clone()
    }

    pub fn sent_box(&self) -> Vec<Stored> {
        self.stick().sent_box.clone()
    }

    /// Answer "busy" (113018) to the next `n` `send-sms`.
    pub fn busy_next(&self, n: u32) {
        self.stick().busy_next = n;
    }

    /// List the next `n` messages under `FailPhone`.
    pub fn fail_next(&self, n: u32) {
        self.stick().fail_next = n;
    }

    /// Take the next `n` messages and never answer `send-sms`.
    pub fn hang_next(&self, n: u32) {
        self.stick().hang_next = n;
    }

    /// Take the next `n` messages and drop the connection instead of answering `send-sms`.
    pub fn drop_next(&self, n: u32) {
        self.stick().drop_next = n;
    }

    /// Refuse (or accept again) `delete-sms`.
    pub fn refuse_deletes(&self, refuse: bool) {
        self.stick().refuse_deletes = refuse;
    }

    /// The network answers USSD requests still open from elsewhere (the web UI).
    pub fn open_ussd_session(&self) {
        self.stick().ussd = Some(Ussd {
            answer: "stale".into(),
            polls_left: u32::MAX,
        });
    }

    /// The session expires (as after the stick's idle timeout).
    pub fn expire_session(&self) {
        self.stick().session = None;
    }

    /// Every token handed out so far is spent.
    pub fn expire_tokens(&self) {
        self.stick().tokens.clear();
    }

    /// Sessions opened with `SesTokInfo`.
    pub fn sessions(&self) -> u32 {
        self.stick().sessions
    }

    /// Calls refused for a stale session or token (125002, 125003).
    pub fn stale(&self) -> u32 {
        self.stick().stale
    }

    /// `send-sms` calls answered "busy".
    pub fn busy(&self) -> u32 {
        self.stick().busy
    }

    /// `ussd/get` polls answered 111019 (still processing).
    pub fn ussd_pending(&self) -> u32 {
        self.stick().ussd_pending
    }

    pub fn logins(&self) -> u32 {
        self.stick().logins
    }

    pub fn login_failures(&self) -> u32 {
        self.stick().login_failures
    }

    pub fn delete_refusals(&self) -> u32 {
        self.stick().delete_refusals
    }
}

fn routes(
    state: Arc<Mutex<Stick>>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static
{
    warp::path("api")
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::header::optional::<String>("cookie"))
        .and(warp::header::optional::<String>(
            "__requestverificationtoken",
        ))
        .and(warp::body::bytes())
        .then(
            move |tail: warp::path::Tail,
                  method: Method,
                  cookie: Option<String>,
                  token: Option<String>,
                  body: Bytes| {
                let state = state.clone();
                async move {
                    let body = String::from_utf8_lossy(&body).into_owned();
                    let (answer, hang) = state.lock().unwrap().answer(
                        &method,
                        tail.as_str(),
                        cookie.as_deref(),
                        token.as_deref(),
                        &body,
                    );
                    match hang {
                        Cut::No => {}
                        // The stick took the message and never answers.
                        Cut::Hang => std::future::pending::<()>().await,
                        // The connection dies after the request: unwinding ends the
                        // connection's task, which closes the socket (no panic message).
                        Cut::Drop => std::panic::resume_unwind(Box::new("connection dropped")),
                    }
                    answer.into_response()
                }
            },
        )
        .recover(|_| async {
            Ok::<_, Infallible>(warp::http::StatusCode::NOT_FOUND.into_response())
        })
        .unify()
}

/// How a `send-sms` that the stick took ends for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    No,
    Hang,
    Drop,
}

/// One answer: body and extra headers.
struct Answer {
    body: String,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn into_response(self) -> warp::reply::Response {
        let mut response = Response::builder()
            .status(200)
            .header("content-type", "text/html")
            .header("connection", "close");
        for (name, value) in self.headers {
            response = response.header(name, value);
        }
        response
            .body(self.body)
            .map(Reply::into_response)
            .unwrap_or_else(|_| warp::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

fn error(code: u32) -> String {
    fill(ERROR, &[("code", code.to_string())])
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The login's password field for `password_type` 4.
fn scramble(username: &str, password: &str, token: &str) -> String {
    let hashed = BASE64.encode(hex::encode(Sha256::digest(password.as_bytes())));
    BASE64.encode(hex::encode(Sha256::digest(
        format!("{username}{hashed}{token}").as_bytes(),
    )))
}

impl Stick {
    fn issue(&mut self) -> String {
        self.counter += 1;
        let token = format!("tok{:032}", self.counter * 7919);
        self.tokens.insert(token.clone());
        token
    }

    fn answer(
        &mut self,
        method: &Method,
        path: &str,
        cookie: Option<&str>,
        token: Option<&str>,
        body: &str,
    ) -> (Answer, Cut) {
        let plain = |body: String| Answer {
            body,
            headers: Vec::new(),
        };
        if path == "webserver/SesTokInfo" {
            self.sessions += 1;
            self.counter += 1;
            let session = format!("sess{:06}", self.counter);
            self.session = Some(session.clone());
            self.tokens.clear();
            self.logged_in = false;
            let token = self.issue();
            return (
                plain(fill(
                    SES_TOK_INFO,
                    &[("session", session), ("token", token)],
                )),
                Cut::No,
            );
        }
        let session_ok = match (&self.session, cookie) {
            (Some(session), Some(cookie)) => cookie
                .split(';')
                .any(|it| it.trim() == format!("SessionID={session}")),
            _ => false,
        };
        if !session_ok {
            self.stale += 1;
            return (plain(error(125002)), Cut::No);
        }
        let post = *method == Method::POST;
        let mut used_token = String::new();
        if post {
            match token {
                Some(token) if self.tokens.remove(token) => used_token = token.to_string(),
                _ => {
                    self.stale += 1;
                    return (plain(error(125003)), Cut::No);
                }
            }
        }
        let mut headers = Vec::new();
        if post && path != "user/login" {
            let fresh: Vec<String> = (0..self.options.token_batch.max(1))
                .map(|_| self.issue())
                .collect();
            headers.push(("__RequestVerificationToken", fresh.join("#")));
        }
        let guarded = !matches!(path, "user/state-login" | "user/login");
        if self.options.login.is_some() && !self.logged_in && guarded {
            return (
                Answer {
                    body: error(100003),
                    headers,
                },
                Cut::No,
            );
        }
        let request = if post {
            Element::parse(body).unwrap_or_default()
        } else {
            Element::default()
        };
        let field = |name: &str| request.string(name).unwrap_or_default();
        let mut hang = Cut::No;
        let body = match (post, path) {
            (false, "user/state-login") => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><response><State>{}</State>\
                 <Username></Username><password_type>4</password_type>\
                 <extern_password_type>1</extern_password_type><firstlogin>1</firstlogin></response>",
                if self.logged_in || self.options.login.is_none() {
                    0
                } else {
                    -1
                }
            ),
            (true, "user/login") => {
                let Some((username, password)) = self.options.login.clone() else {
                    return (plain(fill(OK, &[])), Cut::No);
                };
                let expected = scramble(&username, &password, &used_token);
                if field("Username") != username
                    || field("Password") != expected
                    || field("password_type") != "4"
                {
                    self.login_failures += 1;
                    return (plain(error(108006)), Cut::No);
                }
                self.logins += 1;
                self.logged_in = true;
                self.counter += 1;
                let session = format!("sess{:06}", self.counter);
                self.session = Some(session.clone());
                let (one, two) = (self.issue(), self.issue());
                headers.push((
                    "set-cookie",
                    format!("SessionID={session}; path=/; HttpOnly;"),
                ));
                headers.push(("__RequestVerificationTokenone", one));
                headers.push(("__RequestVerificationTokentwo", two));
                OK.to_string()
            }
            (false, "device/information") => DEVICE_INFORMATION.to_string(),
            (false, "device/signal") => DEVICE_SIGNAL.to_string(),
            (false, "net/current-plmn") => CURRENT_PLMN.to_string(),
            (false, "monitoring/status") => fill(
                MONITORING_STATUS,
                &[
                    (
                        "signal_icon",
                        if self.service { "4" } else { "0" }.to_string(),
                    ),
                    (
                        "service_status",
                        if self.service { "2" } else { "1" }.to_string(),
                    ),
                ],
            ),
            (false, "monitoring/check-notifications") => {
                let unread = self.inbox.iter().filter(|it| it.smstat == 0).count();
                fill(CHECK_NOTIFICATIONS, &[("unread", unread.to_string())])
            }
            (false, "sms/sms-count") => {
                let unread = self.inbox.iter().filter(|it| it.smstat == 0).count();
                fill(
                    SMS_COUNT,
                    &[
                        ("local_unread", unread.to_string()),
                        ("local_inbox", self.inbox.len().to_string()),
                        ("local_outbox", self.sent_box.len().to_string()),
                    ],
                )
            }
            (true, "sms/sms-list") => self.list(&request),
            (true, "sms/delete-sms") => {
                if self.refuse_deletes {
                    self.delete_refusals += 1;
                    error(100005)
                } else {
                    let index: u32 = request.number("Index").unwrap_or(0);
                    self.inbox.retain(|it| it.index != index);
                    self.sent_box.retain(|it| it.index != index);
                    OK.to_string()
                }
            }
            (true, "sms/send-sms") => {
                if self.busy_next > 0 {
                    self.busy_next -= 1;
                    self.busy += 1;
                    error(113018)
                } else {
                    let to = request
                        .child("Phones")
                        .and_then(|it| it.string("Phone"))
                        .unwrap_or_default();
                    let content = request
                        .child("Content")
                        .map(|it| it.text.clone())
                        .unwrap_or_default();
                    self.sent.push(Sent {
                        to: to.clone(),
                        content: content.clone(),
                        length: field("Length"),
                        reserved: field("Reserved"),
                    });
                    let index = self.next_index;
                    self.next_index += 1;
                    self.sent_box.push(Stored {
                        index,
                        phone: to.clone(),
                        content,
                        date: field("Date"),
                        smstat: 3,
                    });
                    let fail = self.fail_next > 0;
                    self.fail_next = self.fail_next.saturating_sub(1);
                    if self.hang_next > 0 {
                        self.hang_next -= 1;
                        hang = Cut::Hang;
                    } else if self.drop_next > 0 {
                        self.drop_next -= 1;
                        hang = Cut::Drop;
                    }
                    self.sending = Some(Sending {
                        phone: to,
                        polls_left: 2,
                        fail,
                    });
                    OK.to_string()
                }
            }
            (false, "sms/send-status") => match &mut self.sending {
                Some(sending) if sending.polls_left > 0 => {
                    sending.polls_left -= 1;
                    fill(
                        SEND_STATUS,
                        &[
                            ("phone", sending.phone.clone()),
                            ("suc_phone", String::new()),
                            ("fail_phone", String::new()),
                            ("total", "1".into()),
                            ("current", "0".into()),
                        ],
                    )
                }
                Some(sending) => {
                    let (suc, fail) = if sending.fail {
                        (String::new(), sending.phone.clone())
                    } else {
                        (sending.phone.clone(), String::new())
                    };
                    fill(
                        SEND_STATUS,
                        &[
                            ("phone", String::new()),
                            ("suc_phone", suc),
                            ("fail_phone", fail),
                            ("total", "1".into()),
                            ("current", "1".into()),
                        ],
                    )
                }
                None => fill(
                    SEND_STATUS,
                    &[
                        ("phone", String::new()),
                        ("suc_phone", String::new()),
                        ("fail_phone", String::new()),
                        ("total", "0".into()),
                        ("current", "0".into()),
                    ],
                ),
            },
            (true, "ussd/send") => {
                if self.ussd.is_some() {
                    error(111019)
                } else {
                    let code = field("content");
                    let answer = self
                        .ussd_answers
                        .get(&code)
                        .cloned()
                        .unwrap_or_else(|| "Code inconnu".to_string());
                    self.ussd = Some(Ussd {
                        answer,
                        polls_left: 2,
                    });
                    OK.to_string()
                }
            }
            (false, "ussd/get") => match &mut self.ussd {
                Some(ussd) if ussd.polls_left > 0 => {
                    ussd.polls_left -= 1;
                    self.ussd_pending += 1;
                    error(111019)
                }
                Some(ussd) => fill(USSD_GET, &[("content", escape(&ussd.answer))]),
                None => error(111019),
            },
            (false, "ussd/release") => {
                self.ussd = None;
                OK.to_string()
            }
            _ => error(100002),
        };
        (Answer { body, headers }, hang)
    }

    fn list(&self, request: &Element) -> String {
        let page: usize = request.number("PageIndex").unwrap_or(1).max(1);
        let count: usize = request.number("ReadCount").unwrap_or(20).max(1);
        let (boxed, save_type) = match request.number::<u8>("BoxType") {
            Some(2) => (&self.sent_box, "3"),
            _ => (&self.inbox, "0"),
        };
        let mut sorted: Vec<&Stored> = boxed.iter().collect();
        sorted.sort_by_key(|it| std::cmp::Reverse(it.index));
        let messages: String = sorted
            .iter()
            .skip((page - 1) * count)
            .take(count)
            .map(|it| {
                fill(
                    SMS_LIST_MESSAGE,
                    &[
                        ("smstat", it.smstat.to_string()),
                        ("index", it.index.to_string()),
                        ("phone", escape(&it.phone)),
                        ("content", escape(&it.content)),
                        ("date", it.date.clone()),
                        ("save_type", save_type.to_string()),
                    ],
                )
            })
            .collect();
        fill(
            SMS_LIST,
            &[("count", boxed.len().to_string()), ("messages", messages)],
        )
    }
}
