//! `smshub keys create|list|show|revoke|rotate` and `smshub users add|list|remove|passwd`:
//! access control at the command line, straight on the database (no running hub needed; a
//! running hub sees a revocation from its next request on). Every change is audited with the
//! actor `cli`.

use anyhow::Context;

use crate::auth::keys::{KeySpec, KeyView, find_keys, parse_expires};
use crate::auth::users::{
    Role, add_user, generate_password, remove_user_keeping_an_admin, set_password,
};
use crate::auth::{KeyLimits, Scopes, create_key, revoke_api_key, rotate_api_key};
use crate::dispatch::AllowedDevices;
use crate::domain::now_millis;
use crate::store::{AccessChange, AuditEntry, Change, Durability, Store};

/// `--database-url` and `--durability`.
pub type Database = (String, Durability);

/// What `smshub keys` was asked.
pub enum KeysCommand {
    Create {
        name: String,
        scopes: Vec<String>,
        expires: Option<String>,
        devices: Vec<String>,
        limits: KeyLimits,
        json: bool,
        database: Database,
    },
    List {
        json: bool,
        database: Database,
    },
    Show {
        key: String,
        json: bool,
        database: Database,
    },
    Revoke {
        key: String,
        database: Database,
    },
    Rotate {
        key: String,
        json: bool,
        database: Database,
    },
}

/// What `smshub users` was asked.
pub enum UsersCommand {
    Add {
        username: String,
        role: String,
        password: Option<String>,
        database: Database,
    },
    List {
        json: bool,
        database: Database,
    },
    Remove {
        username: String,
        database: Database,
    },
    Passwd {
        username: String,
        password: Option<String>,
        database: Database,
    },
}

async fn open(database: &Database) -> anyhow::Result<Store> {
    Store::open(&database.0, database.1)
        .await
        .with_context(|| format!("opening the database {}", database.0))
}

async fn audit(store: &Store, action: &str, target: &str) -> anyhow::Result<()> {
    let entry = AuditEntry {
        at: now_millis(),
        actor: "cli".to_string(),
        action: action.to_string(),
        target: Some(target.to_string()),
        ok: true,
        detail: None,
    };
    store
        .apply(Change::Access(AccessChange::Audit(entry)))
        .await?;
    Ok(())
}

fn say(line: impl std::fmt::Display) {
    crate::logging::say(format_args!("{line}"));
}

/// Runs a `keys` command.
pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            expires,
            devices,
            limits,
            json,
            database,
        } => {
            let now = now_millis();
            let scopes = if scopes.is_empty() {
                Scopes::ALL
            } else {
                Scopes::parse(&scopes.join(" ")).map_err(anyhow::Error::msg)?
            };
            let spec = KeySpec {
                name: name.clone(),
                scopes,
                expires_at: expires
                    .map(|it| parse_expires(&it, now))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                devices: AllowedDevices::parse(&devices.join(",")).map_err(anyhow::Error::msg)?,
                limits,
            };
            let store = open(&database).await?;
            let key = create_key(&store, &spec, Some("cli")).await?;
            audit(&store, "key.create", &key.prefix).await?;
            store.flush().await?;
            if json {
                let record = find_keys(&store, &key.id.to_string()).await?;
                let mut body =
                    serde_json::to_value(record.first().map(|it| KeyView::new(it, now)))?;
                body["key"] = key.secret.into();
                say(body);
            } else {
                say(format_args!(
                    "Created API key {:?} (id {}, prefix {}, scopes: {}). It is shown only once:",
                    key.name, key.id, key.prefix, spec.scopes
                ));
                say(key.secret);
            }
            Ok(())
        }
        KeysCommand::List { json, database } => {
            let store = open(&database).await?;
            let now = now_millis();
            let keys: Vec<KeyView> = store
                .list_api_keys()
                .await?
                .iter()
                .map(|it| KeyView::new(it, now))
                .collect();
            if json {
                say(serde_json::to_string(&keys)?);
            } else {
                say(table(&keys));
            }
            Ok(())
        }
        KeysCommand::Show {
            key,
            json,
            database,
        } => {
            let store = open(&database).await?;
            let now = now_millis();
            let keys: Vec<KeyView> = find_keys(&store, &key)
                .await?
                .iter()
                .map(|it| KeyView::new(it, now))
                .collect();
            if keys.is_empty() {
                anyhow::bail!("no API key has the id or prefix {key:?}");
            }
            if json {
                say(serde_json::to_string_pretty(&keys)?);
            } else {
                say(table(&keys));
            }
            Ok(())
        }
        KeysCommand::Revoke { key, database } => {
            let store = open(&database).await?;
            if !revoke_api_key(&store, &key).await? {
                anyhow::bail!("no unrevoked API key has the id or prefix {key:?}");
            }
            audit(&store, "key.revoke", &key).await?;
            store.flush().await?;
            say(format_args!("Revoked API key {key}."));
            Ok(())
        }
        KeysCommand::Rotate {
            key,
            json,
            database,
        } => {
            let store = open(&database).await?;
            let old = find_keys(&store, &key)
                .await?
                .into_iter()
                .find(|it| !it.revoked)
                .with_context(|| format!("no unrevoked API key has the id or prefix {key:?}"))?;
            let new = rotate_api_key(&store, &old, Some("cli"))
                .await?
                .with_context(|| format!("the API key {key:?} was revoked meanwhile"))?;
            audit(&store, "key.rotate", &old.prefix).await?;
            store.flush().await?;
            if json {
                say(serde_json::json!({
                    "id": new.id, "prefix": new.prefix, "key": new.secret, "replaces": old.prefix,
                }));
            } else {
                say(format_args!(
                    "Rotated {}: it is revoked; the new key {} (id {}) is shown only once:",
                    old.prefix, new.prefix, new.id
                ));
                say(new.secret);
            }
            Ok(())
        }
    }
}

/// Keys as a table for people.
fn table(keys: &[KeyView]) -> String {
    let mut out = format!(
        "{:<11} {:<20} {:<8} {:<20} {:<20} {}\n",
        "PREFIX", "NAME", "STATUS", "EXPIRES", "LAST USED", "SCOPES"
    );
    for key in keys {
        let short = |it: &Option<String>| {
            it.as_deref()
                .map(|it| it.chars().take(19).collect())
                .unwrap_or_else(|| "-".to_string())
        };
        let mut scopes = key.scopes.to_string();
        if let Some(devices) = &key.devices {
            scopes.push_str(&format!(" (devices: {})", devices.join(",")));
        }
        out.push_str(&format!(
            "{:<11} {:<20} {:<8} {:<20} {:<20} {}\n",
            key.prefix,
            key.name.chars().take(20).collect::<String>(),
            key.status,
            short(&key.expires_at),
            short(&key.last_used_at),
            scopes
        ));
    }
    out.trim_end().to_string()
}

/// Runs a `users` command.
pub async fn users(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add {
            username,
            role,
            password,
            database,
        } => {
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let generated = password.is_none().then(generate_password);
            let password = password.or(generated.clone()).unwrap_or_default();
            let store = open(&database).await?;
            if !add_user(&store, &username, &password, role).await? {
                anyhow::bail!("a user named {username:?} exists already");
            }
            audit(&store, "user.add", &username).await?;
            store.flush().await?;
            say(format_args!(
                "Added user {username:?} (role {}).",
                role.as_str()
            ));
            if let Some(password) = generated {
                say(format_args!("Its password is shown only once: {password}"));
            }
            Ok(())
        }
        UsersCommand::List { json, database } => {
            let store = open(&database).await?;
            let users = store.list_users().await?;
            if json {
                let list: Vec<serde_json::Value> = users
                    .iter()
                    .map(|it| {
                        serde_json::json!({
                            "id": it.id, "username": it.username, "role": it.role,
                            "created_at": crate::domain::format_millis(it.created_at),
                        })
                    })
                    .collect();
                say(serde_json::to_string(&list)?);
            } else {
                say(format_args!("{:<24} {:<9} CREATED", "USERNAME", "ROLE"));
                for user in users {
                    say(format_args!(
                        "{:<24} {:<9} {}",
                        user.username,
                        user.role,
                        crate::domain::format_millis(user.created_at)
                    ));
                }
            }
            Ok(())
        }
        UsersCommand::Remove { username, database } => {
            let store = open(&database).await?;
            // A hub keeps an admin, as `DELETE /api/users/{username}` does (`last_admin`).
            if !remove_user_keeping_an_admin(&store, &username).await? {
                if store.find_user(username.trim()).await?.is_some() {
                    anyhow::bail!(
                        "{username:?} is the last admin and is not removed: a hub keeps an \
                         admin (add another with `smshub users add NAME --role admin` first)"
                    );
                }
                anyhow::bail!("no user is named {username:?}");
            }
            audit(&store, "user.remove", &username).await?;
            store.flush().await?;
            say(format_args!(
                "Removed user {username:?}; its sessions ended."
            ));
            Ok(())
        }
        UsersCommand::Passwd {
            username,
            password,
            database,
        } => {
            let generated = password.is_none().then(generate_password);
            let password = password.or(generated.clone()).unwrap_or_default();
            let store = open(&database).await?;
            if !set_password(&store, &username, &password).await? {
                anyhow::bail!("no user is named {username:?}");
            }
            audit(&store, "user.passwd", &username).await?;
            store.flush().await?;
            say(format_args!(
                "Set the password of {username:?}; its sessions ended."
            ));
            if let Some(password) = generated {
                say(format_args!(
                    "The new password is shown only once: {password}"
                ));
            }
            Ok(())
        }
    }
}
