//! The dependency rules of the README's architecture section, checked on the source: each
//! part of the tree names what it must never refer to. A new `use` that breaks a rule fails
//! here, with the file and the line.

use std::path::{Path, PathBuf};

/// (files under this path of `src/`, words none of them may contain in code)
const RULES: &[(&str, &[&str])] = &[
    // Transports see the hub only through their DeviceLink.
    (
        "transport",
        &[
            "crate::api",
            "crate::app",
            "crate::dashboard",
            "crate::bench",
        ],
    ),
    // What modems and sticks share knows neither of them.
    (
        "transport/radio",
        &[
            "transport::modem",
            "transport::hilink",
            "transport::attached",
            "transport::android",
        ],
    ),
    (
        "transport/modem",
        &[
            "transport::hilink",
            "transport::android",
            "transport::attached",
        ],
    ),
    (
        "transport/hilink",
        &[
            "transport::modem",
            "transport::android",
            "transport::attached",
        ],
    ),
    (
        "transport/android",
        &[
            "transport::modem",
            "transport::hilink",
            "transport::radio",
            "transport::attached",
        ],
    ),
    (
        "transport/gateway_app",
        &[
            "transport::modem",
            "transport::hilink",
            "transport::radio",
            "transport::attached",
            "transport::android",
        ],
    ),
    (
        "transport/link.rs",
        &[
            "transport::modem",
            "transport::hilink",
            "transport::android",
            "transport::gateway_app",
        ],
    ),
    // The dispatcher speaks no wire format and knows no transport.
    (
        "dispatch",
        &[
            "crate::transport",
            "crate::api",
            "crate::app",
            "HubFrame",
            "SendJob",
        ],
    ),
    ("registry.rs", &["HubFrame", "SendJob", "crate::transport"]),
    // The store is the bottom of the house.
    (
        "store",
        &[
            "crate::dispatch",
            "crate::transport",
            "crate::api",
            "crate::app",
        ],
    ),
    ("domain.rs", &["crate::", "tokio", "sea_orm", "warp"]),
    // A cluster node either relays bytes or runs the whole App: it reaches into no part.
    (
        "cluster",
        &[
            "crate::dispatch",
            "crate::transport",
            "crate::api",
            "crate::registry",
            "sea_orm",
        ],
    ),
    // A device's history is handed its samples: it knows no source of them.
    (
        "history.rs",
        &[
            "crate::store",
            "crate::registry",
            "crate::api",
            "crate::dispatch",
            "crate::transport",
            "smshub_protocol",
            "tokio",
        ],
    ),
    // The conformance hub judges a worker by the spec alone: wire types, no hub parts.
    (
        "conformance",
        &[
            "crate::store",
            "crate::dispatch",
            "crate::registry",
            "crate::transport",
            "crate::api",
            "crate::app",
            "crate::simulate",
        ],
    ),
    // The remote worker (`smshub worker`) is a client of the hub: it reuses the modem layers
    // but knows none of the hub's internals, and the hub knows nothing of it.
    (
        "worker",
        &[
            "crate::store",
            "crate::dispatch",
            "crate::registry",
            "crate::api",
            "crate::app",
            "transport::link",
            "transport::android",
            "DeviceLink",
        ],
    ),
    ("transport", &["crate::worker"]),
];

fn sources(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|it| it == "rs") {
            found.push(path);
        }
    }
    found
}

/// The lines of a file that are code (not comments).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim()))
        .filter(|(_, line)| !line.starts_with("//"))
}

#[test]
fn each_part_refers_only_to_what_it_may() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (part, forbidden) in RULES {
        let files = sources(&src.join(part));
        assert!(!files.is_empty(), "no sources under src/{part}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            for (line_no, line) in code_lines(&text) {
                for word in *forbidden {
                    if line.contains(word) {
                        broken.push(format!("{}:{line_no}: {word}", file.display()));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "rules broken:\n{}", broken.join("\n"));
}

#[test]
fn only_the_store_imports_the_database_crates() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let store = src.join("store");
    let mut broken = Vec::new();
    for file in sources(&src) {
        if file.starts_with(&store) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for (line_no, line) in code_lines(&text) {
            for word in ["sea_orm::", "rusqlite::", "sqlx::"] {
                if line.contains(word) {
                    broken.push(format!("{}:{line_no}: {word}", file.display()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "database crates outside the store:\n{}",
        broken.join("\n")
    );
}
