//! Settings from files: a TOML config file (`--config smshub.toml` or `SMSHUB_CONFIG`) and a
//! `.env` file in the working directory, layered under the command line.
//!
//! Every flag that has an `SMSHUB_*` environment variable can also be written in the config
//! file, under the variable's name without the prefix, in lower case (`SMSHUB_HEARTBEAT_S` →
//! `heartbeat_s = 30`). The precedence is flags > environment > `.env` > config file >
//! built-in defaults: the files only change the defaults clap falls back to, so clap's own
//! order (flag, then environment, then default) does the rest and nothing writes to the
//! process environment.
//!
//! Must never: know which flags exist (they come from the `clap::Command` it is given) or
//! accept a setting that no flag reads (a typo is an error with its file and line).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};

/// The prefix of every environment variable of the hub.
const PREFIX: &str = "SMSHUB_";

/// One setting read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable it stands for, e.g. `SMSHUB_HEARTBEAT_S`.
    pub env: String,
    /// The value as a flag would be given it (lists joined by their delimiter).
    pub value: String,
    /// Where it was written, `file:line`, for error messages.
    pub origin: String,
}

/// The config file named by `--config PATH` (or `--config=PATH`) in `args`, else by
/// `SMSHUB_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("SMSHUB_CONFIG").map(PathBuf::from)
}

/// The settings of a TOML config file, in file order.
pub fn read_config(path: &Path) -> Result<Vec<Setting>, Vec<String>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| vec![format!("{name}: {err}")])?;
    let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
        let line = err
            .span()
            .map(|span| line_of(&text, span.start))
            .unwrap_or(1);
        vec![format!("{name}:{line}: {}", err.message())]
    })?;
    let mut errors = Vec::new();
    let mut settings = Vec::new();
    for (key, value) in table {
        let origin = format!("{name}:{}", key_line(&text, &key));
        match toml_value(&value) {
            Some(value) => settings.push(Setting {
                env: format!("{PREFIX}{}", key.to_ascii_uppercase().replace('-', "_")),
                value,
                origin,
            }),
            None => errors.push(format!(
                "{origin}: {key}: a setting is a string, number, boolean or list of those"
            )),
        }
    }
    settings.sort_by_key(|it| line_number(&it.origin));
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(errors)
    }
}

/// The `SMSHUB_*` settings of a `.env` file (`KEY=value` lines, as the environment would have
/// them); other variables in it are not the hub's and are left alone.
pub fn read_dotenv(path: &Path) -> Result<Vec<Setting>, Vec<String>> {
    let name = path.display().to_string();
    let items = match dotenvy::from_path_iter(path) {
        Ok(items) => items,
        Err(err) => return Err(vec![format!("{name}: {err}")]),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut settings = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        match item {
            Ok((env, value)) if env.starts_with(PREFIX) && env != "SMSHUB_CONFIG" => {
                let origin = format!("{name}:{}", key_line(&text, &env));
                settings.push(Setting { env, value, origin });
            }
            Ok(_) => {}
            Err(err) => errors.push(format!("{name}: {err}")),
        }
    }
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(errors)
    }
}

/// `command` with the defaults of its flags taken from `layers`, the first layer winning over
/// later ones. A setting no flag reads, or a value its flag would refuse, is an error naming
/// the file and line; the real environment keeps winning over every layer.
pub fn apply(mut command: Command, layers: &[Vec<Setting>]) -> Result<Command, Vec<String>> {
    let known = flags_by_env(&command);
    let mut chosen: BTreeMap<String, Setting> = BTreeMap::new();
    let mut errors = Vec::new();
    for setting in layers.iter().rev().flatten() {
        match known.get(&setting.env) {
            None => errors.push(format!(
                "{}: unknown setting {} (see `smshub config example`)",
                setting.origin,
                setting_name(&setting.env)
            )),
            Some(arg) => match check_value(arg, &setting.value) {
                Ok(()) => {
                    chosen.insert(setting.env.clone(), setting.clone());
                }
                Err(why) => errors.push(format!(
                    "{}: {}: {why}",
                    setting.origin,
                    setting_name(&setting.env)
                )),
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for setting in chosen.values() {
        command = with_default(command, &setting.env, &setting.value);
    }
    Ok(command)
}

/// A commented config file holding every setting of `command`'s subcommand `of`, each with its
/// help and default (commented out, so the file changes nothing until edited).
pub fn example(command: &Command, of: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# smshub config file: `smshub {of} --config smshub.toml` (or SMSHUB_CONFIG=smshub.toml).\n\
         # Precedence: flags > environment > .env > this file > defaults.\n\
         # Every setting is a flag's environment variable without SMSHUB_, in lower case."
    );
    let Some(sub) = command.find_subcommand(of) else {
        return out;
    };
    let mut args: Vec<&Arg> = command.get_arguments().chain(sub.get_arguments()).collect();
    args.sort_by_key(|it| it.get_env().map(|it| it.to_os_string()));
    args.dedup_by_key(|it| it.get_env().map(|it| it.to_os_string()));
    for arg in args {
        let Some(env) = arg.get_env().and_then(|it| it.to_str()) else {
            continue;
        };
        if env == "SMSHUB_CONFIG" {
            continue;
        }
        let help = arg.get_help().map(|it| it.to_string()).unwrap_or_default();
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|it| it.to_string_lossy().into_owned())
            .collect();
        let _ = writeln!(out);
        for line in help.lines() {
            let _ = writeln!(out, "# {line}");
        }
        let name = setting_name(env);
        match default.as_slice() {
            [] if takes_no_value(arg) => {
                let _ = writeln!(out, "# {name} = false");
            }
            [] => {
                let _ = writeln!(out, "# {name} =");
            }
            values => {
                let _ = writeln!(out, "# {name} = {}", toml_literal(&values.join(",")));
            }
        }
    }
    out
}

/// Every flag of `command` and its subcommands that has an `SMSHUB_*` variable, by variable.
fn flags_by_env(command: &Command) -> BTreeMap<String, Arg> {
    let mut found = BTreeMap::new();
    collect(command, &mut found);
    found.remove("SMSHUB_CONFIG");
    found
}

fn collect(command: &Command, found: &mut BTreeMap<String, Arg>) {
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env().and_then(|it| it.to_str())
            && env.starts_with(PREFIX)
        {
            found.entry(env.to_string()).or_insert_with(|| arg.clone());
        }
    }
    for sub in command.get_subcommands() {
        collect(sub, found);
    }
}

/// `command` (and every subcommand) with the flag read from `env` defaulting to `value`.
fn with_default(command: Command, env: &str, value: &str) -> Command {
    let command = command.mut_args(|arg| {
        if arg.get_env().and_then(|it| it.to_str()) == Some(env) {
            arg.default_value(value.to_string())
        } else {
            arg
        }
    });
    command.mut_subcommands(|sub| with_default(sub, env, value))
}

/// Whether `arg` would accept `value` (as if given as its flag).
fn check_value(arg: &Arg, value: &str) -> Result<(), String> {
    if takes_no_value(arg) {
        return match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("expected true or false, got {value:?}")),
        };
    }
    let long = arg.get_long().unwrap_or("value");
    let probe = Command::new("smshub")
        .no_binary_name(true)
        .arg(arg.clone().required(false).env(None::<&str>));
    probe
        .try_get_matches_from([format!("--{long}={value}")])
        .map(|_| ())
        .map_err(|err| {
            let text = err.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        })
}

fn takes_no_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// `SMSHUB_HEARTBEAT_S` → `heartbeat_s`.
fn setting_name(env: &str) -> String {
    env.strip_prefix(PREFIX).unwrap_or(env).to_ascii_lowercase()
}

/// A TOML value as a flag would take it; lists are joined with commas (the delimiter of every
/// list flag). `None` for tables and dates.
fn toml_value(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(it) => Some(it.clone()),
        toml::Value::Integer(it) => Some(it.to_string()),
        toml::Value::Float(it) => Some(it.to_string()),
        toml::Value::Boolean(it) => Some(it.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|it| match it {
                toml::Value::Array(_) => None,
                other => toml_value(other),
            })
            .collect::<Option<Vec<_>>>()
            .map(|it| it.join(",")),
        toml::Value::Table(_) | toml::Value::Datetime(_) => None,
    }
}

/// How a default is best written in the example file.
fn toml_literal(value: &str) -> String {
    if value == "true" || value == "false" || value.parse::<f64>().is_ok() {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is set (1 when it cannot be found).
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("export ").unwrap_or(line);
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(1, |at| at + 1)
}

fn line_number(origin: &str) -> usize {
    origin
        .rsplit(':')
        .next()
        .and_then(|it| it.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> Command {
        Command::new("smshub")
            .arg(Arg::new("log").long("log").env("SMSHUB_LOG").global(true))
            .subcommand(
                Command::new("serve")
                    .arg(
                        Arg::new("heartbeat_s")
                            .long("heartbeat-s")
                            .env("SMSHUB_HEARTBEAT_S")
                            .value_parser(clap::value_parser!(u32))
                            .default_value("30"),
                    )
                    .arg(
                        Arg::new("modem")
                            .long("modem")
                            .env("SMSHUB_MODEM")
                            .value_delimiter(','),
                    )
                    .arg(
                        Arg::new("scan")
                            .long("modem-scan")
                            .env("SMSHUB_MODEM_SCAN")
                            .action(ArgAction::SetTrue),
                    ),
            )
    }

    fn setting(env: &str, value: &str, line: usize) -> Setting {
        Setting {
            env: env.into(),
            value: value.into(),
            origin: format!("smshub.toml:{line}"),
        }
    }

    #[test]
    fn the_first_layer_wins_and_a_flag_wins_over_every_layer() {
        let file = vec![setting("SMSHUB_HEARTBEAT_S", "7", 1)];
        let dotenv = vec![setting("SMSHUB_HEARTBEAT_S", "8", 1)];
        let command = apply(command(), &[dotenv, file.clone()]).unwrap();
        let matches = command.clone().get_matches_from(["smshub", "serve"]);
        let serve = matches.subcommand_matches("serve").unwrap();
        assert_eq!(serve.get_one::<u32>("heartbeat_s"), Some(&8));

        let command = apply(self::command(), &[file]).unwrap();
        let matches = command
            .clone()
            .get_matches_from(["smshub", "serve", "--heartbeat-s", "9"]);
        let serve = matches.subcommand_matches("serve").unwrap();
        assert_eq!(serve.get_one::<u32>("heartbeat_s"), Some(&9));
        let matches = command.get_matches_from(["smshub", "serve"]);
        let serve = matches.subcommand_matches("serve").unwrap();
        assert_eq!(serve.get_one::<u32>("heartbeat_s"), Some(&7));
    }

    #[test]
    fn lists_and_switches_are_read() {
        let file = vec![
            setting("SMSHUB_MODEM", "/dev/ttyUSB0,/dev/ttyUSB2", 1),
            setting("SMSHUB_MODEM_SCAN", "true", 2),
        ];
        let command = apply(command(), &[file]).unwrap();
        let matches = command.get_matches_from(["smshub", "serve"]);
        let serve = matches.subcommand_matches("serve").unwrap();
        let modems: Vec<&String> = serve.get_many("modem").unwrap().collect();
        assert_eq!(modems, ["/dev/ttyUSB0", "/dev/ttyUSB2"]);
        assert!(serve.get_flag("scan"));
    }

    #[test]
    fn unknown_settings_and_bad_values_name_their_line() {
        let file = vec![
            setting("SMSHUB_HEARTBEAT", "7", 3),
            setting("SMSHUB_HEARTBEAT_S", "soon", 4),
            setting("SMSHUB_MODEM_SCAN", "yes", 5),
        ];
        let errors = apply(command(), &[file]).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("smshub.toml:3: unknown setting heartbeat"));
        assert!(errors[1].starts_with("smshub.toml:4: heartbeat_s: invalid value"));
        assert!(errors[2].starts_with("smshub.toml:5: modem_scan: expected true or false"));
    }

    #[test]
    fn a_toml_file_becomes_settings_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smshub.toml");
        std::fs::write(
            &path,
            "# comment\nheartbeat_s = 12\nmodem = [\"/dev/ttyUSB0\", \"/dev/ttyUSB2\"]\nmodem_scan = true\n",
        )
        .unwrap();
        let settings = read_config(&path).unwrap();
        let got: Vec<(&str, &str)> = settings
            .iter()
            .map(|it| (it.env.as_str(), it.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("SMSHUB_HEARTBEAT_S", "12"),
                ("SMSHUB_MODEM", "/dev/ttyUSB0,/dev/ttyUSB2"),
                ("SMSHUB_MODEM_SCAN", "true"),
            ]
        );
        assert!(settings[0].origin.ends_with("smshub.toml:2"));

        std::fs::write(&path, "heartbeat_s = \n").unwrap();
        let errors = read_config(&path).unwrap_err();
        assert!(errors[0].contains("smshub.toml:1:"), "{errors:?}");
    }

    #[test]
    fn the_config_path_comes_from_the_flag() {
        let args: Vec<OsString> = ["smshub", "serve", "--config", "a.toml"]
            .into_iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("a.toml")));
        let args: Vec<OsString> = ["smshub", "--config=b.toml", "serve"]
            .into_iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("b.toml")));
    }

    #[test]
    fn the_example_lists_every_setting_with_its_default() {
        let text = example(&command(), "serve");
        assert!(text.contains("# heartbeat_s = 30"), "{text}");
        assert!(text.contains("# modem_scan = false"), "{text}");
        assert!(text.contains("# log ="), "{text}");
    }
}
