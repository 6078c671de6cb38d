//! Cycles: the list and the new-cycle form, a cycle's page (state strip, plan timeline,
//! approvals, scope, deferrals, history) and its actions.

use super::*;

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
    jobs: Option<JobsPanel>,
}

/// A cycle's jobs as the page shows them (and the partial htmx refreshes every 5 s).
struct JobsPanel {
    j: CycleJobs,
    /// Jobs per state, in a fixed order, only states that occur.
    counts: Vec<(String, usize)>,
    live: bool,
    can_operate: bool,
    can_approve: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "cycle_jobs.html")]
struct JobsPartial {
    panel: JobsPanel,
}

impl CyclePage {
    fn state_class(&self, state: &str) -> &'static str {
        state_class(state)
    }
}

impl JobsPartial {
    fn state_class(&self, state: &str) -> &'static str {
        state_class(state)
    }
}

/// The badge class of a job state.
fn state_class(state: &str) -> &'static str {
    match state {
        "succeeded" => "ok",
        "failed" | "needs_remediation" | "rolled_back" => "bad",
        "blocked" | "running" | "rolling_back" => "warn",
        _ => "",
    }
}

async fn jobs_panel(app: &Shared, s: &Session, id: i64) -> Result<Option<JobsPanel>, AppError> {
    let j = app.cycle_jobs(&s.actor, s.tenant, id).await?;
    if j.jobs.is_empty() {
        return Ok(None);
    }
    let order = [
        "running",
        "blocked",
        "waiting",
        "succeeded",
        "failed",
        "needs_remediation",
        "rolling_back",
        "rolled_back",
        "cancelled",
    ];
    let counts = order
        .iter()
        .map(|st| {
            (
                st.to_string(),
                j.jobs.iter().filter(|x| x.state == *st).count(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok(Some(JobsPanel {
        live: j.state == "running",
        counts,
        can_operate: s.can(Permission::Operate),
        can_approve: s.can(Permission::Approve),
        csrf: s.csrf.clone(),
        j,
    }))
}

/// The jobs section alone (htmx refreshes it while the cycle runs).
pub async fn cycle_jobs(State(app): State<Shared>, s: Session, Path(id): Path<String>) -> Response {
    let id = match cycle_id(&id) {
        Ok(i) => i,
        Err(e) => return error_page(&e),
    };
    match jobs_panel(&app, &s, id).await {
        Ok(Some(panel)) => render(JobsPartial { panel }),
        Ok(None) => html(String::new()),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
pub struct PauseForm {
    csrf: String,
    reason: Option<String>,
    ring: Option<String>,
}

pub async fn pause(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    Form(f): Form<PauseForm>,
) -> Response {
    let csrf = f.csrf.clone();
    cycle_action(app, s, id, &csrf, "paused", |app, s, id| async move {
        let r = app
            .pause_cycle(&s.actor, s.tenant, id, f.reason.as_deref().unwrap_or(""))
            .await;
        (s, r)
    })
    .await
}

pub async fn resume(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    Form(f): Form<PauseForm>,
) -> Response {
    let csrf = f.csrf.clone();
    cycle_action(app, s, id, &csrf, "resumed", |app, s, id| async move {
        let ring = nonblank(&f.ring);
        let r = app
            .resume_cycle(
                &s.actor,
                s.tenant,
                id,
                ring.as_deref(),
                f.reason.as_deref().unwrap_or(""),
            )
            .await;
        (s, r)
    })
    .await
}

#[derive(Deserialize)]
pub struct RollbackForm {
    csrf: String,
    reason: Option<String>,
    done: Option<String>,
}

/// Roll a job back by its server's plan (approvers), from the jobs panel.
pub async fn rollback_job(
    State(app): State<Shared>,
    s: Session,
    Path((id, job)): Path<(String, String)>,
    Form(f): Form<RollbackForm>,
) -> Response {
    let (id, job) = match (cycle_id(&id), cycle_id(&job)) {
        (Ok(i), Ok(j)) => (i, j),
        (Err(e), _) | (_, Err(e)) => return error_page(&e),
    };
    if let Err(e) = check_csrf(&s, &f.csrf) {
        return error_page(&e);
    }
    let r = app
        .request_rollback(
            &s.actor,
            s.tenant,
            job,
            f.reason.as_deref().unwrap_or(""),
            checked(&f.done),
        )
        .await;
    match r {
        Ok(v) if v.state == "rolled_back" => see_other(&format!("/cycles/{id}?done=rolled-back")),
        Ok(_) => see_other(&format!("/cycles/{id}?done=rolling-back")),
        Err(e) => cycle_page(&app, &s, id, None, Some(&e)).await,
    }
}

/// Re-plan the rest of a running cycle (operators), from the jobs panel.
pub async fn replan(
    State(app): State<Shared>,
    s: Session,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let id = match cycle_id(&id) {
        Ok(i) => i,
        Err(e) => return error_page(&e),
    };
    if let Err(e) = check_csrf(&s, &f.csrf) {
        return error_page(&e);
    }
    match app.replan_running_cycle(&s.actor, s.tenant, id).await {
        Ok(_) => see_other(&format!("/cycles/{id}?done=replanned")),
        Err(e) => cycle_page(&app, &s, id, None, Some(&e)).await,
    }
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
    let jobs = match c.summary.state.as_str() {
        "running" | "completed" | "cancelled" => jobs_panel(app, s, id).await.ok().flatten(),
        _ => None,
    };
    let page = CyclePage {
        layout: Layout::new(s, c.summary.name.clone(), "cycles").with(done, error),
        states: states(&c.summary.state),
        timeline,
        waves,
        can_operate: operate,
        can_edit: operate && editable,
        open: !matches!(c.summary.state.as_str(), "completed" | "cancelled"),
        jobs,
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
        let r = if req.to == "running" {
            app.start_cycle(&s.actor, s.tenant, id).await
        } else {
            app.transition_cycle(&s.actor, s.tenant, id, &req).await
        };
        (s, r)
    })
    .await
}
