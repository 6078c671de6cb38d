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
use patchward_proto::{
    ApiError, CycleJobs, CycleView, JobView, PauseRequest, ResumeRequest, RollbackRequest,
    TenantQuery,
};

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

/// Start an approved cycle: it becomes running and every placed server gets a job. Each job
/// starts when its ring may (earlier rings verified and soaked, none over its failure budget)
/// and every gate passes at its agent's check-in. Starting again only adds missing jobs.
#[utoipa::path(post, path = "/api/v1/cycles/{id}/start", tag = "jobs",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    responses((status = 200, body = CycleView), (status = 409, body = ApiError)))]
pub async fn start_cycle(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<CycleView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.start_cycle(&actor, t, id(p)?).await?))
}

/// A cycle's jobs: each server's state, steps, per-update results (with the HRESULT of a
/// failure), gate reasons, verification checks; and where each ring stands.
#[utoipa::path(get, path = "/api/v1/cycles/{id}/jobs", tag = "jobs",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    responses((status = 200, body = CycleJobs), (status = 404, body = ApiError)))]
pub async fn cycle_jobs(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<CycleJobs>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.cycle_jobs(&actor, t, id(p)?).await?))
}

/// Pause a running cycle: no new job starts; running jobs finish.
#[utoipa::path(post, path = "/api/v1/cycles/{id}/pause", tag = "jobs",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    request_body = PauseRequest,
    responses((status = 200, body = CycleView), (status = 409, body = ApiError)))]
pub async fn pause_cycle(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<PauseRequest>, JsonRejection>,
) -> Res<Json<CycleView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let req = body(b)?;
    Ok(Json(app.pause_cycle(&actor, t, id(p)?, &req.reason).await?))
}

/// Resume a paused cycle; with `ring`, go on past that ring's halt, accepting its failures
/// so far (approvers).
#[utoipa::path(post, path = "/api/v1/cycles/{id}/resume", tag = "jobs",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    request_body = ResumeRequest,
    responses((status = 200, body = CycleView), (status = 409, body = ApiError)))]
pub async fn resume_cycle(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<ResumeRequest>, JsonRejection>,
) -> Res<Json<CycleView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let req = body(b)?;
    Ok(Json(
        app.resume_cycle(&actor, t, id(p)?, req.ring.as_deref(), &req.reason)
            .await?,
    ))
}

/// Roll a job back by its server's rollback plan (approvers): the agent uninstalls the updates
/// (`uninstall_kb`, and servers without a plan), or the restore hook reverts the VM
/// (`snapshot`); `done` records a rollback people did (`restore_from_backup`,
/// `vendor_procedure`).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/rollback", tag = "jobs",
    params(("id" = i64, Path, description = "Job id"), TenantQuery),
    request_body = RollbackRequest,
    responses((status = 200, body = JobView), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub async fn rollback_job(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<RollbackRequest>, JsonRejection>,
) -> Res<Json<JobView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let req = body(b)?;
    Ok(Json(
        app.request_rollback(&actor, t, id(p)?, &req.reason, req.done)
            .await?,
    ))
}

/// Re-plan a running cycle from its outcomes: every job not started yet gets the slot the
/// planner's re-plan gives it (succeeded servers are done, failed ones hold back their
/// dependants, running ones keep their slot). Approvals stay.
#[utoipa::path(post, path = "/api/v1/cycles/{id}/replan", tag = "jobs",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    responses((status = 200, body = CycleJobs), (status = 409, body = ApiError)))]
pub async fn replan_cycle(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<CycleJobs>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.replan_running_cycle(&actor, t, id(p)?).await?))
}
