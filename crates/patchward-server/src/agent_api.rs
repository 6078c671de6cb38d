//! `/agent/v1`: the agent protocol's endpoints (`docs/agent-protocol.md`). Agents are not
//! users: they authenticate with their own credential (`Authorization: Bearer pwa_...`) and
//! can only act for the server they enrolled as. Not in the user API's OpenAPI document.

use crate::Shared;
use crate::api::handlers::{Res, body};
use crate::error::ApiErr;
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::post;
use patchward_app::AppError;
use patchward_proto::agent::{
    CheckIn, CheckInReply, EnrolBatchReply, EnrolBatchRequest, EnrolReply, EnrolRequest,
    InventoryReport, StepReply, StepReport,
};
use patchward_store::AgentRecord;
use std::net::SocketAddr;

/// The calling agent, authenticated against the store on every request (a revoked agent is
/// refused at its next call).
pub struct CallingAgent(pub AgentRecord);

impl FromRequestParts<Shared> for CallingAgent {
    type Rejection = ApiErr;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Self, ApiErr> {
        let credential = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiErr(AppError::unauthenticated(
                    "send the agent's credential: Authorization: Bearer pwa_...",
                ))
            })?;
        Ok(CallingAgent(app.authenticate_agent(credential).await?))
    }
}

/// The caller's address, for the enrolment rate limit.
struct Source(String);

impl FromRequestParts<Shared> for Source {
    type Rejection = ApiErr;

    async fn from_request_parts(parts: &mut Parts, _: &Shared) -> Result<Self, ApiErr> {
        Ok(Source(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

async fn enrol(
    State(app): State<Shared>,
    Source(source): Source,
    b: Result<Json<EnrolRequest>, JsonRejection>,
) -> Res<(StatusCode, Json<EnrolReply>)> {
    let req = body(b)?;
    Ok((StatusCode::CREATED, Json(app.enrol(&req, &source).await?)))
}

async fn enrol_batch(
    State(app): State<Shared>,
    Source(source): Source,
    b: Result<Json<EnrolBatchRequest>, JsonRejection>,
) -> Res<(StatusCode, Json<EnrolBatchReply>)> {
    let req = body(b)?;
    Ok((
        StatusCode::CREATED,
        Json(app.enrol_batch(&req, &source).await?),
    ))
}

async fn check_in(
    State(app): State<Shared>,
    CallingAgent(agent): CallingAgent,
    b: Result<Json<CheckIn>, JsonRejection>,
) -> Res<Json<CheckInReply>> {
    let req = body(b)?;
    Ok(Json(app.check_in(&agent, &req).await?))
}

async fn inventory(
    State(app): State<Shared>,
    CallingAgent(agent): CallingAgent,
    b: Result<Json<InventoryReport>, JsonRejection>,
) -> Res<StatusCode> {
    let report = body(b)?;
    app.report_inventory(&agent, &report).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn step(
    State(app): State<Shared>,
    CallingAgent(agent): CallingAgent,
    p: Result<axum::extract::Path<i64>, axum::extract::rejection::PathRejection>,
    b: Result<Json<StepReport>, JsonRejection>,
) -> Res<Json<StepReply>> {
    let id = crate::api::handlers::id(p)?;
    let report = body(b)?;
    Ok(Json(app.report_step(&agent, id, &report).await?))
}

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/agent/v1/enrol", post(enrol))
        .route("/agent/v1/enrol-batch", post(enrol_batch))
        .route("/agent/v1/check-in", post(check_in))
        .route("/agent/v1/inventory", post(inventory))
        .route("/agent/v1/jobs/{id}/steps", post(step))
        // An inventory report of a big host (thousands of KBs and services) stays far below.
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
}
