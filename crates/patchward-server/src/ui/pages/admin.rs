//! The audit log (with its CSV export and chain check) and settings.

use super::*;

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
    failure_budget_percent: Option<String>,
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
            failure_budget_percent: Some(num(&f.failure_budget_percent, "failure_budget_percent")?),
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
