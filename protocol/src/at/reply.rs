//! What the information lines of status and identity commands mean: signal (`+CSQ`),
//! operator and access technology (`+COPS?`), registration (`+CREG?`/`+CGREG?`/`+CEREG?`), SIM
//! state (`+CPIN?`), Huawei's network mode (`^SYSINFOEX`, `^SYSINFO`) and signal (`^HCSQ`), the
//! SIM's ICCID (every vendor's form) and IMSI, the service centre (`+CSCA?`), message storage
//! (`+CPMS`) and new-message indication modes (`+CNMI=?`).
//!
//! Each parser takes one line and returns `None` when the line is not what it reads. Must
//! never panic on any input.

use super::{fields, strip_tag};

/// `+CSQ: <rssi>,<ber>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal {
    /// 0..=31, or 99 when unknown.
    pub rssi: u8,
    /// Bit error rate class 0..=7, or 99 when unknown.
    pub ber: u8,
}

impl Signal {
    /// Received power in dBm: 2·rssi − 113 (27.007 §8.5; Gammu `ATGEN_ReplyGetSignalQuality`),
    /// `None` when the modem does not know (99, or out of range).
    pub fn dbm(self) -> Option<i32> {
        (self.rssi <= 31).then(|| 2 * i32::from(self.rssi) - 113)
    }

    /// Percent of the scale, as ModemManager shows it (`rssi * 100 / 31`).
    pub fn percent(self) -> Option<u8> {
        (self.rssi <= 31).then(|| (u32::from(self.rssi) * 100 / 31) as u8)
    }

    /// Android's 0..=4 signal bars for GSM (`asu` = rssi: ≥12 → 4, ≥8 → 3, ≥5 → 2, else 1).
    pub fn level(self) -> u8 {
        match self.rssi {
            0..=2 | 32.. => 0,
            12.. => 4,
            8.. => 3,
            5.. => 2,
            _ => 1,
        }
    }
}

/// Reads `+CSQ: 14,99`; also the bare `14,99` some modems send (Gammu's fallback parse).
pub fn parse_csq(line: &str) -> Option<Signal> {
    let params = strip_tag(line, "+CSQ").unwrap_or(line);
    let fields = fields(params);
    let rssi = fields.first()?.parse().ok()?;
    let ber = fields.get(1).and_then(|it| it.parse().ok()).unwrap_or(99);
    Some(Signal { rssi, ber })
}

/// Huawei `^HCSQ` (`AT^HCSQ?` and the unsolicited report): the radio the modem is on and its
/// signal, richer than `+CSQ` (which stays 99 on LTE with some firmwares).
///
/// Each raw value `n` stands for a 1 dB (RSRQ, Ec/Io: 0.5 dB; SINR: 0.2 dB) interval, 255 for
/// "not known"; like ModemManager (`mm-broadband-modem-huawei.c`, `get_rssi_dbm` and siblings)
/// the lower end of the interval is reported: RSSI and RSCP −121 + n dBm (n ≤ 96), RSRP
/// −141 + n dBm (n ≤ 97), SINR −20.2 + n/5 dB (n ≤ 251), RSRQ −20 + n/2 dB (n ≤ 34), Ec/Io
/// −32.5 + n/2 dB (n ≤ 65). Huawei's firmware defines value 1 of RSRP as "−140 ≤ RSRP < −139
/// dBm", so the readings are at most one step below the true value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hcsq {
    /// `GSM`, `WCDMA`, `LTE`, `NR`, `NOSERVICE`, ... as the modem spells it.
    pub mode: String,
    pub rssi_dbm: Option<i32>,
    /// WCDMA received signal code power.
    pub rscp_dbm: Option<i32>,
    /// WCDMA Ec/Io.
    pub ecio_db: Option<f64>,
    /// LTE/NR reference signal received power.
    pub rsrp_dbm: Option<i32>,
    pub sinr_db: Option<f64>,
    pub rsrq_db: Option<f64>,
}

impl Hcsq {
    /// The network type in device-status words (`gsm`, `umts`, `lte`, `nr`), `None` without
    /// service.
    pub fn network(&self) -> Option<&'static str> {
        match self.mode.to_ascii_uppercase().as_str() {
            "GSM" => Some("gsm"),
            "WCDMA" | "TD-SCDMA" => Some("umts"),
            "LTE" => Some("lte"),
            "NR" => Some("nr"),
            _ => None,
        }
    }

    /// The best single "signal in dBm" for the dispatcher's scoring: RSSI when known, else
    /// RSRP (LTE/NR) or RSCP (WCDMA).
    pub fn signal_dbm(&self) -> Option<i32> {
        self.rssi_dbm.or(self.rsrp_dbm).or(self.rscp_dbm)
    }
}

/// Reads `^HCSQ: "LTE",49,50,102,28`, `^HCSQ: "WCDMA",30,30,58`, `^HCSQ: "GSM",40`,
/// `^HCSQ: "NR",87,160,12` (RSRP, SINR, RSRQ) or `^HCSQ: "NOSERVICE"`.
pub fn parse_hcsq(line: &str) -> Option<Hcsq> {
    let f = fields(strip_tag(line, "^HCSQ")?);
    let mode = f.first().filter(|it| !it.is_empty())?.clone();
    let raw = |idx: usize| f.get(idx).and_then(|it| it.parse::<u32>().ok());
    let dbm =
        |idx: usize, base: i32, max: u32| raw(idx).filter(|n| *n <= max).map(|n| base + n as i32);
    // Tenths of a dB, so 0.2 dB steps stay exact.
    let tenths = |idx: usize, base: i32, step: i32, max: u32| {
        raw(idx)
            .filter(|n| *n <= max)
            .map(|n| f64::from(base + step * n as i32) / 10.0)
    };
    let mut hcsq = Hcsq {
        mode,
        ..Hcsq::default()
    };
    match hcsq.mode.to_ascii_uppercase().as_str() {
        "GSM" => hcsq.rssi_dbm = dbm(1, -121, 96),
        "WCDMA" | "TD-SCDMA" => {
            hcsq.rssi_dbm = dbm(1, -121, 96);
            hcsq.rscp_dbm = dbm(2, -121, 96);
            hcsq.ecio_db = tenths(3, -325, 5, 65);
        }
        "LTE" => {
            hcsq.rssi_dbm = dbm(1, -121, 96);
            hcsq.rsrp_dbm = dbm(2, -141, 97);
            hcsq.sinr_db = tenths(3, -202, 2, 251);
            hcsq.rsrq_db = tenths(4, -200, 5, 34);
        }
        "NR" => {
            hcsq.rsrp_dbm = dbm(1, -141, 97);
            hcsq.sinr_db = tenths(2, -202, 2, 251);
            hcsq.rsrq_db = tenths(3, -200, 5, 34);
        }
        _ => {}
    }
    Some(hcsq)
}

/// Access technology (`<AcT>` of 27.007 `+COPS`/`+CREG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessTech {
    /// 0 GSM, 1 GSM compact, 8 EC-GSM-IoT.
    Gsm,
    /// 3 GSM with EGPRS.
    Edge,
    /// 2 UTRAN.
    Umts,
    /// 4 HSDPA, 5 HSUPA, 6 HSDPA and HSUPA.
    Hspa,
    /// 7 E-UTRAN, 9 NB-IoT, 10 E-UTRA connected to 5GCN.
    Lte,
    /// 11 NR connected to 5GCN, 12 NG-RAN, 13 E-UTRA-NR dual connectivity.
    Nr,
}

impl AccessTech {
    /// From a 27.007 `<AcT>` value (ModemManager `get_mm_access_tech_from_etsi_access_tech`).
    pub fn from_etsi(value: u32) -> Option<AccessTech> {
        Some(match value {
            0 | 1 | 8 => AccessTech::Gsm,
            2 => AccessTech::Umts,
            3 => AccessTech::Edge,
            4..=6 => AccessTech::Hspa,
            7 | 9 | 10 => AccessTech::Lte,
            11..=13 => AccessTech::Nr,
            _ => return None,
        })
    }

    /// The name used in device status (`gsm`, `edge`, `umts`, `hspa`, `lte`, `nr`).
    pub fn network(self) -> &'static str {
        match self {
            AccessTech::Gsm => "gsm",
            AccessTech::Edge => "edge",
            AccessTech::Umts => "umts",
            AccessTech::Hspa => "hspa",
            AccessTech::Lte => "lte",
            AccessTech::Nr => "nr",
        }
    }
}

/// `+COPS: <mode>[,<format>,<oper>[,<AcT>]]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operator {
    /// 0 automatic, 1 manual, 2 deregistered, 3 set format only, 4 manual/automatic.
    pub mode: u8,
    /// 0 long alphanumeric, 1 short alphanumeric, 2 numeric (MCC MNC).
    pub format: Option<u8>,
    /// The operator, in that format; `None` when not registered.
    pub name: Option<String>,
    /// The access technology, when given.
    pub act: Option<AccessTech>,
}

/// Reads the reply to `AT+COPS?`.
pub fn parse_cops(line: &str) -> Option<Operator> {
    let fields = fields(strip_tag(line, "+COPS")?);
    let mode = fields.first()?.parse().ok()?;
    let format = fields.get(1).and_then(|it| it.parse().ok());
    let name = fields.get(2).filter(|it| !it.is_empty()).cloned();
    let act = fields
        .get(3)
        .and_then(|it| it.parse().ok())
        .and_then(AccessTech::from_etsi);
    Some(Operator {
        mode,
        format,
        name,
        act,
    })
}

/// `<stat>` of `+CREG`/`+CGREG`/`+CEREG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegStatus {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1 (and 6 "SMS only"): registered on the home network.
    Home,
    /// 2: searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown.
    Unknown,
    /// 5 (and 7 "SMS only"): registered, roaming.
    Roaming,
    /// 8: emergency services only.
    Emergency,
}

impl RegStatus {
    /// From the `<stat>` number.
    pub fn from_stat(value: u32) -> RegStatus {
        match value {
            0 => RegStatus::NotRegistered,
            1 | 6 => RegStatus::Home,
            2 => RegStatus::Searching,
            3 => RegStatus::Denied,
            5 | 7 | 9 | 10 => RegStatus::Roaming,
            8 => RegStatus::Emergency,
            _ => RegStatus::Unknown,
        }
    }

    /// Whether SMS can go out (home or roaming).
    pub fn is_registered(self) -> bool {
        matches!(self, RegStatus::Home | RegStatus::Roaming)
    }
}

/// The reply to `AT+CREG?` (or `+CGREG?`, `+CEREG?`, `+C5GREG?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Registration {
    /// The registration state.
    pub status: RegStatus,
    /// Location area code, when reported.
    pub lac: Option<u32>,
    /// Cell id, when reported.
    pub cell: Option<u32>,
    /// Access technology, when reported.
    pub act: Option<AccessTech>,
}

/// Reads a solicited `+CREG: <n>,<stat>[,<lac>,<ci>[,<AcT>]]` (also the CGREG/CEREG forms; a
/// single field is taken as `<stat>`).
pub fn parse_creg(line: &str) -> Option<Registration> {
    let params = ["+CREG", "+CGREG", "+CEREG", "+C5GREG"]
        .iter()
        .find_map(|tag| strip_tag(line, tag))?;
    let fields = fields(params);
    let number = |idx: usize| fields.get(idx).and_then(|it| it.parse::<u32>().ok());
    let hex = |idx: usize| {
        fields
            .get(idx)
            .and_then(|it| u32::from_str_radix(&it.replace(' ', ""), 16).ok())
    };
    if fields.len() == 1 {
        return Some(Registration {
            status: RegStatus::from_stat(number(0)?),
            lac: None,
            cell: None,
            act: None,
        });
    }
    Some(Registration {
        status: RegStatus::from_stat(number(1)?),
        lac: hex(2),
        cell: hex(3),
        act: number(4).and_then(AccessTech::from_etsi),
    })
}

/// The reply to `AT+CPIN?`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PinState {
    /// No code needed.
    Ready,
    /// The SIM wants its PIN.
    SimPin,
    /// The SIM is blocked and wants its PUK.
    SimPuk,
    /// Anything else (`SIM PIN2`, `PH-SIM PIN`, `NOT READY`, ...), as written.
    Other(String),
}

/// Reads `+CPIN: READY` and the others.
pub fn parse_cpin(line: &str) -> Option<PinState> {
    let state = strip_tag(line, "+CPIN")?.trim_matches('"').trim();
    Some(match state.to_ascii_uppercase().as_str() {
        "READY" => PinState::Ready,
        "SIM PIN" => PinState::SimPin,
        "SIM PUK" => PinState::SimPuk,
        _ => PinState::Other(state.to_string()),
    })
}

/// Huawei `^SYSINFOEX` (or the older `^SYSINFO`): service state and radio mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SysInfo {
    /// 0 no service, 1 restricted, 2 valid, 3 restricted regional, 4 power saving.
    pub service: u32,
    /// 0 no service, 1 CS only, 2 PS only, 3 CS and PS, 4 not registered.
    pub domain: u32,
    /// Roaming (1) or not (0).
    pub roaming: bool,
    /// SIM state: 1 valid, 255 missing, ...
    pub sim_state: u32,
    /// `^SYSINFOEX` sysmode (1 GSM, 3 WCDMA, 4 TD-SCDMA, 6 LTE) or `^SYSINFO` sys_mode.
    pub mode: u32,
    /// Submode (`^SYSINFOEX`: 3 EDGE, 41 WCDMA, 45 HSPA+, 101 LTE...), when reported.
    pub submode: Option<u32>,
    /// Whether this came from `^SYSINFOEX` (the numbers differ between the two).
    pub extended: bool,
}

impl SysInfo {
    /// The radio technology in device-status words, `None` without service (ModemManager
    /// `huawei_sysinfoex_submode_to_act` / `huawei_sysinfo_submode_to_act`).
    pub fn network(&self) -> Option<&'static str> {
        if self.service == 0 {
            return None;
        }
        let by_submode = match (self.extended, self.submode) {
            (true, Some(1 | 2)) => Some("gsm"),
            (true, Some(3)) => Some("edge"),
            (true, Some(41 | 61..=63)) => Some("umts"),
            (true, Some(42..=46 | 64..=68)) => Some("hspa"),
            (true, Some(101)) => Some("lte"),
            (false, Some(1 | 2)) => Some("gsm"),
            (false, Some(3)) => Some("edge"),
            (false, Some(4 | 8)) => Some("umts"),
            (false, Some(5..=7 | 9..=18)) => Some("hspa"),
            _ => None,
        };
        by_submode.or(match (self.extended, self.mode) {
            (true, 1) => Some("gsm"),
            (true, 3 | 4) => Some("umts"),
            (true, 6) => Some("lte"),
            (false, 3) => Some("gsm"),
            (false, 5 | 7 | 9) => Some("umts"),
            (false, 17) => Some("lte"),
            _ => None,
        })
    }
}

/// Reads `^SYSINFOEX: 2,4,5,1,0,3,"WCDMA",41,"HSPA+"` (the `<lock>` field and the quotes are
/// optional) or `^SYSINFO:2,4,5,3,1[,<lock>[,<submode>]]`.
pub fn parse_sysinfo(line: &str) -> Option<SysInfo> {
    if let Some(params) = strip_tag(line, "^SYSINFOEX") {
        let f = fields(params);
        let number = |idx: usize| f.get(idx).and_then(|it| it.parse::<u32>().ok());
        // Nine fields with <lock>, eight without.
        let (mode_at, submode_at) = if f.len() >= 9 { (5, 7) } else { (4, 6) };
        return Some(SysInfo {
            service: number(0)?,
            domain: number(1)?,
            roaming: number(2)? == 1,
            sim_state: number(3)?,
            mode: number(mode_at)?,
            submode: number(submode_at),
            extended: true,
        });
    }
    let f = fields(strip_tag(line, "^SYSINFO")?);
    let number = |idx: usize| f.get(idx).and_then(|it| it.parse::<u32>().ok());
    Some(SysInfo {
        service: number(0)?,
        domain: number(1)?,
        roaming: number(2)? == 1,
        mode: number(3)?,
        sim_state: number(4)?,
        submode: number(6),
        extended: false,
    })
}

/// Reads an ICCID from any vendor's reply: `^ICCID:` (Huawei), `+CCID:` (SIM800), `+ICCID:`,
/// `+QCCID:` (Quectel), `+CICCID:` (SIM7600), a bare line, or `+CRSM: 144,0,"98..."` (EF_ICCID
/// read with `AT+CRSM=176,12258,0,0,10`, nibble-swapped). Normalised as ModemManager's
/// `mm_3gpp_parse_iccid`: swapped when it starts with `98`, trailing `F` dropped, 19-20
/// characters, `89` first, hex digits allowed only after the sixth.
pub fn parse_iccid(line: &str) -> Option<String> {
    if let Some(params) = strip_tag(line, "+CRSM") {
        let f = fields(params);
        let sw1: u32 = f.first()?.parse().ok()?;
        if !matches!(sw1, 0x90..=0x92 | 0x9F) {
            return None;
        }
        return normalize_iccid(f.get(2)?);
    }
    let raw = ["^ICCID", "+CCID", "+ICCID", "+QCCID", "+CICCID", "ICCID"]
        .iter()
        .find_map(|tag| strip_tag(line, tag))
        .unwrap_or(line);
    normalize_iccid(raw)
}

fn normalize_iccid(raw: &str) -> Option<String> {
    let raw = raw.trim().trim_matches('"').trim();
    if !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digits: Vec<u8> = raw.bytes().map(|b| b.to_ascii_uppercase()).collect();
    if digits.starts_with(b"98") {
        for pair in digits.chunks_mut(2) {
            pair.reverse();
        }
    }
    while digits.last() == Some(&b'F') {
        digits.pop();
    }
    let ok = (19..=20).contains(&digits.len())
        && digits.starts_with(b"89")
        && digits.iter().take(6).all(u8::is_ascii_digit);
    ok.then(|| String::from_utf8_lossy(&digits).into_owned())
}

/// Reads an IMSI: 6 to 15 digits, bare or after `+CIMI:`.
pub fn parse_imsi(line: &str) -> Option<String> {
    let raw = strip_tag(line, "+CIMI")
        .unwrap_or(line)
        .trim()
        .trim_matches('"');
    ((6..=15).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.to_string())
}

/// Reads an identity line (`AT+CGMI`, `+CGMM`, `+CGMR`, `+CGSN`), without a `+CGMM:`-style
/// prefix or quotes; blanks inside are squeezed (Wavecom answers ` MULTIBAND  900E  1800`).
pub fn parse_info(line: &str, tags: &[&str]) -> Option<String> {
    let raw = tags
        .iter()
        .find_map(|tag| strip_tag(line, tag))
        .unwrap_or(line);
    let text = raw
        .trim()
        .trim_matches('"')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!text.is_empty()).then_some(text)
}

/// Reads the service centre from `+CSCA: "+213...",145`; `None` when empty.
pub fn parse_csca(line: &str) -> Option<String> {
    let f = fields(strip_tag(line, "+CSCA")?);
    f.first().filter(|it| !it.is_empty()).cloned()
}

/// Reads the reply to `AT+CPMS=?`: for each of mem1 (read/delete), mem2 (write/send), mem3
/// (receive), the storages offered. Handles Wavecom's `(("SM","BM","SR"),("SM"))` nesting and
/// Nokia's empty `(),(),()`.
pub fn parse_cpms_support(line: &str) -> Option<Vec<Vec<String>>> {
    let params = strip_tag(line, "+CPMS")?.trim();
    let params = match params
        .strip_prefix("((")
        .and_then(|it| it.strip_suffix("))"))
    {
        Some(inner) => format!("({inner})"),
        None => params.to_string(),
    };
    let mut groups = Vec::new();
    let mut rest = params.as_str();
    while let Some(open) = rest.find('(') {
        let close = rest[open..].find(')')? + open;
        let inner = &rest[open + 1..close];
        groups.push(
            fields(inner)
                .into_iter()
                .filter(|it| !it.is_empty())
                .collect(),
        );
        rest = &rest[close + 1..];
    }
    (!groups.is_empty()).then_some(groups)
}

/// The storage to use for all three memories: the first of `ME`, `SM`, `MT` offered for
/// reading and for receiving (python-gsmmodem prefers ME, then SM).
pub fn choose_storage(groups: &[Vec<String>]) -> Option<String> {
    let read = groups.first()?;
    let receive = groups.get(2).or(groups.last())?;
    ["ME", "SM", "MT"]
        .iter()
        .find(|name| read.iter().any(|it| it == *name) && receive.iter().any(|it| it == *name))
        .map(|it| it.to_string())
}

/// One storage's use from `+CPMS:` (`"SM",1,30,...` after a query, `1,30,...` after a set).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageUse {
    /// The storage name, when the reply gives it.
    pub name: Option<String>,
    /// Messages stored.
    pub used: u32,
    /// Capacity.
    pub total: u32,
}

/// Reads the used/total pairs of a `+CPMS:` reply.
pub fn parse_cpms_usage(line: &str) -> Vec<StorageUse> {
    let Some(params) = strip_tag(line, "+CPMS") else {
        return Vec::new();
    };
    let f = fields(params);
    let mut out = Vec::new();
    let mut idx = 0;
    while idx < f.len() {
        let name = f[idx].parse::<u32>().is_err().then(|| f[idx].clone());
        let at = idx + usize::from(name.is_some());
        match (
            f.get(at).and_then(|it| it.parse().ok()),
            f.get(at + 1).and_then(|it| it.parse().ok()),
        ) {
            (Some(used), Some(total)) => out.push(StorageUse { name, used, total }),
            _ => break,
        }
        idx = at + 2;
    }
    out
}

/// What `AT+CNMI=?` offers: for each parameter, the values accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CnmiSupport {
    /// `<mode>` values.
    pub mode: Vec<u8>,
    /// `<mt>` values (1 = store and notify with `+CMTI`).
    pub mt: Vec<u8>,
    /// `<bm>` values (cell broadcast).
    pub bm: Vec<u8>,
    /// `<ds>` values (2 = store status reports and notify with `+CDSI`, 1 = `+CDS` direct).
    pub ds: Vec<u8>,
    /// `<bfr>` values.
    pub bfr: Vec<u8>,
}

/// Reads `+CNMI: (2),(0-1,3),(0,2),(0-1),(0)` (Gammu `tests/at-cnmi/01.dump`).
pub fn parse_cnmi_support(line: &str) -> Option<CnmiSupport> {
    let params = strip_tag(line, "+CNMI")?;
    let mut groups = Vec::new();
    let mut rest = params;
    while let Some(open) = rest.find('(') {
        let close = rest[open..].find(')')? + open;
        groups.push(parse_values(&rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    let mut groups = groups.into_iter();
    Some(CnmiSupport {
        mode: groups.next()?,
        mt: groups.next().unwrap_or_default(),
        bm: groups.next().unwrap_or_default(),
        ds: groups.next().unwrap_or_default(),
        bfr: groups.next().unwrap_or_default(),
    })
}

/// `0-1,3` → `[0, 1, 3]`.
fn parse_values(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((low, high)) => {
                if let (Ok(low), Ok(high)) = (low.trim().parse::<u8>(), high.trim().parse::<u8>()) {
                    out.extend(low..=high.min(low.saturating_add(32)));
                }
            }
            None => out.extend(part.parse::<u8>().ok()),
        }
    }
    out
}

impl CnmiSupport {
    /// `AT+CNMI=` settings to try, best first: store-and-notify for messages (`mt=1`) and
    /// reports (`ds=2`), then direct reports (`ds=1`), then none (the periodic `AT+CMGL=4`
    /// sweep still finds everything stored).
    pub fn candidates(&self) -> Vec<String> {
        let pick =
            |offered: &[u8], wanted: &[u8]| wanted.iter().copied().find(|it| offered.contains(it));
        let Some(mode) = pick(&self.mode, &[2, 1, 3]) else {
            return default_cnmi();
        };
        let mt = pick(&self.mt, &[1, 2]).unwrap_or(1);
        let bm = pick(&self.bm, &[0]).unwrap_or(0);
        let mut out = Vec::new();
        for ds in [2, 1, 0] {
            if self.ds.contains(&ds) {
                match pick(&self.bfr, &[0]) {
                    Some(bfr) => out.push(format!("{mode},{mt},{bm},{ds},{bfr}")),
                    None => out.push(format!("{mode},{mt},{bm},{ds}")),
                }
            }
        }
        out.extend(default_cnmi());
        out.dedup();
        out
    }
}

/// What to try when `AT+CNMI=?` is not answered: python-gsmmodem's `2,1,0,2` and `2,1,0,1,0`,
/// then ModemManager's Qualcomm fallbacks.
pub fn default_cnmi() -> Vec<String> {
    [
        "2,1,0,2,0",
        "2,1,0,2",
        "2,1,0,1,0",
        "2,1,0,0,0",
        "1,1,0,0,0",
    ]
    .iter()
    .map(|it| it.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csq() {
        let check = |line: &str, dbm: Option<i32>, level: u8| {
            let signal = parse_csq(line).expect(line);
            assert_eq!((signal.dbm(), signal.level()), (dbm, level), "{line}");
        };
        check("+CSQ: 14,99", Some(-85), 4);
        check("+CSQ: 0,0", Some(-113), 0);
        check("+CSQ: 31,0", Some(-51), 4);
        check("+CSQ: 99,99", None, 0);
        check("+CSQ: 7,99", Some(-99), 2);
        check("14,99", Some(-85), 4);
        assert_eq!(
            parse_csq("+CSQ: 31,99").and_then(|it| it.percent()),
            Some(100)
        );
        assert_eq!(parse_csq("+CSQ: x"), None);
    }

    #[test]
    fn hcsq() {
        // Replies of Huawei E3372/ME909 firmwares; the conversions are ModemManager's.
        let check = |line: &str, expected: Hcsq, network: Option<&str>, signal: Option<i32>| {
            let got = parse_hcsq(line).expect(line);
            assert_eq!(got, expected, "{line}");
            assert_eq!(
                (got.network(), got.signal_dbm()),
                (network, signal),
                "{line}"
            );
        };
        check(
            "^HCSQ: \"LTE\",49,50,102,28",
            Hcsq {
                mode: "LTE".into(),
                rssi_dbm: Some(-72),
                rsrp_dbm: Some(-91),
                sinr_db: Some(0.2),
                rsrq_db: Some(-6.0),
                ..Hcsq::default()
            },
            Some("lte"),
            Some(-72),
        );
        check(
            "^HCSQ:\"WCDMA\",30,30,58",
            Hcsq {
                mode: "WCDMA".into(),
                rssi_dbm: Some(-91),
                rscp_dbm: Some(-91),
                ecio_db: Some(-3.5),
                ..Hcsq::default()
            },
            Some("umts"),
            Some(-91),
        );
        check(
            "^HCSQ: \"GSM\",40",
            Hcsq {
                mode: "GSM".into(),
                rssi_dbm: Some(-81),
                ..Hcsq::default()
            },
            Some("gsm"),
            Some(-81),
        );
        // 255 is "not known"; out-of-range values are not trusted either.
        check(
            "^HCSQ: \"LTE\",255,60,255,97",
            Hcsq {
                mode: "LTE".into(),
                rsrp_dbm: Some(-81),
                ..Hcsq::default()
            },
            Some("lte"),
            Some(-81),
        );
        check(
            "^HCSQ: \"NR\",87,160,12",
            Hcsq {
                mode: "NR".into(),
                rsrp_dbm: Some(-54),
                sinr_db: Some(11.8),
                rsrq_db: Some(-14.0),
                ..Hcsq::default()
            },
            Some("nr"),
            Some(-54),
        );
        check(
            "^HCSQ: \"NOSERVICE\"",
            Hcsq {
                mode: "NOSERVICE".into(),
                ..Hcsq::default()
            },
            None,
            None,
        );
        for bad in ["^HCSQ:", "^HCSQ: ", "+CSQ: 14,99", "^HCSQX: \"LTE\",1"] {
            assert_eq!(parse_hcsq(bad), None, "{bad}");
        }
        // Garbage values are skipped, never a panic.
        assert_eq!(
            parse_hcsq("^HCSQ: \"LTE\",x,-1,99999999999,").map(|it| it.signal_dbm()),
            Some(None)
        );
    }

    #[test]
    fn cops() {
        // ModemManager test-modem-helpers.c cops_query_data.
        let check = |line: &str,
                     mode: u8,
                     format: Option<u8>,
                     name: Option<&str>,
                     act: Option<AccessTech>| {
            assert_eq!(
                parse_cops(line),
                Some(Operator {
                    mode,
                    format,
                    name: name.map(str::to_string),
                    act
                }),
                "{line}"
            );
        };
        check(
            "+COPS: 1,0,\"CHINA MOBILE\"",
            1,
            Some(0),
            Some("CHINA MOBILE"),
            None,
        );
        check(
            "+COPS: 1,0,\"CHINA MOBILE\",7",
            1,
            Some(0),
            Some("CHINA MOBILE"),
            Some(AccessTech::Lte),
        );
        check("+COPS: 1,2,\"46000\"", 1, Some(2), Some("46000"), None);
        check(
            "+COPS: 0,0,\"Mobilis\",2",
            0,
            Some(0),
            Some("Mobilis"),
            Some(AccessTech::Umts),
        );
        check("+COPS: 0", 0, None, None, None);
        assert_eq!(parse_cops("+CREG: 0,1"), None);
    }

    #[test]
    fn creg() {
        // ModemManager test-modem-helpers.c, solicited replies from named modems.
        let check = |line: &str,
                     status: RegStatus,
                     lac: Option<u32>,
                     cell: Option<u32>,
                     act: Option<AccessTech>| {
            assert_eq!(
                parse_creg(line),
                Some(Registration {
                    status,
                    lac,
                    cell,
                    act
                }),
                "{line}"
            );
        };
        check("+CREG: 1,3", RegStatus::Denied, None, None, None);
        check(
            "+CREG: 1,1,84CD,00D30173",
            RegStatus::Home,
            Some(0x84cd),
            Some(0xd30173),
            None,
        );
        check(
            "+CREG: 2,1,\"CE00\",\"01CEAD8F\"",
            RegStatus::Home,
            Some(0xce00),
            Some(0x01cead8f),
            None,
        );
        check(
            "+CREG: 2,0,00,0",
            RegStatus::NotRegistered,
            Some(0),
            Some(0),
            None,
        );
        check(
            "+CREG:002,001,\"18d8\",\"ffff\"",
            RegStatus::Home,
            Some(0x18d8),
            Some(0xffff),
            None,
        );
        check(
            "+CREG: 2,6,\"8B37\",\"0A265185\",7",
            RegStatus::Home,
            Some(0x8b37),
            Some(0x0a265185),
            Some(AccessTech::Lte),
        );
        check(
            "+CGREG: 2,1,\"8BE3\",\"00002B5D\",3",
            RegStatus::Home,
            Some(0x8be3),
            Some(0x2b5d),
            Some(AccessTech::Edge),
        );
        check("+CEREG: 0,5", RegStatus::Roaming, None, None, None);
        assert_eq!(
            parse_creg("+CREG: 2,1,  0 5, 2715").map(|it| it.status),
            Some(RegStatus::Home)
        );
        assert!(RegStatus::Roaming.is_registered() && !RegStatus::Searching.is_registered());
    }

    #[test]
    fn cpin() {
        assert_eq!(parse_cpin("+CPIN: READY"), Some(PinState::Ready));
        assert_eq!(parse_cpin("+CPIN: SIM PIN"), Some(PinState::SimPin));
        assert_eq!(parse_cpin("+CPIN: SIM PUK"), Some(PinState::SimPuk));
        assert_eq!(
            parse_cpin("+CPIN: PH-SIM PIN"),
            Some(PinState::Other("PH-SIM PIN".into()))
        );
        assert_eq!(parse_cpin("READY"), None);
    }

    #[test]
    fn sysinfo() {
        // ModemManager plugins/huawei/tests/test-modem-helpers-huawei.c.
        for line in [
            "^SYSINFOEX:2,4,5,1,,3,WCDMA,41,HSPA+",
            "^SYSINFOEX:2,4,5,1,,3,\"WCDMA\",41,\"HSPA+\"",
            "^SYSINFOEX: 2,4,5,1,0,3,\"WCDMA\",41,\"HSPA+\"",
        ] {
            let info = parse_sysinfo(line).expect(line);
            assert_eq!(
                (
                    info.service,
                    info.domain,
                    info.sim_state,
                    info.mode,
                    info.submode
                ),
                (2, 4, 1, 3, Some(41))
            );
            assert_eq!(info.network(), Some("umts"), "{line}");
        }
        let check = |line: &str, submode: Option<u32>, network: Option<&str>| {
            let info = parse_sysinfo(line).expect(line);
            assert_eq!(
                (info.mode, info.sim_state, info.submode, info.network()),
                (3, 1, submode, network),
                "{line}"
            );
        };
        check("^SYSINFO:2,4,5,3,1", None, Some("gsm"));
        check("^SYSINFO:2,4,5,3,1,,", None, Some("gsm"));
        check("^SYSINFO:2,4,5,3,1,6", None, Some("gsm"));
        check("^SYSINFO:2,4,5,3,1,,6", Some(6), Some("hspa"));
        check("^SYSINFO: 2,4,5,3,1,0,6", Some(6), Some("hspa"));
        let lte = parse_sysinfo("^SYSINFOEX: 2,3,0,1,,6,\"LTE\",101,\"LTE\"").unwrap();
        assert_eq!(lte.network(), Some("lte"));
        let none = parse_sysinfo("^SYSINFOEX: 0,0,0,1,,0,\"\",0,\"\"").unwrap();
        assert_eq!(none.network(), None);
    }

    #[test]
    fn iccid() {
        // ModemManager test-modem-helpers.c test_iccid_parse_*.
        let check = |raw: &str, expected: Option<&str>| {
            assert_eq!(parse_iccid(raw).as_deref(), expected, "{raw}")
        };
        check("\"984402003576012594F9\"", Some("8944200053671052499"));
        check("98231420326409614067", Some("89324102234690160476"));
        check("8944200053671052499F", Some("8944200053671052499"));
        check("8944200053671052499", Some("8944200053671052499"));
        check("\"89324102234690160476\"", Some("89324102234690160476"));
        check("\"898602F9091830030220\"", Some("898602F9091830030220"));
        check("\"898602C0123456789012\"", Some("898602C0123456789012"));
        check("982314203264096", None);
        check("98231420326pl9614067", None);
        check("\"0044200053671052499\"", None);
        // Vendor forms.
        check("^ICCID: 98231420326409614067", Some("89324102234690160476"));
        check(
            "+CCID: \"89324102234690160476\"",
            Some("89324102234690160476"),
        );
        check("+QCCID: 8944200053671052499F", Some("8944200053671052499"));
        check("+ICCID: 89324102234690160476", Some("89324102234690160476"));
        check(
            "+CRSM: 144,0,\"98231420326409614067\"",
            Some("89324102234690160476"),
        );
        check("+CRSM: 106,130,\"\"", None);
    }

    #[test]
    fn identity() {
        assert_eq!(
            parse_imsi("111111111111111").as_deref(),
            Some("111111111111111")
        );
        assert_eq!(
            parse_imsi("+CIMI: 603021234567890").as_deref(),
            Some("603021234567890")
        );
        assert_eq!(parse_imsi("OK"), None);
        // python-gsmmodem fakemodems: Wavecom pads its identity lines.
        assert_eq!(
            parse_info(" MULTIBAND  900E  1800", &["+CGMM"]).as_deref(),
            Some("MULTIBAND 900E 1800")
        );
        assert_eq!(
            parse_info("+CGMM: \"EC25\"", &["+CGMM", "+GMM"]).as_deref(),
            Some("EC25")
        );
        assert_eq!(
            parse_csca("+CSCA: \"+213770000000\",145").as_deref(),
            Some("+213770000000")
        );
        assert_eq!(parse_csca("+CSCA: \"\",129"), None);
    }

    #[test]
    fn cpms() {
        let all = r#"+CPMS: ("ME","MT","SM","SR"),("ME","MT","SM","SR"),("ME","MT","SM","SR")"#;
        let groups = parse_cpms_support(all).unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(choose_storage(&groups).as_deref(), Some("ME"));
        // Wavecom (python-gsmmodem fakemodems): two nested groups, SIM only.
        let wavecom = parse_cpms_support(r#"+CPMS: (("SM","BM","SR"),("SM"))"#).unwrap();
        assert_eq!(wavecom, vec![vec!["SM", "BM", "SR"], vec!["SM"]]);
        assert_eq!(choose_storage(&wavecom).as_deref(), Some("SM"));
        // Nokia S60: no storage at all.
        let nokia = parse_cpms_support("+CPMS: (),(),()").unwrap();
        assert_eq!(choose_storage(&nokia), None);
        assert_eq!(
            parse_cpms_usage("+CPMS: 14,50,14,50"),
            vec![
                StorageUse {
                    name: None,
                    used: 14,
                    total: 50
                },
                StorageUse {
                    name: None,
                    used: 14,
                    total: 50
                }
            ]
        );
        assert_eq!(
            parse_cpms_usage(r#"+CPMS: "SM",1,30,"SM",1,30,"SM",1,30"#)[0],
            StorageUse {
                name: Some("SM".into()),
                used: 1,
                total: 30
            }
        );
    }

    #[test]
    fn cnmi() {
        // Gammu tests/at-cnmi/01.dump.
        let support = parse_cnmi_support("+CNMI: (2),(0-1,3),(0,2),(0-1),(0)").unwrap();
        assert_eq!(support.mt, vec![0, 1, 3]);
        assert_eq!(support.candidates()[0], "2,1,0,1,0");
        let full = parse_cnmi_support("+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)").unwrap();
        assert_eq!(
            full.candidates()[..2],
            ["2,1,0,2,0".to_string(), "2,1,0,1,0".to_string()]
        );
        assert_eq!(parse_cnmi_support("+CNMI: "), None);
        assert_eq!(parse_values("0-1,3"), vec![0, 1, 3]);
        assert_eq!(parse_values("5-2,x"), Vec::<u8>::new());
    }
}
