//! The pages: each handler authenticates (the `Session` extractor), calls the application
//! layer, and renders a template. A form that changes something checks its CSRF field,
//! answers with a redirect to the page it came from on success (with a known message code),
//! and with the page and the error's message and status on failure.

use super::assets;
use super::svg;
use super::{Session, check_csrf, error_page, html};
use crate::Shared;
use crate::auth::SESSION_COOKIE;
use askama::Template;
use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use patchward_app::AppError;
use patchward_core::access::Permission;
use patchward_proto::*;
use serde::Deserialize;
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

// ---- Servers ----

/// The server list's filters, as the URL carries them (one struct for parsing and showing).
#[derive(Deserialize, Default, Clone)]
pub struct ServerFilters {
    q: Option<String>,
    decision: Option<String>,
    release: Option<String>,
    ring: Option<String>,
    owner: Option<String>,
    tag: Option<String>,
    kev: Option<String>,
    overdue: Option<String>,
    unsupported: Option<String>,
    sort: Option<String>,
    page: Option<u32>,
}

pub struct ShownFilters {
    q: String,
    release: String,
    ring: String,
    owner: String,
    tag: String,
    kev: bool,
    overdue: bool,
    unsupported: bool,
    sort: String,
}

fn checked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|x| x == "true" || x == "on")
}

impl ServerFilters {
    fn query(&self) -> ServerQuery {
        ServerQuery {
            q: nonblank(&self.q),
            release: nonblank(&self.release),
            kev: checked(&self.kev).then_some(true),
            decision: nonblank(&self.decision),
            tag: nonblank(&self.tag),
            ring: nonblank(&self.ring),
            owner: nonblank(&self.owner),
            unsupported: checked(&self.unsupported).then_some(true),
            overdue: checked(&self.overdue).then_some(true),
            sort: nonblank(&self.sort),
            page: self.page,
            per_page: Some(50),
            tenant: None,
        }
    }

    /// The query string of these filters on another page.
    fn url(&self, page: u32) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("q", &self.q),
            ("decision", &self.decision),
            ("release", &self.release),
            ("ring", &self.ring),
            ("owner", &self.owner),
            ("tag", &self.tag),
            ("kev", &self.kev),
            ("overdue", &self.overdue),
            ("unsupported", &self.unsupported),
            ("sort", &self.sort),
        ] {
            if let Some(v) = nonblank(v) {
                parts.push(format!("{k}={}", super::query_escape(&v)));
            }
        }
        parts.push(format!("page={page}"));
        format!("/servers?{}", parts.join("&"))
    }

    fn chips(&self) -> Vec<String> {
        let mut c = Vec::new();
        for (k, v) in [
            ("search", &self.q),
            ("decision ≥", &self.decision),
            ("release", &self.release),
            ("ring", &self.ring),
            ("owner", &self.owner),
            ("tag", &self.tag),
        ] {
            if let Some(v) = nonblank(v) {
                c.push(format!("{k} {v}"));
            }
        }
        for (k, v) in [
            ("KEV open", &self.kev),
            ("overdue", &self.overdue),
            ("unsupported", &self.unsupported),
        ] {
            if checked(v) {
                c.push(k.to_string());
            }
        }
        c
    }

    fn shown(&self) -> ShownFilters {
        let t = |v: &Option<String>| v.clone().unwrap_or_default();
        ShownFilters {
            q: t(&self.q),
            release: t(&self.release),
            ring: t(&self.ring),
            owner: t(&self.owner),
            tag: t(&self.tag),
            kev: checked(&self.kev),
            overdue: checked(&self.overdue),
            unsupported: checked(&self.unsupported),
            sort: t(&self.sort),
        }
    }
}

#[derive(Template)]
#[template(path = "servers.html")]
struct ServersPage {
    layout: Layout,
    f: ShownFilters,
    decisions: Vec<(&'static str, &'static str, bool)>,
    page: ServerPage,
    chips: Vec<String>,
    prev: Option<String>,
    next: Option<String>,
    pages: u64,
    first: u64,
    last: u64,
}

#[derive(Template)]
#[template(path = "servers_results.html")]
struct ServersResults {
    page: ServerPage,
    chips: Vec<String>,
    prev: Option<String>,
    next: Option<String>,
    pages: u64,
    first: u64,
    last: u64,
}

pub async fn servers(
    State(app): State<Shared>,
    s: Session,
    q: Result<Query<ServerFilters>, QueryRejection>,
) -> Response {
    let f = match q {
        Ok(q) => q.0,
        Err(e) => return error_page(&bad_query(e)),
    };
    let page = match app.servers_page(&s.actor, s.tenant, &f.query()).await {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let pages = page.total.div_ceil(u64::from(page.per_page)).max(1);
    let prev = (page.page > 1).then(|| f.url(page.page - 1));
    let next = (u64::from(page.page) < pages).then(|| f.url(page.page + 1));
    let first = u64::from(page.page - 1) * u64::from(page.per_page) + 1;
    let last = (first + page.items.len() as u64).saturating_sub(1);
    let chips = f.chips();
    if s.htmx {
        return render(ServersResults {
            page,
            chips,
            prev,
            next,
            pages,
            first,
            last,
        });
    }
    let current = f.decision.clone().unwrap_or_default();
    let decisions = [
        ("", "any"),
        ("act", "Act"),
        ("attend", "Attend"),
        ("track-star", "Track*"),
        ("track", "Track"),
    ]
    .into_iter()
    .map(|(v, l)| (v, l, v == current))
    .collect();
    render(ServersPage {
        layout: Layout::new(&s, "Servers", "servers"),
        f: f.shown(),
        decisions,
        page,
        chips,
        prev,
        next,
        pages,
        first,
        last,
    })
}

#[derive(Template)]
#[template(path = "server.html")]
struct ServerPageT {
    layout: Layout,
    s: ServerDetail,
    /// (cycle id, cycle name, slot text).
    slots: Vec<(i64, String, String)>,
    can_approve: bool,
}

pub async fn server(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    q: Query<Done>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(&AppError::not_found(format!("server {id}")));
    };
    let detail = match app.server_detail(&s.actor, s.tenant, id, Some(500)).await {
        Ok(d) => d,
        Err(e) => return error_page(&e),
    };
    // Its slots in current cycles' plans.
    let mut slots = Vec::new();
    if let Ok(cycles) = app.cycles(&s.actor, s.tenant).await {
        for c in cycles
            .iter()
            .filter(|c| matches!(c.state.as_str(), "planned" | "approved" | "running"))
        {
            if let Ok(p) = app.plan_of(&s.actor, s.tenant, &c.name).await {
                if let Some(x) = p
                    .placements
                    .iter()
                    .find(|x| x.server.eq_ignore_ascii_case(&detail.summary.name))
                {
                    slots.push((
                        c.id,
                        c.name.clone(),
                        format!(
                            "{} – {} UTC in window {} (wave {}): {}",
                            x.start,
                            x.end,
                            x.window,
                            x.wave,
                            x.reasons.first().cloned().unwrap_or_default()
                        ),
                    ));
                } else if let Some(u) = p
                    .unplaced
                    .iter()
                    .find(|x| x.server.eq_ignore_ascii_case(&detail.summary.name))
                {
                    slots.push((
                        c.id,
                        c.name.clone(),
                        format!("not placed: {}", u.reasons.join("; ")),
                    ));
                }
            }
        }
    }
    render(ServerPageT {
        layout: Layout::new(&s, detail.summary.name.clone(), "servers")
            .with(q.done.as_deref(), None),
        can_approve: s.can(Permission::Approve),
        s: detail,
        slots,
    })
}

// ---- CVEs ----

#[derive(Deserialize, Default)]
pub struct CveSearch {
    q: Option<String>,
}

#[derive(Template)]
#[template(path = "cves.html")]
struct CvesPage {
    layout: Layout,
    q: String,
    proposals: Vec<EmergencyProposal>,
}

pub async fn cves(
    State(app): State<Shared>,
    s: Session,
    q: Result<Query<CveSearch>, QueryRejection>,
) -> Response {
    let q = q.ok().and_then(|q| nonblank(&q.0.q)).unwrap_or_default();
    if !q.is_empty() {
        let id = q.trim().to_ascii_uppercase();
        return see_other(&format!("/cves/{}", super::query_escape(&id)));
    }
    match app.emergency_proposals(&s.actor, s.tenant).await {
        Ok(proposals) => render(CvesPage {
            layout: Layout::new(&s, "CVEs", "cves"),
            q,
            proposals,
        }),
        Err(e) => error_page(&e),
    }
}

#[derive(Template)]
#[template(path = "cve.html")]
struct CvePage {
    layout: Layout,
    c: CveExposure,
    servers: usize,
    cycle_id: Option<i64>,
    can_operate: bool,
}

pub async fn cve(State(app): State<Shared>, s: Session, Path(cve): Path<String>) -> Response {
    let c = match app.cve_exposure(&s.actor, s.tenant, &cve).await {
        Ok(c) => c,
        Err(e) => return error_page(&e),
    };
    let mut names: Vec<&str> = c.exposed.iter().map(|e| e.name.as_str()).collect();
    names.dedup();
    let servers = names.len();
    let cycle_id = app
        .emergency_proposals(&s.actor, s.tenant)
        .await
        .ok()
        .and_then(|ps| {
            ps.into_iter()
                .find(|p| p.cve == c.cve)
                .and_then(|p| p.cycle_id)
        });
    render(CvePage {
        layout: Layout::new(&s, c.cve.clone(), "cves"),
        servers,
        cycle_id,
        can_operate: s.can(Permission::Operate),
        c,
    })
}

// ---- Cycles ----

#[derive(Template)]
#[template(path = "cycles.html")]
struct CyclesPage {
    layout: Layout,
    cycles: Vec<CycleSummary>,
    can_operate: bool,
    monthly: String,
}

async fn cycles_page(app: &Shared, s: &Session, error: Option<&AppError>) -> Response {
    match app.cycles(&s.actor, s.tenant).await {
        Ok(cycles) => {
            let monthly = patchward_core::workflow::monthly_cycle_for(app.today())
                .map(|x| x.0)
                .unwrap_or_default();
            let page = CyclesPage {
                layout: Layout::new(s, "Cycles", "cycles").with(None, error),
                cycles,
                can_operate: s.can(Permission::Operate),
                monthly,
            };
            match error {
                Some(e) => render_status(page, status_of(e)),
                None => render(page),
            }
        }
        Err(e) => error_page(&e),
    }
}

pub async fn cycles(State(app): State<Shared>, s: Session) -> Response {
    cycles_page(&app, &s, None).await
}

#[derive(Deserialize)]
pub struct NewCycleForm {
    csrf: String,
    kind: Option<String>,
    name: Option<String>,
    cve: Option<String>,
    decision: Option<String>,
    kev: Option<String>,
    product: Option<String>,
    ring: Option<String>,
    tag: Option<String>,
    owner: Option<String>,
}

pub async fn create_cycle(
    State(app): State<Shared>,
    s: Session,
    Form(f): Form<NewCycleForm>,
) -> Response {
    if let Err(e) = check_csrf(&s, &f.csrf) {
        return error_page(&e);
    }
    let req = CreateCycleRequest {
        kind: nonblank(&f.kind),
        name: nonblank(&f.name),
        cve: nonblank(&f.cve),
        decision: nonblank(&f.decision),
        kev: checked(&f.kev).then_some(true),
        product: nonblank(&f.product),
        ring: nonblank(&f.ring),
        tag: nonblank(&f.tag),
        owner: nonblank(&f.owner),
        servers: None,
        start: None,
    };
    match app.create_cycle(&s.actor, s.tenant, &req).await {
        Ok(c) => see_other(&format!("/cycles/{}?done=created", c.summary.id)),
        Err(e) => cycles_page(&app, &s, Some(&e)).await,
    }
}

#[derive(Template)]
#[template(path = "cycle.html")]
struct CyclePage {
    layout: Layout,
    c: CycleView,
    states: Vec<(&'static str, &'static str)>,
    timeline: String,
    waves: usize,
    can_operate: bool,
    can_edit: bool,
    open: bool,
}

/// The state strip: Draft → Awaiting approval → Approved → Running → Completed.
fn states(state: &str) -> Vec<(&'static str, &'static str)> {
    let steps = [
        ("draft", "Draft"),
        ("planned", "Awaiting approval"),
        ("approved", "Approved"),
        ("running", "Running"),
        ("completed", "Completed"),
    ];
    let at = steps.iter().position(|s| s.0 == state);
    let mut out: Vec<(&str, &str)> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let class = match at {
                Some(a) if i < a => "done",
                Some(a) if i == a => "current",
                _ => "",
            };
            (s.1, class)
        })
        .collect();
    if state == "cancelled" {
        out.push(("Cancelled", "cancelled"));
    }
    out
}

async fn cycle_page(
    app: &Shared,
    s: &Session,
    id: i64,
    done: Option<&str>,
    error: Option<&AppError>,
) -> Response {
    let c = match app.cycle_view(&s.actor, s.tenant, id).await {
        Ok(c) => c,
        Err(e) => return error_page(&e),
    };
    let ids: HashMap<String, i64> = match app.fleet(s.tenant).await {
        Ok(f) => f
            .servers
            .iter()
            .zip(&f.ids)
            .map(|(sv, id)| (sv.name.to_ascii_lowercase(), *id))
            .collect(),
        Err(_) => HashMap::new(),
    };
    let (timeline, waves) = match &c.plan {
        Some(p) => {
            let mut w: Vec<u32> = p.placements.iter().map(|x| x.wave).collect();
            w.sort_unstable();
            w.dedup();
            (svg::timeline(p, &ids, app.now()), w.len())
        }
        None => (String::new(), 0),
    };
    let operate = s.can(Permission::Operate);
    let editable = matches!(c.summary.state.as_str(), "draft" | "planned" | "approved");
    let page = CyclePage {
        layout: Layout::new(s, c.summary.name.clone(), "cycles").with(done, error),
        states: states(&c.summary.state),
        timeline,
        waves,
        can_operate: operate,
        can_edit: operate && editable,
        open: !matches!(c.summary.state.as_str(), "completed" | "cancelled"),
        c,
    };
    match error {
        Some(e) => render_status(page, status_of(e)),
        None => render(page),
    }
}

fn cycle_id(id: &str) -> Result<i64, AppError> {
    id.parse::<i64>()
        .map_err(|_| AppError::not_found(format!("cycle {id}")))
}

pub async fn cycle(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    q: Query<Done>,
) -> Response {
    match cycle_id(&id) {
        Ok(id) => cycle_page(&app, &s, id, q.done.as_deref(), None).await,
        Err(e) => error_page(&e),
    }
}

/// Runs a cycle action from a form: CSRF, then the use case; back to the cycle's page.
async fn cycle_action<F, Fut>(
    app: Shared,
    s: Session,
    id: String,
    csrf: &str,
    done: &str,
    f: F,
) -> Response
where
    F: FnOnce(Shared, Session, i64) -> Fut,
    Fut: Future<Output = (Session, Result<CycleView, AppError>)>,
{
    let id = match cycle_id(&id) {
        Ok(i) => i,
        Err(e) => return error_page(&e),
    };
    if let Err(e) = check_csrf(&s, csrf) {
        return error_page(&e);
    }
    let (s, r) = f(app.clone(), s, id).await;
    match r {
        Ok(_) => see_other(&format!("/cycles/{id}?done={done}")),
        Err(e) => cycle_page(&app, &s, id, None, Some(&e)).await,
    }
}

pub async fn plan_cycle(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    cycle_action(app, s, id, &f.csrf, "planned", |app, s, id| async move {
        let r = app
            .plan_cycle_id(&s.actor, s.tenant, id, &PlanCycleRequest::default())
            .await;
        (s, r)
    })
    .await
}

#[derive(Deserialize)]
pub struct ApproveForm {
    csrf: String,
    ring: Option<String>,
    ticket: Option<String>,
    comment: Option<String>,
}

pub async fn approve_cycle(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    Form(f): Form<ApproveForm>,
) -> Response {
    let csrf = f.csrf.clone();
    cycle_action(app, s, id, &csrf, "approved", |app, s, id| async move {
        let req = ApproveRequest {
            ring: nonblank(&f.ring),
            ticket: f.ticket.unwrap_or_default(),
            comment: nonblank(&f.comment),
        };
        let r = app.approve_cycle(&s.actor, s.tenant, id, &req).await;
        (s, r)
    })
    .await
}

#[derive(Deserialize)]
pub struct ScopeForm {
    csrf: String,
    add: Option<String>,
    remove: Option<String>,
}

pub async fn edit_scope(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    Form(f): Form<ScopeForm>,
) -> Response {
    let csrf = f.csrf.clone();
    cycle_action(app, s, id, &csrf, "scope", |app, s, id| async move {
        let split = |v: &Option<String>| -> Vec<String> {
            v.as_deref()
                .unwrap_or("")
                .split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        let req = ScopeEditRequest {
            add: split(&f.add),
            remove: split(&f.remove),
        };
        let r = app.edit_scope(&s.actor, s.tenant, id, &req).await;
        (s, r)
    })
    .await
}

#[derive(Deserialize)]
pub struct DeferForm {
    csrf: String,
    server: String,
    update: Option<String>,
    reason: Option<String>,
    to_cycle: Option<String>,
}

pub async fn defer(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    Form(f): Form<DeferForm>,
) -> Response {
    let csrf = f.csrf.clone();
    cycle_action(app, s, id, &csrf, "deferred", |app, s, id| async move {
        let req = DeferRequest {
            server: f.server,
            update: nonblank(&f.update),
            reason: f.reason.unwrap_or_default(),
            to_cycle: nonblank(&f.to_cycle),
        };
        let r = app.defer(&s.actor, s.tenant, id, &req).await;
        (s, r)
    })
    .await
}

#[derive(Deserialize)]
pub struct TransitionForm {
    csrf: String,
    to: String,
    reason: Option<String>,
}

pub async fn transition(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    Form(f): Form<TransitionForm>,
) -> Response {
    let csrf = f.csrf.clone();
    let done = match f.to.as_str() {
        "running" => "running",
        "completed" => "completed",
        _ => "cancelled",
    };
    cycle_action(app, s, id, &csrf, done, |app, s, id| async move {
        let req = TransitionRequest {
            to: f.to,
            reason: nonblank(&f.reason),
        };
        let r = app.transition_cycle(&s.actor, s.tenant, id, &req).await;
        (s, r)
    })
    .await
}

// ---- Exceptions ----

#[derive(Template)]
#[template(path = "exceptions.html")]
struct ExceptionsPage {
    layout: Layout,
    list: Vec<ExceptionView>,
    status: String,
    statuses: Vec<(&'static str, &'static str, bool)>,
    can_approve: bool,
    max_days: u32,
}

#[derive(Deserialize, Default)]
pub struct ExceptionFilter {
    status: Option<String>,
    server: Option<String>,
    done: Option<String>,
}

async fn exceptions_page(
    app: &Shared,
    s: &Session,
    f: &ExceptionFilter,
    error: Option<&AppError>,
) -> Response {
    let q = ExceptionQuery {
        status: nonblank(&f.status),
        server: nonblank(&f.server),
    };
    let list = match app.exceptions(&s.actor, s.tenant, &q).await {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    let max_days = app
        .workflow_rules(&s.actor, s.tenant)
        .await
        .map(|r| r.exception_max_days)
        .unwrap_or(180);
    let status = q.status.clone().unwrap_or_default();
    let statuses = [
        ("", "all"),
        ("active", "active"),
        ("expiring", "expiring ≤ 14 days"),
        ("expired", "expired"),
        ("revoked", "revoked"),
    ]
    .into_iter()
    .map(|(v, l)| (v, l, v == status))
    .collect();
    let page = ExceptionsPage {
        layout: Layout::new(s, "Exceptions", "exceptions").with(f.done.as_deref(), error),
        list,
        status,
        statuses,
        can_approve: s.can(Permission::Approve),
        max_days,
    };
    match error {
        Some(e) => render_status(page, status_of(e)),
        None => render(page),
    }
}

pub async fn exceptions(
    State(app): State<Shared>,
    s: Session,
    q: Result<Query<ExceptionFilter>, QueryRejection>,
) -> Response {
    let f = match q {
        Ok(q) => q.0,
        Err(e) => return error_page(&bad_query(e)),
    };
    exceptions_page(&app, &s, &f, None).await
}

#[derive(Deserialize)]
pub struct GrantForm {
    csrf: String,
    server: String,
    cve: Option<String>,
    update: Option<String>,
    reason: Option<String>,
    compensating_control: Option<String>,
    risk_owner: Option<String>,
    expires: Option<String>,
    back: Option<String>,
}

pub async fn grant_exception(
    State(app): State<Shared>,
    s: Session,
    Form(f): Form<GrantForm>,
) -> Response {
    if let Err(e) = check_csrf(&s, &f.csrf) {
        return error_page(&e);
    }
    let req = CreateExceptionRequest {
        server: f.server.clone(),
        cve: nonblank(&f.cve),
        update: nonblank(&f.update),
        reason: f.reason.clone().unwrap_or_default(),
        compensating_control: f.compensating_control.clone().unwrap_or_default(),
        risk_owner: f.risk_owner.clone().unwrap_or_default(),
        expires: f.expires.clone().unwrap_or_default(),
    };
    match app.grant_exception(&s.actor, s.tenant, &req).await {
        Ok(_) => {
            let back = safe_next(f.back.as_deref());
            let back = if back == "/" {
                "/exceptions".into()
            } else {
                back
            };
            let sep = if back.contains('?') { '&' } else { '?' };
            see_other(&format!("{back}{sep}done=granted"))
        }
        Err(e) => exceptions_page(&app, &s, &ExceptionFilter::default(), Some(&e)).await,
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    reason: Option<String>,
}

pub async fn revoke_exception(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    Form(f): Form<RevokeForm>,
) -> Response {
    if let Err(e) = check_csrf(&s, &f.csrf) {
        return error_page(&e);
    }
    let Ok(id) = id.parse::<i64>() else {
        return error_page(&AppError::not_found(format!("exception {id}")));
    };
    match app
        .revoke_exception(&s.actor, s.tenant, id, f.reason.as_deref().unwrap_or(""))
        .await
    {
        Ok(_) => see_other("/exceptions?done=revoked"),
        Err(e) => exceptions_page(&app, &s, &ExceptionFilter::default(), Some(&e)).await,
    }
}

// ---- Audit ----

pub struct AuditRow {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    link: Option<String>,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<AuditRow>,
    verification: Option<AuditVerification>,
    checked_at: String,
    actor: String,
    action: String,
}

#[derive(Deserialize, Default)]
pub struct AuditFilter {
    actor: Option<String>,
    action: Option<String>,
}

fn link_of(target: &str) -> Option<String> {
    let (kind, id) = target.split_once(':')?;
    match kind {
        "cycle" if id.parse::<i64>().is_ok() => Some(format!("/cycles/{id}")),
        "exception" if id.parse::<i64>().is_ok() => Some(format!("/exceptions#x{id}")),
        "server" if id.parse::<i64>().is_ok() => Some(format!("/servers/{id}")),
        _ => None,
    }
}

async fn audit_rows(app: &Shared, s: &Session, f: &AuditFilter) -> Result<Vec<AuditRow>, AppError> {
    let q = patchward_store::AuditQuery {
        actor: nonblank(&f.actor),
        action: nonblank(&f.action),
        ..Default::default()
    };
    let mut entries = app.audit_entries(&s.actor, Some(s.tenant), q).await?;
    entries.reverse();
    entries.truncate(500);
    let own = !s.actor.provider_wide();
    Ok(entries
        .into_iter()
        .map(|e| AuditRow {
            seq: if own { e.tenant_seq } else { e.seq },
            at: e.at.to_string(),
            link: link_of(&e.target),
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
        })
        .collect())
}

pub async fn audit(
    State(app): State<Shared>,
    s: Session,
    q: Result<Query<AuditFilter>, QueryRejection>,
) -> Response {
    let f = match q {
        Ok(q) => q.0,
        Err(e) => return error_page(&bad_query(e)),
    };
    let entries = match audit_rows(&app, &s, &f).await {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    let verification = if s.actor.provider_wide() {
        app.verify_audit(&s.actor).await.ok()
    } else {
        None
    };
    render(AuditPage {
        layout: Layout::new(&s, "Audit log", "audit"),
        entries,
        verification,
        checked_at: app.now().strftime("%Y-%m-%d %H:%M UTC").to_string(),
        actor: f.actor.unwrap_or_default(),
        action: f.action.unwrap_or_default(),
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub async fn audit_csv(
    State(app): State<Shared>,
    s: Session,
    q: Result<Query<AuditFilter>, QueryRejection>,
) -> Response {
    let f = match q {
        Ok(q) => q.0,
        Err(e) => return error_page(&bad_query(e)),
    };
    match audit_rows(&app, &s, &f).await {
        Ok(rows) => {
            let mut out = String::from("seq,at,actor,action,target,detail\n");
            for r in rows {
                out.push_str(&format!(
                    "{},{},{},{},{},{}\n",
                    r.seq,
                    csv_field(&r.at),
                    csv_field(&r.actor),
                    csv_field(&r.action),
                    csv_field(&r.target),
                    csv_field(&r.detail)
                ));
            }
            let mut r = out.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"patchward-audit.csv\""),
            );
            r
        }
        Err(e) => error_page(&e),
    }
}

// ---- Settings ----

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    rules: WorkflowRulesView,
    policy: String,
    estate: EstateView,
    users: Vec<UserView>,
    tokens: Vec<TokenView>,
    is_admin: bool,
}

async fn settings_page(
    app: &Shared,
    s: &Session,
    done: Option<&str>,
    error: Option<&AppError>,
) -> Response {
    let rules = match app.workflow_rules(&s.actor, s.tenant).await {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let estate = match app.estate_view(&s.actor, s.tenant).await {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    let is_admin = s.can(Permission::Administer);
    let mut users = Vec::new();
    if is_admin && let Ok(list) = app.users(&s.actor, Some(s.tenant)).await {
        for u in &list {
            if let Ok(v) = app.user_view(u).await {
                users.push(v);
            }
        }
    }
    let tokens = match app.tokens(&s.actor).await {
        Ok(t) => t
            .iter()
            .filter(|(t, _)| Some(t.user_id) == s.actor.user_id)
            .map(|(t, u)| app.token_view(t, u))
            .collect(),
        Err(_) => Vec::new(),
    };
    let page = SettingsPage {
        layout: Layout::new(s, "Settings", "settings").with(done, error),
        rules,
        policy: serde_json::to_string_pretty(app.policy()).unwrap_or_default(),
        estate,
        users,
        tokens,
        is_admin,
    };
    match error {
        Some(e) => render_status(page, status_of(e)),
        None => render(page),
    }
}

pub async fn settings(State(app): State<Shared>, s: Session, q: Query<Done>) -> Response {
    settings_page(&app, &s, q.done.as_deref(), None).await
}

#[derive(Deserialize)]
pub struct RulesForm {
    csrf: String,
    approvals_required: Option<String>,
    separation_of_duties: Option<String>,
    admins_approve: Option<String>,
    exception_max_days: Option<String>,
    emergency_sla_days: Option<String>,
}

pub async fn set_rules(
    State(app): State<Shared>,
    s: Session,
    Form(f): Form<RulesForm>,
) -> Response {
    if let Err(e) = check_csrf(&s, &f.csrf) {
        return error_page(&e);
    }
    let num = |v: &Option<String>, field: &str| -> Result<u32, AppError> {
        v.as_deref()
            .unwrap_or("")
            .trim()
            .parse::<u32>()
            .map_err(|_| AppError::field(field, format!("{field} is a whole number")))
    };
    let parsed = (|| -> Result<WorkflowRulesView, AppError> {
        Ok(WorkflowRulesView {
            approvals_required: u8::try_from(num(&f.approvals_required, "approvals_required")?)
                .map_err(|_| {
                    AppError::field("approvals_required", "approvals_required is 1 to 5")
                })?,
            separation_of_duties: checked(&f.separation_of_duties),
            admins_approve: checked(&f.admins_approve),
            exception_max_days: num(&f.exception_max_days, "exception_max_days")?,
            emergency_sla_days: num(&f.emergency_sla_days, "emergency_sla_days")?,
        })
    })();
    let r = match parsed {
        Ok(v) => app.set_workflow_rules(&s.actor, s.tenant, &v).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => see_other("/settings?done=rules"),
        Err(e) => settings_page(&app, &s, None, Some(&e)).await,
    }
}
