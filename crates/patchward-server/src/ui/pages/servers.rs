//! Servers (the list with its URL filters and htmx partial, a server's page) and CVEs.

use super::*;

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
                parts.push(format!("{k}={}", crate::ui::query_escape(&v)));
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
    /// Services it is a member of, with their disruption budget in words.
    services: Vec<(String, String)>,
    /// "depends on X" / "X depends on it".
    dependencies: Vec<String>,
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
    let detail = match app.server_detail(&s.actor, s.tenant, id, Some(100)).await {
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
    // Its services and dependencies, from the estate.
    let (mut services, mut dependencies) = (Vec::new(), Vec::new());
    if let Ok(estate) = app.estate_view(&s.actor, s.tenant).await {
        let me = detail.summary.name.to_ascii_lowercase();
        let mine: Vec<&ServiceView> = estate
            .services
            .iter()
            .filter(|sv| sv.members.iter().any(|m| m.eq_ignore_ascii_case(&me)))
            .collect();
        for sv in &mine {
            let n = sv.members.len();
            let budget = match (sv.max_unavailable, sv.max_unavailable_percent) {
                (Some(k), _) => format!("at most {k} of {n} members down at once"),
                (None, Some(p)) => format!("at most {p}% of {n} members down at once"),
                _ => format!("{n} members"),
            };
            services.push((sv.name.clone(), budget));
        }
        let is_me = |e: &DependencyEnd| {
            (e.kind == "server" && e.name.eq_ignore_ascii_case(&me))
                || (e.kind == "service"
                    && mine.iter().any(|sv| sv.name.eq_ignore_ascii_case(&e.name)))
        };
        for d in &estate.dependencies {
            if is_me(&d.dependent) {
                dependencies.push(format!(
                    "depends on {} {}",
                    d.depends_on.kind, d.depends_on.name
                ));
            } else if is_me(&d.depends_on) {
                dependencies.push(format!(
                    "{} {} depends on it",
                    d.dependent.kind, d.dependent.name
                ));
            }
        }
    }
    render(ServerPageT {
        layout: Layout::new(&s, detail.summary.name.clone(), "servers")
            .with(q.done.as_deref(), None),
        can_approve: s.can(Permission::Approve),
        s: detail,
        slots,
        services,
        dependencies,
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
        return see_other(&format!("/cves/{}", crate::ui::query_escape(&id)));
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
