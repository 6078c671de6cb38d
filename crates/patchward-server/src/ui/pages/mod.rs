//! The pages: each handler authenticates (the `Session` extractor), calls the application
//! layer, and renders a template. A form that changes something checks its CSRF field,
//! answers with a redirect to the page it came from on success (with a known message code),
//! and with the page and the error's message and status on failure.

use super::assets;
use super::svg;
use super::{Session, check_csrf, error_page, html};

mod admin;
mod cycles;
mod exceptions;
mod servers;

use crate::Shared;
use crate::auth::SESSION_COOKIE;
pub use admin::*;
use askama::Template;
use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
pub use cycles::*;
pub use exceptions::*;
use patchward_app::AppError;
use patchward_core::access::Permission;
use patchward_proto::*;
use serde::Deserialize;
pub use servers::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

// ---- Layout and helpers ----

pub struct Layout {
    pub title: String,
    pub section: &'static str,
    pub user: String,
    pub role: String,
    pub tenant: String,
    pub csrf: String,
    pub admin: bool,
    pub flash: Option<String>,
    pub error: Option<String>,
    pub css: (String, String),
    pub htmx: (String, String),
    pub js: (String, String),
}

fn asset(name: &str) -> (String, String) {
    assets::get(name)
        .map(|a| (a.url.clone(), a.integrity.clone()))
        .unwrap_or_default()
}

impl Layout {
    fn new(s: &Session, title: impl Into<String>, section: &'static str) -> Layout {
        Layout {
            title: title.into(),
            section,
            user: s.actor.name.clone(),
            role: s.actor.role.to_string(),
            tenant: String::new(),
            csrf: s.csrf.clone(),
            admin: s.can(Permission::Administer),
            flash: None,
            error: None,
            css: asset("app.css"),
            htmx: asset("htmx.min.js"),
            js: asset("app.js"),
        }
    }

    fn with(mut self, done: Option<&str>, error: Option<&AppError>) -> Layout {
        self.flash = done.and_then(done_message).map(str::to_string);
        self.error = error.map(|e| e.message.clone());
        self
    }

    pub fn nav(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        let mut v = vec![
            ("/", "Dashboard", "dashboard"),
            ("/servers", "Servers", "servers"),
            ("/cves", "CVEs", "cves"),
            ("/cycles", "Cycles", "cycles"),
            ("/exceptions", "Exceptions", "exceptions"),
        ];
        if self.admin {
            v.push(("/audit", "Audit log", "audit"));
        }
        v.push(("/settings", "Settings", "settings"));
        v
    }
}

/// The messages a redirect after a successful form may show (never text from the URL).
fn done_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "created" => "Cycle created. Review its scope, then plan it.",
        "planned" => "Planned. The plan below is waiting for approval.",
        "approved" => "Approval recorded.",
        "scope" => "Scope changed; a planned cycle was re-planned.",
        "deferred" => "Deferred.",
        "running" => "The cycle is running.",
        "completed" => "The cycle is completed.",
        "cancelled" => "The cycle is cancelled.",
        "granted" => "Exception granted: its findings leave the open counts until it expires.",
        "revoked" => "Exception revoked: its findings are open again.",
        "rules" => "Workflow rules saved.",
        "paused" => "The cycle is paused: no new job starts; running ones finish.",
        "resumed" => "The cycle goes on.",
        "rolling-back" => "Rollback asked for: it runs by the server's rollback plan.",
        "rolled-back" => "Rollback recorded.",
        "replanned" => "Re-planned: every job not started yet has its new slot.",
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

static OPS: AtomicU64 = AtomicU64::new(0);

/// A short id to quote from an error page (also in the server's log).
pub fn operation_id() -> String {
    let t = jiff::Timestamp::now().as_millisecond();
    format!("{:x}-{:x}", t, OPS.fetch_add(1, Ordering::Relaxed))
}

fn render(t: impl Template) -> Response {
    match t.render() {
        Ok(body) => html(body),
        Err(e) => error_page(&AppError::internal(format!("template: {e}"))),
    }
}

fn render_status(t: impl Template, status: StatusCode) -> Response {
    let mut r = render(t);
    if r.status() == StatusCode::OK {
        *r.status_mut() = status;
    }
    r
}

fn status_of(e: &AppError) -> StatusCode {
    StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: String,
    message: &'a str,
    op: &'a str,
    css: (String, String),
}

pub fn render_error(status: StatusCode, message: &str, op: &str) -> String {
    ErrorPage {
        status: status.to_string(),
        message,
        op,
        css: asset("app.css"),
    }
    .render()
    .unwrap_or_else(|_| format!("{status}: {message} (operation {op})"))
}

/// A malformed query string, as the API words it (naming the parameter).
fn bad_query(e: QueryRejection) -> AppError {
    crate::error::from_serde(&e.body_text(), "query")
}

/// A checkbox's value: ticked.
pub(crate) fn checked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|x| x == "true" || x == "on")
}

fn nonblank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

// ---- Login ----

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: (String, String),
    error: Option<String>,
    next: String,
    name: String,
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path on this site (never `//host` or a scheme): no open redirect.
fn safe_next(n: Option<&str>) -> String {
    match n {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".into(),
    }
}

pub async fn login_form(q: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = safe_next(q.as_ref().ok().and_then(|q| q.next.as_deref()));
    render(LoginPage {
        css: asset("app.css"),
        error: None,
        next,
        name: String::new(),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    next: Option<String>,
}

pub async fn login(State(app): State<Shared>, Form(f): Form<LoginForm>) -> Response {
    let next = safe_next(f.next.as_deref());
    match app.login(&f.name, &f.password).await {
        Ok(s) => {
            let max_age = patchward_app::access::SESSION_FOR.as_secs();
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}",
                s.secret
            );
            let mut r = see_other(&next);
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            let status = status_of(&e);
            render_status(
                LoginPage {
                    css: asset("app.css"),
                    error: Some(e.message),
                    next,
                    name: f.name,
                },
                status,
            )
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(app): State<Shared>,
    s: Session,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(e) = check_csrf(&s, &f.csrf) {
        return error_page(&e);
    }
    if let Some(secret) = crate::auth::cookie(&headers, SESSION_COOKIE)
        && let Err(e) = app.logout(secret).await
    {
        return error_page(&e);
    }
    let mut r = see_other("/login");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

// ---- Dashboard ----

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    d: Dashboard,
    chart: String,
    can_operate: bool,
}

pub async fn dashboard(State(app): State<Shared>, s: Session, q: Query<Done>) -> Response {
    match app.dashboard(&s.actor, s.tenant).await {
        Ok(d) => render(DashboardPage {
            layout: Layout::new(&s, "Dashboard", "dashboard").with(q.done.as_deref(), None),
            chart: svg::trend(&d.trend),
            can_operate: s.can(Permission::Operate),
            d,
        }),
        Err(e) => error_page(&e),
    }
}
