//! Message templates: `/api/templates` (list, create, show, replace, delete) and the filling in
//! of a template's `{{name}}` fields, which `POST /api/send-sms` does when it is given a
//! `template_id` and `params` (the CLI's bulk sender passes a CSV row's columns as `params`).
//!
//! A template belongs to the tenant (API key owner) that made it; another tenant's is as
//! absent as one that never existed. Must never: send anything itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::dto::SendSmsRequest;
use super::error::ApiError;
use super::handlers::parse_json;
use super::{ApiState, authorized, json_body, run, with_api};
use crate::auth::{Principal, Scope};
use crate::domain::format_millis;
use crate::store::{Change, Outcome, TemplateChange, TemplateRecord};

/// Longest template name, in characters.
const MAX_NAME: usize = 100;
/// Longest template text, in characters.
const MAX_BODY: usize = 10_000;
/// Most fields in one template.
const MAX_FIELDS: usize = 100;

/// A template as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateDto {
    pub id: String,
    pub name: String,
    /// The text, with `{{name}}` fields.
    pub body: String,
    /// The fields of the text, each once, in order of first use.
    pub fields: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `{"templates": [...]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateDto>,
}

/// Body of `POST /api/templates` and `PUT /api/templates/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRequest {
    pub name: Option<String>,
    /// The text, with `{{name}}` fields (also read as `message` or `text`).
    #[serde(alias = "message", alias = "text")]
    pub body: Option<String>,
}

impl TemplateDto {
    fn from_record(it: TemplateRecord) -> TemplateDto {
        let fields = fields(&it.body).unwrap_or_default();
        TemplateDto {
            id: it.id.to_string(),
            name: it.name,
            body: it.body,
            fields,
            created_at: format_millis(it.created_at),
            updated_at: format_millis(it.updated_at),
        }
    }
}

/// The fields of a template text, each once, in order of first use; an error for a `{{`
/// without its `}}` or a field name that is not letters, digits, `_`, `-` or `.`.
pub fn fields(body: &str) -> Result<Vec<String>, String> {
    let mut seen = Vec::new();
    for piece in pieces(body)? {
        if let Piece::Field(name) = piece
            && !seen.iter().any(|it| it == name)
        {
            seen.push(name.to_string());
        }
    }
    Ok(seen)
}

enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

fn pieces(body: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find("{{") {
        out.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("a {{ has no closing }}".to_string());
        };
        let name = after[..close].trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "{{{{{name}}}}} is not a field name (letters, digits, _, - and .)"
            ));
        }
        out.push(Piece::Field(name));
        rest = &after[close + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Fills in `body`'s fields from `params`: every field needs a value (`422
/// missing_template_param`), every value a field (`422 unknown_template_param`), and a value
/// is text, a number or a boolean (`422 invalid_template_param`).
pub fn render(
    body: &str,
    params: &BTreeMap<String, serde_json::Value>,
) -> Result<String, ApiError> {
    let unprocessable =
        |code, message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
    let pieces = pieces(body).map_err(|err| unprocessable("invalid_template", err))?;
    let wanted: BTreeSet<&str> = pieces
        .iter()
        .filter_map(|it| match it {
            Piece::Field(name) => Some(*name),
            Piece::Text(_) => None,
        })
        .collect();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|it| !params.contains_key(*it))
        .collect();
    if !missing.is_empty() {
        return Err(unprocessable(
            "missing_template_param",
            format!("the template needs params {missing:?}"),
        ));
    }
    let unknown: Vec<&str> = params
        .keys()
        .map(String::as_str)
        .filter(|it| !wanted.contains(it))
        .collect();
    if !unknown.is_empty() {
        return Err(unprocessable(
            "unknown_template_param",
            format!("the template has no fields {unknown:?}"),
        ));
    }
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(it) => text.push_str(it),
            Piece::Field(name) => match params.get(name) {
                Some(serde_json::Value::String(it)) => text.push_str(it),
                Some(it @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    text.push_str(&it.to_string())
                }
                _ => {
                    return Err(unprocessable(
                        "invalid_template_param",
                        format!("param {name:?} must be text, a number or a boolean"),
                    ));
                }
            },
        }
    }
    Ok(text)
}

/// Fills in a send request's `template_id` with its `params` as the request's `message`:
/// `422 unknown_template` for a template this credential cannot see; `400 invalid_request`
/// when the request gives a `message` too, or `params` without a template.
pub async fn fill_in(
    api: &ApiState,
    key: &Principal,
    request: &mut SendSmsRequest,
) -> Result<(), ApiError> {
    let Some(id) = request.template_id.clone() else {
        if request.params.is_some() {
            return Err(ApiError::bad_request(
                "invalid_request",
                "params are only read with a template_id",
            ));
        }
        return Ok(());
    };
    if request.message.is_some() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "give message or template_id, not both",
        ));
    }
    let unknown = || {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_template",
            format!("no template with id {id:?}"),
        )
    };
    let uuid = Uuid::parse_str(&id).map_err(|_| unknown())?;
    let template = api
        .store
        .find_template(uuid, Some(key.owner))
        .await?
        .ok_or_else(unknown)?;
    let params = request.params.clone().unwrap_or_default();
    request.message = Some(render(&template.body, &params)?);
    Ok(())
}

/// The routes of `/api/templates`.
pub fn routes(api: Arc<ApiState>) -> warp::filters::BoxedFilter<(Response,)> {
    let h = |scope| with_api(api.clone()).and(authorized(api.clone(), scope));
    let list = warp::path!("api" / "templates")
        .and(warp::get())
        .and(h(Scope::MessagesRead))
        .and_then(|api, key| run(list_templates(api, key)));
    let create = warp::path!("api" / "templates")
        .and(warp::post())
        .and(h(Scope::MessagesSend))
        .and(json_body())
        .and_then(|api, key, body| run(create_template(api, key, body)));
    let show = warp::path!("api" / "templates" / String)
        .and(warp::get())
        .and(h(Scope::MessagesRead))
        .and_then(|id, api, key| run(show_template(api, key, id)));
    let replace = warp::path!("api" / "templates" / String)
        .and(warp::put())
        .and(h(Scope::MessagesSend))
        .and(json_body())
        .and_then(|id, api, key, body| run(replace_template(api, key, id, body)));
    let delete = warp::path!("api" / "templates" / String)
        .and(warp::delete())
        .and(h(Scope::MessagesSend))
        .and_then(|id, api, key| run(delete_template(api, key, id)));
    list.or(create)
        .unify()
        .or(show)
        .unify()
        .or(replace)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}

fn checked(body: &Bytes) -> Result<(String, String), ApiError> {
    let request: TemplateRequest = parse_json(body)?;
    let name = request.name.unwrap_or_default().trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("name must be 1 to {MAX_NAME} characters"),
        ));
    }
    let body = request.body.unwrap_or_default();
    if body.trim().is_empty() || body.chars().count() > MAX_BODY {
        return Err(ApiError::bad_request(
            "invalid_template",
            format!("body must be 1 to {MAX_BODY} characters"),
        ));
    }
    let fields = fields(&body).map_err(|err| ApiError::bad_request("invalid_template", err))?;
    if fields.len() > MAX_FIELDS {
        return Err(ApiError::bad_request(
            "invalid_template",
            format!("at most {MAX_FIELDS} fields"),
        ));
    }
    Ok((name, body))
}

fn template_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("no template with id {id:?}")))
}

async fn found(api: &ApiState, key: &Principal, id: Uuid) -> Result<TemplateRecord, ApiError> {
    api.store
        .find_template(id, Some(key.owner))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no template with id \"{id}\"")))
}

async fn list_templates(api: Arc<ApiState>, key: Principal) -> Result<Response, ApiError> {
    let templates = api
        .store
        .list_templates(Some(key.owner))
        .await?
        .into_iter()
        .map(TemplateDto::from_record)
        .collect();
    Ok(warp::reply::json(&TemplateList { templates }).into_response())
}

async fn create_template(
    api: Arc<ApiState>,
    key: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (name, body) = checked(&body)?;
    let id = Uuid::now_v7();
    api.store
        .apply(Change::Template(TemplateChange::Create {
            id,
            owner: key.owner,
            name,
            body,
        }))
        .await?;
    let record = found(&api, &key, id).await?;
    Ok(warp::reply::with_status(
        warp::reply::json(&TemplateDto::from_record(record)),
        StatusCode::CREATED,
    )
    .into_response())
}

async fn show_template(
    api: Arc<ApiState>,
    key: Principal,
    id: String,
) -> Result<Response, ApiError> {
    let record = found(&api, &key, template_id(&id)?).await?;
    Ok(warp::reply::json(&TemplateDto::from_record(record)).into_response())
}

async fn replace_template(
    api: Arc<ApiState>,
    key: Principal,
    id: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = template_id(&id)?;
    found(&api, &key, id).await?;
    let (name, body) = checked(&body)?;
    let outcome = api
        .store
        .apply(Change::Template(TemplateChange::Update {
            id,
            owner: key.owner,
            name,
            body,
        }))
        .await?;
    if outcome != Outcome::Applied {
        return Err(ApiError::not_found(format!("no template with id \"{id}\"")));
    }
    let record = found(&api, &key, id).await?;
    Ok(warp::reply::json(&TemplateDto::from_record(record)).into_response())
}

async fn delete_template(
    api: Arc<ApiState>,
    key: Principal,
    id: String,
) -> Result<Response, ApiError> {
    let id = template_id(&id)?;
    let outcome = api
        .store
        .apply(Change::Template(TemplateChange::Delete {
            id,
            owner: key.owner,
        }))
        .await?;
    if outcome != Outcome::Applied {
        return Err(ApiError::not_found(format!("no template with id \"{id}\"")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_once_in_order() {
        let cases: [(&str, Result<Vec<&str>, ()>); 6] = [
            (
                "Hi {{name}}, {{ code }} for {{name}}",
                Ok(vec!["name", "code"]),
            ),
            ("no fields", Ok(vec![])),
            ("{{a.b}}{{c-d}}", Ok(vec!["a.b", "c-d"])),
            ("open {{name", Err(())),
            ("empty {{ }}", Err(())),
            ("bad {{a b}}", Err(())),
        ];
        for (body, want) in cases {
            let got = fields(body).map_err(|_| ());
            let want = want.map(|it| it.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn render_fills_in_and_names_what_is_wrong() {
        let params = |pairs: &[(&str, serde_json::Value)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let body = "Hi {{name}}, your code is {{code}}.";
        let ok = render(
            body,
            &params(&[("name", "Ana".into()), ("code", 4821.into())]),
        );
        assert_eq!(ok.ok().as_deref(), Some("Hi Ana, your code is 4821."));
        for (given, code) in [
            (params(&[("name", "Ana".into())]), "missing_template_param"),
            (
                params(&[
                    ("name", "A".into()),
                    ("code", "1".into()),
                    ("x", "y".into()),
                ]),
                "unknown_template_param",
            ),
            (
                params(&[("name", serde_json::Value::Null), ("code", "1".into())]),
                "invalid_template_param",
            ),
        ] {
            let err = render(body, &given).expect_err("refused");
            assert_eq!(err.code, code);
        }
    }
}
