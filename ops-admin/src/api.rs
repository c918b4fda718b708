//! The endpoints: each resolves the caller's tenant, then runs the same `ops_config` code as
//! the `ops` CLI command of the same name.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ops_config::console::{self, ProjectLink};
use ops_config::{AppStatus, ConfigUpdate, Error};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Role;
use crate::{AdminState, ApiError};

pub(crate) fn router(state: AdminState) -> Router {
    let limits = state.limits();
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/providers", get(providers))
        .route("/apps/{app_id}/configs", get(show_all))
        .route(
            "/apps/{app_id}/configs/{provider}",
            get(show_one).put(put_config).delete(delete_config),
        )
        .route(
            "/apps/{app_id}/configs/{provider}/project-url",
            get(project_url),
        )
        .route("/apps/{app_id}/enable", post(enable))
        .route("/apps/{app_id}/disable", post(disable))
        .route("/apps/{app_id}/check", post(check))
        .route("/apps/{app_id}/test-trace", post(test_trace))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn_with_state(
            limits.request_timeout,
            time_limit,
        ))
        .with_state(state)
}

/// Ends a request that runs over the limit with 503 `timeout`.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "no answer within {}s; a provider or the config database is slow, try again",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such endpoint; see openapi.json for the paths",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see openapi.json",
    )
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

/// The authenticated caller.
pub(crate) struct Caller(Role);

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Caller").field(&self.0).finish()
    }
}

impl FromRequestParts<AdminState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "no token; send `Authorization: Bearer <token>` with a token from \
                 OPS_ADMIN_TOKENS",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        match state.tokens().role(token) {
            Some(role) => Ok(Caller(role.clone())),
            None => Err(ApiError::unauthorized(
                "the token is not accepted; use a token from OPS_ADMIN_TOKENS",
            )),
        }
    }
}

/// `?tenant=` (an admin token's tenant; a tenant token may only name its own) and
/// `?provider=` (one provider instead of all).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scope {
    tenant: Option<String>,
    provider: Option<String>,
}

/// Query strings accepted as [`Scope`], with [`ApiError`]'s JSON on a bad one.
struct ScopeQuery(Scope);

impl<S: Send + Sync> FromRequestParts<S> for ScopeQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(scope) = Query::<Scope>::from_request_parts(parts, state).await?;
        Ok(Self(scope))
    }
}

impl Caller {
    /// The tenant the request acts for on `app_id`: a tenant token's own (`?tenant=` may only
    /// repeat it); for an admin token `?tenant=`, else the app's owner. The manager then
    /// refuses an app owned by another tenant ([`Error::WrongTenant`], 403).
    async fn tenant(
        &self,
        state: &AdminState,
        app_id: &str,
        asked: Option<&str>,
    ) -> Result<String, ApiError> {
        ops_config::validate_app_id(app_id)?;
        match (&self.0, asked) {
            (Role::Tenant(own), Some(asked)) if asked != own => Err(ApiError::forbidden(format!(
                "this token acts for tenant {own} only, not {asked}; leave out ?tenant= or \
                     use a token of that tenant"
            ))),
            (Role::Tenant(own), _) => Ok(own.clone()),
            (Role::Admin, Some(asked)) => {
                ops_config::validate_tenant_id(asked)?;
                Ok(asked.to_owned())
            }
            (Role::Admin, None) => {
                let app = state
                    .manager()
                    .store()
                    .app(app_id)
                    .await
                    .map_err(Error::from)?;
                match app {
                    Some(app) => Ok(app.tenant_id),
                    None => Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "tenant_required",
                        format!(
                            "app {app_id} has no tracing config yet, so no tenant; an admin \
                             token must pass ?tenant=<tenant id>"
                        ),
                    )),
                }
            }
        }
    }
}

async fn providers(State(state): State<AdminState>, _caller: Caller) -> Json<Value> {
    let list: Vec<_> = console::providers()
        .into_iter()
        .filter(|p| state.offers(p.name))
        .collect();
    Json(json!({ "providers": list }))
}

async fn show_all(
    State(state): State<AdminState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ScopeQuery(scope): ScopeQuery,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller
        .tenant(&state, &app_id, scope.tenant.as_deref())
        .await?;
    let configs =
        console::app_configs(state.manager(), &tenant, &app_id, scope.provider.as_deref()).await?;
    Ok(Json(configs.to_json()))
}

async fn show_one(
    State(state): State<AdminState>,
    caller: Caller,
    Path((app_id, provider)): Path<(String, String)>,
    ScopeQuery(scope): ScopeQuery,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller
        .tenant(&state, &app_id, scope.tenant.as_deref())
        .await?;
    let configs = console::app_configs(state.manager(), &tenant, &app_id, Some(&provider)).await?;
    Ok(Json(configs.to_json()))
}

/// A `PUT` body: the values to merge (an empty string clears a key; a secret sent back as
/// shown, obfuscated, keeps the stored one) and whether to check the credentials first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    values: BTreeMap<String, String>,
    #[serde(default = "yes")]
    check: bool,
}

fn yes() -> bool {
    true
}

/// Keys only: the values may be secrets.
impl fmt::Debug for PutBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutBody")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .field("check", &self.check)
            .finish()
    }
}

/// The JSON body, with [`ApiError`]'s JSON on a bad one (400, 413, 415, 422).
struct Body<T>(T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<AdminState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AdminState) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

async fn put_config(
    State(state): State<AdminState>,
    caller: Caller,
    Path((app_id, provider)): Path<(String, String)>,
    ScopeQuery(scope): ScopeQuery,
    Body(body): Body<PutBody>,
) -> Result<Response, ApiError> {
    let tenant = caller
        .tenant(&state, &app_id, scope.tenant.as_deref())
        .await?;
    let manager = state.manager();
    let factory = ops_core::provider::find(&provider).map_err(Error::from)?;
    if !state.offers(factory.name) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "local_provider",
            format!(
                "{} writes to this server's files, so the admin API does not configure it; use \
                 `ops config set` on the server",
                factory.name
            ),
        ));
    }
    let mut update = ConfigUpdate::new();
    for (key, value) in &body.values {
        update.insert(key.clone(), value.clone());
    }
    let saved = manager
        .save_config(&tenant, &app_id, factory.name, &update, body.check)
        .await?;
    tracing::info!(
        target: "ops_admin",
        tenant = %tenant,
        app = %app_id,
        provider = factory.name,
        version = saved.version,
        keys = ?body.values.keys().collect::<Vec<_>>(),
        "config saved"
    );
    let configs = console::app_configs(manager, &tenant, &app_id, Some(factory.name)).await?;
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let out = json!({
        "saved": {
            "provider": saved.provider,
            "version": saved.version,
            "created": saved.created,
            "checked": saved.checked,
            "project_key": saved.project_key,
            "project_url": saved.project_url,
        },
        "app": configs.to_json(),
    });
    Ok((status, Json(out)).into_response())
}

async fn delete_config(
    State(state): State<AdminState>,
    caller: Caller,
    Path((app_id, provider)): Path<(String, String)>,
    ScopeQuery(scope): ScopeQuery,
) -> Result<StatusCode, ApiError> {
    let tenant = caller
        .tenant(&state, &app_id, scope.tenant.as_deref())
        .await?;
    let factory = ops_core::provider::find(&provider).map_err(Error::from)?;
    if !state
        .manager()
        .delete_config(&tenant, &app_id, factory.name)
        .await?
    {
        return Err(Error::NotConfigured {
            app_id,
            provider: factory.name.to_owned(),
        }
        .into());
    }
    tracing::info!(target: "ops_admin", tenant = %tenant, app = %app_id, provider = factory.name, "config deleted");
    Ok(StatusCode::NO_CONTENT)
}

fn status_json(status: &AppStatus) -> Value {
    json!({
        "app_id": status.app_id,
        "tenant_id": status.tenant_id,
        "enabled": status.enabled,
        "active_providers": status.active_providers(),
        "providers": status.providers.iter().map(|p| json!({
            "provider": p.provider,
            "enabled": p.enabled,
            "version": p.version,
        })).collect::<Vec<_>>(),
    })
}

async fn switch(
    state: AdminState,
    caller: Caller,
    app_id: String,
    scope: Scope,
    on: bool,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller
        .tenant(&state, &app_id, scope.tenant.as_deref())
        .await?;
    let status = state
        .manager()
        .set_enabled(&tenant, &app_id, scope.provider.as_deref(), on)
        .await?;
    tracing::info!(target: "ops_admin", tenant = %tenant, app = %app_id, provider = scope.provider.as_deref(), on, "switched");
    Ok(Json(status_json(&status)))
}

async fn enable(
    State(state): State<AdminState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ScopeQuery(scope): ScopeQuery,
) -> Result<Json<Value>, ApiError> {
    switch(state, caller, app_id, scope, true).await
}

async fn disable(
    State(state): State<AdminState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ScopeQuery(scope): ScopeQuery,
) -> Result<Json<Value>, ApiError> {
    switch(state, caller, app_id, scope, false).await
}

fn error_json(e: &Error) -> Value {
    let api = ApiError::from(e.clone());
    json!({"code": api.code, "message": api.message})
}

async fn check(
    State(state): State<AdminState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ScopeQuery(scope): ScopeQuery,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller
        .tenant(&state, &app_id, scope.tenant.as_deref())
        .await?;
    let results =
        console::check(state.manager(), &tenant, &app_id, scope.provider.as_deref()).await?;
    let list: Vec<Value> = results
        .iter()
        .map(|(name, result)| match result {
            Ok(report) => json!({
                "provider": name,
                "ok": true,
                "project_key": report.project_key,
                "project_url": report.project_url,
                "project_error": report.project_error,
            }),
            Err(e) => json!({"provider": name, "ok": false, "error": error_json(e)}),
        })
        .collect();
    let ok = results.iter().all(|(_, r)| r.is_ok());
    Ok(Json(json!({"ok": ok, "results": list})))
}

async fn project_url(
    State(state): State<AdminState>,
    caller: Caller,
    Path((app_id, provider)): Path<(String, String)>,
    ScopeQuery(scope): ScopeQuery,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller
        .tenant(&state, &app_id, scope.tenant.as_deref())
        .await?;
    let factory = ops_core::provider::find(&provider).map_err(Error::from)?;
    let url = state
        .manager()
        .project_url(&tenant, &app_id, factory.name)
        .await?;
    Ok(Json(json!({"provider": factory.name, "project_url": url})))
}

async fn test_trace(
    State(state): State<AdminState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ScopeQuery(scope): ScopeQuery,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller
        .tenant(&state, &app_id, scope.tenant.as_deref())
        .await?;
    let report = console::send_test(
        state.manager(),
        &tenant,
        &app_id,
        scope.provider.as_deref(),
        state.limits().test_timeout,
    )
    .await?;
    let deliveries: Vec<Value> = report
        .deliveries
        .iter()
        .map(|d| {
            let (url, project_error) = match &d.project {
                Some(ProjectLink::Url(url)) => (Some(url.as_str()), None),
                Some(ProjectLink::Failed(why)) => (None, Some(why.as_str())),
                Some(ProjectLink::NoPage) | None => (None, None),
            };
            json!({
                "provider": d.provider,
                "delivered": d.error.is_none(),
                "error": d.error,
                "project_url": url,
                "project_error": project_error,
            })
        })
        .collect();
    let left_out: Vec<Value> = report
        .left_out
        .iter()
        .map(|(name, e)| json!({"provider": name, "error": error_json(e)}))
        .collect();
    tracing::info!(target: "ops_admin", tenant = %tenant, app = %app_id, trace = %report.trace_id, failed = report.failed(), "test trace sent");
    Ok(Json(json!({
        "trace_id": report.trace_id,
        "observations": report.observations,
        "ok": report.failed() == 0 && report.left_out.is_empty(),
        "deliveries": deliveries,
        "left_out": left_out,
    })))
}
