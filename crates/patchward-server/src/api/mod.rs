//! `/api/v1`: the routes, the permission each needs ([`ROUTES`], the one table both the guard
//! and the tests read), and the OpenAPI document.

mod agents;
pub(crate) mod handlers;
mod workflow;

use crate::Shared;
use axum::Router;
use axum::http::Method;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone (logging in).
    Public,
    /// Any signed-in user (their own session and tokens).
    Authenticated,
    /// Read the tenant's data (owners: their servers only).
    Read,
    /// Import and change the estate, prepare and plan cycles.
    Operate,
    /// Approve cycles, grant and revoke exceptions.
    Approve,
    /// Administer the tenant: users, tokens, audit log.
    Administer,
    /// A provider-wide administrator: tenants, the whole audit chain.
    ProviderAdmin,
}

/// Every API route and what it needs. A route missing here answers 500, and a test fails
/// when the OpenAPI document and this table disagree.
pub const ROUTES: &[(&str, &str, Need)] = &[
    ("POST", "/api/v1/session", Need::Public),
    ("DELETE", "/api/v1/session", Need::Authenticated),
    ("GET", "/api/v1/me", Need::Authenticated),
    ("GET", "/api/v1/servers", Need::Read),
    ("GET", "/api/v1/servers/{id}", Need::Read),
    ("GET", "/api/v1/exposure", Need::Read),
    ("GET", "/api/v1/estate", Need::Read),
    ("GET", "/api/v1/cves/{cve}", Need::Read),
    ("GET", "/api/v1/feeds", Need::Read),
    ("POST", "/api/v1/feeds", Need::ProviderAdmin),
    ("GET", "/api/v1/policy", Need::Read),
    ("GET", "/api/v1/plans", Need::Read),
    ("POST", "/api/v1/plans", Need::Operate),
    ("GET", "/api/v1/plans/{cycle}", Need::Read),
    ("POST", "/api/v1/hosts", Need::Operate),
    ("GET", "/api/v1/users", Need::Administer),
    ("POST", "/api/v1/users", Need::Administer),
    ("POST", "/api/v1/users/{id}/disable", Need::Administer),
    ("POST", "/api/v1/users/{id}/enable", Need::Administer),
    ("GET", "/api/v1/tokens", Need::Authenticated),
    ("POST", "/api/v1/tokens", Need::Authenticated),
    ("DELETE", "/api/v1/tokens/{id}", Need::Authenticated),
    ("GET", "/api/v1/tenants", Need::ProviderAdmin),
    ("POST", "/api/v1/tenants", Need::ProviderAdmin),
    ("GET", "/api/v1/audit", Need::Administer),
    ("GET", "/api/v1/audit/verify", Need::ProviderAdmin),
    ("GET", "/api/v1/dashboard", Need::Read),
    ("GET", "/api/v1/cycles", Need::Read),
    ("POST", "/api/v1/cycles", Need::Operate),
    ("GET", "/api/v1/cycles/{id}", Need::Read),
    ("POST", "/api/v1/cycles/{id}/plan", Need::Operate),
    // Approvers and admins; the preparer is refused by separation of duties in the app.
    ("POST", "/api/v1/cycles/{id}/approvals", Need::Approve),
    ("PUT", "/api/v1/cycles/{id}/scope", Need::Operate),
    ("POST", "/api/v1/cycles/{id}/deferrals", Need::Operate),
    ("POST", "/api/v1/cycles/{id}/transitions", Need::Operate),
    ("POST", "/api/v1/cycles/{id}/start", Need::Operate),
    ("GET", "/api/v1/cycles/{id}/jobs", Need::Read),
    ("POST", "/api/v1/cycles/{id}/pause", Need::Operate),
    // Going on past a halted ring accepts its failures: an approver's decision.
    ("POST", "/api/v1/cycles/{id}/resume", Need::Approve),
    ("POST", "/api/v1/jobs/{id}/rollback", Need::Approve),
    ("POST", "/api/v1/cycles/{id}/replan", Need::Operate),
    ("GET", "/api/v1/emergencies", Need::Read),
    ("GET", "/api/v1/exceptions", Need::Read),
    ("POST", "/api/v1/exceptions", Need::Approve),
    ("POST", "/api/v1/exceptions/{id}/revoke", Need::Approve),
    ("GET", "/api/v1/workflow-rules", Need::Read),
    ("PUT", "/api/v1/workflow-rules", Need::Administer),
    ("GET", "/api/v1/agents", Need::Read),
    ("POST", "/api/v1/agents/{id}/revoke", Need::Administer),
    ("GET", "/api/v1/enrol-tokens", Need::Administer),
    ("POST", "/api/v1/enrol-tokens", Need::Administer),
    ("POST", "/api/v1/enrol-tokens/{id}/revoke", Need::Administer),
];

/// What a route needs; HEAD is answered like GET. `None`: the path exists, the method not.
pub fn need_of(method: &Method, path: &str) -> Option<Need> {
    let m = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|(rm, p, _)| *p == path && m == *rm)
        .map(|r| r.2)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Patchward API",
        description = "Self-hosted Windows Server patch management. Authenticate with \
            `Authorization: Bearer TOKEN` (`patchward tokens create --user NAME`) or a session \
            from `POST /api/v1/session` (then send `X-CSRF-Token` on writes). Errors are \
            `{code, message, field?}`.",
        license(name = "AGPL-3.0-or-later")
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = []))
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

fn api_router() -> OpenApiRouter<Shared> {
    use handlers::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(login, logout))
        .routes(routes!(me))
        .routes(routes!(list_servers))
        .routes(routes!(get_server))
        .routes(routes!(exposure))
        .routes(routes!(estate))
        .routes(routes!(cve))
        .routes(routes!(feeds, import_feed))
        .routes(routes!(policy))
        .routes(routes!(plans, create_plan))
        .routes(routes!(get_plan))
        .routes(routes!(import_hosts))
        .routes(routes!(list_users, create_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(audit))
        .routes(routes!(verify_audit))
        .routes(routes!(workflow::dashboard))
        .routes(routes!(workflow::list_cycles, workflow::create_cycle))
        .routes(routes!(workflow::get_cycle))
        .routes(routes!(workflow::plan_cycle))
        .routes(routes!(workflow::approve_cycle))
        .routes(routes!(workflow::edit_scope))
        .routes(routes!(workflow::defer))
        .routes(routes!(workflow::transition))
        .routes(routes!(agents::start_cycle))
        .routes(routes!(agents::cycle_jobs))
        .routes(routes!(agents::pause_cycle))
        .routes(routes!(agents::resume_cycle))
        .routes(routes!(agents::rollback_job))
        .routes(routes!(agents::replan_cycle))
        .routes(routes!(workflow::emergencies))
        .routes(routes!(
            workflow::list_exceptions,
            workflow::grant_exception
        ))
        .routes(routes!(workflow::revoke_exception))
        .routes(routes!(workflow::get_rules, workflow::set_rules))
        .routes(routes!(agents::list_agents))
        .routes(routes!(agents::revoke_agent))
        .routes(routes!(
            agents::list_enrol_tokens,
            agents::create_enrol_token
        ))
        .routes(routes!(agents::revoke_enrol_token))
}

/// The OpenAPI document (also served at `/api/v1/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// `Server-Timing: app;dur=MS`: the time the server spent on the request, from routing to
/// the response head (what `bench api` reports as server-side).
async fn server_timing(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let t = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

/// Every JSON body this server takes is an object: serde would read an array as a struct's
/// fields in order (`["a", 1]` for `{"name": "a", "uses": 1}`), past `deny_unknown_fields`
/// and the field names the errors cite, so an array (or a bare value) is refused here.
async fn json_objects_only(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return crate::error::ApiErr(patchward_app::AppError::bad_request(format!(
                "body: larger than {} MiB, or cut short",
                BODY_LIMIT / (1024 * 1024)
            )))
            .into_response();
        }
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if let Some(&c) = first
        && c != b'{'
    {
        let got = match c {
            b'[' => "an array",
            b'"' => "a string",
            b'n' => "null",
            b't' | b'f' => "a boolean",
            b'0'..=b'9' | b'-' => "a number",
            _ => "a value that is not an object",
        };
        return crate::error::ApiErr(patchward_app::AppError::field(
            "body",
            format!("expected a JSON object ({{\"field\": …}}), got {got}"),
        ))
        .into_response();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// Largest request body (feed uploads are the large ones).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub fn router(app: Shared) -> Router {
    let (api, doc) = api_router().split_for_parts();
    let api = api.layer(axum::middleware::from_fn_with_state(
        app.clone(),
        crate::auth::guard,
    ));
    Router::new()
        .merge(api)
        .merge(crate::ui::router())
        .merge(crate::agent_api::router())
        .route("/healthz", axum::routing::get(handlers::healthz))
        .route("/readyz", axum::routing::get(handlers::readyz))
        .fallback(handlers::no_route)
        .merge(
            SwaggerUi::new("/api/v1/docs")
                .url("/api/v1/openapi.json", doc)
                // No call to swagger.io's validator: nothing leaves an air-gapped site.
                .config(
                    utoipa_swagger_ui::Config::from("/api/v1/openapi.json").validator_url("none"),
                ),
        )
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(json_objects_only))
        .layer(axum::middleware::from_fn(server_timing))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
        .with_state(app)
}
