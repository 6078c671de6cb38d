//! The web UI: server-rendered pages (askama templates in `templates/`, htmx for partial
//! updates, no JavaScript build step, nothing from another origin). Pages call the same
//! application layer as the API; no rule lives in a template or a handler.
//!
//! Authentication is the API's session cookie; every form that changes something carries the
//! session's CSRF token in a hidden field. The URL is the state: filters, sort and page are in
//! the query string, and an htmx request (`HX-Request`) gets the partial it asked for.

mod assets;
mod pages;
mod svg;

use crate::Shared;
use crate::auth::{SESSION_COOKIE, cookie};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use patchward_app::{Actor, AppError};
use patchward_core::access::Permission;
use patchward_proto::ErrorCode;
use patchward_store::TenantId;

/// The content security policy of every page: nothing from another origin, no inline script.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A signed-in user on a page: who, their session's CSRF token, the tenant they act on.
pub struct Session {
    pub actor: Actor,
    pub csrf: String,
    pub tenant: TenantId,
    /// An htmx request: answer with the partial.
    pub htmx: bool,
}

impl Session {
    pub fn can(&self, p: Permission) -> bool {
        self.actor.role.allows(p)
    }
}

/// Not signed in (or the session ended): to the login page, then back here.
pub struct ToLogin(String);

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        let to = format!("/login?next={}", query_escape(&self.0));
        let mut r = Redirect::to(&to).into_response();
        // htmx follows redirects inside the swap; make it load the whole login page instead.
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert("hx-redirect", v);
        }
        r
    }
}

impl FromRequestParts<Shared> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Session, Response> {
        let here = parts.uri.to_string();
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(ToLogin(here).into_response());
        };
        let (actor, csrf) = match app.authenticate_session(secret).await {
            Ok(x) => x,
            Err(_) => return Err(ToLogin(here).into_response()),
        };
        let tenant = match app.tenant_for(&actor, None).await {
            Ok(t) => t,
            Err(e) => return Err(error_page(&e).into_response()),
        };
        let htmx = parts.headers.contains_key("hx-request");
        Ok(Session {
            actor,
            csrf,
            tenant,
            htmx,
        })
    }
}

/// A form's CSRF field must match the session's.
pub fn check_csrf(s: &Session, sent: &str) -> Result<(), AppError> {
    let ok = !sent.is_empty() && crate::auth::constant_time_eq(sent.as_bytes(), s.csrf.as_bytes());
    if ok {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::CsrfRejected,
            "the form expired or came from another site: reload the page and try again",
        ))
    }
}

/// Percent-encoding for a query value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A page as HTML with the security headers every page gets.
pub fn html(body: String) -> Response {
    let mut r = Html(body).into_response();
    secure(r.headers_mut());
    r
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An error as a page with its status and an operation id to quote (UI guide: errors).
pub fn error_page(e: &AppError) -> Response {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let op = pages::operation_id();
    let message = if e.code == ErrorCode::Internal {
        tracing::error!(error = %e.message, operation = %op, "internal error on a page");
        "Something went wrong on our side.".to_string()
    } else {
        e.message.clone()
    };
    let mut r = html(pages::render_error(status, &message, &op));
    *r.status_mut() = status;
    r
}

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/", get(pages::dashboard))
        .route("/servers", get(pages::servers))
        .route("/servers/{id}", get(pages::server))
        .route("/cves", get(pages::cves))
        .route("/cves/{cve}", get(pages::cve))
        .route("/cycles", get(pages::cycles).post(pages::create_cycle))
        .route("/cycles/{id}", get(pages::cycle))
        .route("/cycles/{id}/plan", post(pages::plan_cycle))
        .route("/cycles/{id}/approve", post(pages::approve_cycle))
        .route("/cycles/{id}/scope", post(pages::edit_scope))
        .route("/cycles/{id}/defer", post(pages::defer))
        .route("/cycles/{id}/transition", post(pages::transition))
        .route("/cycles/{id}/jobs", get(pages::cycle_jobs))
        .route("/cycles/{id}/pause", post(pages::pause))
        .route("/cycles/{id}/resume", post(pages::resume))
        .route("/cycles/{id}/replan", post(pages::replan))
        .route(
            "/cycles/{id}/jobs/{job}/rollback",
            post(pages::rollback_job),
        )
        .route(
            "/exceptions",
            get(pages::exceptions).post(pages::grant_exception),
        )
        .route("/exceptions/{id}/revoke", post(pages::revoke_exception))
        .route("/audit", get(pages::audit))
        .route("/audit.csv", get(pages::audit_csv))
        .route("/settings", get(pages::settings))
        .route("/settings/rules", post(pages::set_rules))
        .route("/assets/{file}", get(assets::asset))
}
