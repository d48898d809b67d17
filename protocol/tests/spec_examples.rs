//! Keeps `android-client-spec/` true to the wire types in `smshub_protocol::device`.
//!
//! Phone developers implement the device protocol from that folder alone, so its examples are
//! part of the contract: every example file must parse as the frame its name says, survive a
//! round trip, name no field the types do not know (a misspelt optional field would otherwise be
//! ignored silently), and appear verbatim in the README. Every frame variant needs an example, so
//! adding a frame without documenting it fails here. This test reads files only; it never
//! writes.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use smshub_protocol::device::{DeviceFrame, ErrorCode, HubFrame};

/// Which end of the socket sends a frame; decides the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Device,
    Hub,
}

/// One example file of `android-client-spec/examples`.
struct Example {
    name: String,
    side: Side,
    text: String,
}

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../android-client-spec")
}

fn readme() -> String {
    let path = spec_dir().join("README.md");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every `*.json` in the examples folder, sorted by name. A file must say in its name which
/// side sends it (`device-` or `hub-`), so the test knows which parser applies.
fn examples() -> Vec<Example> {
    let dir = spec_dir().join("examples");
    let entries =
        fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut examples: Vec<Example> = entries
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|it| it.to_str())
                .expect("UTF-8 file name")
                .to_string();
            let side = if name.starts_with("device-") {
                Side::Device
            } else if name.starts_with("hub-") {
                Side::Hub
            } else {
                panic!("{name}: example names start with `device-` or `hub-`");
            };
            let text =
                fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
            Example { name, side, text }
        })
        .collect();
    examples.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!examples.is_empty(), "no examples in {}", dir.display());
    examples
}

/// Parses `text` as a frame sent by `side`, serialises it again and parses that, and returns
/// the canonical JSON value of the frame.
fn parse_round_trip(side: Side, text: &str) -> Result<Value, String> {
    match side {
        Side::Device => {
            let frame = DeviceFrame::parse(text).map_err(|e| e.to_string())?;
            let json = frame.to_json();
            let again =
                DeviceFrame::parse(&json).map_err(|e| format!("re-parse of {json}: {e}"))?;
            assert_eq!(frame, again, "round trip through {json}");
            serde_json::from_str(&json).map_err(|e| e.to_string())
        }
        Side::Hub => {
            let frame = HubFrame::parse(text).map_err(|e| e.to_string())?;
            let json = frame.to_json();
            let again = HubFrame::parse(&json).map_err(|e| format!("re-parse of {json}: {e}"))?;
            assert_eq!(frame, again, "round trip through {json}");
            serde_json::from_str(&json).map_err(|e| e.to_string())
        }
    }
}

/// Checks that everything `shown` spells out is in the canonical serialisation with the same
/// value. Fields the example leaves out (defaults) are fine; fields the types do not know are
/// not.
fn assert_known(shown: &Value, canonical: &Value, path: &str, context: &str) {
    match (shown, canonical) {
        (Value::Object(shown), Value::Object(canonical)) => {
            for (key, value) in shown {
                let Some(expected) = canonical.get(key) else {
                    panic!(
                        "{context}: field `{path}.{key}` is not part of the frame (misspelt, or null?)"
                    );
                };
                assert_known(value, expected, &format!("{path}.{key}"), context);
            }
        }
        (Value::Array(shown), Value::Array(canonical)) => {
            assert_eq!(
                shown.len(),
                canonical.len(),
                "{context}: length of `{path}`"
            );
            for (i, (value, expected)) in shown.iter().zip(canonical).enumerate() {
                assert_known(value, expected, &format!("{path}[{i}]"), context);
            }
        }
        _ => assert_eq!(shown, canonical, "{context}: value of `{path}`"),
    }
}

fn frame_type(value: &Value) -> String {
    value
        .get("type")
        .and_then(Value::as_str)
        .expect("every frame has a type")
        .to_string()
}

/// The `type` names of every variant of a frame enum, as serde knows them. Read from serde's
/// "unknown variant" error so that a variant added to the enum shows up here without anyone
/// remembering to list it.
fn variant_names<T: serde::de::DeserializeOwned>(enum_name: &str) -> Vec<String> {
    let probe = serde_json::json!({ "type": "\u{1}no such frame" });
    let message = match serde_json::from_value::<T>(probe) {
        Ok(_) => panic!("{enum_name}: the probe type parsed"),
        Err(e) => e.to_string(),
    };
    let Some((_, list)) = message.split_once("expected one of") else {
        panic!("{enum_name}: serde's error no longer lists the variants: {message}");
    };
    let names: Vec<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(
        names.len() >= 2,
        "{enum_name}: could not read variant names from {message}"
    );
    names
}

/// The bodies of the README's fenced code blocks whose info string is exactly `lang`.
fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    // The block being read, if any: whether it is wanted, and its body so far. Blocks of other
    // languages are tracked too, so that their closing fence is not taken for an opening one.
    let mut current: Option<(bool, String)> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (current.take(), fence) {
            (None, Some(info)) => current = Some((info.trim() == lang, String::new())),
            (None, None) => {}
            (Some((wanted, body)), Some(_)) => {
                if wanted {
                    blocks.push(body);
                }
            }
            (Some((wanted, mut body)), None) => {
                body.push_str(line);
                body.push('\n');
                current = Some((wanted, body));
            }
        }
    }
    assert!(current.is_none(), "the README has an unclosed code fence");
    blocks
}

#[test]
fn every_example_parses_round_trips_and_names_only_known_fields() {
    for example in examples() {
        let canonical = parse_round_trip(example.side, &example.text).unwrap_or_else(|e| {
            panic!(
                "{} does not parse as a {:?} frame: {e}",
                example.name, example.side
            )
        });
        let shown: Value = serde_json::from_str(&example.text).expect("parsed above");
        assert_known(&shown, &canonical, "", &example.name);
        let kind = frame_type(&canonical);
        let prefix = match example.side {
            Side::Device => "device-",
            Side::Hub => "hub-",
        };
        assert!(
            example.name.starts_with(&format!("{prefix}{kind}")),
            "{} holds a `{kind}` frame; name it {prefix}{kind}[-variant].json",
            example.name
        );
    }
}

#[test]
fn every_frame_variant_has_an_example() {
    let examples = examples();
    let shown = |side: Side| -> Vec<String> {
        examples
            .iter()
            .filter(|it| it.side == side)
            .map(|it| frame_type(&serde_json::from_str(&it.text).expect("example is JSON")))
            .collect()
    };
    let device_shown = shown(Side::Device);
    let hub_shown = shown(Side::Hub);
    for name in variant_names::<DeviceFrame>("DeviceFrame") {
        assert!(
            device_shown.contains(&name),
            "device frame `{name}` has no examples/device-{name}.json"
        );
    }
    for name in variant_names::<HubFrame>("HubFrame") {
        assert!(
            hub_shown.contains(&name),
            "hub frame `{name}` has no examples/hub-{name}.json"
        );
    }
}

#[test]
fn the_readme_shows_every_example_file_verbatim() {
    let blocks: Vec<Value> = fenced_blocks(&readme(), "json")
        .iter()
        .map(|block| {
            serde_json::from_str(block)
                .unwrap_or_else(|e| panic!("README json block is not JSON: {e}\n{block}"))
        })
        .collect();
    for example in examples() {
        let value: Value = serde_json::from_str(&example.text).expect("example is JSON");
        assert!(
            blocks.contains(&value),
            "README does not show {} verbatim in a ```json block",
            example.name
        );
    }
}

#[test]
fn every_json_block_in_the_readme_is_a_frame() {
    let blocks = fenced_blocks(&readme(), "json");
    assert!(!blocks.is_empty(), "the README has no ```json blocks");
    for block in blocks {
        let device = parse_round_trip(Side::Device, &block);
        let hub = parse_round_trip(Side::Hub, &block);
        let canonical = match (device, hub) {
            (Ok(value), _) | (_, Ok(value)) => value,
            (Err(device), Err(hub)) => {
                panic!(
                    "README json block is neither a device frame ({device}) nor a hub frame ({hub}):\n{block}"
                )
            }
        };
        let shown: Value = serde_json::from_str(&block).expect("parsed above");
        assert_known(&shown, &canonical, "", &format!("README block\n{block}"));
    }
}

#[test]
fn every_transcript_line_in_the_readme_is_a_frame() {
    // Transcript lines look like `device> {...}` and `hub> {...}`, one frame each.
    let mut lines = 0;
    for line in readme().lines() {
        let (side, text) = if let Some(text) = line.strip_prefix("device> ") {
            (Side::Device, text)
        } else if let Some(text) = line.strip_prefix("hub> ") {
            (Side::Hub, text)
        } else {
            continue;
        };
        let canonical = parse_round_trip(side, text)
            .unwrap_or_else(|e| panic!("transcript line is not a {side:?} frame: {e}\n{line}"));
        let shown: Value = serde_json::from_str(text).expect("parsed above");
        assert_known(&shown, &canonical, "", line);
        lines += 1;
    }
    assert!(
        lines >= 10,
        "the README's example session should have at least 10 frames, found {lines}"
    );
}

#[test]
fn the_readme_error_code_table_matches_error_code() {
    let readme = readme();
    for code in ErrorCode::ALL {
        let temporary = if code.is_temporary() { "yes" } else { "no" };
        let row = format!("| `{}` | {temporary} |", code.as_str());
        assert!(
            readme.lines().any(|line| line.starts_with(&row)),
            "README error table lacks a row starting {row}"
        );
    }
}
