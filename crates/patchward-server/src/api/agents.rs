//! Handlers of agents and enrolment tokens (administrators; agents themselves speak
//! `/agent/v1`, in `agent_api`).

use super::handlers::{Res, body, id, query, tenant};
use crate::Shared;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use patchward_app::Actor;
use patchward_proto::agent::{AgentView, EnrolTokenView, NewEnrolToken};
use patchward_proto::{ApiError, TenantQuery};

/// The tenant's agents: server, version, last check-in, status (`active`, `silent` after
/// three missed check-ins, `revoked`).
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", params(TenantQuery),
    responses((status = 200, body = [AgentView])))]
pub async fn list_agents(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<Vec<AgentView>>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.agents(&actor, t).await?))
}

/// Revoke an agent: its next call is refused with `agent_revoked`.
#[utoipa::path(post, path = "/api/v1/agents/{id}/revoke", tag = "agents",
    params(("id" = i64, Path, description = "Agent id"), TenantQuery),
    responses((status = 200, body = AgentView), (status = 404, body = ApiError)))]
pub async fn revoke_agent(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<AgentView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.revoke_agent(&actor, t, id(p)?).await?))
}

/// The tenant's enrolment tokens, newest first (never their secrets).
#[utoipa::path(get, path = "/api/v1/enrol-tokens", tag = "agents", params(TenantQuery),
    responses((status = 200, body = [EnrolTokenView])))]
pub async fn list_enrol_tokens(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<Vec<EnrolTokenView>>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let mut out = Vec::new();
    for rec in app.enrol_tokens(&actor, t).await? {
        out.push(app.enrol_token_view(&rec, None).await?);
    }
    Ok(Json(out))
}

/// A new enrolment token (one use and 24 hours unless asked otherwise). The token is in this
/// answer only.
#[utoipa::path(post, path = "/api/v1/enrol-tokens", tag = "agents",
    request_body = NewEnrolToken,
    responses((status = 201, body = EnrolTokenView), (status = 422, body = ApiError)))]
pub async fn create_enrol_token(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<NewEnrolToken>, JsonRejection>,
) -> Res<(StatusCode, Json<EnrolTokenView>)> {
    let req = body(b)?;
    let t = tenant(&app, &actor, req.tenant.as_deref()).await?;
    let (rec, secret) = app.create_enrol_token(&actor, t, &req).await?;
    Ok((
        StatusCode::CREATED,
        Json(app.enrol_token_view(&rec, Some(secret)).await?),
    ))
}

/// Revoke an enrolment token: no agent can enrol with it any more.
#[utoipa::path(post, path = "/api/v1/enrol-tokens/{id}/revoke", tag = "agents",
    params(("id" = i64, Path, description = "Enrolment token id"), TenantQuery),
    responses((status = 204), (status = 404, body = ApiError)))]
pub async fn revoke_enrol_token(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<StatusCode> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    app.revoke_enrol_token(&actor, t, id(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
