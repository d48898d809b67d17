//! What `smshub demo` keeps between runs on one database: its API key and its simulated
//! phones (`demo-phone-N`). Keys and device tokens are stored hashed, so the demo cannot read
//! them back from the database; it keeps them in a file beside a SQLite database
//! (`<database>.demo.json`, readable by its owner only) and reuses what still matches the
//! database: the key if the hub still knows it, each phone if its device still exists with
//! that token. Only what is missing is created, so running the demo twice adds nothing.
//!
//! Must never: keep the file anywhere but beside the database it belongs to, or for a
//! database that is not a SQLite file (the temporary one is removed at exit with its file).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::{self, ApiKeys};
use crate::domain::DeviceKind;
use crate::simulate::Credentials;
use crate::store::Store;

/// The prefix of the demo's phones' names.
pub const PHONE_PREFIX: &str = "demo-phone";
/// The prefix of the names of the demo's phones running capcom6's app.
pub const APP_PREFIX: &str = "demo-app";

/// The demo's key and phones as kept between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Kept {
    api_key: Option<String>,
    phones: Vec<Credentials>,
    #[serde(default)]
    apps: Vec<Credentials>,
}

/// The demo's key, its protocol-v1 phones and its phones running capcom6's app.
pub struct Fleet {
    pub api_key: String,
    pub phones: Vec<Credentials>,
    pub apps: Vec<Credentials>,
}

/// Where the demo keeps its key and phones for the database at `database_url`: beside a
/// SQLite file; `None` for any other database.
pub fn kept_file(database_url: &str) -> Option<PathBuf> {
    let path = database_url
        .strip_prefix("sqlite://")?
        .split('?')
        .next()
        .filter(|it| !it.is_empty() && *it != ":memory:")?;
    Some(PathBuf::from(format!("{path}.demo.json")))
}

/// The demo's API key, `phones` phones and `apps` phones running capcom6's app: those kept
/// in `file` that the database still knows, and new ones for the rest (written back to
/// `file`).
pub async fn key_and_phones(
    store: &Store,
    file: Option<&Path>,
    phones: usize,
    apps: usize,
) -> anyhow::Result<Fleet> {
    let kept: Kept = file
        .and_then(|it| std::fs::read(it).ok())
        .and_then(|it| serde_json::from_slice(&it).ok())
        .unwrap_or_default();
    let key = match kept.api_key {
        Some(secret)
            if matches!(
                ApiKeys::new(store.clone())
                    .check(&secret, crate::domain::now_millis())
                    .await?,
                auth::KeyCheck::Valid(_)
            ) =>
        {
            secret
        }
        _ => auth::create_api_key(store, "demo").await?.secret,
    };
    let devices = store.list_devices().await?;
    let phones = reuse(
        store,
        &devices,
        kept.phones,
        phones,
        PHONE_PREFIX,
        DeviceKind::Android,
    )
    .await?;
    let apps = reuse(
        store,
        &devices,
        kept.apps,
        apps,
        APP_PREFIX,
        DeviceKind::GatewayApp,
    )
    .await?;
    if let Some(file) = file {
        let kept = Kept {
            api_key: Some(key.clone()),
            phones: phones.clone(),
            apps: apps.clone(),
        };
        write_private(file, &serde_json::to_vec_pretty(&kept)?)?;
    }
    Ok(Fleet {
        api_key: key,
        phones,
        apps,
    })
}

/// `count` devices `{prefix}-N` of `kind`: the `kept` ones the database still knows with
/// their token, and new ones for the rest.
async fn reuse(
    store: &Store,
    devices: &[crate::store::DeviceRecord],
    kept: Vec<Credentials>,
    count: usize,
    prefix: &str,
    kind: DeviceKind,
) -> anyhow::Result<Vec<Credentials>> {
    let mut phones: Vec<Credentials> = kept
        .into_iter()
        .filter(|phone| {
            devices
                .iter()
                .any(|it| *it.id == *phone.id && auth::device_token_matches(it, &phone.token))
        })
        .take(count)
        .collect();
    let mut n = 0;
    while phones.len() < count {
        n += 1;
        let name = format!("{prefix}-{n}");
        if phones.iter().any(|it| it.name == name) {
            continue;
        }
        let created = auth::create_device(store, &name, kind).await?;
        phones.push(Credentials {
            id: created.id.into(),
            name,
            token: created.token,
        });
    }
    phones.sort_by_key(|it| phone_number(&it.name));
    Ok(phones)
}

/// The `N` of `demo-phone-N` (or `demo-app-N`), to list the phones in order.
fn phone_number(name: &str) -> usize {
    name.rsplit('-')
        .next()
        .and_then(|it| it.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Writes `bytes` to `path`, readable and writable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sits_beside_a_sqlite_database_only() {
        assert_eq!(
            kept_file("sqlite://demo.db"),
            Some(PathBuf::from("demo.db.demo.json"))
        );
        assert_eq!(
            kept_file("sqlite:///var/lib/hub.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/hub.db.demo.json"))
        );
        assert_eq!(kept_file("sqlite://:memory:"), None);
        assert_eq!(kept_file("postgres://u@h/db"), None);
        assert_eq!(phone_number("demo-phone-12"), 12);
    }
}
