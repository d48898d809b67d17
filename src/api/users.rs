//! People, administered over the API (`/api/users`): list, add, change role or password,
//! remove. The same rules as `smshub users` (argon2id hashes, names and password lengths), and
//! a hub always keeps an admin: removing or demoting the last one is `409 last_admin`. Every
//! change is audited.
//!
//! Must never: answer or log a password or its hash.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::access::audit;
use super::dto::{CreateUserRequest, UpdateUserRequest, UserDto, UserList};
use super::error::ApiError;
use super::handlers::parse_json;
use super::{ApiState, authorized, json_body, run, with_api};
use crate::auth::users::{self, Role, UserError};
use crate::auth::{Principal, Scope};
use crate::domain::{format_millis, now_millis};
use crate::store::UserRecord;

/// Every `/api/users` route.
pub fn routes(api: Arc<ApiState>) -> warp::filters::BoxedFilter<(Response,)> {
    let admin = || with_api(api.clone()).and(authorized(api.clone(), Scope::Admin));
    let list = warp::path!("api" / "users")
        .and(warp::get())
        .and(admin())
        .and_then(|api, _key| run(list_users(api)));
    let create = warp::path!("api" / "users")
        .and(warp::post())
        .and(admin())
        .and(json_body())
        .and_then(|api, key, body| run(create_user(api, key, body)));
    let update = warp::path!("api" / "users" / String)
        .and(warp::patch())
        .and(admin())
        .and(json_body())
        .and_then(|name, api, key, body| run(update_user(api, key, name, body)));
    let delete = warp::path!("api" / "users" / String)
        .and(warp::delete())
        .and(admin())
        .and_then(|name, api, key| run(delete_user(api, key, name)));
    list.or(create)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}

fn role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).map_err(|err| ApiError::bad_request("invalid_role", err))
}

fn password(text: &str) -> Result<(), ApiError> {
    users::check_password(text)
        .map_err(|err| ApiError::bad_request("invalid_password", err.to_string()))
}

fn user_error(err: UserError) -> ApiError {
    match err {
        UserError::Invalid(message) => ApiError::bad_request("invalid_request", message),
        UserError::Store(err) => err.into(),
    }
}

fn last_admin(username: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "last_admin",
        format!("{username:?} is the last admin; make another user admin first"),
    )
}

async fn one_user(api: &ApiState, username: &str) -> Result<UserRecord, ApiError> {
    api.store
        .find_user(username.trim())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {username:?}")))
}

async fn view(api: &ApiState, user: UserRecord) -> Result<UserDto, ApiError> {
    let logins = api.store.last_logins().await?;
    Ok(user_dto(api, user, &logins))
}

fn user_dto(
    api: &ApiState,
    user: UserRecord,
    logins: &std::collections::HashMap<uuid::Uuid, crate::domain::Millis>,
) -> UserDto {
    let key = format!("user:{}", user.username);
    let locked_until = api
        .access
        .lockout
        .locked(&[key.as_str()], Instant::now())
        .map(|seconds| format_millis(now_millis() + (seconds as i64) * 1000));
    UserDto {
        role: Role::parse(&user.role)
            .map(Role::as_str)
            .unwrap_or("viewer")
            .to_string(),
        created_at: format_millis(user.created_at),
        last_login_at: logins.get(&user.id).map(|it| format_millis(*it)),
        locked_until,
        username: user.username,
    }
}

async fn list_users(api: Arc<ApiState>) -> Result<Response, ApiError> {
    let logins = api.store.last_logins().await?;
    let users = api
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|it| user_dto(&api, it, &logins))
        .collect();
    Ok(warp::reply::json(&UserList { users }).into_response())
}

async fn create_user(api: Arc<ApiState>, by: Principal, body: Bytes) -> Result<Response, ApiError> {
    let request: CreateUserRequest = parse_json(&body)?;
    let username = users::check_username(&request.username)
        .map_err(|err| ApiError::bad_request("invalid_username", err.to_string()))?
        .to_string();
    password(&request.password)?;
    let role = role(&request.role)?;
    let added = users::add_user(&api.store, &username, &request.password, role)
        .await
        .map_err(user_error)?;
    if !added {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_exists",
            format!("a user {username:?} exists"),
        ));
    }
    audit(&api, &by.label, "user.add", Some(&username), true).await;
    tracing::info!(user = %username, role = role.as_str(), by = %by.label, "user added");
    let user = view(&api, one_user(&api, &username).await?).await?;
    Ok(warp::reply::with_status(warp::reply::json(&user), StatusCode::CREATED).into_response())
}

async fn update_user(
    api: Arc<ApiState>,
    by: Principal,
    username: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: UpdateUserRequest = parse_json(&body)?;
    let new_role = request.role.as_deref().map(role).transpose()?;
    if let Some(it) = &request.password {
        password(it)?;
    }
    let user = one_user(&api, &username).await?;
    if let Some(role) = new_role {
        if !users::set_role(&api.store, &user.username, role)
            .await
            .map_err(user_error)?
        {
            one_user(&api, &user.username).await?;
            super::access::audit_with(
                &api,
                &by.label,
                "user.role",
                Some(&user.username),
                false,
                Some(format!("to {}: refused, the last admin", role.as_str())),
            )
            .await;
            return Err(last_admin(&user.username));
        }
        audit_detail(&api, &by, "user.role", &user.username, role.as_str()).await;
    }
    if let Some(password) = &request.password {
        if !users::set_password(&api.store, &user.username, password)
            .await
            .map_err(user_error)?
        {
            return Err(ApiError::not_found(format!("no user {username:?}")));
        }
        audit(&api, &by.label, "user.passwd", Some(&user.username), true).await;
    }
    let user = view(&api, one_user(&api, &user.username).await?).await?;
    Ok(warp::reply::json(&user).into_response())
}

async fn audit_detail(api: &ApiState, by: &Principal, action: &str, target: &str, detail: &str) {
    super::access::audit_with(
        api,
        &by.label,
        action,
        Some(target),
        true,
        Some(detail.to_string()),
    )
    .await;
}

async fn delete_user(
    api: Arc<ApiState>,
    by: Principal,
    username: String,
) -> Result<Response, ApiError> {
    let user = one_user(&api, &username).await?;
    if !users::remove_user_keeping_an_admin(&api.store, &user.username)
        .await
        .map_err(user_error)?
    {
        one_user(&api, &user.username).await?;
        super::access::audit_with(
            &api,
            &by.label,
            "user.remove",
            Some(&user.username),
            false,
            Some("refused: the last admin".into()),
        )
        .await;
        return Err(last_admin(&user.username));
    }
    audit(&api, &by.label, "user.remove", Some(&user.username), true).await;
    tracing::info!(user = %user.username, by = %by.label, "user removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}
