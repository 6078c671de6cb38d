//! Planning a cycle (PRODUCT.md: Plan, Wave): scope and due dates from the exposure engine,
//! the planner, the independent checker, then the plan stored under its cycle name.
//!
//! # Scope and due dates
//! Without explicit servers the scope is every server with open CVEs or missing updates as of
//! the UTC date of the start. A server's due date is the earliest priority due date of its open
//! CVEs, as the instant 23:59 UTC of that date (a due date is a calendar day, and the end of
//! that day in UTC reads the same on every host); a cycle deadline and external due rows may
//! make it earlier.

use crate::{Actor, App, AppError, Result};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use patchward_core::access::Permission;
use patchward_core::exposure::ExposureIndex;
use patchward_core::inventory::{Estate, Server};
use patchward_core::plan::{JobOutcome, Plan, PlanInput, plan, replan, verify};
use patchward_core::priority::Policy;
use patchward_store::{ControlStore, TenantId};
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet};

/// What to plan. Server names are the estate's own (resolve them with [`resolve_names`]).
#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub cycle: String,
    pub start: Timestamp,
    /// `None`: every exposed server.
    pub scope: Option<Vec<String>>,
    /// A deadline for every server in scope, with how it is shown.
    pub deadline: Option<(Timestamp, String)>,
    /// External due dates: (server, due, where it came from).
    pub due: Vec<(String, Timestamp, String)>,
    pub ring: Option<String>,
    pub emergency: bool,
    pub horizon_days: u32,
    pub policy: Policy,
}

/// A plan that was made and stored, with the estate it was made from and remarks.
pub struct PlanMade {
    pub plan: Plan,
    /// The stored form (JSON).
    pub json: String,
    pub estate: Estate,
    pub warnings: Vec<String>,
}

/// A due date (a calendar day) as an instant: 23:59 UTC that day.
pub fn due_instant(d: Date) -> Option<Timestamp> {
    d.at(23, 59, 0, 0)
        .to_zoned_datetime(TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// Names given in any case → the estate's names, first occurrence kept; unknown names are an
/// error on `field` listing up to 20 of them.
pub fn resolve_names(estate: &Estate, given: &[String], field: &str) -> Result<Vec<String>> {
    let by_lower: HashMap<String, &str> = estate
        .servers
        .iter()
        .rev()
        .map(|s| (s.name.trim().to_lowercase(), s.name.as_str()))
        .collect();
    let mut seen: HashSet<&str> = HashSet::with_capacity(given.len());
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for n in given.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        match by_lower.get(&n.to_lowercase()) {
            Some(name) => {
                if seen.insert(name) {
                    out.push(name.to_string());
                }
            }
            None => unknown.push(n.to_string()),
        }
    }
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(20).map(|s| s.as_str()).collect();
        return Err(AppError::field(
            field,
            format!(
                "unknown server(s) in {field}: {}{}",
                shown.join(", "),
                if unknown.len() > 20 {
                    format!(" and {} more", unknown.len() - 20)
                } else {
                    String::new()
                }
            ),
        ));
    }
    if out.is_empty() {
        return Err(AppError::field(field, format!("{field} names no server")));
    }
    Ok(out)
}

impl<S: ControlStore> App<S> {
    /// The tenant's estate (servers and everything else), for planning and its explanations.
    pub async fn estate(&self, actor: &Actor, tenant: TenantId) -> Result<Estate> {
        actor.require(Permission::Read)?;
        Ok(self.store.estate(tenant).await?)
    }

    /// Plan a cycle over `estate` (the tenant's, as read by [`App::estate`]), check it with
    /// the independent checker and store it; refused plans are never stored.
    pub async fn plan_cycle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        estate: Estate,
        spec: PlanSpec,
    ) -> Result<PlanMade> {
        // A workflow cycle's plan is made through the cycle (so approvals stay bound to it).
        if let Some(c) = self
            .store
            .cycles(tenant)
            .await?
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(spec.cycle.trim()))
        {
            return Err(AppError::new(
                patchward_proto::ErrorCode::Conflict,
                format!(
                    "{:?} is a workflow cycle (id {}): plan it with POST /api/v1/cycles/{}/plan, so its approvals stay bound to its plan",
                    c.name, c.id, c.id
                ),
            ));
        }
        let estate = self.with_learned_durations(tenant, estate).await?;
        let made = self.make_plan(actor, estate, spec).await?;
        self.store
            .save_plan(tenant, &made.plan.cycle, &made.json, self.now())
            .await?;
        self.record(
            actor,
            Some(tenant),
            "plan.create",
            &format!("cycle:{}", made.plan.cycle),
            serde_json::json!({
                "placed": made.plan.placements.len(),
                "unplaced": made.plan.unplaced.len(),
                "emergency": made.plan.emergency,
            }),
        )
        .await?;
        Ok(made)
    }

    /// Plan and check, without storing (a cycle stores its plan with its own record).
    pub async fn make_plan(
        &self,
        actor: &Actor,
        estate: Estate,
        spec: PlanSpec,
    ) -> Result<PlanMade> {
        actor.require(Permission::Operate)?;
        let cycle = spec.cycle.trim().to_string();
        if cycle.is_empty() || cycle.len() > 200 {
            return Err(AppError::field(
                "cycle",
                "a cycle name is 1 to 200 characters",
            ));
        }
        if estate.servers.is_empty() {
            return Err(AppError::bad_request(
                "no servers in the estate: import one with `patchward import hosts ESTATE.toml`",
            ));
        }
        if let Some(r) = &spec.ring
            && !estate
                .rings
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(r.trim()))
        {
            return Err(AppError::field(
                "ring",
                format!(
                    "unknown ring {r:?}; the estate has: {}",
                    estate
                        .rings
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let index = self.index().await?;
        tokio::task::spawn_blocking(move || plan_blocking(&index, estate, spec, cycle))
            .await
            .map_err(|e| AppError::internal(e.to_string()))?
    }
}

/// Everything after the reads: assess, scope, due dates, plan, check.
fn plan_blocking(
    index: &ExposureIndex,
    estate: Estate,
    spec: PlanSpec,
    cycle: String,
) -> Result<PlanMade> {
    let mut warnings = Vec::new();
    let as_of = spec.start.to_zoned_datetime(TimeZone::UTC).date();
    if index.catalog.fixes.is_empty() {
        warnings.push(
            "no MSRC data imported yet, so no exposure and no due dates: import feeds first".into(),
        );
    }
    let explicit = spec.scope.is_some();
    let assessed = match &spec.scope {
        Some(names) => {
            let wanted: HashSet<&str> = names.iter().map(|s| s.as_str()).collect();
            let servers: Vec<Server> = estate
                .servers
                .iter()
                .filter(|s| wanted.contains(s.name.as_str()))
                .cloned()
                .collect();
            crate::fleet::assess_all(index, &servers, &spec.policy, as_of)
        }
        None => crate::fleet::assess_all(index, &estate.servers, &spec.policy, as_of),
    };
    // (due, where it came from) per server.
    let mut priority_due: HashMap<String, (Timestamp, String)> = HashMap::new();
    let mut exposed: HashSet<String> = HashSet::new();
    for s in &assessed {
        if !s.open_cves.is_empty() || !s.missing_updates.is_empty() {
            exposed.insert(s.name.clone());
        }
        if let Some((d, c)) = s
            .open_cves
            .iter()
            .filter_map(|c| c.priority.as_ref().map(|p| (p.due, c)))
            .min_by(|x, y| {
                x.0.cmp(&y.0)
                    .then_with(|| x.1.facts.cve.cmp(&y.1.facts.cve))
            })
            && let Some(at) = due_instant(d)
        {
            let source = match &c.priority {
                Some(p) if c.facts.kev_due == Some(d) => format!(
                    "KEV due date of {} (priority {})",
                    c.facts.cve,
                    p.decision.label()
                ),
                Some(p) => format!("priority {} of {} (SLA)", p.decision.label(), c.facts.cve),
                None => format!("priority of {}", c.facts.cve),
            };
            priority_due.insert(s.name.clone(), (at, source));
        }
    }
    drop(assessed);
    let mut scope: Vec<String> = match spec.scope {
        Some(s) => s,
        None => estate
            .servers
            .iter()
            .filter(|s| exposed.contains(&s.name))
            .map(|s| s.name.clone())
            .collect(),
    };
    if scope.is_empty() && !explicit {
        return Err(AppError::bad_request(format!(
            "nothing to plan: no server has open CVEs or missing updates as of {as_of} (name the servers)"
        )));
    }
    if let Some(r) = &spec.ring {
        let in_ring: HashSet<&str> = estate
            .servers
            .iter()
            .filter(|s| {
                s.ring
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(r.trim()))
            })
            .map(|s| s.name.as_str())
            .collect();
        scope.retain(|n| in_ring.contains(n.as_str()));
        if scope.is_empty() {
            return Err(AppError::field(
                "ring",
                format!("no server in scope is in ring {r:?}"),
            ));
        }
    }
    let mut input = PlanInput::new(cycle, &estate, spec.start);
    // Each server's due date is the earliest that applies; ties keep the first source
    // (priority, then deadline, then the due rows).
    let in_scope: HashSet<&str> = scope.iter().map(|s| s.as_str()).collect();
    for (name, (at, source)) in &priority_due {
        if in_scope.contains(name.as_str()) {
            input.add_due(name, *at, source.clone());
        }
    }
    if let Some((d, text)) = &spec.deadline {
        for name in &scope {
            input.add_due(name, *d, text.clone());
        }
    }
    for (server, due, source) in &spec.due {
        if in_scope.contains(server.as_str()) {
            input.add_due(server, *due, source.clone());
        }
    }
    drop(in_scope);
    input.scope = scope;
    input.emergency = spec.emergency;
    input.horizon = SignedDuration::from_hours(i64::from(spec.horizon_days) * 24);
    let p = plan(&input);
    // The stored form is written while the independent checker works (it is stored only if
    // the checker accepts the plan).
    let (violations, json) = std::thread::scope(|sc| {
        let json = sc.spawn(|| serde_json::to_string(&p));
        (verify(&input, &p), json.join())
    });
    let json = match json {
        Ok(Ok(j)) => j,
        _ => return Err(AppError::internal("writing the plan as JSON failed")),
    };
    if !violations.is_empty() {
        let list: Vec<String> = violations
            .iter()
            .map(|v| format!("{:?}: {}: {}", v.rule, v.servers.join(", "), v.detail))
            .collect();
        return Err(AppError::internal(format!(
            "the plan for cycle {:?} breaks {} hard rule(s) and was not stored; please report this: {}",
            p.cycle,
            violations.len(),
            list.join("; ")
        )));
    }
    drop(input);
    Ok(PlanMade {
        plan: p,
        json,
        estate,
        warnings,
    })
}

/// A stored plan as the API shows it; `keep` decides which servers the reader may see.
pub fn plan_view(p: &Plan, keep: impl Fn(&str) -> bool) -> patchward_proto::PlanView {
    use patchward_proto::{PlacementView, PlanView, UnplacedView};
    let word = |v: &patchward_core::plan::UnplacedRule| match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    };
    PlanView {
        cycle: p.cycle.clone(),
        emergency: p.emergency,
        start: p.start.to_string(),
        horizon_end: p.horizon_end.to_string(),
        finish: p.finish.map(|t| t.to_string()),
        placements: p
            .placements
            .iter()
            .filter(|x| keep(&x.server))
            .map(|x| PlacementView {
                server: x.server.clone(),
                ring: x.ring.clone(),
                wave: x.wave,
                window: x.window.clone(),
                start: x.start.to_string(),
                end: x.end.to_string(),
                due: x.due.map(|t| t.to_string()),
                due_source: x.due_source.clone(),
                late_minutes: x.late_by.map(|d| d.as_mins()),
                reasons: x.reasons.clone(),
            })
            .collect(),
        unplaced: p
            .unplaced
            .iter()
            .filter(|x| keep(&x.server))
            .map(|x| UnplacedView {
                server: x.server.clone(),
                ring: x.ring.clone(),
                rule: word(&x.rule),
                reasons: x.reasons.clone(),
                due: x.due.map(|t| t.to_string()),
            })
            .collect(),
        late: p.late.iter().filter(|l| keep(&l.server)).count() as u32,
        dependency_cycles: p
            .dependency_cycles
            .iter()
            .filter(|c| c.iter().any(|s| keep(s)))
            .cloned()
            .collect(),
        warnings: p.warnings.clone(),
    }
}

impl<S: ControlStore> App<S> {
    /// `POST /api/v1/plans`: the API's way to [`App::plan_cycle`].
    pub async fn create_plan(
        &self,
        actor: &Actor,
        tenant: TenantId,
        req: &patchward_proto::CreatePlanRequest,
    ) -> Result<patchward_proto::PlanView> {
        actor.require(Permission::Operate)?;
        let start: Timestamp = req.start.trim().parse().map_err(|e| {
            AppError::field(
                "start",
                format!("{:?} is not an RFC 3339 instant: {e}", req.start),
            )
        })?;
        let deadline = match req.deadline.as_deref().map(str::trim) {
            None => None,
            Some(d) => {
                let at = match d.parse::<Date>() {
                    Ok(day) if d.len() == 10 => due_instant(day),
                    _ => d.parse::<Timestamp>().ok(),
                }
                .ok_or_else(|| {
                    AppError::field("deadline", format!("{d:?}: RFC 3339 or YYYY-MM-DD"))
                })?;
                Some((at, format!("cycle deadline {at}")))
            }
        };
        let horizon_days = req.horizon_days.unwrap_or(35);
        if !(1..=365).contains(&horizon_days) {
            return Err(AppError::field("horizon_days", "horizon_days is 1 to 365"));
        }
        let estate = self.estate(actor, tenant).await?;
        let scope = match &req.servers {
            Some(names) => Some(resolve_names(&estate, names, "servers")?),
            None => None,
        };
        let spec = PlanSpec {
            cycle: req.cycle.clone(),
            start,
            scope,
            deadline,
            due: Vec::new(),
            ring: req.ring.clone(),
            emergency: req.emergency.unwrap_or(false),
            horizon_days,
            policy: self.policy().clone(),
        };
        let made = self.plan_cycle(actor, tenant, estate, spec).await?;
        Ok(plan_view(&made.plan, |_| true))
    }

    /// `GET /api/v1/plans/{cycle}`: a stored plan; owners see their servers' slots only.
    pub async fn plan_of(
        &self,
        actor: &Actor,
        tenant: TenantId,
        cycle: &str,
    ) -> Result<patchward_proto::PlanView> {
        actor.require(Permission::Read)?;
        let p = self.stored_plan(tenant, cycle).await?;
        if actor.role == patchward_core::access::Role::Owner {
            let fleet = self.fleet(tenant).await?;
            let own: HashSet<String> = fleet
                .servers
                .iter()
                .filter(|s| crate::fleet::owns(actor, s))
                .map(|s| s.name.to_ascii_lowercase())
                .collect();
            return Ok(plan_view(&p, |n| own.contains(&n.to_ascii_lowercase())));
        }
        Ok(plan_view(&p, |_| true))
    }
}

/// Rebuild a plan's input from the plan itself: scope = every server the plan accounts for,
/// its due dates and their sources, the emergency flag and the horizon end.
fn input_from_plan<'e>(estate: &'e Estate, p: &Plan) -> PlanInput<'e> {
    let mut scope: Vec<String> = Vec::new();
    let mut due = BTreeMap::new();
    let mut due_sources = BTreeMap::new();
    for x in &p.placements {
        scope.push(x.server.clone());
        if let Some(d) = x.due {
            due.insert(x.server.clone(), d);
        }
        if let Some(s) = &x.due_source {
            due_sources.insert(x.server.clone(), s.clone());
        }
    }
    for x in &p.unplaced {
        scope.push(x.server.clone());
        if let Some(d) = x.due {
            due.insert(x.server.clone(), d);
        }
        if let Some(s) = &x.due_source {
            due_sources.insert(x.server.clone(), s.clone());
        }
    }
    scope.extend(p.in_progress.iter().map(|r| r.server.clone()));
    scope.extend(p.finished.iter().cloned());
    let mut input = PlanInput::new(p.cycle.clone(), estate, p.start);
    input.scope = scope;
    input.due = due;
    input.due_sources = due_sources;
    input.emergency = p.emergency;
    input.horizon = p
        .start
        .duration_until(p.horizon_end)
        .max(SignedDuration::ZERO);
    input
}

impl<S: ControlStore> App<S> {
    /// A stored plan of the tenant.
    pub(crate) async fn stored_plan(&self, tenant: TenantId, cycle: &str) -> Result<Plan> {
        let json = self.store.plan(tenant, cycle).await?.ok_or_else(|| {
            AppError::new(
                patchward_proto::ErrorCode::NotFound,
                format!("no plan stored for cycle {cycle:?}"),
            )
        })?;
        serde_json::from_str(&json)
            .map_err(|e| AppError::internal(format!("stored plan {cycle:?} is unreadable: {e}")))
    }

    /// Every server a stored plan accounts for (what job outcomes may name).
    pub async fn plan_scope(
        &self,
        actor: &Actor,
        tenant: TenantId,
        cycle: &str,
    ) -> Result<Vec<String>> {
        actor.require(Permission::Read)?;
        let p = self.stored_plan(tenant, cycle).await?;
        let estate = Estate::default();
        Ok(input_from_plan(&estate, &p).scope)
    }

    /// Re-plan a cycle from job outcomes as of `now` (PRODUCT.md: re-planning): running jobs
    /// keep their slots, finished servers leave, failed ones hold back their dependents; the
    /// result is checked and stored over the old plan.
    pub async fn replan_cycle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        cycle: &str,
        now: Timestamp,
        outcomes: BTreeMap<String, JobOutcome>,
    ) -> Result<PlanMade> {
        actor.require(Permission::Operate)?;
        let old = self.stored_plan(tenant, cycle).await?;
        let estate = self.store.estate(tenant).await?;
        let made = tokio::task::spawn_blocking(move || {
            let input = input_from_plan(&estate, &old);
            let p = replan(&input, now, &outcomes);
            // The input the re-plan used, for the checker (as `replan` builds it).
            let mut used = input.clone();
            used.start = now.max(input.start);
            used.horizon = used
                .start
                .duration_until(input.horizon_end())
                .max(SignedDuration::ZERO);
            used.outcomes = outcomes;
            let violations = verify(&used, &p);
            if !violations.is_empty() {
                return Err(AppError::internal(format!(
                    "the re-plan of cycle {:?} breaks {} hard rule(s) and was not stored; please report this",
                    p.cycle,
                    violations.len()
                )));
            }
            let json = serde_json::to_string(&p)
                .map_err(|e| AppError::internal(format!("writing the plan as JSON: {e}")))?;
            drop(used);
            drop(input);
            Ok(PlanMade {
                plan: p,
                json,
                estate,
                warnings: Vec::new(),
            })
        })
        .await
        .map_err(|e| AppError::internal(e.to_string()))??;
        self.store
            .save_plan(tenant, &made.plan.cycle, &made.json, self.now())
            .await?;
        self.record(
            actor,
            Some(tenant),
            "plan.replan",
            &format!("cycle:{}", made.plan.cycle),
            serde_json::json!({
                "placed": made.plan.placements.len(),
                "unplaced": made.plan.unplaced.len(),
                "finished": made.plan.finished.len(),
            }),
        )
        .await?;
        Ok(made)
    }
}
