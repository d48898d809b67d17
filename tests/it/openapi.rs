//! The OpenAPI document and the routes stay in step: every route of the table in
//! `src/api/allow.rs` is documented with its methods and nothing else is; every `warp::path!`
//! in the source is in that table; on a live hub, no documented operation answers "no such
//! endpoint" or `405`, and every method a path does not take answers `405`. Swagger UI is
//! served from the binary.

use std::collections::BTreeSet;

use serde_json::Value;
use smshub::api::allow::ROUTES;

use crate::support::TestHub;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// (method, path) of every operation of the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

/// (method, path) of every route of the table (`HEAD` goes with `GET`).
fn routed() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .flat_map(|route| {
            route
                .methods
                .iter()
                .filter(|method| **method != "HEAD")
                .map(|method| (method.to_lowercase(), route.path.to_string()))
        })
        .collect()
}

fn list(items: impl IntoIterator<Item = (String, String)>) -> String {
    items
        .into_iter()
        .map(|(method, path)| format!("\n  {} {path}", method.to_uppercase()))
        .collect()
}

#[tokio::test]
async fn every_route_is_documented_and_nothing_else() {
    let hub = TestHub::spawn().await;
    let (status, doc) = hub.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let documented = documented(&doc);
    let routed = routed();
    let undocumented: Vec<_> = routed.difference(&documented).cloned().collect();
    let unrouted: Vec<_> = documented.difference(&routed).cloned().collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes in src/api/allow.rs without a #[utoipa::path] in src/api/openapi/paths.rs \
         (add one and list it in ApiDoc):{}\ndocumented operations missing from src/api/allow.rs:{}",
        list(undocumented),
        list(unrouted),
    );
}

/// Every `/api` operation names its credential and scope, and each error answer the
/// shared error schema.
#[tokio::test]
async fn api_operations_name_their_scope_and_error_codes() {
    let hub = TestHub::spawn().await;
    let (_, doc) = hub.get("/openapi.json").await;
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let mut unscoped = Vec::new();
    for (method, path) in documented(&doc) {
        let operation = &doc["paths"][&path][&method];
        for (status, answer) in operation["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                let description = answer["description"].as_str().unwrap_or_default();
                // Health probes answer their own shape with 503.
                if !path.starts_with("/health") {
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                    assert!(
                        description.contains('`'),
                        "{method} {path} {status} names no code"
                    );
                }
            }
        }
        if !path.starts_with("/api/") {
            continue;
        }
        let description = operation["description"].as_str().unwrap_or_default();
        let open = operation["security"] == serde_json::json!([{}])
            && description.contains("No credential needed");
        let any = operation["security"][0]["api_key"] == serde_json::json!([])
            && description.contains("Any valid credential");
        if open || any {
            continue;
        }
        let scope = operation["security"][0]["api_key"][0].as_str();
        let described = scope.is_some_and(|scope| {
            operation["description"]
                .as_str()
                .is_some_and(|it| it.contains(scope))
        });
        if !described
            || scope
                .and_then(|it| it.parse::<smshub::auth::Scope>().ok())
                .is_none()
        {
            unscoped.push((method, path));
        }
    }
    assert!(
        unscoped.is_empty(),
        "/api operations without a scope (add them to SCOPES in src/api/openapi/mod.rs):{}",
        list(unscoped)
    );
}

/// A concrete path for a template: each parameter its documented example, else `1` for
/// `{index}` and `x` for the others.
fn concrete(doc: &Value, template: &str) -> String {
    let mut path = template.replace("{index}", "1");
    for item in doc["paths"][template]
        .as_object()
        .into_iter()
        .flat_map(|it| it.values())
    {
        for parameter in item["parameters"].as_array().into_iter().flatten() {
            if let (Some(name), Some(example)) =
                (parameter["name"].as_str(), parameter["example"].as_str())
                && parameter["in"] == "path"
            {
                path = path.replace(&format!("{{{name}}}"), example);
            }
        }
    }
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether another documented template of `method` also matches `path` (its `{…}`
/// segments matching any one segment), so the method reaches that template's handler.
fn shadowed(documented: &BTreeSet<(String, String)>, method: &str, path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    documented.iter().any(|(other_method, template)| {
        let pattern: Vec<&str> = template.split('/').collect();
        other_method == method
            && template != path
            && pattern.len() == segments.len()
            && pattern
                .iter()
                .zip(&segments)
                .all(|(want, have)| want.starts_with('{') || want == have)
    })
}

/// On a live hub, each documented operation reaches a handler (no "no such endpoint", no
/// `405`), and each other method of the path is a `405` (so the table's methods are all the
/// path takes).
#[tokio::test]
async fn the_live_hub_answers_every_documented_operation() {
    let hub = TestHub::spawn().await;
    let (_, doc) = hub.get("/openapi.json").await;
    let documented = documented(&doc);
    let mut wrong = Vec::new();
    for route in ROUTES {
        let path = concrete(&doc, route.path);
        for method in METHODS {
            let response = hub
                .http
                .request(method.to_uppercase().parse().unwrap(), hub.url(&path))
                .header("X-API-Key", &hub.api_key)
                .header("Content-Type", "application/json")
                .body(if method == "get" { "" } else { "{}" })
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            // A stream (server-sent events) never ends: its status is the answer.
            let streams = response
                .headers()
                .get("content-type")
                .is_some_and(|it| it.as_bytes().starts_with(b"text/event-stream"));
            let body: Value = if streams {
                Value::Null
            } else {
                response.json().await.unwrap_or(Value::Null)
            };
            let no_route =
                status == 405 || (status == 404 && body["error"]["message"] == "no such endpoint");
            let is_documented = documented.contains(&(method.to_string(), route.path.to_string()));
            if !is_documented && shadowed(&documented, method, route.path) {
                // e.g. DELETE /api/devices/pairing is DELETE /api/devices/{id} with id "pairing".
                continue;
            }
            if is_documented == no_route {
                wrong.push((
                    method.to_string(),
                    format!("{path} answered {status} {body}"),
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "documented operations that do not reach a handler, or methods that do without being \
         documented:{}",
        list(wrong)
    );
}

/// Every `warp::path!` in the source is a route of the table, so a new route cannot be
/// added without the table (and so the document) noticing.
#[test]
fn every_warp_path_in_the_source_is_in_the_route_table() {
    let templates: BTreeSet<String> = ROUTES.iter().map(|it| shape(it.path)).collect();
    let mut missing = Vec::new();
    for file in rust_files(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("warp::path!(") {
            let rest = &text[at + "warp::path!(".len()..];
            let args = &rest[..rest.find(')').unwrap()];
            let path: String = args
                .split('/')
                .map(|segment| {
                    let segment = segment.trim();
                    match segment
                        .strip_prefix('"')
                        .and_then(|it| it.strip_suffix('"'))
                    {
                        Some(literal) => format!("/{literal}"),
                        None => "/{}".to_string(),
                    }
                })
                .collect();
            if !templates.contains(&path) {
                missing.push((file.display().to_string(), path));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "warp paths missing from ROUTES in src/api/allow.rs (add them there and document them):{}",
        missing
            .iter()
            .map(|(file, path)| format!("\n  {path} ({file})"))
            .collect::<String>()
    );
}

/// Every schema in the document has its own name: utoipa keeps one component per name, so
/// two types called the same (`series::Point`, `history::Point`) would silently describe one
/// of them with the other's schema. A type may take another name with `#[schema(as = …)]`.
#[test]
fn no_two_schemas_share_a_name() {
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    let mut twice = Vec::new();
    for file in rust_files(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))) {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            if !(line.trim_start().starts_with("#[derive(") && line.contains("ToSchema")) {
                continue;
            }
            let mut renamed = None;
            for next in &lines[at + 1..] {
                let next = next.trim_start();
                if let Some(rest) = next.strip_prefix("#[schema(as = ") {
                    renamed = rest.split(')').next().map(str::to_string);
                }
                if let Some(name) = ["pub struct ", "pub enum ", "struct ", "enum "]
                    .iter()
                    .find_map(|kw| next.strip_prefix(kw))
                {
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    let name = renamed.take().unwrap_or(name);
                    let here = format!("{}:{}", file.display(), at + 1);
                    if let Some(before) = seen.insert(name.clone(), here.clone()) {
                        twice.push(format!("\n  {name}: {before} and {here}"));
                    }
                    break;
                }
            }
        }
    }
    assert!(
        seen.len() > 20,
        "the scan found only {} schemas",
        seen.len()
    );
    assert!(
        twice.is_empty(),
        "schemas sharing a name (rename one with #[schema(as = …)]):{}",
        twice.concat()
    );
}

fn shape(template: &str) -> String {
    template
        .split('/')
        .filter(|it| !it.is_empty())
        .map(|it| {
            if it.starts_with('{') {
                "/{}".to_string()
            } else {
                format!("/{it}")
            }
        })
        .collect()
}

fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|it| it == "rs") {
            out.push(path);
        }
    }
    out
}

/// Swagger UI is served from the binary and points at the document.
#[tokio::test]
async fn swagger_ui_is_served_offline() {
    let hub = TestHub::spawn().await;
    let page = hub.http.get(hub.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.url().path().ends_with("/docs/"), "{}", page.url());
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let init = hub
        .http
        .get(hub.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.text().await.unwrap().contains("/openapi.json"));
    let css = hub
        .http
        .get(hub.url("/docs/swagger-ui.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}
