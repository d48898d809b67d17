//! Finding modems: which serial ports exist, which belong to the same USB stick, and which one
//! of a stick's ports answers AT commands.
//!
//! Ports come from `tokio_serial::available_ports()` (a sysfs scan, no libudev) plus the
//! `ttyUSB*`/`ttyACM*` entries of `/sys/class/tty`; USB vendor/product ids and interface
//! numbers are read from sysfs. A stick exposes several ports (Huawei: modem, diagnostics,
//! PC UI; Quectel/SIMCom: DM, NMEA, AT, PPP); the AT interface is tried first (interface 2 for
//! Huawei, Quectel, SIMCom), then the others, and the first that answers `AT` with `OK` is the
//! modem's port. Only ports on the allow-list are touched. Sticks are probed concurrently, each
//! probe with its own timeout, so a hung port delays nothing else.
//!
//! Must never: open a port outside the allow-list, or keep a port open after probing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::session::Session;

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

/// A port that may be a modem's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub port: String,
    pub vid: Option<String>,
    pub pid: Option<String>,
    pub interface: Option<u8>,
    /// The USB device the port belongs to; ports of one stick share it.
    pub usb_device: Option<String>,
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

/// Serial ports on this machine that the allow-list permits.
pub fn list_ports(allow: &[String]) -> Vec<Candidate> {
    let mut names: Vec<String> = Vec::new();
    // serialport's sysfs scan expects /sys/class/tty; without it (a container) it would panic.
    if Path::new("/sys/class/tty").is_dir() {
        if let Ok(ports) = tokio_serial::available_ports() {
            names.extend(ports.into_iter().map(|it| it.port_name));
        }
        if let Ok(entries) = std::fs::read_dir("/sys/class/tty") {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with("ttyUSB") || name.starts_with("ttyACM") {
                    names.push(format!("/dev/{name}"));
                }
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
        .map(|port| sysfs_details(&port))
        .collect()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|it| it.trim().to_string())
        .filter(|it| !it.is_empty())
}

/// USB details of a port from `/sys/class/tty/<name>/device`.
fn sysfs_details(port: &str) -> Candidate {
    let name = port.rsplit('/').next().unwrap_or(port);
    let mut candidate = Candidate {
        port: port.to_string(),
        vid: None,
        pid: None,
        interface: None,
        usb_device: None,
    };
    let Ok(device) =
        std::fs::canonicalize(PathBuf::from("/sys/class/tty").join(name).join("device"))
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
    candidate.interface = read_trimmed(&interface.join("bInterfaceNumber"))
        .and_then(|it| u8::from_str_radix(&it, 16).ok());
    if let Some(usb) = interface.parent() {
        candidate.vid = read_trimmed(&usb.join("idVendor"));
        candidate.pid = read_trimmed(&usb.join("idProduct"));
        candidate.usb_device = Some(usb.to_string_lossy().to_string());
    }
    candidate
}

/// The interface most likely to be the AT port of a vendor's sticks.
fn preferred_interface(vid: Option<&str>) -> Option<u8> {
    match vid {
        // Huawei (PC UI), Quectel, SIMCom, ZTE, Sierra.
        Some("12d1" | "2c7c" | "1e0e" | "19d2" | "1199") => Some(2),
        _ => None,
    }
}

/// Groups ports by stick and orders each group the way it is probed.
pub fn probe_order(candidates: Vec<Candidate>) -> Vec<Vec<Candidate>> {
    let mut groups: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for candidate in candidates {
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
                    it.interface != preferred || preferred.is_none(),
                    it.interface,
                    it.port.clone(),
                )
            });
            group
        })
        .collect()
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

/// One port per modem among the allowed ports not in `skip`.
pub async fn detect(allow: &[String], skip: &[String], timeout: Duration) -> Vec<DetectedPort> {
    let candidates: Vec<Candidate> = list_ports(allow).into_iter().collect();
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
    let probes = probe_order(fresh).into_iter().map(|group| async move {
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
    futures_util::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
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
            usb_device: Some(usb.into()),
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
    fn sticks_are_probed_at_interface_first() {
        // A Huawei E173 (modem 0, diagnostics 1, PC UI 2) and an unknown CDC-ACM device.
        let groups = probe_order(vec![
            candidate("/dev/ttyUSB0", "12d1", 0, "usb1/1-1"),
            candidate("/dev/ttyUSB1", "12d1", 1, "usb1/1-1"),
            candidate("/dev/ttyUSB2", "12d1", 2, "usb1/1-1"),
            candidate("/dev/ttyACM1", "1234", 1, "usb1/1-2"),
            candidate("/dev/ttyACM0", "1234", 0, "usb1/1-2"),
        ]);
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
        let _ = list_ports(&[]);
        let _ = list_ports(&["/dev/does-not-exist".to_string()]);
    }
}
