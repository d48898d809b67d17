//! Modem detection against a fake sysfs tree laid out as Linux lays it out: ports under
//! `class/tty/` are symlinks into `devices/`, `device` links lead to the usb-serial port (ttyUSB)
//! or the interface (ttyACM), interfaces carry `bInterfaceNumber` and their descriptor, and the
//! USB device above them `idVendor`/`idProduct`. `bus/usb/devices/` links to every device.
//!
//! Covered: which port of each stick is probed first and which are never probed (Huawei E3372
//! by interface descriptor, Quectel EC25 and SIMCom SIM7600 by interface number, an FTDI
//! adapter and a GPS port left alone), a CDC-ACM port, a HiLink stick reported as network-only
//! (no tty, no probe) by the library and by `POST /api/modems/detect`.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::json;
use smshub::transport::modem::ModemConfig;
use smshub::transport::modem::detect::{
    self, Candidate, Host, PortRole, list_hilink, list_ports, probe_order,
};

use crate::support::TestHub;

/// One USB serial function of a stick: interface number, class/subclass/protocol, and the tty
/// the kernel gave it (`None` for a network function).
struct Function {
    interface: u8,
    class: (u8, u8, u8),
    tty: Option<&'static str>,
    net: Option<&'static str>,
}

fn function(interface: u8, class: (u8, u8, u8), tty: &'static str) -> Function {
    Function {
        interface,
        class,
        tty: Some(tty),
        net: None,
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("{text}\n")).unwrap();
}

/// A fake host: `sys/` and `dev/` in a temporary folder.
struct FakeHost {
    dir: tempfile::TempDir,
}

impl FakeHost {
    fn new() -> FakeHost {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["sys/class/tty", "sys/bus/usb/devices", "dev"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        FakeHost { dir }
    }

    fn host(&self) -> Host {
        Host {
            sysfs: self.dir.path().join("sys"),
            dev: self.dir.path().join("dev"),
        }
    }

    fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }

    /// A USB device on root-hub port `usb_port` of bus 1, with its functions. `acm` functions
    /// are CDC-ACM (the tty hangs off the interface itself).
    fn stick(&self, usb_port: &str, vid: &str, pid: &str, product: &str, functions: &[Function]) {
        let rel = format!("devices/pci0000:00/0000:00:14.0/usb1/{usb_port}");
        let usb = self.sys().join(&rel);
        write(&usb.join("idVendor"), vid);
        write(&usb.join("idProduct"), pid);
        write(&usb.join("product"), product);
        symlink(
            format!("../../../{rel}"),
            self.sys().join("bus/usb/devices").join(usb_port),
        )
        .unwrap();
        for f in functions {
            let name = format!("{usb_port}:1.{}", f.interface);
            let iface = usb.join(&name);
            write(
                &iface.join("bInterfaceNumber"),
                &format!("{:02x}", f.interface),
            );
            write(
                &iface.join("bInterfaceClass"),
                &format!("{:02x}", f.class.0),
            );
            write(
                &iface.join("bInterfaceSubClass"),
                &format!("{:02x}", f.class.1),
            );
            write(
                &iface.join("bInterfaceProtocol"),
                &format!("{:02x}", f.class.2),
            );
            if let Some(net) = f.net {
                std::fs::create_dir_all(iface.join("net").join(net)).unwrap();
            }
            let Some(tty) = f.tty else { continue };
            let acm = tty.starts_with("ttyACM");
            // ttyUSB: <iface>/ttyUSBn/tty/ttyUSBn, device -> ../../../ttyUSBn (the usb-serial
            // port); ttyACM: <iface>/tty/ttyACMn, device -> ../../../<iface>.
            let (tty_dir, tty_rel, device_link) = if acm {
                (
                    iface.join("tty").join(tty),
                    format!("{rel}/{name}/tty/{tty}"),
                    format!("../../../{name}"),
                )
            } else {
                (
                    iface.join(tty).join("tty").join(tty),
                    format!("{rel}/{name}/{tty}/tty/{tty}"),
                    format!("../../../{tty}"),
                )
            };
            std::fs::create_dir_all(&tty_dir).unwrap();
            symlink(device_link, tty_dir.join("device")).unwrap();
            symlink(
                format!("../../{tty_rel}"),
                self.sys().join("class/tty").join(tty),
            )
            .unwrap();
            write(&self.dir.path().join("dev").join(tty), "");
        }
    }

    /// A virtual tty with no device behind it (like tty0 or a pty).
    fn virtual_tty(&self, name: &str) {
        let dir = self.sys().join("devices/virtual/tty").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        symlink(
            format!("../../devices/virtual/tty/{name}"),
            self.sys().join("class/tty").join(name),
        )
        .unwrap();
        write(&self.dir.path().join("dev").join(name), "");
    }

    fn port(&self, name: &str) -> String {
        self.dir.path().join("dev").join(name).display().to_string()
    }
}

/// The machine of the tests: a Huawei E3372 (stick mode 12d1:1506: modem, diagnostics and PC UI
/// serial functions, NCM network), a SIMCom SIM7600 (1e0e:9001: DIAG, NMEA, AT, PPP, audio),
/// a Quectel EC25 (2c7c:0125: DIAG, NMEA, AT, PPP, QMI network), an FTDI adapter (0403:6001),
/// a CDC-ACM modem, a Huawei HiLink E3372 (12d1:14dc, network only) and a virtual console.
fn machine() -> FakeHost {
    let fake = FakeHost::new();
    fake.stick(
        "1-1",
        "12d1",
        "1506",
        "HUAWEI_MOBILE",
        &[
            function(0, (0xff, 0x02, 0x01), "ttyUSB0"),
            function(1, (0xff, 0x02, 0x03), "ttyUSB1"),
            Function {
                interface: 2,
                class: (0xff, 0x02, 0x16),
                tty: None,
                net: Some("wwan0"),
            },
            function(3, (0xff, 0x02, 0x02), "ttyUSB2"),
        ],
    );
    fake.stick(
        "1-2",
        "1e0e",
        "9001",
        "SimTech, Incorporated",
        &[
            function(0, (0xff, 0xff, 0xff), "ttyUSB3"),
            function(1, (0xff, 0x00, 0x00), "ttyUSB4"),
            function(2, (0xff, 0x00, 0x00), "ttyUSB5"),
            function(3, (0xff, 0x00, 0x00), "ttyUSB6"),
            function(4, (0xff, 0x00, 0x00), "ttyUSB7"),
        ],
    );
    fake.stick(
        "1-3",
        "2c7c",
        "0125",
        "EC25",
        &[
            function(0, (0xff, 0xff, 0xff), "ttyUSB8"),
            function(1, (0xff, 0x00, 0x00), "ttyUSB9"),
            function(2, (0xff, 0x00, 0x00), "ttyUSB10"),
            function(3, (0xff, 0x00, 0x00), "ttyUSB11"),
            Function {
                interface: 4,
                class: (0xff, 0xff, 0xff),
                tty: None,
                net: Some("wwan1"),
            },
        ],
    );
    fake.stick(
        "1-4",
        "0403",
        "6001",
        "FT232R USB UART",
        &[function(0, (0xff, 0xff, 0xff), "ttyUSB12")],
    );
    fake.stick(
        "1-5",
        "1546",
        "1102",
        "CDC modem",
        &[function(0, (0x02, 0x02, 0x01), "ttyACM0")],
    );
    fake.stick(
        "1-6",
        "12d1",
        "14dc",
        "HUAWEI_MOBILE",
        &[Function {
            interface: 0,
            class: (0x02, 0x06, 0x00),
            tty: None,
            net: Some("eth1"),
        }],
    );
    fake.virtual_tty("tty0");
    fake
}

fn names(candidates: &[Candidate]) -> Vec<String> {
    candidates
        .iter()
        .map(|it| it.port.rsplit('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn ports_are_read_from_sysfs_with_their_usb_ids_interfaces_and_roles() {
    let fake = machine();
    let ports = list_ports(&fake.host(), &[]);
    let by_name = |name: &str| {
        ports
            .iter()
            .find(|it| it.port == fake.port(name))
            .unwrap_or_else(|| panic!("{name} listed: {:?}", names(&ports)))
            .clone()
    };
    // Every ttyUSB/ttyACM with a device behind it; no virtual console.
    assert_eq!(ports.len(), 14, "{:?}", names(&ports));
    assert!(!names(&ports).contains(&"tty0".to_string()));

    let pc_ui = by_name("ttyUSB2");
    assert_eq!(
        (pc_ui.vid.as_deref(), pc_ui.pid.as_deref(), pc_ui.interface),
        (Some("12d1"), Some("1506"), Some(3))
    );
    assert_eq!(pc_ui.class, Some((0xff, 0x02, 0x02)));
    assert_eq!(pc_ui.role, PortRole::At);
    assert!(
        pc_ui
            .usb_device
            .as_deref()
            .is_some_and(|it| it.ends_with("/usb1/1-1")),
        "{pc_ui:?}"
    );
    assert_eq!(by_name("ttyUSB0").role, PortRole::AtSecondary);
    assert_eq!(by_name("ttyUSB1").role, PortRole::NotAt);
    assert_eq!(by_name("ttyUSB5").role, PortRole::At);
    assert_eq!(by_name("ttyUSB7").role, PortRole::NotAt, "SIM7600 audio");
    assert_eq!(by_name("ttyUSB10").role, PortRole::At);
    assert_eq!(by_name("ttyUSB9").role, PortRole::NotAt, "EC25 NMEA");
    assert_eq!(by_name("ttyUSB12").role, PortRole::Adapter);
    let acm = by_name("ttyACM0");
    assert_eq!(
        (acm.vid.as_deref(), acm.interface, acm.role),
        (Some("1546"), Some(0), PortRole::Unknown),
        "the interface itself is the ACM port's device"
    );

    // An allow-list limits the listing.
    let only = list_ports(&fake.host(), &[fake.port("ttyUSB1")]);
    assert_eq!(names(&only), vec!["ttyUSB1"]);
}

#[test]
fn each_stick_is_probed_at_its_at_port_first_and_never_at_diagnostics_gps_or_adapters() {
    let fake = machine();
    let groups = probe_order(list_ports(&fake.host(), &[]), &[]);
    let order: Vec<Vec<String>> = groups.iter().map(|it| names(it)).collect();
    assert_eq!(
        order,
        vec![
            // Huawei E3372: PC UI (by descriptor, interface 3 here), then the modem port.
            vec!["ttyUSB2", "ttyUSB0"],
            // SIMCom SIM7600: AT (2), then PPP (3); DIAG, NMEA and audio never.
            vec!["ttyUSB5", "ttyUSB6"],
            // Quectel EC25: AT (2), then PPP (3).
            vec!["ttyUSB10", "ttyUSB11"],
            // The CDC-ACM modem; the FTDI adapter is not touched.
            vec!["ttyACM0"],
        ]
    );
    // An adapter named on the allow-list is probed.
    let allow = vec![fake.port("ttyUSB12")];
    let groups = probe_order(list_ports(&fake.host(), &allow), &allow);
    assert_eq!(
        groups.iter().map(|it| names(it)).collect::<Vec<_>>(),
        vec![vec!["ttyUSB12"]]
    );
}

#[test]
fn hilink_sticks_are_recognised_as_network_only() {
    let fake = machine();
    let hilink = list_hilink(&fake.host());
    assert_eq!(hilink.len(), 1, "{hilink:?}");
    let stick = &hilink[0];
    assert_eq!(
        (
            stick.usb_device.as_str(),
            stick.vid.as_str(),
            stick.pid.as_str()
        ),
        ("1-6", "12d1", "14dc")
    );
    assert_eq!(stick.net_interfaces, vec!["eth1"]);
    assert_eq!(stick.product.as_deref(), Some("HUAWEI_MOBILE"));
    // It has no tty, so nothing of it is probed.
    let ports = list_ports(&fake.host(), &[]);
    assert!(!ports.iter().any(|it| {
        it.usb_device
            .as_deref()
            .is_some_and(|u| u.ends_with("/1-6"))
    }));
}

#[tokio::test]
async fn detection_over_the_api_reports_hilink_sticks_and_probes_nothing_else() {
    // Only the HiLink stick: no serial port at all.
    let fake = FakeHost::new();
    fake.stick(
        "2-1",
        "12d1",
        "14db",
        "E3372",
        &[Function {
            interface: 0,
            class: (0x02, 0x06, 0x00),
            tty: None,
            net: Some("usb0"),
        }],
    );
    let host = fake.host();
    let hub = TestHub::spawn_with(|config| {
        config.modems = ModemConfig {
            host,
            ..ModemConfig::default()
        }
    })
    .await;
    let (status, body) = hub.post("/api/modems/detect", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["detected"], json!([]), "{body}");
    assert_eq!(body["hilink"][0]["pid"], "14db", "{body}");
    assert_eq!(
        body["hilink"][0]["net_interfaces"],
        json!(["usb0"]),
        "{body}"
    );
    let detection = detect::detect(
        &fake.host(),
        &[],
        &[],
        std::time::Duration::from_millis(200),
    )
    .await;
    assert!(detection.ports.is_empty() && detection.hilink.len() == 1);

    // A POST with no body at all (no Content-Length, as `curl -X POST` sends it) is an empty
    // request, not a 411.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = hub.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /api/modems/detect HTTP/1.1\r\nHost: hub\r\nX-API-Key: {}\r\nConnection: close\r\n\r\n",
        hub.api_key
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"pid\":\"14db\""), "{answer}");
}
