//! The API's answers as tables for people: aligned columns, one row per item, nothing
//! truncated beyond recognition.

use serde_json::Value;

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|it| it.chars().count()).collect();
    for row in &rows {
        for (at, cell) in row.iter().enumerate() {
            widths[at] = widths[at].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (at, cell) in cells.iter().enumerate() {
            if at + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[at] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(header.iter().map(|it| it.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

/// The array `body[key]`, empty when it is missing.
fn items<'a>(body: &'a Value, key: &str) -> &'a [Value] {
    body[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A JSON field as a cell: strings bare, null as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(it) => it.clone(),
        other => other.to_string(),
    }
}

/// `text` cut to `max` characters, with `…` when cut.
fn short(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// `GET /api/sms` as a table.
pub fn messages(body: &Value) -> String {
    let rows = items(body, "messages")
        .iter()
        .map(|it| {
            vec![
                cell(&it["id"]),
                cell(&it["state"]),
                cell(&it["phone_number"]),
                cell(&it["device_id"]),
                cell(&it["created_at"]),
                short(it["message"].as_str().unwrap_or_default(), 40),
            ]
        })
        .collect();
    let total = body["total"].as_u64().unwrap_or(0);
    format!(
        "{}\n({total} in all)",
        table(&["ID", "STATE", "TO", "DEVICE", "CREATED", "TEXT"], rows)
    )
}

/// `GET /api/sms/{id}` as fields and its history.
pub fn message(body: &Value) -> String {
    let mut out = Vec::new();
    for field in [
        "id",
        "state",
        "phone_number",
        "parts",
        "device_id",
        "sim_slot",
        "attempts",
        "created_at",
        "waiting_reason",
    ] {
        if !body[field].is_null() {
            out.push(format!("{field:<15} {}", cell(&body[field])));
        }
    }
    if let Some(error) = body["error"].as_object() {
        out.push(format!(
            "{:<15} {} ({})",
            "error",
            cell(&error["code"].clone()),
            cell(&error["message"].clone())
        ));
    }
    out.push(format!("{:<15} {}", "message", cell(&body["message"])));
    let history: Vec<Vec<String>> = items(body, "history")
        .iter()
        .map(|it| {
            vec![
                cell(&it["at"]),
                cell(&it["event"]),
                cell(&it["device_id"]),
                cell(&it["detail"]),
            ]
        })
        .collect();
    if !history.is_empty() {
        out.push(String::new());
        out.push(table(&["AT", "EVENT", "DEVICE", "DETAIL"], history));
    }
    out.join("\n")
}

/// `GET /api/devices` as a table.
pub fn devices(body: &Value) -> String {
    let rows = items(body, "devices")
        .iter()
        .map(|it| {
            let battery = match it["battery"]["level"].as_u64() {
                Some(level) if it["battery"]["charging"] == true => format!("{level}% +"),
                Some(level) => format!("{level}%"),
                None => "-".into(),
            };
            let signal = it["sims"]
                .as_array()
                .map(|sims| {
                    sims.iter()
                        .map(|sim| match sim["signal_dbm"].as_i64() {
                            Some(dbm) => format!("{}:{dbm}dBm", cell(&sim["slot"])),
                            None => format!("{}:-", cell(&sim["slot"])),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|it| !it.is_empty())
                .unwrap_or_else(|| "-".into());
            vec![
                cell(&it["id"]),
                cell(&it["name"]),
                cell(&it["kind"]),
                if it["online"] == true {
                    "online"
                } else {
                    "offline"
                }
                .into(),
                battery,
                signal,
                format!("{}/{}", cell(&it["in_flight"]), cell(&it["max_in_flight"])),
                format!("{}/{}", cell(&it["sent_count"]), cell(&it["failed_count"])),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "KIND",
            "STATE",
            "BATTERY",
            "SIGNAL",
            "IN-FLIGHT",
            "SENT/FAILED",
        ],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_line_up_and_nothing_is_cut_but_the_text() {
        let body = json!({"total": 2, "messages": [
            {"id": "a", "state": "sent", "phone_number": "+14155552671", "device_id": "dev-long-name",
             "created_at": "2026-12-04T10:00:00Z", "message": "x".repeat(60)},
            {"id": "bb", "state": "queued", "phone_number": "+1", "device_id": null,
             "created_at": "2026-12-04T10:00:01Z", "message": "hi"},
        ]});
        let text = messages(&body);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let column = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1].find("sent"), Some(column), "{text}");
        assert_eq!(lines[2].find("queued"), Some(column), "{text}");
        assert!(lines[1].contains("dev-long-name"));
        assert!(lines[1].ends_with('…'));
        assert!(lines[2].contains(" - "));
        assert_eq!(lines[3], "(2 in all)");
    }
}
