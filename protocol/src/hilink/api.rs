//! The calls smshub makes to a HiLink stick: the request bodies it writes and what it reads in
//! the answers. Every reader takes a parsed [`Element`] and tolerates missing or empty fields,
//! because firmwares differ in what they fill in.
//!
//! Shapes follow real answers published by public clients: Salamek/huawei-lte-api
//! (`api/Sms.py`, `api/Ussd.py`, `api/User.py`, `Session.py`), lgohlke/hilink's mapping
//! tests (E3372h `device/signal`, `monitoring/status`, `sms-list`), and E3372/E303 scripts
//! (`sms-count`, `check-notifications`, `send-status`).

use super::error::ApiError;
use super::xml::{Element, XmlError};
use crate::gsm::{self, Encoding};

/// The local inbox, in `sms-list` requests.
pub const BOX_INBOX: u8 = 1;
/// The local sent box, in `sms-list` requests.
pub const BOX_SENT: u8 = 2;

/// A parsed answer: `<response>...</response>` or `<error>...</error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Response(Element),
    Error(ApiError),
}

impl Reply {
    /// Reads an answer body.
    pub fn parse(body: &str) -> Result<Reply, XmlError> {
        let root = Element::parse(body)?;
        if root.name.eq_ignore_ascii_case("error") {
            return Ok(Reply::Error(ApiError {
                code: root.number("code").unwrap_or(0),
                message: root.string("message").unwrap_or_default(),
            }));
        }
        Ok(Reply::Response(root))
    }
}

/// Whether a response is the bare `<response>OK</response>` of a successful write.
pub fn is_ok(response: &Element) -> bool {
    response.children.is_empty() && response.text.trim().eq_ignore_ascii_case("OK")
}

// ---- session and login -------------------------------------------------------------------

/// `GET /api/webserver/SesTokInfo`: the session cookie and the first verification token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The `Cookie` header value, `SessionID=...`.
    pub cookie: String,
    pub token: Option<String>,
}

impl SessionInfo {
    /// Reads the answer; missing or empty fields are `None` (or zero).
    pub fn from_element(response: &Element) -> Option<SessionInfo> {
        let session = response.field("SesInfo")?;
        let cookie = if session.contains('=') {
            session.to_string()
        } else {
            // lgohlke/hilink's E3372h capture: some firmwares give the bare id.
            format!("SessionID={session}")
        };
        Some(SessionInfo {
            cookie,
            token: response.string("TokInfo"),
        })
    }
}

/// `GET /api/webserver/token` (firmwares without `SesTokInfo`): the token to send is the last
/// 32 characters of `<token>`.
pub fn token_from_element(response: &Element) -> Option<String> {
    let token = response.field("token")?;
    let start = token.char_indices().rev().nth(31).map_or(0, |(idx, _)| idx);
    Some(token[start..].to_string())
}

/// The tokens of a `__RequestVerificationToken` header: some firmwares hand out several
/// one-time tokens at once, separated by `#`.
pub fn split_tokens(header: &str) -> Vec<String> {
    header
        .split('#')
        .map(str::trim)
        .filter(|it| !it.is_empty())
        .map(str::to_string)
        .collect()
}

/// The `SessionID=...` pair of a `Set-Cookie` header, if it sets the session.
pub fn session_cookie(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?.trim();
    let (name, value) = pair.split_once('=')?;
    (name.trim().eq_ignore_ascii_case("SessionID") && !value.trim().is_empty())
        .then(|| format!("SessionID={}", value.trim()))
}

/// `GET /api/user/state-login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginState {
    /// `0` logged in, `-1` logged out, `-2` repeat.
    pub state: i32,
    /// `4`: SHA-256 password scheme; `0`: base64.
    pub password_type: u32,
}

impl LoginState {
    /// Reads the answer; missing or empty fields are `None` (or zero).
    pub fn from_element(response: &Element) -> LoginState {
        LoginState {
            state: response.number("State").unwrap_or(-1),
            password_type: response.number("password_type").unwrap_or(0),
        }
    }

    /// Whether the session is logged in.
    pub fn logged_in(&self) -> bool {
        self.state == 0
    }
}

/// `POST /api/user/login`; `password` is already scrambled per `password_type`.
pub fn login_request(username: &str, password: &str, password_type: u32) -> String {
    request(&[
        tag("Username", username),
        tag("Password", password),
        tag("password_type", &password_type.to_string()),
    ])
}

// ---- device and network ------------------------------------------------------------------

/// `GET /api/device/information`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    pub device_name: Option<String>,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub imsi: Option<String>,
    pub iccid: Option<String>,
    pub msisdn: Option<String>,
    pub hardware_version: Option<String>,
    pub software_version: Option<String>,
}

impl DeviceInformation {
    /// Reads the answer; missing or empty fields are `None` (or zero).
    pub fn from_element(response: &Element) -> DeviceInformation {
        DeviceInformation {
            device_name: response.string("DeviceName"),
            serial_number: response.string("SerialNumber"),
            imei: response.string("Imei"),
            imsi: response.string("Imsi"),
            iccid: response.string("Iccid"),
            msisdn: response.string("Msisdn"),
            hardware_version: response.string("HardwareVersion"),
            software_version: response.string("SoftwareVersion"),
        }
    }
}

/// `GET /api/monitoring/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitoringStatus {
    /// `901` connected (data), `902` disconnected, `900` connecting, ...
    pub connection_status: Option<u32>,
    /// Signal bars, `0..=max_signal`.
    pub signal_icon: Option<u8>,
    pub max_signal: Option<u8>,
    /// `gsm`, `edge`, `umts`, `hspa`, `lte`, `nr`; `None` without service.
    pub network_type: Option<&'static str>,
    /// `2`: service available.
    pub service_status: Option<u32>,
    /// `1`: SIM ready; `0` invalid; `255` none.
    pub sim_status: Option<u32>,
    pub roaming: bool,
}

impl MonitoringStatus {
    /// Reads the answer; missing or empty fields are `None` (or zero).
    pub fn from_element(response: &Element) -> MonitoringStatus {
        let extended = response
            .number::<u32>("CurrentNetworkTypeEx")
            .and_then(network_type_ex);
        let basic = response
            .number::<u32>("CurrentNetworkType")
            .and_then(network_type);
        MonitoringStatus {
            connection_status: response.number("ConnectionStatus"),
            signal_icon: response.number("SignalIcon"),
            max_signal: response.number("maxsignal"),
            network_type: extended.or(basic),
            service_status: response.number("ServiceStatus"),
            sim_status: response.number("SimStatus"),
            roaming: response.number::<u32>("RoamingStatus") == Some(1),
        }
    }

    /// Whether the stick is registered on a network (can send SMS).
    pub fn registered(&self) -> bool {
        match self.service_status {
            Some(status) => status == 2 && self.sim_status.is_none_or(|it| it == 1),
            None => self.network_type.is_some(),
        }
    }

    /// The signal bars as a percentage.
    pub fn signal_percent(&self) -> Option<u8> {
        let icon = u32::from(self.signal_icon?);
        let max = u32::from(self.max_signal.filter(|it| *it > 0).unwrap_or(5));
        Some((icon.min(max) * 100 / max) as u8)
    }

    /// The SIM state in words.
    pub fn sim_state(&self) -> Option<&'static str> {
        Some(match self.sim_status? {
            1 => "READY",
            255 => "SIM not inserted",
            0 => "SIM invalid",
            _ => "SIM not ready",
        })
    }
}

/// The radio of a `CurrentNetworkType` code.
pub fn network_type(code: u32) -> Option<&'static str> {
    Some(match code {
        1 | 2 => "gsm",
        3 => "edge",
        4 | 8 | 41 => "umts",
        5..=7 | 9 | 17 | 18 | 44..=46 | 64 | 65 => "hspa",
        19 | 101 => "lte",
        _ => return None,
    })
}

/// The radio of a `CurrentNetworkTypeEx` code.
pub fn network_type_ex(code: u32) -> Option<&'static str> {
    Some(match code {
        1 | 2 => "gsm",
        3 => "edge",
        41 | 61 => "umts",
        42..=46 | 62..=65 => "hspa",
        101 | 102 => "lte",
        111 => "nr",
        _ => return None,
    })
}

/// `GET /api/device/signal`, in whole dB/dBm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signal {
    pub rssi: Option<i32>,
    pub rsrp: Option<i32>,
    pub rsrq: Option<i32>,
    pub sinr: Option<i32>,
    /// UMTS received signal code power.
    pub rscp: Option<i32>,
}

impl Signal {
    /// Reads the answer; missing or empty fields are `None` (or zero).
    pub fn from_element(response: &Element) -> Signal {
        let level = |name: &str| response.field(name).and_then(parse_level);
        Signal {
            rssi: level("rssi"),
            rsrp: level("rsrp"),
            rsrq: level("rsrq"),
            sinr: level("sinr"),
            rscp: level("rscp"),
        }
    }
}

/// A level as the stick writes it (`-67dBm`, `-7.0dB`, `>=-51dBm`, `12dB`), rounded.
pub fn parse_level(text: &str) -> Option<i32> {
    let start = text.find(|c: char| c == '-' || c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .char_indices()
        .skip(1)
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(rest.len(), |(idx, _)| idx);
    let value: f64 = rest[..end].parse().ok()?;
    (value.is_finite() && value.abs() < 10_000.0).then(|| value.round() as i32)
}

/// `GET /api/net/current-plmn`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentPlmn {
    pub full_name: Option<String>,
    pub short_name: Option<String>,
    /// MCC+MNC, e.g. `60302`.
    pub numeric: Option<String>,
}

impl CurrentPlmn {
    /// Reads the answer; missing or empty fields are `None` (or zero).
    pub fn from_element(response: &Element) -> CurrentPlmn {
        CurrentPlmn {
            full_name: response.string("FullName"),
            short_name: response.string("ShortName"),
            numeric: response.string("Numeric"),
        }
    }

    /// The best name to show.
    pub fn name(&self) -> Option<String> {
        self.full_name
            .clone()
            .or_else(|| self.short_name.clone())
            .or_else(|| self.numeric.clone())
    }
}

// ---- messages ----------------------------------------------------------------------------

/// `GET /api/sms/sms-count`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmsCount {
    pub local_inbox: u32,
    pub local_unread: u32,
    pub local_outbox: u32,
    pub sim_inbox: u32,
    pub local_max: Option<u32>,
}

impl SmsCount {
    /// Reads the answer; missing or empty fields are `None` (or zero).
    pub fn from_element(response: &Element) -> SmsCount {
        SmsCount {
            local_inbox: response.number("LocalInbox").unwrap_or(0),
            local_unread: response.number("LocalUnread").unwrap_or(0),
            local_outbox: response.number("LocalOutbox").unwrap_or(0),
            sim_inbox: response.number("SimInbox").unwrap_or(0),
            local_max: response.number("LocalMax"),
        }
    }
}

/// `GET /api/monitoring/check-notifications`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notifications {
    pub unread_message: u32,
    pub sms_storage_full: bool,
}

impl Notifications {
    /// Reads the answer; missing or empty fields are `None` (or zero).
    pub fn from_element(response: &Element) -> Notifications {
        Notifications {
            unread_message: response.number("UnreadMessage").unwrap_or(0),
            sms_storage_full: response.number::<u32>("SmsStorageFull") == Some(1),
        }
    }
}

/// `POST /api/sms/send-sms`: one message to one number; the stick splits long texts itself.
/// `date` is the local time, `YYYY-MM-DD hh:mm:ss` (the stick files its copy under it).
pub fn send_sms_request(to: &str, text: &str, date: &str) -> String {
    // Text mode as the web UI sets it: 1 (7-bit) when the GSM alphabet carries the text,
    // 0 (UCS-2) otherwise; the length counts UTF-16 units, as JavaScript's `length` does.
    let mode = match gsm::smallest_encoding(text) {
        Encoding::Gsm7 => "1",
        Encoding::Ucs2 => "0",
    };
    request(&[
        tag("Index", "-1"),
        format!("<Phones>{}</Phones>", tag("Phone", to)),
        tag("Sca", ""),
        tag("Content", text),
        tag("Length", &text.encode_utf16().count().to_string()),
        tag("Reserved", mode),
        tag("Date", date),
    ])
}

/// What `send-status` says about one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    Failed,
    /// Still sending, or not yet reflected.
    Pending,
}

/// `GET /api/sms/send-status`: who the stick is sending to, and who succeeded or failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendStatus {
    pub phone: Vec<String>,
    pub succeeded: Vec<String>,
    pub failed: Vec<String>,
    pub total_count: Option<u32>,
    pub current_index: Option<u32>,
}

impl SendStatus {
    /// Reads the answer; missing or empty fields are `None` (or zero).
    pub fn from_element(response: &Element) -> SendStatus {
        let numbers = |name: &str| -> Vec<String> {
            response
                .field(name)
                .map(|it| {
                    it.split([';', ','])
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        SendStatus {
            phone: numbers("Phone"),
            succeeded: numbers("SucPhone"),
            failed: numbers("FailPhone"),
            total_count: response.number("TotalCount"),
            current_index: response.number("CurIndex"),
        }
    }

    /// Where sending to `to` stands.
    pub fn outcome(&self, to: &str) -> SendOutcome {
        let listed = |list: &[String]| list.iter().any(|it| same_number(it, to));
        if listed(&self.phone) {
            SendOutcome::Pending
        } else if listed(&self.failed) {
            SendOutcome::Failed
        } else if listed(&self.succeeded) {
            SendOutcome::Sent
        } else {
            SendOutcome::Pending
        }
    }
}

/// Whether two numbers are the same subscriber: their last nine digits agree (the stick may
/// write the national form of an international number).
pub fn same_number(a: &str, b: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<Vec<_>>();
    let (a, b) = (digits(a), digits(b));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let n = a.len().min(b.len()).min(9);
    a[a.len() - n..] == b[b.len() - n..]
}

/// `POST /api/sms/sms-list`: one page of a box, newest first.
pub fn sms_list_request(page: u32, count: u32, box_type: u8) -> String {
    request(&[
        tag("PageIndex", &page.to_string()),
        tag("ReadCount", &count.to_string()),
        tag("BoxType", &box_type.to_string()),
        tag("SortType", "0"),
        tag("Ascending", "0"),
        tag("UnreadPreferred", "0"),
    ])
}

/// A message in a box of the stick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The stick's index (`40000` and up on E3372 local storage).
    pub index: u32,
    /// `0` unread, `1` read, `2` draft, `3` sent, `4` send failed.
    pub smstat: u8,
    pub phone: String,
    /// As stored, untrimmed; long messages arrive already joined by the stick.
    pub content: String,
    /// The stick's local time, `YYYY-MM-DD hh:mm:ss`.
    pub date: String,
    /// `1` text; `7`/`8` are delivery reports on firmwares that store them.
    pub sms_type: u8,
}

impl StoredMessage {
    /// Whether this entry is a delivery report rather than a message.
    pub fn is_report(&self) -> bool {
        matches!(self.sms_type, 7 | 8)
    }
}

/// The answer to `sms-list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsList {
    pub count: u32,
    pub messages: Vec<StoredMessage>,
}

impl SmsList {
    /// Reads the list; entries without an index cannot be deleted and are skipped.
    pub fn from_element(response: &Element) -> SmsList {
        let messages = response
            .child("Messages")
            .map(|list| {
                list.children_named("Message")
                    .filter_map(|it| {
                        Some(StoredMessage {
                            index: it.number("Index")?,
                            smstat: it.number("Smstat").unwrap_or(0),
                            phone: it.string("Phone").unwrap_or_default(),
                            content: it
                                .child("Content")
                                .map(|c| c.text.clone())
                                .unwrap_or_default(),
                            date: it.string("Date").unwrap_or_default(),
                            sms_type: it.number("SmsType").unwrap_or(1),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        SmsList {
            count: response.number("Count").unwrap_or(0),
            messages,
        }
    }
}

/// `POST /api/sms/delete-sms`.
pub fn delete_sms_request(index: u32) -> String {
    request(&[tag("Index", &index.to_string())])
}

// ---- USSD --------------------------------------------------------------------------------

/// `POST /api/ussd/send` (the web UI's literal `CodeType`).
pub fn ussd_send_request(code: &str) -> String {
    request(&[
        tag("content", code),
        tag("codeType", "CodeType"),
        tag("timeout", ""),
    ])
}

/// The network's answer in `GET /api/ussd/get`.
pub fn ussd_content(response: &Element) -> Option<String> {
    response
        .child("content")
        .map(|it| it.text.trim().to_string())
}

// ---- building requests -------------------------------------------------------------------

fn tag(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", quick_xml::escape::escape(value))
}

fn request(fields: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><request>{}</request>",
        fields.concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(doc: &str) -> Element {
        match Reply::parse(doc).unwrap() {
            Reply::Response(it) => it,
            Reply::Error(err) => panic!("{err}"),
        }
    }

    #[test]
    fn errors_and_ok() {
        // lgohlke/hilink MappingTest.map_error.
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n    <code>125003</code>\n    <message/>\n</error>\n";
        assert_eq!(
            Reply::parse(doc).unwrap(),
            Reply::Error(ApiError {
                code: 125003,
                message: String::new()
            })
        );
        assert!(is_ok(&parse(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><response>OK</response>"
        )));
        assert!(!is_ok(&parse("<response><a>OK</a></response>")));
    }

    #[test]
    fn sessions_and_tokens() {
        let with_prefix =
            parse("<response><SesInfo>SessionID=abc</SesInfo><TokInfo>tok</TokInfo></response>");
        assert_eq!(
            SessionInfo::from_element(&with_prefix),
            Some(SessionInfo {
                cookie: "SessionID=abc".into(),
                token: Some("tok".into())
            })
        );
        // lgohlke/hilink MappingTest.map_session_token: the bare id.
        let bare =
            parse("<response><SesInfo>947p2lld</SesInfo><TokInfo>T8lgAWOE</TokInfo></response>");
        assert_eq!(
            SessionInfo::from_element(&bare).unwrap().cookie,
            "SessionID=947p2lld"
        );
        assert_eq!(SessionInfo::from_element(&parse("<response/>")), None);
        assert_eq!(split_tokens("a#b# #c"), vec!["a", "b", "c"]);
        assert_eq!(split_tokens(""), Vec::<String>::new());
        assert_eq!(
            session_cookie("SessionID=xyz; path=/; HttpOnly").as_deref(),
            Some("SessionID=xyz")
        );
        assert_eq!(session_cookie("other=1; path=/"), None);
        let long = format!(
            "<response><token>{}{}</token></response>",
            "x".repeat(32),
            "y".repeat(32)
        );
        assert_eq!(token_from_element(&parse(&long)).unwrap(), "y".repeat(32));
        assert_eq!(
            token_from_element(&parse("<response><token>short</token></response>")).unwrap(),
            "short"
        );
    }

    #[test]
    fn levels() {
        for (text, level) in [
            ("-67dBm", Some(-67)),
            ("-7.0dB", Some(-7)),
            ("-10.5dB", Some(-11)),
            (">=-51dBm", Some(-51)),
            ("12dB", Some(12)),
            ("", None),
            ("dBm", None),
            ("-", None),
        ] {
            assert_eq!(parse_level(text), level, "{text:?}");
        }
    }

    #[test]
    fn status_signal_and_network() {
        // lgohlke/hilink MappingTest: an E3372h on LTE.
        let status = MonitoringStatus::from_element(&parse(
            "<response><ConnectionStatus>901</ConnectionStatus><SignalStrength></SignalStrength>\
             <SignalIcon>2</SignalIcon><CurrentNetworkType>19</CurrentNetworkType>\
             <RoamingStatus>0</RoamingStatus><ServiceStatus>2</ServiceStatus><SimStatus>1</SimStatus>\
             <CurrentNetworkTypeEx>101</CurrentNetworkTypeEx><maxsignal>5</maxsignal></response>",
        ));
        assert_eq!(status.network_type, Some("lte"));
        assert!(status.registered() && !status.roaming);
        assert_eq!(status.signal_percent(), Some(40));
        assert_eq!(status.sim_state(), Some("READY"));
        // A SIM-less unit (captured, router-signal tests): no service.
        let no_sim = MonitoringStatus::from_element(&parse(
            "<response><ConnectionStatus>902</ConnectionStatus><SignalIcon>0</SignalIcon>\
             <CurrentNetworkType>19</CurrentNetworkType><ServiceStatus>1</ServiceStatus>\
             <SimStatus>255</SimStatus><CurrentNetworkTypeEx>101</CurrentNetworkTypeEx></response>",
        ));
        assert!(!no_sim.registered());
        assert_eq!(no_sim.sim_state(), Some("SIM not inserted"));
        for (code, ex, expected) in [
            (Some(4), None, Some("umts")),
            (Some(3), None, Some("edge")),
            (Some(9), Some(45), Some("hspa")),
            (Some(19), Some(111), Some("nr")),
            (Some(0), Some(0), None),
        ] {
            let mut doc = String::from("<response>");
            if let Some(code) = code {
                doc += &format!("<CurrentNetworkType>{code}</CurrentNetworkType>");
            }
            if let Some(ex) = ex {
                doc += &format!("<CurrentNetworkTypeEx>{ex}</CurrentNetworkTypeEx>");
            }
            doc += "</response>";
            assert_eq!(
                MonitoringStatus::from_element(&parse(&doc)).network_type,
                expected,
                "{doc}"
            );
        }
        let signal = Signal::from_element(&parse(
            "<response><pci>356</pci><sc></sc><rsrq>-7.0dB</rsrq><rsrp>-89dBm</rsrp>\
             <rssi>-69dBm</rssi><sinr>6dB</sinr><rscp></rscp></response>",
        ));
        assert_eq!(
            signal,
            Signal {
                rssi: Some(-69),
                rsrp: Some(-89),
                rsrq: Some(-7),
                sinr: Some(6),
                rscp: None
            }
        );
    }

    #[test]
    fn send_status_progression() {
        let sending = SendStatus::from_element(&parse(
            "<response><Phone>+1555</Phone><SucPhone></SucPhone><FailPhone></FailPhone>\
             <TotalCount>1</TotalCount><CurIndex>0</CurIndex></response>",
        ));
        assert_eq!(sending.outcome("+1555"), SendOutcome::Pending);
        let sent = SendStatus::from_element(&parse(
            "<response><Phone></Phone><SucPhone>0770123456</SucPhone><FailPhone></FailPhone>\
             <TotalCount>1</TotalCount><CurIndex>1</CurIndex></response>",
        ));
        assert_eq!(sent.outcome("+213770123456"), SendOutcome::Sent);
        assert_eq!(sent.outcome("+213770999999"), SendOutcome::Pending);
        let failed = SendStatus::from_element(&parse(
            "<response><Phone></Phone><SucPhone>+1444</SucPhone><FailPhone>+1555;+1666</FailPhone></response>",
        ));
        assert_eq!(failed.outcome("+1666"), SendOutcome::Failed);
        assert_eq!(failed.outcome("+1444"), SendOutcome::Sent);
    }

    #[test]
    fn lists_and_counts() {
        let list = SmsList::from_element(&parse(
            "<response><Count>2</Count><Messages>\
             <Message><Smstat>0</Smstat><Index>40028</Index><Phone>01734982893</Phone>\
             <Content>Vodafone Mailbox:\n 1 Versuch\n</Content><Date>2021-04-23 14:17:33</Date>\
             <Sca></Sca><SaveType>0</SaveType><Priority>0</Priority><SmsType>1</SmsType></Message>\
             <Message><Smstat>1</Smstat><Phone>+49</Phone></Message>\
             </Messages></response>",
        ));
        assert_eq!(list.count, 2);
        assert_eq!(
            list.messages.len(),
            1,
            "the entry without an index is skipped"
        );
        assert_eq!(list.messages[0].index, 40028);
        assert_eq!(list.messages[0].content, "Vodafone Mailbox:\n 1 Versuch\n");
        assert!(!list.messages[0].is_report());
        assert_eq!(
            SmsList::from_element(&parse("<response><Count>0</Count><Messages/></response>")),
            SmsList::default()
        );
        let count = SmsCount::from_element(&parse(
            "<response><LocalUnread>1</LocalUnread><LocalInbox>4</LocalInbox><LocalOutbox>11</LocalOutbox>\
             <SimInbox>0</SimInbox><LocalMax>500</LocalMax></response>",
        ));
        assert_eq!(
            (count.local_inbox, count.local_outbox, count.local_max),
            (4, 11, Some(500))
        );
        let notes = Notifications::from_element(&parse(
            "<response><UnreadMessage>1</UnreadMessage><SmsStorageFull>0</SmsStorageFull></response>",
        ));
        assert_eq!((notes.unread_message, notes.sms_storage_full), (1, false));
    }

    #[test]
    fn requests() {
        assert_eq!(
            send_sms_request("+213770123456", "a<b & c", "2024-02-03 04:05:06"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><request><Index>-1</Index>\
             <Phones><Phone>+213770123456</Phone></Phones><Sca></Sca>\
             <Content>a&lt;b &amp; c</Content><Length>7</Length><Reserved>1</Reserved>\
             <Date>2024-02-03 04:05:06</Date></request>"
        );
        assert!(
            send_sms_request("+1", "Привет €", "d")
                .contains("<Length>8</Length><Reserved>0</Reserved>")
        );
        assert!(
            sms_list_request(1, 20, BOX_INBOX)
                .contains("<PageIndex>1</PageIndex><ReadCount>20</ReadCount><BoxType>1</BoxType>")
        );
        assert!(delete_sms_request(40001).ends_with("<request><Index>40001</Index></request>"));
        assert!(
            ussd_send_request("*100#").contains(
                "<content>*100#</content><codeType>CodeType</codeType><timeout></timeout>"
            )
        );
        assert!(login_request("admin", "x=", 4).contains(
            "<Username>admin</Username><Password>x=</Password><password_type>4</password_type>"
        ));
    }

    #[test]
    fn numbers() {
        assert!(same_number("+213770123456", "0770123456"));
        assert!(!same_number("+213770123456", "+213770999999"));
        assert!(!same_number("", "+1"));
    }
}
