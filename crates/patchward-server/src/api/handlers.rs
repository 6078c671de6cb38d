//! Route handlers: authenticate (done by the guard), call the application layer, answer wire
//! types. No rule lives here.

use crate::Shared;
use crate::auth::SESSION_COOKIE;
use crate::error::ApiErr;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use patchward_app::{Actor, AppError};
use patchward_proto::*;
use patchward_store::{AccessStore, AuditQuery, Store, TenantId};
use serde::Deserialize;
use utoipa::IntoParams;

pub(crate) type Res<T> = Result<T, ApiErr>;

pub(crate) fn body<T>(b: Result<Json<T>, JsonRejection>) -> Res<T> {
    b.map(|Json(t)| t).map_err(ApiErr::from)
}

pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Res<T> {
    q.map(|Query(t)| t).map_err(ApiErr::from)
}

/// An uploaded body; too large is `payload_too_large`.
fn upload(b: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Res<Bytes> {
    b.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiErr(AppError::new(
                patchward_proto::ErrorCode::PayloadTooLarge,
                "the upload is larger than 64 MiB: compress it (zstd or gzip) or split it",
            ))
        } else {
            ApiErr(AppError::bad_request(format!("body: {}", r.body_text())))
        }
    })
}

/// Any other path: a JSON 404 like every other error.
pub async fn no_route() -> ApiErr {
    ApiErr(AppError::not_found("this path"))
}

pub(crate) fn id(p: Result<Path<i64>, PathRejection>) -> Res<i64> {
    p.map(|Path(i)| i).map_err(|_| {
        ApiErr(AppError::field(
            "id",
            "the id in the path is a whole number",
        ))
    })
}

pub(crate) async fn tenant(app: &Shared, actor: &Actor, name: Option<&str>) -> Res<TenantId> {
    Ok(app.tenant_for(actor, name).await?)
}

pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Ready when the database answers and the exposure index and fleets are built.
pub async fn readyz(State(app): State<Shared>) -> Response {
    match app.store.catalog_revision().await {
        Ok(_) if !app.is_warm() => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "warming up: building the exposure index and assessing fleets".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            }),
        )
            .into_response(),
        Ok(_) => healthz().await.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "database unreachable".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
            )
                .into_response()
        }
    }
}

/// Log in: sets the session cookie (HttpOnly, Secure, SameSite=Strict) and returns the CSRF
/// token to send as `X-CSRF-Token` on writes.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest,
    security(()),
    responses((status = 200, body = LoginResponse), (status = 401, body = ApiError), (status = 423, body = ApiError)))]
pub async fn login(
    State(app): State<Shared>,
    b: Result<Json<LoginRequest>, JsonRejection>,
) -> Res<Response> {
    let req = body(b)?;
    let s = app.login(&req.name, &req.password).await?;
    let max_age = patchward_app::access::SESSION_FOR.as_secs();
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}",
        s.secret
    );
    let user = app.user_view(&s.user).await?;
    let mut resp = Json(LoginResponse {
        user,
        csrf_token: s.csrf,
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// Log out: ends the session.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204), (status = 401, body = ApiError)))]
pub async fn logout(State(app): State<Shared>, headers: HeaderMap) -> Res<Response> {
    if let Some(secret) = crate::auth::cookie(&headers, SESSION_COOKIE) {
        app.logout(secret).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = UserView), (status = 401, body = ApiError)))]
pub async fn me(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
) -> Res<Json<UserView>> {
    let id = actor
        .user_id
        .ok_or_else(|| AppError::unauthenticated("not a user"))?;
    let u = app
        .user_by_id(id)
        .await?
        .ok_or_else(|| AppError::unauthenticated("your account no longer exists"))?;
    Ok(Json(app.user_view(&u).await?))
}

/// Servers with their exposure counts: search, filters, sort, pages.
#[utoipa::path(get, path = "/api/v1/servers", tag = "servers", params(ServerQuery),
    responses((status = 200, body = ServerPage), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn list_servers(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<ServerQuery>, QueryRejection>,
) -> Res<Json<ServerPage>> {
    let q = query(q)?;
    let t = tenant(&app, &actor, q.tenant.as_deref()).await?;
    Ok(Json(app.servers_page(&actor, t, &q).await?))
}

/// A server: inventory, open CVEs with why each has its priority, missing updates.
#[utoipa::path(get, path = "/api/v1/servers/{id}", tag = "servers",
    params(("id" = i64, Path, description = "Server id"), DetailQuery),
    responses((status = 200, body = ServerDetail), (status = 404, body = ApiError)))]
pub async fn get_server(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
    q: Result<Query<DetailQuery>, QueryRejection>,
) -> Res<Json<ServerDetail>> {
    let id = id(p)?;
    let q = query(q)?;
    let t = tenant(&app, &actor, q.tenant.as_deref()).await?;
    Ok(Json(app.server_detail(&actor, t, id, q.findings).await?))
}

/// The fleet's open findings, counted by decision, KEV, overdue and support.
#[utoipa::path(get, path = "/api/v1/exposure", tag = "servers", params(TenantQuery),
    responses((status = 200, body = ExposureSummary)))]
pub async fn exposure(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<ExposureSummary>> {
    let q = query(q)?;
    let t = tenant(&app, &actor, q.tenant.as_deref()).await?;
    Ok(Json(app.exposure_summary(&actor, t).await?))
}

/// The estate besides servers: services, dependencies, windows, blackouts, backup policies,
/// rings and rollback plans (owners: those that concern their servers).
#[utoipa::path(get, path = "/api/v1/estate", tag = "servers", params(TenantQuery),
    responses((status = 200, body = EstateView)))]
pub async fn estate(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<EstateView>> {
    let q = query(q)?;
    let t = tenant(&app, &actor, q.tenant.as_deref()).await?;
    Ok(Json(app.estate_view(&actor, t).await?))
}

/// Which servers are exposed to a CVE, and what fixes it on each.
#[utoipa::path(get, path = "/api/v1/cves/{cve}", tag = "cves",
    params(("cve" = String, Path, description = "CVE id, e.g. CVE-2024-38063"), TenantQuery),
    responses((status = 200, body = CveExposure), (status = 404, body = ApiError), (status = 422, body = ApiError)))]
pub async fn cve(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(cve): Path<String>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<CveExposure>> {
    let q = query(q)?;
    let t = tenant(&app, &actor, q.tenant.as_deref()).await?;
    Ok(Json(app.cve_exposure(&actor, t, &cve).await?))
}

/// Stored feeds (shared by every tenant): source, as-of date, records.
#[utoipa::path(get, path = "/api/v1/feeds", tag = "feeds",
    responses((status = 200, body = Vec<FeedView>)))]
pub async fn feeds(State(app): State<Shared>) -> Res<Json<Vec<FeedView>>> {
    let status = app.store.feed_status().await.map_err(AppError::from)?;
    Ok(Json(
        status
            .into_iter()
            .map(|f| FeedView {
                feed: f.feed,
                key: f.key,
                source: f.source,
                as_of: f.as_of.map(|t| t.to_string()),
                revision: f.revision,
                records: f.records,
                imported_at: f.imported_at.to_string(),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FeedUploadQuery {
    /// The file's name (errors name it; the kind is recognised by content; zstd/gzip allowed).
    pub name: Option<String>,
}

/// Import one feed file sent as the body (MSRC CVRF XML/JSON, CISA KEV, FIRST EPSS, NVD 2.0,
/// lifecycle, KB build table): same rules as `patchward import feeds`; one transaction.
/// Feeds are shared by every tenant: provider-wide administrators only.
#[utoipa::path(post, path = "/api/v1/feeds", tag = "feeds", params(FeedUploadQuery),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 200, body = ImportResult), (status = 403, body = ApiError), (status = 422, body = ApiError)))]
pub async fn import_feed(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<FeedUploadQuery>, QueryRejection>,
    bytes: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Res<Json<ImportResult>> {
    let q = query(q)?;
    let bytes = upload(bytes)?;
    let name = q.name.unwrap_or_else(|| "upload".into());
    Ok(Json(app.import_feed(&actor, &name, bytes.to_vec()).await?))
}

/// The prioritisation policy in force (SLA days per decision, EPSS threshold, mission tiers).
#[utoipa::path(get, path = "/api/v1/policy", tag = "policy",
    responses((status = 200, description = "The policy, as `patchward policy` prints it in TOML", body = Object)))]
pub async fn policy(State(app): State<Shared>) -> Res<Json<serde_json::Value>> {
    serde_json::to_value(app.policy())
        .map(Json)
        .map_err(|e| ApiErr(AppError::internal(e.to_string())))
}

/// Stored plans of the tenant, newest first.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans", params(TenantQuery),
    responses((status = 200, body = Vec<PlanItem>)))]
pub async fn plans(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<Vec<PlanItem>>> {
    let q = query(q)?;
    let t = tenant(&app, &actor, q.tenant.as_deref()).await?;
    let plans = app.store.plans(t).await.map_err(AppError::from)?;
    Ok(Json(
        plans
            .into_iter()
            .map(|(cycle, at)| PlanItem {
                cycle,
                created_at: at.to_string(),
            })
            .collect(),
    ))
}

/// Plan a cycle: waves within windows, blackouts, dependencies, budgets and rings; checked by
/// the independent checker and stored under the cycle name (replacing an earlier plan).
#[utoipa::path(post, path = "/api/v1/plans", tag = "plans", request_body = CreatePlanRequest,
    responses((status = 201, body = PlanView), (status = 422, body = ApiError)))]
pub async fn create_plan(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<CreatePlanRequest>, JsonRejection>,
) -> Res<(StatusCode, Json<PlanView>)> {
    let req = body(b)?;
    let t = tenant(&app, &actor, req.tenant.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(app.create_plan(&actor, t, &req).await?),
    ))
}

/// A stored plan: every placement with why it is there, and every server left out with the
/// rule that stops it (owners: their servers only).
#[utoipa::path(get, path = "/api/v1/plans/{cycle}", tag = "plans",
    params(("cycle" = String, Path, description = "Cycle name"), TenantQuery),
    responses((status = 200, body = PlanView), (status = 404, body = ApiError)))]
pub async fn get_plan(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(cycle): Path<String>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<PlanView>> {
    let q = query(q)?;
    let t = tenant(&app, &actor, q.tenant.as_deref()).await?;
    Ok(Json(app.plan_of(&actor, t, &cycle).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The file's name (errors name it; `.csv`, `.toml`, captures are recognised by content).
    pub name: Option<String>,
    pub tenant: Option<String>,
}

/// Import one inventory file (CSV, estate TOML, systeminfo, wmic qfe, Get-HotFix) sent as the
/// body: same rules as `patchward import hosts`; nothing is stored unless all of it is good.
#[utoipa::path(post, path = "/api/v1/hosts", tag = "servers", params(UploadQuery),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 200, body = ImportResult), (status = 422, body = ApiError)))]
pub async fn import_hosts(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<UploadQuery>, QueryRejection>,
    bytes: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Res<Json<ImportResult>> {
    let q = query(q)?;
    let bytes = upload(bytes)?;
    let t = tenant(&app, &actor, q.tenant.as_deref()).await?;
    let name = q.name.unwrap_or_else(|| "upload".into());
    let mut batch = patchward_app::hosts::HostBatch::default();
    if let Err(e) = batch.add(&name, &bytes) {
        let lines = patchward_app::hosts::error_lines(&e, &name);
        return Err(ApiErr(AppError::field(
            "body",
            format!("no server was stored: {}", lines.join("; ")),
        )));
    }
    let warnings = std::mem::take(&mut batch.warnings);
    let n = app.import_hosts(&actor, t, batch).await?;
    Ok(Json(ImportResult {
        servers: n as u64,
        stored: 1,
        unchanged: 0,
        older: 0,
        warnings,
    }))
}

/// Users of the tenant (provider-wide administrators: every user, or one tenant's).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(TenantQuery),
    responses((status = 200, body = Vec<UserView>), (status = 403, body = ApiError)))]
pub async fn list_users(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Res<Json<Vec<UserView>>> {
    let q = query(q)?;
    let t = match q.tenant.as_deref() {
        Some(n) => Some(tenant(&app, &actor, Some(n)).await?),
        None => None,
    };
    let mut out = Vec::new();
    for u in app.users(&actor, t).await? {
        out.push(app.user_view(&u).await?);
    }
    Ok(Json(out))
}

/// Add a user (argon2id password; without one the account only uses tokens).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = UserView), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn create_user(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<CreateUserRequest>, JsonRejection>,
) -> Res<(StatusCode, Json<UserView>)> {
    let req = body(b)?;
    let t = match req.tenant.as_deref() {
        Some(n) => Some(tenant(&app, &actor, Some(n)).await?),
        None => actor.tenant,
    };
    let u = app
        .add_user(&actor, &req.name, &req.role, t, req.password)
        .await?;
    Ok((StatusCode::CREATED, Json(app.user_view(&u).await?)))
}

/// Disable a user: their sessions end and their tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 404, body = ApiError)))]
pub async fn disable_user(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
) -> Res<Json<UserView>> {
    let u = app.set_user_disabled(&actor, id(p)?, true).await?;
    Ok(Json(app.user_view(&u).await?))
}

/// Enable a disabled user again.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 404, body = ApiError)))]
pub async fn enable_user(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
) -> Res<Json<UserView>> {
    let u = app.set_user_disabled(&actor, id(p)?, false).await?;
    Ok(Json(app.user_view(&u).await?))
}

/// Your tokens (administrators: the tenant's).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>)))]
pub async fn list_tokens(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
) -> Res<Json<Vec<TokenView>>> {
    let tokens = app.tokens(&actor).await?;
    Ok(Json(
        tokens
            .iter()
            .map(|(t, user)| app.token_view(t, user))
            .collect(),
    ))
}

/// Create an API token; the secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = TokenCreated), (status = 422, body = ApiError)))]
pub async fn create_token(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<CreateTokenRequest>, JsonRejection>,
) -> Res<(StatusCode, Json<TokenCreated>)> {
    let req = body(b)?;
    let (t, user, secret) = app
        .create_token(
            &actor,
            req.user.as_deref(),
            req.label.as_deref(),
            req.expires_days,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token: app.token_view(&t, &user.name),
            secret,
        }),
    ))
}

/// Revoke a token (yours, or as an administrator one of your tenant's); effective at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 200, body = TokenView), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub async fn revoke_token(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    p: Result<Path<i64>, PathRejection>,
) -> Res<Json<TokenView>> {
    let t = app.revoke_token(&actor, id(p)?).await?;
    let user = app
        .user_by_id(t.user_id)
        .await?
        .map(|u| u.name)
        .unwrap_or_default();
    Ok(Json(app.token_view(&t, &user)))
}

fn tenant_view(t: patchward_store::Tenant) -> TenantView {
    TenantView {
        id: t.id.0,
        name: t.name,
        created_at: t.created_at.to_string(),
    }
}

/// Tenants (provider-wide administrators).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = Vec<TenantView>), (status = 403, body = ApiError)))]
pub async fn list_tenants(State(app): State<Shared>) -> Res<Json<Vec<TenantView>>> {
    let all = app.store.tenants().await.map_err(AppError::from)?;
    Ok(Json(all.into_iter().map(tenant_view).collect()))
}

/// Create a tenant (a customer of a managed-service provider).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenantRequest,
    responses((status = 201, body = TenantView), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn create_tenant(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    b: Result<Json<CreateTenantRequest>, JsonRejection>,
) -> Res<(StatusCode, Json<TenantView>)> {
    let req = body(b)?;
    let t = app.create_tenant(&actor, &req.name).await?;
    Ok((StatusCode::CREATED, Json(tenant_view(t))))
}

/// The audit log, oldest first, filtered; `format=jsonl` exports one entry per line.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQueryParams),
    responses((status = 200, body = Vec<AuditEntryView>), (status = 403, body = ApiError)))]
pub async fn audit(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<AuditQueryParams>, QueryRejection>,
) -> Res<Response> {
    let q = query(q)?;
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<jiff::Timestamp>().map_err(|e| {
            AppError::field("since", format!("{s:?} is not an RFC 3339 instant: {e}"))
        })?),
    };
    let limit = q.limit.unwrap_or(500);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiErr(AppError::field("limit", "limit is 1 to 10000")));
    }
    let jsonl = match q.format.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(other) => {
            return Err(ApiErr(AppError::field(
                "format",
                format!("{other:?}: `json` or `jsonl`"),
            )));
        }
    };
    let t = match q.tenant.as_deref() {
        Some(n) => Some(tenant(&app, &actor, Some(n)).await?),
        None => None,
    };
    let entries = app
        .audit_entries(
            &actor,
            t,
            AuditQuery {
                actor: q.actor,
                action: q.action,
                since,
                after_seq: q.after.filter(|_| actor.provider_wide()),
                after_tenant_seq: q.after.filter(|_| !actor.provider_wide()),
                limit: Some(i64::from(limit)),
                ..AuditQuery::default()
            },
        )
        .await?;
    let mut names = std::collections::HashMap::new();
    let mut views = Vec::with_capacity(entries.len());
    for e in entries {
        let tenant = match e.tenant {
            None => None,
            Some(id) => {
                if let std::collections::hash_map::Entry::Vacant(v) = names.entry(id) {
                    v.insert(
                        app.store
                            .tenant(id)
                            .await
                            .map_err(AppError::from)?
                            .map(|t| t.name),
                    );
                }
                names.get(&id).cloned().flatten()
            }
        };
        let provider = actor.provider_wide();
        views.push(AuditEntryView {
            seq: if provider { e.seq } else { e.tenant_seq },
            at: e.at.to_string(),
            tenant,
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail)),
            prev_hash: provider.then_some(e.prev_hash),
            hash: provider.then_some(e.hash),
        });
    }
    if jsonl {
        let mut text = String::new();
        for v in &views {
            text.push_str(&serde_json::to_string(v).unwrap_or_default());
            text.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], text).into_response());
    }
    Ok(Json(views).into_response())
}

/// Check the audit chain: the first entry that was changed or deleted, if any.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerification), (status = 403, body = ApiError)))]
pub async fn verify_audit(
    State(app): State<Shared>,
    Extension(actor): Extension<Actor>,
) -> Res<Json<AuditVerification>> {
    Ok(Json(app.verify_audit(&actor).await?))
}
