//! Cycles: create (scope proposed from open findings), plan (the planner; approvals whose ring
//! changed are withdrawn), approve (separation of duties), edit the scope, defer, start,
//! complete, cancel. Every write is a versioned update of the cycle's record (retried on a
//! concurrent change, so two approvers at once both count) and an audit entry.

use super::{check_kb, decode, encode, nonempty, rules_of};
use crate::fleet::{FleetView, owns, parse_decision, release_matches};
use crate::plan::{PlanSpec, due_instant, plan_view};
use crate::{Actor, App, AppError, Result};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use patchward_core::access::{Permission, Role};
use patchward_core::exposure::ExposureIndex;
use patchward_core::plan::Plan;
use patchward_core::priority::{Policy, assess_server};
use patchward_core::workflow::{
    Approval, Cycle, CycleKind, CycleState, Deferral, RefusalKind, ScopeFilter, ScopeItem,
    Snapshot, Transition, WorkflowRules, emergency_cycle_name, monthly_cycle_for,
    next_monthly_cycle, patch_tuesday, ring_fingerprints,
};
use patchward_proto::{
    ActionState, ApprovalView, ApproveRequest, CreateCycleRequest, CycleSummary, CycleView,
    DeferRequest, DeferralView, ErrorCode, PlanCycleRequest, RingApprovalView, ScopeEditRequest,
    ScopeItemView, SnapshotView, TransitionRequest, TransitionView,
};
use patchward_store::{ControlStore, CycleRecord, TenantId};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// How often a write is retried when another writer changed the cycle in between.
const RETRIES: usize = 5;

/// A plan starts now or later: slots in the past cannot be approved or run (an hour of slack
/// for clocks and forms filled in a moment ago).
fn refuse_past_start(start: Timestamp, now: Timestamp) -> Result<()> {
    if start.as_second() < now.as_second() - 3600 {
        return Err(AppError::field(
            "start",
            format!("{start} is in the past (now {now}): a plan starts now or later"),
        ));
    }
    Ok(())
}

fn conflict(msg: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::Conflict, msg)
}

fn changed_meanwhile(name: &str) -> AppError {
    conflict(format!(
        "cycle {name:?} kept changing while this was saved; reload and try again"
    ))
}

fn kind_word(k: CycleKind) -> &'static str {
    match k {
        CycleKind::Monthly => "monthly",
        CycleKind::Emergency => "emergency",
    }
}

/// "2027-01 Patch Tuesday" → its Patch Tuesday.
fn monthly_start(name: &str) -> Option<Date> {
    let (ym, rest) = name.trim().split_once(' ')?;
    if !rest.trim().eq_ignore_ascii_case("Patch Tuesday") {
        return None;
    }
    let (y, m) = ym.split_once('-')?;
    patch_tuesday(y.parse().ok()?, m.parse().ok()?)
}

/// Proposes a scope: per server visible to the actor and matching the filter, the updates to
/// install for its open findings that match (excepted findings left out). `only`: these
/// servers (lower-case names).
fn propose(
    fleet: &FleetView,
    actor: &Actor,
    filter: &ScopeFilter,
    only: Option<&HashSet<String>>,
    policy: &Policy,
) -> Vec<ScopeItem> {
    let mut out = Vec::new();
    for (i, s) in fleet.servers.iter().enumerate() {
        let sum = &fleet.summaries[i];
        if sum.open == 0
            || (actor.role == Role::Owner && !owns(actor, s))
            || only.is_some_and(|o| !o.contains(&s.name.to_ascii_lowercase()))
            || filter
                .product
                .as_deref()
                .is_some_and(|r| !release_matches(s, sum, r))
            || filter
                .ring
                .as_deref()
                .is_some_and(|r| !s.ring.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(r)))
            || filter
                .tag
                .as_deref()
                .is_some_and(|t| !s.tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
            || filter.owner.as_deref().is_some_and(|o| {
                !s.owner.as_ref().is_some_and(|x| {
                    x.name.eq_ignore_ascii_case(o)
                        || x.email
                            .as_deref()
                            .is_some_and(|e| e.eq_ignore_ascii_case(o))
                })
            })
            || filter.kev == Some(true) && sum.kev == 0
            || filter
                .decision
                .is_some_and(|d| sum.worst.is_none_or(|w| w.0 < d))
        {
            continue;
        }
        let e = assess_server(&fleet.index, s, policy, fleet.as_of);
        let mut updates = BTreeSet::new();
        let mut cves = BTreeSet::new();
        for c in &e.open_cves {
            let f = &c.facts;
            if fleet.exceptions.covering(&s.name, f).is_some()
                || filter.kev.is_some_and(|k| f.kev != k)
                || filter
                    .cve
                    .as_deref()
                    .is_some_and(|x| !x.eq_ignore_ascii_case(&f.cve))
                || filter
                    .decision
                    .is_some_and(|d| c.priority.as_ref().is_none_or(|p| p.decision < d))
            {
                continue;
            }
            updates.insert(f.install.to_string());
            cves.insert(f.cve.to_string());
        }
        if !updates.is_empty() {
            out.push(ScopeItem {
                server: s.name.clone(),
                updates: updates.into_iter().collect(),
                cves: cves.into_iter().collect(),
            });
        }
    }
    out
}

/// The earliest due date among the server's open findings that `updates` close (all when
/// `None`).
fn earliest_due(
    index: &ExposureIndex,
    fleet: &FleetView,
    at: usize,
    updates: Option<&[String]>,
    policy: &Policy,
) -> Option<Date> {
    let s = &fleet.servers[at];
    let e = assess_server(index, s, policy, fleet.as_of);
    e.open_cves
        .iter()
        .filter(|c| {
            updates.is_none_or(|u| {
                u.iter().any(|k| {
                    c.facts.install.to_string().eq_ignore_ascii_case(k)
                        || c.facts
                            .fixed_by
                            .iter()
                            .any(|f| f.to_string().eq_ignore_ascii_case(k))
                })
            })
        })
        .filter_map(|c| c.priority.as_ref().map(|p| p.due))
        .min()
}

fn summary(rec: &CycleRecord, c: &Cycle, rules: &WorkflowRules) -> CycleSummary {
    CycleSummary {
        id: rec.id,
        name: c.name.clone(),
        kind: kind_word(c.kind).into(),
        state: c.state.as_str().into(),
        created_at: rec.created_at.to_string(),
        updated_at: rec.updated_at.to_string(),
        prepared_by: c.prepared_by.clone(),
        servers: c.scope.len() as u32,
        updates: c.scope.iter().map(|s| s.updates.len() as u32).sum(),
        deadline: c.deadline.map(|d| d.to_string()),
        cve: c.filter.cve.clone(),
        awaiting_approval: if matches!(c.state, CycleState::Planned | CycleState::Approved) {
            c.ring_approvals(rules)
                .into_iter()
                .filter(|r| !r.approved)
                .map(|r| r.ring)
                .collect()
        } else {
            Vec::new()
        },
        placed: c.placed,
        unplaced: c.unplaced,
        deferrals: c.deferrals.len() as u32,
        deferrals_past_due: c.past_due_deferrals() as u32,
        approvals_withdrawn: c.approvals.iter().filter(|a| a.withdrawn.is_some()).count() as u32,
    }
}

fn action(refusal: Option<String>) -> ActionState {
    ActionState {
        allowed: refusal.is_none(),
        why_not: refusal,
    }
}

/// Why the actor cannot approve now. For the person who prepared the cycle, separation of
/// duties speaks first (it is the reason that matters to them, whatever their role); then
/// whether their role counts as an approver.
fn refusal(
    c: &Cycle,
    actor: &Actor,
    ring: Option<&str>,
    rules: &WorkflowRules,
) -> Option<patchward_core::workflow::Refusal> {
    let counts = counts_as_approver(actor, rules);
    let preparer = rules.separation_of_duties
        && c.prepared_by
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&actor.name));
    if let Some(r) = c.refuse_approval(&actor.name, counts || preparer, ring, rules) {
        return Some(r);
    }
    (!counts).then(|| patchward_core::workflow::Refusal {
        kind: RefusalKind::Role,
        why: format!("the {} role cannot approve cycles", actor.role),
    })
}

/// Whether the actor's role counts as an approver under the tenant's rules.
fn counts_as_approver(actor: &Actor, rules: &WorkflowRules) -> bool {
    actor.role == Role::Approver || (actor.role == Role::Admin && rules.admins_approve)
}

impl<S: ControlStore> App<S> {
    pub(crate) async fn load_cycle(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<(CycleRecord, Cycle)> {
        let rec = self
            .store
            .cycle(tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("cycle {id}")))?;
        let c: Cycle = decode("cycle", rec.id, &rec.body)?;
        Ok((rec, c))
    }

    /// Writes the cycle if nobody changed it since `rec` was read; `false` otherwise.
    async fn save_cycle(
        &self,
        tenant: TenantId,
        rec: &CycleRecord,
        c: &Cycle,
        plan: Option<&str>,
    ) -> Result<Option<CycleRecord>> {
        let saved = self
            .store
            .update_cycle(
                tenant,
                rec.id,
                rec.version,
                c.state.as_str(),
                &encode("cycle", c)?,
                plan,
                self.now(),
            )
            .await?;
        if saved.is_some() {
            self.cycle_changed(tenant, rec.id);
        }
        Ok(saved)
    }

    /// `GET /api/v1/cycles`: newest first.
    pub async fn cycles(&self, actor: &Actor, tenant: TenantId) -> Result<Vec<CycleSummary>> {
        actor.require(Permission::Read)?;
        let rules = rules_of(&self.store, tenant).await?;
        let mut out = Vec::new();
        for rec in self.store.cycles(tenant).await? {
            let c: Cycle = decode("cycle", rec.id, &rec.body)?;
            out.push(summary(&rec, &c, &rules));
        }
        Ok(out)
    }

    /// `GET /api/v1/cycles/{id}`: everything about a cycle, and what the actor may do now.
    /// Owners see their own servers of the scope and plan only.
    pub async fn cycle_view(&self, actor: &Actor, tenant: TenantId, id: i64) -> Result<CycleView> {
        actor.require(Permission::Read)?;
        let (rec, c) = self.load_cycle(tenant, id).await?;
        self.view_of(actor, tenant, &rec, &c).await
    }

    async fn view_of(
        &self,
        actor: &Actor,
        tenant: TenantId,
        rec: &CycleRecord,
        c: &Cycle,
    ) -> Result<CycleView> {
        let rules = rules_of(&self.store, tenant).await?;
        let fleet = self.fleet(tenant).await?;
        let visible = |name: &str| {
            actor.role != Role::Owner
                || fleet
                    .position_named(name)
                    .is_some_and(|i| owns(actor, &fleet.servers[i]))
        };
        let plan: Option<Plan> = match self.store.plan(tenant, &c.name).await? {
            Some(json) if c.state != CycleState::Draft => {
                Some(decode("plan of cycle", rec.id, &json)?)
            }
            _ => None,
        };
        let approve = refusal(c, actor, None, &rules).map(|r| r.why);
        let operate = actor.role.allows(Permission::Operate);
        let can_plan = if !operate {
            Some(format!("the {} role cannot plan", actor.role))
        } else if !c.state.is_editable() {
            Some(format!("the cycle is {}", c.state))
        } else {
            None
        };
        let can_start = if !operate {
            Some(format!("the {} role cannot start a cycle", actor.role))
        } else if c.state == CycleState::Approved && !c.fully_approved(&rules) {
            Some("the approval rules changed since approval: more approvals are needed".to_string())
        } else if c.state != CycleState::Approved {
            Some(match c.state {
                CycleState::Draft => "plan the cycle and get it approved first".to_string(),
                CycleState::Planned => "the cycle is waiting for approval".to_string(),
                s => format!("the cycle is {s}"),
            })
        } else {
            None
        };
        Ok(CycleView {
            summary: summary(rec, c, &rules),
            start: c.start.to_string(),
            filter: serde_json::to_value(&c.filter).unwrap_or_default(),
            scope: c
                .scope
                .iter()
                .filter(|s| visible(&s.server))
                .map(|s| ScopeItemView {
                    server: s.server.clone(),
                    server_id: fleet.position_named(&s.server).map(|i| fleet.ids[i]),
                    updates: s.updates.clone(),
                    cves: s.cves.clone(),
                })
                .collect(),
            rings: c
                .ring_approvals(&rules)
                .into_iter()
                .map(|r| RingApprovalView {
                    ring: r.ring,
                    approved: r.approved,
                    approvers: r.approvers,
                    missing: r.missing,
                })
                .collect(),
            approvals: c
                .approvals
                .iter()
                .map(|a| ApprovalView {
                    id: a.id,
                    ring: a.ring.clone(),
                    by: a.by.clone(),
                    ticket: a.ticket.clone(),
                    comment: a.comment.clone(),
                    at: a.at.to_string(),
                    withdrawn_at: a.withdrawn.as_ref().map(|w| w.at.to_string()),
                    withdrawn_why: a.withdrawn.as_ref().map(|w| w.why.clone()),
                })
                .collect(),
            deferrals: c
                .deferrals
                .iter()
                .filter(|d| visible(&d.server))
                .map(|d| DeferralView {
                    server: d.server.clone(),
                    update: d.update.clone(),
                    reason: d.reason.clone(),
                    to_cycle: d.to_cycle.clone(),
                    to_start: d.to_start.to_string(),
                    by: d.by.clone(),
                    at: d.at.to_string(),
                    due: d.due.map(|x| x.to_string()),
                    past_due: d.past_due(),
                    note: d.due_note(),
                })
                .collect(),
            history: c
                .history
                .iter()
                .map(|t| TransitionView {
                    from: t.from.map(|s| s.as_str().to_string()),
                    to: t.to.as_str().into(),
                    at: t.at.to_string(),
                    by: t.by.clone(),
                    why: t.why.clone(),
                })
                .collect(),
            plan: plan.as_ref().map(|p| plan_view(p, visible)),
            snapshot: c.snapshot.as_ref().map(|s| SnapshotView {
                at: s.at.to_string(),
                open: s.open,
                act: s.act,
                attend: s.attend,
                kev: s.kev,
                overdue: s.overdue,
            }),
            can_approve: action(approve),
            can_plan: action(can_plan),
            can_start: action(can_start),
        })
    }

    /// `POST /api/v1/cycles`: a monthly or emergency cycle in draft, its scope proposed from
    /// open findings.
    pub async fn create_cycle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        req: &CreateCycleRequest,
    ) -> Result<CycleView> {
        actor.require(Permission::Operate)?;
        let kind = match req.kind.as_deref().map(str::trim) {
            None | Some("monthly") => CycleKind::Monthly,
            Some("emergency") => CycleKind::Emergency,
            Some(other) => {
                return Err(AppError::field(
                    "kind",
                    format!("{other:?}: kind is monthly or emergency"),
                ));
            }
        };
        let today = self.today();
        let now = self.now();
        let rules = rules_of(&self.store, tenant).await?;
        let decision = match req.decision.as_deref() {
            None => None,
            Some(d) => Some(parse_decision(d).ok_or_else(|| {
                AppError::field(
                    "decision",
                    format!("{d:?} is not a decision (act, attend, track-star, track)"),
                )
            })?),
        };
        let cve = match (&kind, req.cve.as_deref()) {
            (_, Some(c)) => Some(crate::fleet::check_cve(c)?),
            (CycleKind::Emergency, None) => {
                return Err(AppError::field("cve", "an emergency cycle names its CVE"));
            }
            (CycleKind::Monthly, None) => None,
        };
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
        };
        let filter = ScopeFilter {
            decision,
            kev: req.kev,
            product: text(&req.product),
            ring: text(&req.ring),
            tag: text(&req.tag),
            owner: text(&req.owner),
            cve: cve.clone(),
        };
        let name = match text(&req.name) {
            Some(n) if n.chars().count() <= 200 => n,
            Some(_) => {
                return Err(AppError::field(
                    "name",
                    "a cycle name is 1 to 200 characters",
                ));
            }
            None => match (&kind, &cve) {
                (CycleKind::Emergency, Some(c)) => emergency_cycle_name(c),
                _ => monthly_cycle_for(today)
                    .map(|x| x.0)
                    .ok_or_else(|| AppError::internal("no Patch Tuesday for today"))?,
            },
        };
        let start = match req.start.as_deref().map(str::trim) {
            None | Some("") => now,
            Some(s) => s.parse::<Timestamp>().map_err(|e| {
                AppError::field("start", format!("{s:?} is not an RFC 3339 instant: {e}"))
            })?,
        };
        refuse_past_start(start, now)?;
        let deadline = match kind {
            CycleKind::Emergency => today
                .checked_add(i64::from(rules.emergency_sla_days).days())
                .ok(),
            CycleKind::Monthly => None,
        };
        let fleet = self.fleet(tenant).await?;
        let only: Option<HashSet<String>> = match &req.servers {
            None => None,
            Some(names) => {
                let mut set = HashSet::new();
                let mut unknown = Vec::new();
                for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                    match fleet.position_named(n) {
                        Some(i) if actor.role != Role::Owner || owns(actor, &fleet.servers[i]) => {
                            set.insert(n.to_ascii_lowercase());
                        }
                        _ => unknown.push(n.to_string()),
                    }
                }
                if !unknown.is_empty() {
                    return Err(AppError::field(
                        "servers",
                        format!("unknown server(s): {}", unknown.join(", ")),
                    ));
                }
                if set.is_empty() {
                    return Err(AppError::field("servers", "servers names no server"));
                }
                Some(set)
            }
        };
        let policy = self.policy().clone();
        let (a, f, fl) = (actor.clone(), filter.clone(), fleet.clone());
        let scope =
            tokio::task::spawn_blocking(move || propose(&fl, &a, &f, only.as_ref(), &policy))
                .await
                .map_err(|e| AppError::internal(e.to_string()))?;
        if scope.is_empty() {
            return Err(match &cve {
                Some(c) => AppError::field(
                    "cve",
                    format!("no server of the tenant has {c} open (as of {today})"),
                ),
                None => AppError::bad_request(format!(
                    "no open finding matches the cycle's filters (as of {today}): nothing to patch"
                )),
            });
        }
        let cycle = Cycle {
            kind,
            name: name.clone(),
            state: CycleState::Draft,
            prepared_by: vec![actor.name.clone()],
            created_at: now,
            start,
            deadline,
            filter,
            scope,
            fingerprints: Default::default(),
            approvals: Vec::new(),
            deferrals: Vec::new(),
            history: vec![Transition {
                from: None,
                to: CycleState::Draft,
                at: now,
                by: actor.name.clone(),
                why: "created".into(),
            }],
            snapshot: None,
            placed: None,
            unplaced: None,
            paused: None,
            accepted_failures: Default::default(),
        };
        let rec = self
            .store
            .create_cycle(tenant, &name, "draft", &encode("cycle", &cycle)?, now)
            .await
            .map_err(|e| match e {
                patchward_store::StoreError::Conflict(_) => AppError::field(
                    "name",
                    format!("the tenant already has a cycle named {name:?}"),
                ),
                other => other.into(),
            })?;
        self.record(
            actor,
            Some(tenant),
            "cycle.create",
            &format!("cycle:{}", rec.id),
            serde_json::json!({
                "name": name,
                "kind": kind_word(kind),
                "servers": cycle.scope.len(),
                "updates": cycle.scope.iter().map(|s| s.updates.len()).sum::<usize>(),
                "filter": cycle.filter,
                "deadline": deadline.map(|d| d.to_string()),
            }),
        )
        .await?;
        self.view_of(actor, tenant, &rec, &cycle).await
    }

    /// Plan `c` (its scope, from `start`): fingerprints replaced (approvals of changed rings
    /// withdrawn), state, snapshot, history. Returns the plan's JSON and what was withdrawn.
    async fn plan_into(
        &self,
        actor: &Actor,
        tenant: TenantId,
        c: &mut Cycle,
        start: Timestamp,
        horizon_days: Option<u32>,
        why: &str,
    ) -> Result<(String, Vec<String>)> {
        let rules = rules_of(&self.store, tenant).await?;
        let estate = self.store.estate(tenant).await?;
        let known: HashSet<String> = estate
            .servers
            .iter()
            .map(|s| s.name.to_ascii_lowercase())
            .collect();
        let names: Vec<String> = c
            .scope
            .iter()
            .filter(|s| known.contains(&s.server.to_ascii_lowercase()))
            .map(|s| s.server.clone())
            .collect();
        let horizon = horizon_days.unwrap_or(match c.kind {
            CycleKind::Monthly => 35,
            CycleKind::Emergency => 14,
        });
        if !(1..=365).contains(&horizon) {
            return Err(AppError::field("horizon_days", "horizon_days is 1 to 365"));
        }
        let spec = PlanSpec {
            cycle: c.name.clone(),
            start,
            scope: Some(names),
            deadline: c.deadline.and_then(|d| {
                due_instant(d).map(|at| {
                    (
                        at,
                        format!(
                            "emergency SLA of {} days (due {d})",
                            rules.emergency_sla_days
                        ),
                    )
                })
            }),
            due: Vec::new(),
            ring: None,
            emergency: c.kind == CycleKind::Emergency,
            horizon_days: horizon,
            policy: self.policy().clone(),
        };
        let estate = self.with_learned_durations(tenant, estate).await?;
        let made = self.make_plan(actor, estate, spec).await?;
        let p = &made.plan;
        let slots = p
            .placements
            .iter()
            .map(|x| {
                (
                    x.server.as_str(),
                    x.ring.as_deref(),
                    Some((x.wave, x.start, x.end)),
                )
            })
            .chain(
                p.unplaced
                    .iter()
                    .map(|x| (x.server.as_str(), x.ring.as_deref(), None)),
            );
        let fps = ring_fingerprints(&c.scope, slots);
        let now = self.now();
        let from = c.state;
        let withdrawn = c.replace_fingerprints(fps, now, &rules);
        if c.state == CycleState::Draft {
            c.state = CycleState::Planned;
        }
        if !c
            .prepared_by
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&actor.name))
        {
            c.prepared_by.push(actor.name.clone());
        }
        c.placed = Some(p.placements.len() as u32);
        c.unplaced = Some(p.unplaced.len() as u32);
        let s = self
            .exposure_summary(&Actor::system("snapshot"), tenant)
            .await?;
        c.snapshot = Some(Snapshot {
            at: now,
            open: s.open,
            act: s.act,
            attend: s.attend,
            kev: s.kev,
            overdue: s.overdue,
        });
        let mut text = format!(
            "{why}: {} placed, {} not placed",
            p.placements.len(),
            p.unplaced.len()
        );
        if !withdrawn.is_empty() {
            text.push_str(&format!("; approvals withdrawn: {}", withdrawn.join("; ")));
        }
        c.history.push(Transition {
            from: Some(from),
            to: c.state,
            at: now,
            by: actor.name.clone(),
            why: text,
        });
        Ok((made.json, withdrawn))
    }

    /// A changed scope is re-planned at once unless the cycle is still a draft: the plan's
    /// JSON to store with the cycle, and the approvals withdrawn.
    async fn replan_unless_draft(
        &self,
        actor: &Actor,
        tenant: TenantId,
        c: &mut Cycle,
        why: &str,
    ) -> Result<(Option<String>, Vec<String>)> {
        if c.state == CycleState::Draft {
            return Ok((None, Vec::new()));
        }
        let start = c.start.max(self.now());
        let (json, withdrawn) = self.plan_into(actor, tenant, c, start, None, why).await?;
        Ok((Some(json), withdrawn))
    }

    /// `POST /api/v1/cycles/{id}/plan`: (re-)plan; approvals of rings whose plan changed are
    /// withdrawn, with the change named.
    pub async fn plan_cycle_id(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        req: &PlanCycleRequest,
    ) -> Result<CycleView> {
        actor.require(Permission::Operate)?;
        let start_req = match req.start.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(s.parse::<Timestamp>().map_err(|e| {
                AppError::field("start", format!("{s:?} is not an RFC 3339 instant: {e}"))
            })?),
        };
        for _ in 0..RETRIES {
            let (rec, mut c) = self.load_cycle(tenant, id).await?;
            if !c.state.is_editable() {
                return Err(conflict(format!(
                    "the cycle is {}: its plan can no longer change",
                    c.state
                )));
            }
            if let Some(st) = start_req {
                refuse_past_start(st, self.now())?;
            }
            let start = start_req.unwrap_or_else(|| c.start.max(self.now()));
            let (json, withdrawn) = self
                .plan_into(actor, tenant, &mut c, start, req.horizon_days, "planned")
                .await?;
            let Some(saved) = self.save_cycle(tenant, &rec, &c, Some(&json)).await? else {
                continue;
            };
            self.record(
                actor,
                Some(tenant),
                "cycle.plan",
                &format!("cycle:{id}"),
                serde_json::json!({
                    "name": c.name,
                    "placed": c.placed,
                    "unplaced": c.unplaced,
                    "state": c.state.as_str(),
                    "approvals_withdrawn": withdrawn,
                }),
            )
            .await?;
            return self.view_of(actor, tenant, &saved, &c).await;
        }
        Err(changed_meanwhile(&id.to_string()))
    }

    /// `POST /api/v1/cycles/{id}/approvals`: an approver approves a ring (or the whole plan)
    /// with a change ticket. The preparer cannot be its only approver.
    pub async fn approve_cycle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        req: &ApproveRequest,
    ) -> Result<CycleView> {
        let rules = rules_of(&self.store, tenant).await?;
        let ticket = nonempty(&req.ticket, "ticket")?;
        if ticket.chars().count() > 200 {
            return Err(AppError::field(
                "ticket",
                "ticket is at most 200 characters",
            ));
        }
        let comment = req.comment.as_deref().unwrap_or("").trim().to_string();
        let ring = req
            .ring
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        for _ in 0..RETRIES {
            let (rec, mut c) = self.load_cycle(tenant, id).await?;
            if let Some(r) = refusal(&c, actor, ring.as_deref(), &rules) {
                return Err(match r.kind {
                    RefusalKind::SeparationOfDuties | RefusalKind::Role => {
                        AppError::forbidden(r.why)
                    }
                    RefusalKind::Ring => AppError::field("ring", r.why),
                    RefusalKind::State | RefusalKind::AlreadyApproved => conflict(r.why),
                });
            }
            let now = self.now();
            let fingerprint = c.fingerprint_of(ring.as_deref());
            c.approvals.push(Approval {
                id: c.approvals.len() as u32 + 1,
                ring: ring.clone(),
                by: actor.name.clone(),
                ticket: ticket.clone(),
                comment: comment.clone(),
                at: now,
                fingerprint,
                withdrawn: None,
            });
            if c.state == CycleState::Planned && c.fully_approved(&rules) {
                c.state = CycleState::Approved;
                c.history.push(Transition {
                    from: Some(CycleState::Planned),
                    to: CycleState::Approved,
                    at: now,
                    by: actor.name.clone(),
                    why: format!("every ring approved (ticket {ticket})"),
                });
            }
            let Some(saved) = self.save_cycle(tenant, &rec, &c, None).await? else {
                continue;
            };
            self.record(
                actor,
                Some(tenant),
                "cycle.approve",
                &format!("cycle:{id}"),
                serde_json::json!({
                    "name": c.name,
                    "ring": ring,
                    "ticket": ticket,
                    "comment": comment,
                    "state": c.state.as_str(),
                }),
            )
            .await?;
            return self.view_of(actor, tenant, &saved, &c).await;
        }
        Err(changed_meanwhile(&id.to_string()))
    }

    /// `PUT /api/v1/cycles/{id}/scope`: add servers (their open updates under the cycle's
    /// filter) or remove some; a planned cycle is re-planned at once.
    pub async fn edit_scope(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        req: &ScopeEditRequest,
    ) -> Result<CycleView> {
        actor.require(Permission::Operate)?;
        if req.add.is_empty() && req.remove.is_empty() {
            return Err(AppError::field("add", "name servers to add or remove"));
        }
        for _ in 0..RETRIES {
            let (rec, mut c) = self.load_cycle(tenant, id).await?;
            if !c.state.is_editable() {
                return Err(conflict(format!(
                    "the cycle is {}: its scope can no longer change",
                    c.state
                )));
            }
            let mut notes = Vec::new();
            for r in req
                .remove
                .iter()
                .map(|r| r.trim())
                .filter(|r| !r.is_empty())
            {
                let before = c.scope.len();
                c.scope.retain(|s| !s.server.eq_ignore_ascii_case(r));
                if c.scope.len() == before {
                    return Err(AppError::field(
                        "remove",
                        format!("{r} is not in the cycle's scope"),
                    ));
                }
                notes.push(format!("removed {r}"));
            }
            let add: Vec<String> = req
                .add
                .iter()
                .map(|a| a.trim().to_string())
                .filter(|a| {
                    !a.is_empty() && !c.scope.iter().any(|s| s.server.eq_ignore_ascii_case(a))
                })
                .collect();
            if !add.is_empty() {
                let fleet = self.fleet(tenant).await?;
                let mut only = HashSet::new();
                for a in &add {
                    match fleet.position_named(a) {
                        Some(i) if actor.role != Role::Owner || owns(actor, &fleet.servers[i]) => {
                            only.insert(a.to_ascii_lowercase());
                        }
                        _ => return Err(AppError::field("add", format!("no server named {a:?}"))),
                    }
                }
                let (a, f, fl, policy) = (
                    actor.clone(),
                    c.filter.clone(),
                    fleet.clone(),
                    self.policy().clone(),
                );
                let items =
                    tokio::task::spawn_blocking(move || propose(&fl, &a, &f, Some(&only), &policy))
                        .await
                        .map_err(|e| AppError::internal(e.to_string()))?;
                for a in &add {
                    if !items.iter().any(|i| i.server.eq_ignore_ascii_case(a)) {
                        return Err(AppError::field(
                            "add",
                            format!("{a} has no open finding under the cycle's filter"),
                        ));
                    }
                }
                notes.extend(items.iter().map(|i| format!("added {}", i.server)));
                c.scope.extend(items);
                c.scope.sort_by_key(|s| s.server.to_ascii_lowercase());
            }
            if !c
                .prepared_by
                .iter()
                .any(|x| x.eq_ignore_ascii_case(&actor.name))
            {
                c.prepared_by.push(actor.name.clone());
            }
            let why = format!("scope changed ({})", notes.join(", "));
            let (plan, withdrawn) = self
                .replan_unless_draft(actor, tenant, &mut c, &why)
                .await?;
            let Some(saved) = self.save_cycle(tenant, &rec, &c, plan.as_deref()).await? else {
                continue;
            };
            self.record(
                actor,
                Some(tenant),
                "cycle.scope",
                &format!("cycle:{id}"),
                serde_json::json!({"name": c.name, "changes": notes, "approvals_withdrawn": withdrawn}),
            )
            .await?;
            return self.view_of(actor, tenant, &saved, &c).await;
        }
        Err(changed_meanwhile(&id.to_string()))
    }

    /// `POST /api/v1/cycles/{id}/deferrals`: move an update of a server (or the server) to a
    /// later monthly cycle, with a reason; says so when its findings fall due before then.
    pub async fn defer(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        req: &DeferRequest,
    ) -> Result<CycleView> {
        actor.require(Permission::Operate)?;
        let reason = nonempty(&req.reason, "reason")?;
        let update = req
            .update
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|u| check_kb(u, "update"))
            .transpose()?;
        let today = self.today();
        for _ in 0..RETRIES {
            let (rec, mut c) = self.load_cycle(tenant, id).await?;
            if !c.state.is_editable() {
                return Err(conflict(format!(
                    "the cycle is {}: nothing can be deferred any more",
                    c.state
                )));
            }
            let Some(pos) = c
                .scope
                .iter()
                .position(|s| s.server.eq_ignore_ascii_case(req.server.trim()))
            else {
                return Err(AppError::field(
                    "server",
                    format!("{} is not in the cycle's scope", req.server.trim()),
                ));
            };
            if let Some(u) = &update
                && !c.scope[pos]
                    .updates
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(u))
            {
                return Err(AppError::field(
                    "update",
                    format!(
                        "{u} is not in {}'s scope ({})",
                        c.scope[pos].server,
                        c.scope[pos].updates.join(", ")
                    ),
                ));
            }
            let (to_cycle, to_start) = match req.to_cycle.as_deref().map(str::trim) {
                Some(n) if !n.is_empty() => {
                    let d = monthly_start(n).ok_or_else(|| {
                        AppError::field(
                            "to_cycle",
                            format!("{n:?} is not a monthly cycle like \"2027-01 Patch Tuesday\""),
                        )
                    })?;
                    (n.to_string(), d)
                }
                _ => {
                    let base = match c.kind {
                        CycleKind::Monthly => {
                            monthly_start(&c.name).or_else(|| monthly_cycle_for(today).map(|x| x.1))
                        }
                        CycleKind::Emergency => monthly_cycle_for(today).map(|x| x.1),
                    };
                    base.and_then(next_monthly_cycle)
                        .ok_or_else(|| AppError::internal("no next Patch Tuesday"))?
                }
            };
            if to_start <= today {
                return Err(AppError::field(
                    "to_cycle",
                    format!("{to_cycle} started on {to_start}: defer to a later cycle"),
                ));
            }
            let fleet = self.fleet(tenant).await?;
            let server = c.scope[pos].server.clone();
            let due = match fleet.position_named(&server) {
                Some(at) => {
                    let (fl, policy, deferred) = (
                        fleet.clone(),
                        self.policy().clone(),
                        update.clone().map(|u| vec![u]),
                    );
                    tokio::task::spawn_blocking(move || {
                        let index: Arc<ExposureIndex> = fl.index.clone();
                        earliest_due(&index, &fl, at, deferred.as_deref(), &policy)
                    })
                    .await
                    .map_err(|e| AppError::internal(e.to_string()))?
                }
                None => None,
            };
            match &update {
                Some(u) => {
                    c.scope[pos].updates.retain(|x| !x.eq_ignore_ascii_case(u));
                    if c.scope[pos].updates.is_empty() {
                        c.scope.remove(pos);
                    }
                }
                None => {
                    c.scope.remove(pos);
                }
            }
            let d = Deferral {
                server: server.clone(),
                update: update.clone(),
                reason: reason.clone(),
                to_cycle: to_cycle.clone(),
                to_start,
                by: actor.name.clone(),
                at: self.now(),
                due,
            };
            let note = d.due_note();
            c.deferrals.push(d);
            if !c
                .prepared_by
                .iter()
                .any(|x| x.eq_ignore_ascii_case(&actor.name))
            {
                c.prepared_by.push(actor.name.clone());
            }
            let what = match &update {
                Some(u) => format!("{u} on {server}"),
                None => server.clone(),
            };
            let (plan, withdrawn) = self
                .replan_unless_draft(actor, tenant, &mut c, &format!("deferred {what}"))
                .await?;
            let Some(saved) = self.save_cycle(tenant, &rec, &c, plan.as_deref()).await? else {
                continue;
            };
            self.record(
                actor,
                Some(tenant),
                "cycle.defer",
                &format!("cycle:{id}"),
                serde_json::json!({
                    "name": c.name,
                    "server": server,
                    "update": update,
                    "reason": reason,
                    "to_cycle": to_cycle,
                    "due": due.map(|d| d.to_string()),
                    "past_due": note,
                    "approvals_withdrawn": withdrawn,
                }),
            )
            .await?;
            return self.view_of(actor, tenant, &saved, &c).await;
        }
        Err(changed_meanwhile(&id.to_string()))
    }

    /// A running cycle all of whose jobs have ended (none waiting, blocked, running or rolling
    /// back) completes by itself, its history saying how they ended. A job of a completed
    /// cycle can still be rolled back. Returns whether it completed.
    pub(crate) async fn complete_when_done(&self, tenant: TenantId, id: i64) -> Result<bool> {
        use patchward_core::execution::JobState;
        let jobs = self.store.job_summaries(tenant, id).await?;
        let states: Vec<JobState> = jobs
            .iter()
            .map(|j| JobState::parse(&j.state).unwrap_or(JobState::Waiting))
            .collect();
        if states.is_empty() || !states.iter().all(|s| s.is_terminal()) {
            return Ok(false);
        }
        let mut counts: Vec<(JobState, usize)> = Vec::new();
        for s in states {
            match counts.iter_mut().find(|(k, _)| *k == s) {
                Some((_, n)) => *n += 1,
                None => counts.push((s, 1)),
            }
        }
        counts.sort_by_key(|(s, _)| s.as_str());
        let tally = counts
            .iter()
            .map(|(s, n)| format!("{n} {}", s.as_str().replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", ");
        let why = format!("every job ended: {tally}");
        let actor = Actor::system("jobs");
        for _ in 0..RETRIES {
            let (rec, mut c) = self.load_cycle(tenant, id).await?;
            if c.state != CycleState::Running {
                return Ok(false);
            }
            let now = self.now();
            c.state = CycleState::Completed;
            c.history.push(Transition {
                from: Some(CycleState::Running),
                to: CycleState::Completed,
                at: now,
                by: actor.name.clone(),
                why: why.clone(),
            });
            if self.save_cycle(tenant, &rec, &c, None).await?.is_none() {
                continue;
            }
            self.record(
                &actor,
                Some(tenant),
                "cycle.complete",
                &format!("cycle:{id}"),
                serde_json::json!({"name": c.name, "from": "running", "to": "completed", "reason": why}),
            )
            .await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// `POST /api/v1/cycles/{id}/transitions`: start (approved cycles), complete (running),
    /// cancel (with a reason).
    pub async fn transition_cycle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        req: &TransitionRequest,
    ) -> Result<CycleView> {
        actor.require(Permission::Operate)?;
        let to = match CycleState::parse(&req.to) {
            Some(s @ (CycleState::Running | CycleState::Completed | CycleState::Cancelled)) => s,
            _ => {
                return Err(AppError::field(
                    "to",
                    format!(
                        "{:?}: a cycle is moved to running, completed or cancelled (planning and approvals move it otherwise)",
                        req.to
                    ),
                ));
            }
        };
        let reason = match (to, req.reason.as_deref()) {
            (CycleState::Cancelled, r) => nonempty(r.unwrap_or(""), "reason")?,
            (_, r) => r.unwrap_or("").trim().to_string(),
        };
        let rules = rules_of(&self.store, tenant).await?;
        for _ in 0..RETRIES {
            let (rec, mut c) = self.load_cycle(tenant, id).await?;
            if to == CycleState::Running
                && c.state == CycleState::Approved
                && !c.fully_approved(&rules)
            {
                return Err(conflict(
                    "the tenant's approval rules changed since the cycle was approved: it needs more approvals before it starts",
                ));
            }
            if !c.state.can_become(to) {
                let hint = match (c.state, to) {
                    (CycleState::Planned, CycleState::Running) => {
                        let missing: Vec<String> = c
                            .ring_approvals(&rules)
                            .into_iter()
                            .filter(|r| !r.approved)
                            .map(|r| {
                                format!(
                                    "{} ({})",
                                    if r.ring.is_empty() {
                                        "(no ring)".into()
                                    } else {
                                        r.ring
                                    },
                                    r.missing.unwrap_or_default()
                                )
                            })
                            .collect();
                        format!(": waiting for approval of {}", missing.join(", "))
                    }
                    (CycleState::Draft, _) => ": plan it first".into(),
                    _ => String::new(),
                };
                return Err(conflict(format!(
                    "the cycle is {}; it cannot become {to}{hint}",
                    c.state
                )));
            }
            let now = self.now();
            let from = c.state;
            c.state = to;
            c.history.push(Transition {
                from: Some(from),
                to,
                at: now,
                by: actor.name.clone(),
                why: if reason.is_empty() {
                    to.as_str().to_string()
                } else {
                    reason.clone()
                },
            });
            let Some(saved) = self.save_cycle(tenant, &rec, &c, None).await? else {
                continue;
            };
            let action = match to {
                CycleState::Running => "cycle.start",
                CycleState::Completed => "cycle.complete",
                _ => "cycle.cancel",
            };
            self.record(
                actor,
                Some(tenant),
                action,
                &format!("cycle:{id}"),
                serde_json::json!({"name": c.name, "from": from.as_str(), "to": to.as_str(), "reason": reason}),
            )
            .await?;
            match to {
                // Nothing more starts; a running job stops at its agent's next report.
                CycleState::Cancelled => {
                    self.cancel_jobs(tenant, id, &reason).await?;
                }
                // However it is started (API transition, UI, `start`), its plan becomes jobs.
                CycleState::Running => {
                    self.ensure_jobs(tenant, id).await?;
                    self.notify_work(tenant);
                }
                _ => {}
            }
            return self.view_of(actor, tenant, &saved, &c).await;
        }
        Err(changed_meanwhile(&id.to_string()))
    }
}
