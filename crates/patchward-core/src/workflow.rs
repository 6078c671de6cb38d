//! The change workflow (PRODUCT.md C5): cycles and their states, approvals with separation of
//! duties, exceptions with expiry, deferrals. Pure rules over values; the application layer
//! reads and writes them, the web UI and the API only show what these functions decide.
//!
//! # Rules
//! - A cycle goes draft → planned → approved → running → completed, or to cancelled from any
//!   state before completed. Re-planning an approved cycle is allowed and may withdraw approvals.
//! - A ring (or the whole plan) is approved when at least `approvals_required` distinct people
//!   who count have approved it, and (separation of duties) not only the person who prepared the
//!   cycle: the preparer's approval is refused until someone else has approved that ring.
//! - An approval is bound to the ring's plan as it was approved (a fingerprint of its servers,
//!   updates and slots). When re-planning or a scope edit changes it, the approval is withdrawn
//!   with the change named.
//! - An exception is active from its grant to the end of its expiry date (UTC); its expiry is
//!   after today and at most `exception_max_days` away. An active exception takes its findings
//!   out of the open counts; an expired or revoked one gives them back.
//! - A deferral whose finding is due before the target cycle starts says so (`past_due`).

use crate::priority::Decision;
use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleKind {
    Monthly,
    Emergency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleState {
    Draft,
    Planned,
    Approved,
    Running,
    Completed,
    Cancelled,
}

impl CycleState {
    pub const ALL: [CycleState; 6] = [
        CycleState::Draft,
        CycleState::Planned,
        CycleState::Approved,
        CycleState::Running,
        CycleState::Completed,
        CycleState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CycleState::Draft => "draft",
            CycleState::Planned => "planned",
            CycleState::Approved => "approved",
            CycleState::Running => "running",
            CycleState::Completed => "completed",
            CycleState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<CycleState> {
        CycleState::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether the cycle is still being worked on (shown as current).
    pub fn is_open(self) -> bool {
        !matches!(self, CycleState::Completed | CycleState::Cancelled)
    }

    /// Whether its scope and plan may still change.
    pub fn is_editable(self) -> bool {
        matches!(
            self,
            CycleState::Draft | CycleState::Planned | CycleState::Approved
        )
    }

    /// The transitions a user asks for by name (planning and approving move the state too).
    pub fn can_become(self, to: CycleState) -> bool {
        use CycleState::*;
        match (self, to) {
            (Draft, Planned) | (Planned, Planned) | (Approved, Planned) => true,
            (Planned, Approved) => true,
            (Approved, Running) => true,
            (Running, Completed) => true,
            (from, Cancelled) => from.is_open(),
            _ => false,
        }
    }
}

impl fmt::Display for CycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Patch Tuesday: the second Tuesday of the month.
pub fn patch_tuesday(year: i16, month: i8) -> Option<Date> {
    let first = Date::new(year, month, 1).ok()?;
    first.nth_weekday_of_month(2, Weekday::Tuesday).ok()
}

/// The monthly cycle a date belongs to: the month's Patch Tuesday once it has come, the
/// previous month's before it. Returns the name and its Patch Tuesday.
pub fn monthly_cycle_for(today: Date) -> Option<(String, Date)> {
    let this = patch_tuesday(today.year(), today.month())?;
    let pt = if today >= this {
        this
    } else {
        let prev = today.first_of_month().yesterday().ok()?;
        patch_tuesday(prev.year(), prev.month())?
    };
    Some((monthly_cycle_name(pt), pt))
}

/// The next monthly cycle after `pt` (a deferral's default target).
pub fn next_monthly_cycle(pt: Date) -> Option<(String, Date)> {
    let next = pt
        .first_of_month()
        .checked_add(jiff::Span::new().months(1))
        .ok()?;
    let d = patch_tuesday(next.year(), next.month())?;
    Some((monthly_cycle_name(d), d))
}

/// "2026-12 Patch Tuesday".
pub fn monthly_cycle_name(pt: Date) -> String {
    format!("{:04}-{:02} Patch Tuesday", pt.year(), pt.month())
}

/// "CVE-2024-38063 emergency".
pub fn emergency_cycle_name(cve: &str) -> String {
    format!("{cve} emergency")
}

/// One server in a cycle's scope, with the updates (KB numbers) it is to receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeItem {
    pub server: String,
    pub updates: Vec<String>,
    /// The open CVEs these updates close on the server (what made it in scope).
    #[serde(default)]
    pub cves: Vec<String>,
}

/// What proposed a scope from open findings (kept with the cycle, shown in the UI).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeFilter {
    /// Only findings at this decision or above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev: Option<bool>,
    /// A release, e.g. "2022" or "Windows Server 2022".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Emergency cycles: only this CVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub id: u32,
    /// `None`: every ring of the plan.
    pub ring: Option<String>,
    pub by: String,
    pub ticket: String,
    pub comment: String,
    pub at: Timestamp,
    /// The ring's plan as approved ([`ring_fingerprints`]).
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<Withdrawal>,
}

/// Who paused a cycle, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub by: String,
    pub at: Timestamp,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub at: Timestamp,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferral {
    pub server: String,
    /// `None`: the whole server.
    pub update: Option<String>,
    pub reason: String,
    pub to_cycle: String,
    /// When the target cycle starts (its Patch Tuesday, for monthly cycles).
    pub to_start: Date,
    pub by: String,
    pub at: Timestamp,
    /// The earliest due date of the deferred findings.
    pub due: Option<Date>,
}

impl Deferral {
    /// The deferred findings fall due before the target cycle starts.
    pub fn past_due(&self) -> bool {
        self.due.is_some_and(|d| d < self.to_start)
    }

    /// What the deferral does to due dates, in words (never silent about a late one).
    pub fn due_note(&self) -> Option<String> {
        let due = self.due?;
        self.past_due().then(|| {
            format!(
                "due {} ({}), before {} starts on {}: overdue by then",
                due,
                due.weekday_name(),
                self.to_cycle,
                self.to_start
            )
        })
    }
}

trait WeekdayName {
    fn weekday_name(&self) -> &'static str;
}

impl WeekdayName for Date {
    fn weekday_name(&self) -> &'static str {
        match self.weekday() {
            Weekday::Monday => "Monday",
            Weekday::Tuesday => "Tuesday",
            Weekday::Wednesday => "Wednesday",
            Weekday::Thursday => "Thursday",
            Weekday::Friday => "Friday",
            Weekday::Saturday => "Saturday",
            Weekday::Sunday => "Sunday",
        }
    }
}

/// A state change, kept with the cycle (and in the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Option<CycleState>,
    pub to: CycleState,
    pub at: Timestamp,
    pub by: String,
    pub why: String,
}

/// Open findings when the cycle was planned (the dashboard's "since the last cycle").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub at: Timestamp,
    pub open: u64,
    pub act: u64,
    pub attend: u64,
    pub kev: u64,
    pub overdue: u64,
}

/// A patching campaign. Its plan is stored beside it under its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    pub kind: CycleKind,
    pub name: String,
    pub state: CycleState,
    /// Who prepared it (created it, edited its scope, planned it): separation of duties.
    pub prepared_by: Vec<String>,
    pub created_at: Timestamp,
    /// When the plan may start.
    pub start: Timestamp,
    /// Every server in scope is due by the end of this day (emergency cycles: the shortened SLA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Date>,
    pub filter: ScopeFilter,
    pub scope: Vec<ScopeItem>,
    /// Per ring ("" for servers without one): the planned servers, updates and slots.
    #[serde(default)]
    pub fingerprints: BTreeMap<String, String>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub deferrals: Vec<Deferral>,
    #[serde(default)]
    pub history: Vec<Transition>,
    /// A paused running cycle starts no new job (running ones finish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Pause>,
    /// Halted rings someone decided to go on with: per ring key, the failures accepted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accepted_failures: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    /// Servers placed and not placed by the last plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplaced: Option<u32>,
}

/// Per tenant: who approves and how exceptions are capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkflowRules {
    /// Distinct approvers a ring needs.
    pub approvals_required: u8,
    /// Whoever prepared a cycle cannot be its only approver.
    pub separation_of_duties: bool,
    /// Admins count as approvers (approvers always do).
    pub admins_approve: bool,
    /// The furthest an exception's expiry may be, in days from its grant.
    pub exception_max_days: u32,
    /// The shortened SLA of an emergency cycle: every server in scope is due this many days
    /// after the cycle is created.
    pub emergency_sla_days: u32,
    /// Failures a ring tolerates, in percent of its servers (rounded down), before it halts
    /// and later rings wait for a decision.
    pub failure_budget_percent: u32,
}

impl Default for WorkflowRules {
    fn default() -> Self {
        WorkflowRules {
            approvals_required: 1,
            separation_of_duties: true,
            admins_approve: true,
            exception_max_days: 180,
            emergency_sla_days: 3,
            failure_budget_percent: crate::execution::FAILURE_BUDGET_PERCENT,
        }
    }
}

impl WorkflowRules {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(1..=5).contains(&self.approvals_required) {
            return Err(("approvals_required", "approvals_required is 1 to 5".into()));
        }
        if !(1..=730).contains(&self.exception_max_days) {
            return Err((
                "exception_max_days",
                "exception_max_days is 1 to 730".into(),
            ));
        }
        if !(1..=60).contains(&self.emergency_sla_days) {
            return Err(("emergency_sla_days", "emergency_sla_days is 1 to 60".into()));
        }
        if self.failure_budget_percent > 100 {
            return Err((
                "failure_budget_percent",
                "failure_budget_percent is 0 to 100".into(),
            ));
        }
        Ok(())
    }
}

/// The key of a ring in fingerprints and approvals ("" for servers without a ring).
pub fn ring_key(ring: Option<&str>) -> String {
    ring.map(|r| r.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// What a ring's plan is: its servers with their updates and slots, as a comparable text per
/// ring. `slots` is (server, ring, wave, start, end); unplaced servers count as "unplaced".
pub fn ring_fingerprints<'a>(
    scope: &[ScopeItem],
    slots: impl Iterator<
        Item = (
            &'a str,
            Option<&'a str>,
            Option<(u32, Timestamp, Timestamp)>,
        ),
    >,
) -> BTreeMap<String, String> {
    let updates: BTreeMap<String, String> = scope
        .iter()
        .map(|s| {
            let mut u = s.updates.clone();
            u.sort();
            (s.server.to_ascii_lowercase(), u.join(","))
        })
        .collect();
    let mut rows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (server, ring, slot) in slots {
        let u = updates
            .get(&server.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        let at = match slot {
            Some((w, s, e)) => format!("w{w} {s}–{e}"),
            None => "unplaced".into(),
        };
        rows.entry(ring_key(ring))
            .or_default()
            .insert(format!("{} [{u}] {at}", server.to_ascii_lowercase()));
    }
    rows.into_iter()
        .map(|(k, v)| (k, v.into_iter().collect::<Vec<_>>().join("\n")))
        .collect()
}

/// Why a ring's plan changed between two fingerprints, in words ("+SQL02, −WEB01, 1 slot moved").
pub fn describe_change(old: &str, new: Option<&str>) -> String {
    let Some(new) = new else {
        return "the ring is no longer in the plan".into();
    };
    let parse = |t: &str| -> BTreeMap<String, String> {
        t.lines()
            .filter_map(|l| {
                let (s, rest) = l.split_once(' ')?;
                Some((s.to_string(), rest.to_string()))
            })
            .collect()
    };
    let (a, b) = (parse(old), parse(new));
    let added: Vec<&str> = b
        .keys()
        .filter(|k| !a.contains_key(*k))
        .map(|k| k.as_str())
        .collect();
    let removed: Vec<&str> = a
        .keys()
        .filter(|k| !b.contains_key(*k))
        .map(|k| k.as_str())
        .collect();
    let mut changed_updates = 0;
    let mut moved = 0;
    for (k, va) in &a {
        if let Some(vb) = b.get(k)
            && va != vb
        {
            let (ua, sa) = va.split_once("] ").unwrap_or((va, ""));
            let (ub, sb) = vb.split_once("] ").unwrap_or((vb, ""));
            changed_updates += usize::from(ua != ub);
            moved += usize::from(sa != sb);
        }
    }
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", list(&added)));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", list(&removed)));
    }
    if changed_updates > 0 {
        parts.push(format!("updates changed on {changed_updates} server(s)"));
    }
    if moved > 0 {
        parts.push(format!("{moved} slot(s) moved"));
    }
    if parts.is_empty() {
        "the plan changed".into()
    } else {
        parts.join("; ")
    }
}

fn list(names: &[&str]) -> String {
    let shown: Vec<&str> = names.iter().take(5).copied().collect();
    if names.len() > 5 {
        format!("{} and {} more", shown.join(", "), names.len() - 5)
    } else {
        shown.join(", ")
    }
}

/// Why an approval is refused, by kind (the API answers each with its own status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The cycle is not waiting for approvals.
    State,
    /// The person's role does not count as an approver.
    Role,
    /// No such ring in the plan.
    Ring,
    SeparationOfDuties,
    AlreadyApproved,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub why: String,
}

fn refuse(kind: RefusalKind, why: impl Into<String>) -> Option<Refusal> {
    Some(Refusal {
        kind,
        why: why.into(),
    })
}

/// Whether a ring's approval is still needed, and by whom, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingApproval {
    /// "" for servers without a ring.
    pub ring: String,
    pub approved: bool,
    pub approvers: Vec<String>,
    /// What is missing, when not approved.
    pub missing: Option<String>,
}

impl Cycle {
    fn is_preparer(&self, who: &str) -> bool {
        self.prepared_by.iter().any(|p| p.eq_ignore_ascii_case(who))
    }

    /// The rings of the plan (keys of its fingerprints).
    pub fn rings(&self) -> Vec<String> {
        self.fingerprints.keys().cloned().collect()
    }

    /// Approvals in force for a ring.
    fn approvals_of<'a>(&'a self, ring: &'a str) -> impl Iterator<Item = &'a Approval> + 'a {
        self.approvals.iter().filter(move |a| {
            a.withdrawn.is_none() && a.ring.as_deref().is_none_or(|r| ring_key(Some(r)) == ring)
        })
    }

    /// Each ring of the plan: approved or what it still needs.
    pub fn ring_approvals(&self, rules: &WorkflowRules) -> Vec<RingApproval> {
        self.rings()
            .into_iter()
            .map(|ring| {
                let mut approvers: Vec<String> = Vec::new();
                for a in self.approvals_of(&ring) {
                    if !approvers.iter().any(|x| x.eq_ignore_ascii_case(&a.by)) {
                        approvers.push(a.by.clone());
                    }
                }
                let enough = approvers.len() >= usize::from(rules.approvals_required);
                let independent =
                    !rules.separation_of_duties || approvers.iter().any(|a| !self.is_preparer(a));
                let missing = if !enough {
                    Some(format!(
                        "has {} of {} approval(s)",
                        approvers.len(),
                        rules.approvals_required
                    ))
                } else if !independent {
                    Some("an approver who did not prepare the cycle".into())
                } else {
                    None
                };
                RingApproval {
                    ring,
                    approved: missing.is_none(),
                    approvers,
                    missing,
                }
            })
            .collect()
    }

    /// Every ring of the plan is approved (and there is a plan).
    pub fn fully_approved(&self, rules: &WorkflowRules) -> bool {
        !self.fingerprints.is_empty() && self.ring_approvals(rules).iter().all(|r| r.approved)
    }

    /// Why `who` cannot approve `ring` (`None`: every ring) now, if they cannot. Role checks
    /// are the caller's; `counts` says whether the person's role counts as an approver.
    pub fn refuse_approval(
        &self,
        who: &str,
        counts: bool,
        ring: Option<&str>,
        rules: &WorkflowRules,
    ) -> Option<Refusal> {
        if !matches!(self.state, CycleState::Planned | CycleState::Approved) {
            return refuse(
                RefusalKind::State,
                match self.state {
                    CycleState::Draft => "the cycle has no plan yet: plan it first".into(),
                    s => format!("the cycle is {s}: approvals are closed"),
                },
            );
        }
        if !counts {
            return refuse(
                RefusalKind::Role,
                "your role does not count as an approver for this tenant",
            );
        }
        let rings: Vec<String> = match ring {
            Some(r) => {
                let k = ring_key(Some(r));
                if !self.fingerprints.contains_key(&k) {
                    return refuse(
                        RefusalKind::Ring,
                        format!(
                            "ring {r:?} is not in the plan (rings: {})",
                            self.rings()
                                .iter()
                                .map(|r| if r.is_empty() { "(none)" } else { r.as_str() })
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
                vec![k]
            }
            None => self.rings(),
        };
        let mut pending = false;
        for r in &rings {
            let mut by_others = false;
            let mut by_me = false;
            for a in self.approvals_of(r) {
                if a.by.eq_ignore_ascii_case(who) {
                    by_me = true;
                } else if !self.is_preparer(&a.by) {
                    by_others = true;
                }
            }
            if rules.separation_of_duties && self.is_preparer(who) && !by_others {
                return refuse(
                    RefusalKind::SeparationOfDuties,
                    format!(
                        "you prepared this cycle, so you cannot be its only approver: another approver must approve {} first (separation of duties)",
                        if r.is_empty() {
                            "it".to_string()
                        } else {
                            format!("ring {r}")
                        }
                    ),
                );
            }
            pending |= !by_me;
        }
        if pending {
            None
        } else {
            refuse(
                RefusalKind::AlreadyApproved,
                "you have already approved this",
            )
        }
    }

    /// Re-planned: new fingerprints. Approvals whose ring changed are withdrawn with the
    /// change named; returns the withdrawn approvals' descriptions.
    pub fn replace_fingerprints(
        &mut self,
        new: BTreeMap<String, String>,
        now: Timestamp,
        rules: &WorkflowRules,
    ) -> Vec<String> {
        let mut withdrawn = Vec::new();
        for a in self.approvals.iter_mut().filter(|a| a.withdrawn.is_none()) {
            let changed: Vec<(String, String)> = match &a.ring {
                Some(r) => {
                    let k = ring_key(Some(r));
                    let old_fp = self.fingerprints.get(&k).cloned().unwrap_or_default();
                    let new_fp = new.get(&k);
                    if new_fp != Some(&old_fp) || a.fingerprint != old_fp {
                        vec![(
                            k,
                            describe_change(&a.fingerprint, new_fp.map(|s| s.as_str())),
                        )]
                    } else {
                        vec![]
                    }
                }
                None => {
                    let whole_old = a.fingerprint.clone();
                    let whole_new = whole_fingerprint(&new);
                    if whole_old != whole_new {
                        vec![(
                            String::new(),
                            describe_change(&flat(&whole_old), Some(&flat(&whole_new))),
                        )]
                    } else {
                        vec![]
                    }
                }
            };
            if let Some((ring, why)) = changed.into_iter().next() {
                let why = if ring.is_empty() {
                    format!("the plan changed after approval: {why}")
                } else {
                    format!("ring {ring} changed after approval: {why}")
                };
                withdrawn.push(format!("{} ({}): {why}", a.by, a.ticket));
                a.withdrawn = Some(Withdrawal { at: now, why });
            }
        }
        self.fingerprints = new;
        if self.state == CycleState::Approved && !self.fully_approved(rules) {
            self.state = CycleState::Planned;
        }
        withdrawn
    }

    /// The fingerprint an approval binds to.
    pub fn fingerprint_of(&self, ring: Option<&str>) -> String {
        match ring {
            Some(r) => self
                .fingerprints
                .get(&ring_key(Some(r)))
                .cloned()
                .unwrap_or_default(),
            None => whole_fingerprint(&self.fingerprints),
        }
    }

    /// Earliest deferral due notes, for display.
    pub fn past_due_deferrals(&self) -> usize {
        self.deferrals.iter().filter(|d| d.past_due()).count()
    }
}

/// All rings in one text (ring-prefixed lines) for whole-plan approvals.
fn whole_fingerprint(fps: &BTreeMap<String, String>) -> String {
    fps.iter()
        .map(|(k, v)| format!("@{k}\n{v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A whole-plan fingerprint's server lines (ring headers dropped), for describing a change.
fn flat(fp: &str) -> String {
    fp.lines()
        .filter(|l| !l.starts_with('@'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What an exception is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum ExceptionSubject {
    Cve(String),
    /// A KB: every open CVE that this update fixes on the server.
    Update(String),
}

impl ExceptionSubject {
    pub fn id(&self) -> &str {
        match self {
            ExceptionSubject::Cve(c) | ExceptionSubject::Update(c) => c,
        }
    }
}

/// A documented decision not to fix a finding on a server, until an expiry date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exception {
    pub server: String,
    pub subject: ExceptionSubject,
    pub reason: String,
    pub compensating_control: String,
    pub risk_owner: String,
    /// Who granted it (an approver).
    pub approver: String,
    pub granted_at: Timestamp,
    /// Active through the end of this day (UTC).
    pub expires: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Withdrawal>,
}

/// Where an exception stands on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionStatus {
    Active,
    /// Active, and expires within 14 days.
    Expiring,
    Expired,
    Revoked,
}

impl Exception {
    pub fn status(&self, today: Date) -> ExceptionStatus {
        if self.revoked.is_some() {
            ExceptionStatus::Revoked
        } else if today > self.expires {
            ExceptionStatus::Expired
        } else if (self.expires - today).get_days() <= 14 {
            ExceptionStatus::Expiring
        } else {
            ExceptionStatus::Active
        }
    }

    pub fn is_active(&self, today: Date) -> bool {
        matches!(
            self.status(today),
            ExceptionStatus::Active | ExceptionStatus::Expiring
        )
    }

    /// Whether it covers an open CVE of its server (by CVE, or by a KB that fixes it there).
    pub fn covers_facts(&self, f: &crate::exposure::CveFacts) -> bool {
        match &self.subject {
            ExceptionSubject::Cve(c) => c.eq_ignore_ascii_case(&f.cve),
            ExceptionSubject::Update(kb) => f
                .fixed_by
                .iter()
                .chain(std::iter::once(&f.install))
                .any(|k| k.to_string().eq_ignore_ascii_case(kb)),
        }
    }

    /// Whether it covers an open CVE on its server, given the KBs that fix that CVE there.
    pub fn covers(&self, cve: &str, fixed_by: &[String]) -> bool {
        match &self.subject {
            ExceptionSubject::Cve(c) => c.eq_ignore_ascii_case(cve),
            ExceptionSubject::Update(kb) => fixed_by.iter().any(|k| k.eq_ignore_ascii_case(kb)),
        }
    }
}

/// Why an expiry is refused (`None`: acceptable): after today, at most `max_days` away.
pub fn refuse_expiry(today: Date, expires: Date, max_days: u32) -> Option<String> {
    if expires <= today {
        return Some(format!("the expiry {expires} is not after today ({today})"));
    }
    let days = (expires - today).get_days();
    (days > max_days as i32).then(|| {
        format!(
            "the expiry {expires} is {days} days away; the policy allows at most {max_days} days ({})",
            today
                .checked_add(jiff::Span::new().days(i64::from(max_days)))
                .map(|d| d.to_string())
                .unwrap_or_default()
        )
    })
}

#[cfg(test)]
mod tests;
