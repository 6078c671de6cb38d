//! Handlers of the change workflow: cycles, approvals, deferrals, exceptions, workflow rules,
//! emergency proposals and the dashboard. Provider-wide administrators name the tenant with
//! `?tenant=`; everyone else acts on their own.

use super::handlers::{Res, body, id, query, tenant};
use crate::Shared;
use crate::error::{ApiErr, from_serde};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use patchward_app::Actor;
use patchward_proto::*;

/// A JSON body that may be empty (then the defaults).
fn optional<T: Default + serde::de::DeserializeOwned>(b: &Bytes) -> Res<T> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(b).map_err(|e| ApiErr(from_serde(&format!("body: {e}"), "body")))
}

/// Cycles of the tenant, newest first.
#[utoipa::path(get, path = "/api/v1/cycles", tag = "cycles", params(TenantQuery),
    responses((status = 200, body = [CycleSummary])))]
pub async fn list_cycles(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<Vec<CycleSummary>>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.cycles(&actor, t).await?))
}

/// Create a monthly cycle (named after its Patch Tuesday) or an emergency cycle for a CVE
/// (its servers due within the tenant's emergency SLA). The scope is proposed from open
/// findings matching the filters; the cycle starts in `draft`.
#[utoipa::path(post, path = "/api/v1/cycles", tag = "cycles", params(TenantQuery),
    request_body = CreateCycleRequest,
    responses((status = 201, body = CycleView), (status = 422, body = ApiError)))]
pub async fn create_cycle(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<CreateCycleRequest>, JsonRejection>,
) -> Res<(StatusCode, Json<CycleView>)> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let req = body(b)?;
    Ok((
        StatusCode::CREATED,
        Json(app.create_cycle(&actor, t, &req).await?),
    ))
}

/// A cycle: scope, plan, approvals per ring, deferrals, history, and what the caller may do.
#[utoipa::path(get, path = "/api/v1/cycles/{id}", tag = "cycles",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    responses((status = 200, body = CycleView), (status = 404, body = ApiError)))]
pub async fn get_cycle(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<CycleView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.cycle_view(&actor, t, id(p)?).await?))
}

/// Plan (or re-plan) the cycle's scope. Approvals of rings whose plan changed are withdrawn,
/// with the change named. The body is optional.
#[utoipa::path(post, path = "/api/v1/cycles/{id}/plan", tag = "cycles",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    request_body = PlanCycleRequest,
    responses((status = 200, body = CycleView), (status = 409, body = ApiError)))]
pub async fn plan_cycle(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Bytes,
) -> Res<Json<CycleView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let req: PlanCycleRequest = optional(&b)?;
    Ok(Json(app.plan_cycle_id(&actor, t, id(p)?, &req).await?))
}

/// Approve a ring of the plan (or the whole plan) with a change ticket. Whoever prepared the
/// cycle cannot be its only approver (403 with the reason).
#[utoipa::path(post, path = "/api/v1/cycles/{id}/approvals", tag = "cycles",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    request_body = ApproveRequest,
    responses((status = 200, body = CycleView), (status = 403, body = ApiError),
        (status = 409, body = ApiError)))]
pub async fn approve_cycle(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<ApproveRequest>, JsonRejection>,
) -> Res<Json<CycleView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let id = id(p)?;
    let req = body(b)?;
    Ok(Json(app.approve_cycle(&actor, t, id, &req).await?))
}

/// Add servers to the scope (their open updates) or remove some; a planned cycle is
/// re-planned at once.
#[utoipa::path(put, path = "/api/v1/cycles/{id}/scope", tag = "cycles",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    request_body = ScopeEditRequest,
    responses((status = 200, body = CycleView), (status = 422, body = ApiError)))]
pub async fn edit_scope(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<ScopeEditRequest>, JsonRejection>,
) -> Res<Json<CycleView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let id = id(p)?;
    let req = body(b)?;
    Ok(Json(app.edit_scope(&actor, t, id, &req).await?))
}

/// Defer an update of a server (or the server) to a later monthly cycle, with a reason.
#[utoipa::path(post, path = "/api/v1/cycles/{id}/deferrals", tag = "cycles",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    request_body = DeferRequest,
    responses((status = 200, body = CycleView), (status = 422, body = ApiError)))]
pub async fn defer(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<DeferRequest>, JsonRejection>,
) -> Res<Json<CycleView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let id = id(p)?;
    let req = body(b)?;
    Ok(Json(app.defer(&actor, t, id, &req).await?))
}

/// Start an approved cycle, complete a running one, or cancel (with a reason).
#[utoipa::path(post, path = "/api/v1/cycles/{id}/transitions", tag = "cycles",
    params(("id" = i64, Path, description = "Cycle id"), TenantQuery),
    request_body = TransitionRequest,
    responses((status = 200, body = CycleView), (status = 409, body = ApiError)))]
pub async fn transition(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<TransitionRequest>, JsonRejection>,
) -> Res<Json<CycleView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let id = id(p)?;
    let req = body(b)?;
    Ok(Json(app.transition_cycle(&actor, t, id, &req).await?))
}

/// CVEs that call for an emergency cycle (KEV, exploited, or critical on an internet-exposed
/// server), most urgent first, with the emergency cycle already made for each.
#[utoipa::path(get, path = "/api/v1/emergencies", tag = "cycles", params(TenantQuery),
    responses((status = 200, body = [EmergencyProposal])))]
pub async fn emergencies(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<Vec<EmergencyProposal>>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.emergency_proposals(&actor, t).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ExceptionListQuery {
    /// `active` (active and expiring), `expiring`, `expired`, `revoked`.
    pub status: Option<String>,
    pub server: Option<String>,
    pub tenant: Option<String>,
}

/// Exceptions, soonest expiry first (owners: their servers').
#[utoipa::path(get, path = "/api/v1/exceptions", tag = "exceptions", params(ExceptionListQuery),
    responses((status = 200, body = [ExceptionView])))]
pub async fn list_exceptions(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<ExceptionListQuery>, QueryRejection>,
) -> Res<Json<Vec<ExceptionView>>> {
    let q = query(q)?;
    let t = tenant(&app, &actor, q.tenant.as_deref()).await?;
    let eq = ExceptionQuery {
        status: q.status,
        server: q.server,
    };
    Ok(Json(app.exceptions(&actor, t, &eq).await?))
}

/// Grant an exception for an open finding (approvers): reason, compensating control, risk
/// owner and an expiry within the tenant's cap. Its findings leave the open counts until it
/// expires or is revoked.
#[utoipa::path(post, path = "/api/v1/exceptions", tag = "exceptions", params(TenantQuery),
    request_body = CreateExceptionRequest,
    responses((status = 201, body = ExceptionView), (status = 422, body = ApiError)))]
pub async fn grant_exception(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<CreateExceptionRequest>, JsonRejection>,
) -> Res<(StatusCode, Json<ExceptionView>)> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let req = body(b)?;
    Ok((
        StatusCode::CREATED,
        Json(app.grant_exception(&actor, t, &req).await?),
    ))
}

/// Revoke an exception: its findings are open again at once.
#[utoipa::path(post, path = "/api/v1/exceptions/{id}/revoke", tag = "exceptions",
    params(("id" = i64, Path, description = "Exception id"), TenantQuery),
    request_body = RevokeExceptionRequest,
    responses((status = 200, body = ExceptionView), (status = 404, body = ApiError)))]
pub async fn revoke_exception(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<RevokeExceptionRequest>, JsonRejection>,
) -> Res<Json<ExceptionView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let id = id(p)?;
    let req = body(b)?;
    Ok(Json(
        app.revoke_exception(&actor, t, id, &req.reason).await?,
    ))
}

/// The tenant's workflow rules: approvals needed, separation of duties, who counts, the
/// exception cap and the emergency SLA.
#[utoipa::path(get, path = "/api/v1/workflow-rules", tag = "cycles", params(TenantQuery),
    responses((status = 200, body = WorkflowRulesView)))]
pub async fn get_rules(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<WorkflowRulesView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.workflow_rules(&actor, t).await?))
}

/// Change the tenant's workflow rules (admins).
#[utoipa::path(put, path = "/api/v1/workflow-rules", tag = "cycles", params(TenantQuery),
    request_body = WorkflowRulesView,
    responses((status = 200, body = WorkflowRulesView), (status = 422, body = ApiError)))]
pub async fn set_rules(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    b: Result<Json<WorkflowRulesView>, JsonRejection>,
) -> Res<Json<WorkflowRulesView>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    let req = body(b)?;
    Ok(Json(app.set_workflow_rules(&actor, t, &req).await?))
}

/// What needs attention today: open findings by decision, KEV and overdue servers, stale
/// feeds, exceptions expiring within 14 days, current cycles, the exposure trend across
/// cycles and emergency proposals.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "servers", params(TenantQuery),
    responses((status = 200, body = Dashboard)))]
pub async fn dashboard(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<Dashboard>> {
    let t = tenant(&app, &actor, query(q)?.tenant.as_deref()).await?;
    Ok(Json(app.dashboard(&actor, t).await?))
}
