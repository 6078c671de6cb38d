//! Exceptions: the list by status, granting and revoking.

use super::*;

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
