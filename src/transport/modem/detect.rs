//! Finding modems: which serial ports exist, which belong to the same USB stick, which one of a
//! stick's ports speaks AT, and which sticks are network-only (Huawei HiLink) with no AT port.
//!
//! Everything is read from sysfs under a configurable root ([`Host`], `/sys` and `/dev` by
//! default), so detection is tested against a fake tree: `class/tty/<name>/device` leads to the
//! USB interface (`bInterfaceNumber`, `bInterfaceClass`/`SubClass`/`Protocol`), whose parent is
//! the USB device (`idVendor`, `idProduct`); `bus/usb/devices/*` lists the sticks themselves.
//!
//! Which interface is the AT port ([`port_role`]) comes from ModemManager's udev rules and
//! oFono's `udevng.c`:
//! - Huawei (12d1) by interface descriptor: vendor class `ff` with protocol `02`/`12`/`32` is
//!   the "PC UI" AT port, `01`/`11`/`31` the modem (PPP) port, which also answers AT, `03`/`13`
//!   /`33` diagnostics and `05`/`14` GPS, never probed; old sticks that say `ff/ff/ff` are tried
//!   at interface 2 first (Gammu's FAQ), then the others.
//! - Quectel (2c7c: EC25, EG25, EG91, EG95, BG96, RM500...): interface 2 is the AT port, 3 the
//!   secondary AT (PPP) port; 0 (QCDM/DIAG) and 1 (GPS NMEA) are never probed.
//! - SIMCom 1e0e:9001 (SIM7000/SIM7100/SIM7600): the same, and 4 is audio.
//! - USB-serial adapters (FTDI 0403, CP210x, CH340, PL2303, ...) are ModemManager's "manual scan
//!   only" greylist: detection never sends them `AT` unless the allow-list names the port.
//! - Huawei 12d1:14db and 12d1:14dc are HiLink firmware (usb-modeswitch's HuaweiNewMode
//!   targets): a network card with a web API and no serial port; they are reported, not probed.
//!
//! Sticks are probed concurrently, each probe with its own timeout, so a hung port delays
//! nothing else. Must never: open a port outside the allow-list, probe a port known not to
//! speak AT, or keep a port open after probing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::session::Session;

/// Where the machine's devices are described: sysfs and the device nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// `/sys`, or a fake tree in tests.
    pub sysfs: PathBuf,
    /// `/dev`: the folder serial ports are named in.
    pub dev: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            sysfs: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
        }
    }
}

/// A serial port that answered `AT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetectedPort {
    /// The device path, e.g. `/dev/ttyUSB2`.
    pub port: String,
    /// USB vendor id (hex), when on USB.
    pub vid: Option<String>,
    /// USB product id (hex).
    pub pid: Option<String>,
    /// USB interface number.
    pub interface: Option<u8>,
    /// What `AT+CGMI`/`AT+CGMM` say.
    pub model: Option<String>,
}

/// A stick running network-only (HiLink) firmware: it has no AT port, so the modem transport
/// cannot drive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HilinkStick {
    /// The USB device in sysfs (`1-1.4`).
    pub usb_device: String,
    pub vid: String,
    pub pid: String,
    /// The USB product string, when the stick gives one.
    pub product: Option<String>,
    /// Its network interfaces (`eth1`, `usb0`), where its web API answers.
    pub net_interfaces: Vec<String>,
}

/// What detection found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Detection {
    /// One AT port per modem.
    pub ports: Vec<DetectedPort>,
    /// Network-only sticks, reported so that they are not mistaken for broken modems.
    pub hilink: Vec<HilinkStick>,
}

/// What a port is for, as far as its USB ids and interface say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortRole {
    /// The vendor's AT command port (Huawei PC UI, Quectel/SIMCom interface 2).
    At,
    /// A port that also answers AT but is meant for PPP (the modem port).
    AtSecondary,
    /// Nothing is known: probed after the known AT ports.
    Unknown,
    /// Known not to speak AT (diagnostics, GPS, audio): never probed.
    NotAt,
    /// A USB-serial adapter: probed only when the allow-list names the port.
    Adapter,
}

/// A port that may be a modem's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub port: String,
    pub vid: Option<String>,
    pub pid: Option<String>,
    pub interface: Option<u8>,
    /// `bInterfaceClass`, `bInterfaceSubClass`, `bInterfaceProtocol`.
    pub class: Option<(u8, u8, u8)>,
    /// The USB device the port belongs to; ports of one stick share it.
    pub usb_device: Option<String>,
    pub role: PortRole,
}

/// Whether `port` may be used: on the allow-list (an exact path or a prefix), or, with an
/// empty list, a USB or ACM serial port.
pub fn allowed(port: &str, allow: &[String]) -> bool {
    if allow.is_empty() {
        let name = port.rsplit('/').next().unwrap_or(port);
        return name.starts_with("ttyUSB") || name.starts_with("ttyACM");
    }
    allow.iter().any(|it| {
        port == it
            || port.strip_prefix(it.as_str()).is_some_and(|rest| {
                // `/dev/pts/` covers the folder; `/dev/ttyUSB` covers ttyUSB0..; `/dev/ttyUSB2`
                // is one port, not ttyUSB20.
                it.ends_with('/')
                    || (!it.ends_with(|c: char| c.is_ascii_digit())
                        && !rest.is_empty()
                        && rest.chars().all(|c| c.is_ascii_digit()))
            })
    })
}

/// Serial ports on this host that the allow-list permits, with their USB details and roles.
pub fn list_ports(host: &Host, allow: &[String]) -> Vec<Candidate> {
    let mut names: Vec<String> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(host.sysfs.join("class/tty")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            // Real hardware has a `device` link; virtual consoles and ptys do not.
            if entry.path().join("device").exists() {
                names.push(host.dev.join(&name).to_string_lossy().to_string());
            }
        }
    }
    // Explicit allow-list entries that are paths (e.g. a pty) count even without sysfs.
    names.extend(
        allow
            .iter()
            .filter(|it| Path::new(it.as_str()).exists())
            .cloned(),
    );
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|it| allowed(it, allow) && Path::new(it).exists())
        .map(|port| sysfs_details(host, &port))
        .collect()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|it| it.trim().to_string())
        .filter(|it| !it.is_empty())
}

fn read_hex(path: &Path) -> Option<u8> {
    read_trimmed(path).and_then(|it| u8::from_str_radix(&it, 16).ok())
}

/// USB details of a port from `class/tty/<name>/device`.
fn sysfs_details(host: &Host, port: &str) -> Candidate {
    let name = port.rsplit('/').next().unwrap_or(port);
    let mut candidate = Candidate {
        port: port.to_string(),
        vid: None,
        pid: None,
        interface: None,
        class: None,
        usb_device: None,
        role: PortRole::Unknown,
    };
    let Ok(device) = std::fs::canonicalize(host.sysfs.join("class/tty").join(name).join("device"))
    else {
        return candidate;
    };
    // ttyUSB: device is the usb-serial port, whose parent is the interface; ttyACM: the
    // interface itself.
    let interface = if device.join("bInterfaceNumber").exists() {
        Some(device.clone())
    } else {
        device.parent().map(Path::to_path_buf)
    };
    let Some(interface) = interface.filter(|it| it.join("bInterfaceNumber").exists()) else {
        return candidate;
    };
    candidate.interface = read_hex(&interface.join("bInterfaceNumber"));
    candidate.class = match (
        read_hex(&interface.join("bInterfaceClass")),
        read_hex(&interface.join("bInterfaceSubClass")),
        read_hex(&interface.join("bInterfaceProtocol")),
    ) {
        (Some(class), Some(sub), Some(protocol)) => Some((class, sub, protocol)),
        _ => None,
    };
    if let Some(usb) = interface.parent() {
        candidate.vid = read_trimmed(&usb.join("idVendor")).map(|it| it.to_ascii_lowercase());
        candidate.pid = read_trimmed(&usb.join("idProduct")).map(|it| it.to_ascii_lowercase());
        candidate.usb_device = Some(usb.to_string_lossy().to_string());
    }
    candidate.role = port_role(
        candidate.vid.as_deref(),
        candidate.pid.as_deref(),
        candidate.interface,
        candidate.class,
    );
    candidate
}

/// USB vendors that make USB-serial adapter chips, never modems (ModemManager's
/// `77-mm-usb-serial-adapters-greylist.rules`): FTDI, Microchip, Prolific, MCT, Silicon Labs
/// CP210x, QinHeng CH340, Atmel LUFA, Cypress.
const ADAPTER_VENDORS: &[&str] = &[
    "0403", "04d8", "067b", "0711", "10c4", "1a86", "03eb", "04b4", "050d", "0557",
];

/// What a port is for, from its USB ids, interface number and interface descriptor.
pub fn port_role(
    vid: Option<&str>,
    pid: Option<&str>,
    interface: Option<u8>,
    class: Option<(u8, u8, u8)>,
) -> PortRole {
    let Some(vid) = vid else {
        return PortRole::Unknown;
    };
    if ADAPTER_VENDORS.contains(&vid) {
        return PortRole::Adapter;
    }
    match (vid, pid, interface) {
        // Huawei: the interface descriptor says what the port is (ModemManager's
        // 77-mm-huawei-net-port-types.rules; oFono udevng.c setup_huawei).
        ("12d1", _, _) => match class {
            Some((0xff, 0x01..=0x03, 0x02 | 0x12 | 0x32)) => PortRole::At,
            Some((0xff, 0x01..=0x03, 0x01 | 0x11 | 0x31)) => PortRole::AtSecondary,
            Some((0xff, 0x01..=0x06, 0x03 | 0x13 | 0x33 | 0x05 | 0x14)) => PortRole::NotAt,
            _ => PortRole::Unknown,
        },
        // Quectel (77-mm-quectel-port-types.rules) and SIMCom SIM7x00 / SIM70x0
        // (77-mm-simtech-port-types.rules): DIAG 0, GPS 1, AT 2, AT/PPP 3.
        ("2c7c", _, Some(2)) | ("1e0e", Some("9001" | "9205" | "9206"), Some(2)) => PortRole::At,
        ("2c7c", _, Some(3)) | ("1e0e", Some("9001" | "9205"), Some(3)) => PortRole::AtSecondary,
        ("2c7c", _, Some(0 | 1)) | ("1e0e", Some("9001" | "9205" | "9206"), Some(0 | 1 | 4)) => {
            PortRole::NotAt
        }
        _ => PortRole::Unknown,
    }
}

/// The interface tried first among a stick's ports of unknown role: 2 for the vendors whose
/// sticks put their AT port there (Huawei's old `ff/ff/ff` sticks per Gammu's FAQ, ZTE,
/// Sierra).
fn preferred_interface(vid: Option<&str>) -> Option<u8> {
    match vid {
        Some("12d1" | "2c7c" | "1e0e" | "19d2" | "1199") => Some(2),
        _ => None,
    }
}

/// Groups the ports detection may probe by stick and orders each group the way it is probed:
/// known AT ports, then secondary AT ports, then unknown ones (the vendor's usual AT interface
/// first). Ports known not to speak AT are left out, and so are adapters unless `allow` names
/// the port itself.
pub fn probe_order(candidates: Vec<Candidate>, allow: &[String]) -> Vec<Vec<Candidate>> {
    let mut groups: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for candidate in candidates {
        let wanted = match candidate.role {
            PortRole::NotAt => false,
            PortRole::Adapter => allow.contains(&candidate.port),
            _ => true,
        };
        if !wanted {
            continue;
        }
        let key = candidate
            .usb_device
            .clone()
            .unwrap_or_else(|| candidate.port.clone());
        groups.entry(key).or_default().push(candidate);
    }
    groups
        .into_values()
        .map(|mut group| {
            let preferred = preferred_interface(group.first().and_then(|it| it.vid.as_deref()));
            group.sort_by_key(|it| {
                (
                    it.role,
                    it.interface != preferred || preferred.is_none(),
                    it.interface,
                    it.port.clone(),
                )
            });
            group
        })
        .collect()
}

/// USB ids of Huawei's HiLink (network-only) firmware: usb-modeswitch switches 12d1:1f01 to
/// these (its "HuaweiNewMode").
const HILINK_IDS: &[(&str, &str)] = &[("12d1", "14db"), ("12d1", "14dc")];

/// Sticks in HiLink mode: USB devices with a HiLink id, from `bus/usb/devices`.
pub fn list_hilink(host: &Host) -> Vec<HilinkStick> {
    let Ok(entries) = std::fs::read_dir(host.sysfs.join("bus/usb/devices")) else {
        return Vec::new();
    };
    let mut found: Vec<HilinkStick> = entries
        .flatten()
        .filter_map(|entry| {
            let dir = std::fs::canonicalize(entry.path()).ok()?;
            let vid = read_trimmed(&dir.join("idVendor"))?.to_ascii_lowercase();
            let pid = read_trimmed(&dir.join("idProduct"))?.to_ascii_lowercase();
            if !HILINK_IDS.contains(&(vid.as_str(), pid.as_str())) {
                return None;
            }
            let mut net_interfaces: Vec<String> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|it| it.path().join("bInterfaceNumber").exists())
                .flat_map(|it| {
                    std::fs::read_dir(it.path().join("net"))
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|net| net.file_name().to_string_lossy().to_string())
                })
                .collect();
            net_interfaces.sort();
            Some(HilinkStick {
                usb_device: entry.file_name().to_string_lossy().to_string(),
                vid,
                pid,
                product: read_trimmed(&dir.join("product")),
                net_interfaces,
            })
        })
        .collect();
    found.sort_by(|a, b| a.usb_device.cmp(&b.usb_device));
    found
}

/// Opens `port`, asks `AT` and, when it answers, what the modem is; closes it again.
pub async fn probe(port: &str, timeout: Duration) -> Option<Option<String>> {
    use tokio_serial::SerialPortBuilderExt;
    let stream = tokio_serial::new(port, 115_200).open_native_async().ok()?;
    let mut session = Session::new(stream);
    let mut answered = false;
    for _ in 0..2 {
        if session.command("AT", timeout).await.is_ok() {
            answered = true;
            break;
        }
    }
    if !answered {
        return None;
    }
    let _ = session.command("ATE0", timeout).await;
    let mut model = Vec::new();
    for command in ["AT+CGMI", "AT+CGMM"] {
        if let Ok(lines) = session.command(command, timeout).await
            && let Some(it) = lines
                .iter()
                .find_map(|l| smshub_protocol::at::reply::parse_info(l, &["+CGMI", "+CGMM"]))
        {
            model.push(it);
        }
    }
    Some((!model.is_empty()).then(|| model.join(" ")))
}

/// One port per modem among the allowed ports not in `skip`, and the HiLink sticks.
pub async fn detect(
    host: &Host,
    allow: &[String],
    skip: &[String],
    timeout: Duration,
) -> Detection {
    let candidates = list_ports(host, allow);
    // A stick one of whose ports is attached already is skipped whole.
    let busy: Vec<Option<String>> = candidates
        .iter()
        .filter(|it| skip.contains(&it.port))
        .map(|it| it.usb_device.clone())
        .collect();
    let fresh: Vec<Candidate> = candidates
        .into_iter()
        .filter(|it| {
            !skip.contains(&it.port) && (it.usb_device.is_none() || !busy.contains(&it.usb_device))
        })
        .collect();
    let probes = probe_order(fresh, allow)
        .into_iter()
        .map(|group| async move {
            for candidate in group {
                if let Some(model) = probe(&candidate.port, timeout).await {
                    return Some(DetectedPort {
                        port: candidate.port,
                        vid: candidate.vid,
                        pid: candidate.pid,
                        interface: candidate.interface,
                        model,
                    });
                }
            }
            None
        });
    let ports = futures_util::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect();
    Detection {
        ports,
        hilink: list_hilink(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(port: &str, vid: &str, interface: u8, usb: &str) -> Candidate {
        Candidate {
            port: port.into(),
            vid: Some(vid.into()),
            pid: Some("1506".into()),
            interface: Some(interface),
            class: Some((0xff, 0xff, 0xff)),
            usb_device: Some(usb.into()),
            role: port_role(
                Some(vid),
                Some("1506"),
                Some(interface),
                Some((0xff, 0xff, 0xff)),
            ),
        }
    }

    #[test]
    fn allow_list() {
        assert!(allowed("/dev/ttyUSB2", &[]));
        assert!(allowed("/dev/ttyACM0", &[]));
        assert!(!allowed("/dev/ttyS0", &[]));
        assert!(!allowed("/dev/pts/3", &[]));
        let list = vec!["/dev/ttyUSB2".to_string(), "/dev/pts/".to_string()];
        assert!(allowed("/dev/ttyUSB2", &list));
        assert!(!allowed("/dev/ttyUSB20", &list));
        assert!(!allowed("/dev/ttyUSB0", &list));
        assert!(allowed("/dev/pts/7", &list));
        assert!(allowed("/dev/ttyUSB7", &["/dev/ttyUSB".to_string()]));
    }

    #[test]
    fn roles() {
        let check = |vid: &str, pid: &str, interface: u8, class: (u8, u8, u8), role: PortRole| {
            assert_eq!(
                port_role(Some(vid), Some(pid), Some(interface), Some(class)),
                role,
                "{vid}:{pid} if {interface} {class:02x?}"
            );
        };
        // Huawei by descriptor, wherever the interface is.
        check("12d1", "1506", 0, (0xff, 0x02, 0x01), PortRole::AtSecondary);
        check("12d1", "1506", 2, (0xff, 0x02, 0x02), PortRole::At);
        check("12d1", "1506", 1, (0xff, 0x02, 0x12), PortRole::At);
        check("12d1", "1506", 4, (0xff, 0x01, 0x32), PortRole::At);
        check("12d1", "1506", 1, (0xff, 0x02, 0x03), PortRole::NotAt);
        check("12d1", "1436", 2, (0xff, 0xff, 0xff), PortRole::Unknown);
        // Quectel EC25 and SIMCom SIM7600 by interface number.
        check("2c7c", "0125", 0, (0xff, 0xff, 0xff), PortRole::NotAt);
        check("2c7c", "0125", 1, (0xff, 0x00, 0x00), PortRole::NotAt);
        check("2c7c", "0125", 2, (0xff, 0x00, 0x00), PortRole::At);
        check("2c7c", "0125", 3, (0xff, 0x00, 0x00), PortRole::AtSecondary);
        check("1e0e", "9001", 2, (0xff, 0x00, 0x00), PortRole::At);
        check("1e0e", "9001", 4, (0xff, 0x00, 0x00), PortRole::NotAt);
        check("1e0e", "cefe", 0, (0xff, 0x00, 0x00), PortRole::Unknown);
        check("0403", "6001", 0, (0xff, 0xff, 0xff), PortRole::Adapter);
        assert_eq!(port_role(None, None, None, None), PortRole::Unknown);
    }

    #[test]
    fn sticks_are_probed_at_interface_first() {
        // An old Huawei stick that says ff/ff/ff (modem 0, diagnostics 1, PC UI 2) and an
        // unknown CDC-ACM device.
        let groups = probe_order(
            vec![
                candidate("/dev/ttyUSB0", "12d1", 0, "usb1/1-1"),
                candidate("/dev/ttyUSB1", "12d1", 1, "usb1/1-1"),
                candidate("/dev/ttyUSB2", "12d1", 2, "usb1/1-1"),
                candidate("/dev/ttyACM1", "1234", 1, "usb1/1-2"),
                candidate("/dev/ttyACM0", "1234", 0, "usb1/1-2"),
            ],
            &[],
        );
        let order: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|it| it.port.as_str()).collect())
            .collect();
        assert_eq!(
            order,
            vec![
                vec!["/dev/ttyUSB2", "/dev/ttyUSB0", "/dev/ttyUSB1"],
                vec!["/dev/ttyACM0", "/dev/ttyACM1"]
            ]
        );
    }

    #[test]
    fn listing_never_panics() {
        let host = Host::default();
        let _ = list_ports(&host, &[]);
        let _ = list_ports(&host, &["/dev/does-not-exist".to_string()]);
        let _ = list_hilink(&host);
        let nowhere = Host {
            sysfs: PathBuf::from("/does/not/exist"),
            dev: PathBuf::from("/does/not/exist"),
        };
        assert!(list_ports(&nowhere, &[]).is_empty() && list_hilink(&nowhere).is_empty());
    }
}
