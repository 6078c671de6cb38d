//! The scheduling engine behind [`super::plan`]: preparation (indexes, calendars, cycles),
//! list scheduling, and assembly of the [`Plan`]. Times are whole seconds since the Unix epoch.

use super::explain;
use super::input::{JobOutcome, PlanInput};
use super::{InProgress, Late, Placement, Plan, Unplaced, UnplacedRule, Wave};
use crate::calendar::{WindowCalendar, format_duration, format_instant};
use crate::inventory::{BlackoutScope, DependencyTarget};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::ops::Bound::{Excluded, Unbounded};

pub(super) fn secs_floor(t: Timestamp) -> i64 {
    let s = t.as_second();
    if t.subsec_nanosecond() < 0 { s - 1 } else { s }
}

pub(super) fn secs_ceil(t: Timestamp) -> i64 {
    let s = t.as_second();
    if t.subsec_nanosecond() > 0 { s + 1 } else { s }
}

pub(super) fn to_ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap_or(if s < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Sorted, merged intervals, each labelled with the first source that contributed to it.
#[derive(Debug, Default, Clone)]
pub(super) struct Spans {
    starts: Vec<i64>,
    ends: Vec<i64>,
    labels: Vec<u32>,
}

impl Spans {
    pub(super) fn build(mut v: Vec<(i64, i64, u32)>) -> Spans {
        v.retain(|x| x.0 < x.1);
        v.sort_unstable();
        let mut s = Spans::default();
        for (a, b, l) in v {
            if let Some(last) = s.ends.last_mut()
                && a <= *last
            {
                if b > *last {
                    *last = b;
                }
                continue;
            }
            s.starts.push(a);
            s.ends.push(b);
            s.labels.push(l);
        }
        s
    }

    /// First member overlapping `[a, b)`: its end and label.
    fn first_overlap(&self, a: i64, b: i64) -> Option<(i64, u32)> {
        let i = self.ends.partition_point(|e| *e <= a);
        match (self.starts.get(i), self.ends.get(i), self.labels.get(i)) {
            (Some(&s), Some(&e), Some(&l)) if s < b => Some((e, l)),
            _ => None,
        }
    }

    /// `Ok` when `[a, b)` lies inside one member; else the next instant worth trying (a
    /// member's start after `a`), or `None` when there is none.
    fn covering(&self, a: i64, b: i64) -> Result<(), Option<i64>> {
        let i = self.ends.partition_point(|e| *e <= a);
        match (self.starts.get(i), self.ends.get(i)) {
            (Some(&s), Some(&e)) if s <= a && b <= e => Ok(()),
            (Some(&s), Some(_)) if s > a => Err(Some(s)),
            (Some(_), Some(_)) => Err(self.starts.get(i + 1).copied()),
            _ => Err(None),
        }
    }
}

/// How many are in flight over time: `value` holds from `key` to the next key.
#[derive(Debug, Default, Clone)]
struct Profile {
    steps: BTreeMap<i64, u32>,
}

impl Profile {
    fn count_at(&self, t: i64) -> u32 {
        self.steps.range(..=t).next_back().map_or(0, |(_, c)| *c)
    }

    fn next_key_after(&self, t: i64) -> i64 {
        self.steps
            .range((Excluded(t), Unbounded))
            .next()
            .map_or(i64::MAX, |(k, _)| *k)
    }

    /// The first step inside `[a, b)` whose count is at `limit` or more: `(from, to)`.
    fn first_block(&self, a: i64, b: i64, limit: u32) -> Option<(i64, i64)> {
        if let Some((&k, &c)) = self.steps.range(..=a).next_back()
            && c >= limit
        {
            return Some((k.max(a), self.next_key_after(a)));
        }
        if limit == 0 {
            return Some((a, i64::MAX));
        }
        for (&k, &c) in self.steps.range((Excluded(a), Excluded(b))) {
            if c >= limit {
                return Some((k, self.next_key_after(k)));
            }
        }
        None
    }

    fn add(&mut self, a: i64, b: i64) {
        if a >= b {
            return;
        }
        let ca = self.count_at(a);
        let cb = self.count_at(b);
        self.steps.entry(a).or_insert(ca);
        self.steps.entry(b).or_insert(cb);
        for (_, c) in self.steps.range_mut(a..b) {
            *c += 1;
        }
    }
}

/// Why a candidate start had to move (or an occurrence was skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Push {
    Blackout(u32),
    Backup(u32),
    Coverage,
    Service {
        svc: u32,
        from: i64,
        to: i64,
    },
    Site(u32),
    Global,
    /// The occurrence is too short once the earliest start is taken into account.
    TooShort,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Skip {
    pub window: u32,
    pub occ_start: i64,
    pub why: Push,
}

/// What decided a server's earliest start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    PlanStart,
    /// Ring barrier: (earlier ring, its finish, its soak in seconds).
    Ring {
        ring: u32,
        finish: i64,
        soak: i64,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Facts {
    pub gate: Gate,
    pub earliest: i64,
    /// Same-ring dependencies (placed, running or finished).
    pub deps: Vec<u32>,
    /// Running neighbours in the dependency graph (any ring).
    pub running_neighbours: Vec<u32>,
    pub pushes: Vec<Push>,
    pub skipped: Vec<Skip>,
    pub skipped_more: usize,
}

#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub server: u32,
    pub window: u32,
    pub start: i64,
    pub end: i64,
    pub facts: Facts,
}

#[derive(Debug, Clone)]
pub(super) enum St {
    OutOfScope,
    Pending,
    Finished(i64),
    Failed,
    Running(i64, i64),
    Placed(u32),
    Unplaced(UnplacedRule, Vec<String>),
}

pub(super) struct WindowInfo {
    pub name: String,
    pub tz: Option<TimeZone>,
    pub emergency: bool,
    pub error: Option<String>,
    pub occ: Vec<(i64, i64)>,
    pub max_len: i64,
}

pub(super) struct RingInfo {
    pub name: Option<String>,
    pub soak: i64,
}

/// Everything prepared for scheduling.
pub(super) struct Ctx<'i, 'a> {
    pub input: &'i PlanInput<'a>,
    pub names: Vec<&'a str>,
    pub start: i64,
    pub hz_end: i64,
    pub in_scope: Vec<bool>,
    pub due: Vec<Option<Timestamp>>,
    pub due_source: Vec<Option<&'i str>>,
    pub dur: Vec<i64>,
    pub site_of: Vec<Option<u32>>,
    pub site_names: Vec<String>,
    pub svc_members: Vec<Vec<u32>>,
    pub svc_allowed: Vec<u32>,
    pub svc_failed: Vec<Vec<u32>>,
    pub server_svcs: Vec<Vec<u32>>,
    pub deps_of: Vec<Vec<u32>>,
    pub dependents_of: Vec<Vec<u32>>,
    pub rings: Vec<RingInfo>,
    pub ring_of: Vec<u32>,
    pub windows: Vec<WindowInfo>,
    pub server_windows: Vec<Vec<u32>>,
    pub global_blackouts: Spans,
    pub site_blackouts: HashMap<u32, Spans>,
    pub svc_blackouts: HashMap<u32, Spans>,
    pub server_blackouts: HashMap<u32, Spans>,
    pub policy_of: Vec<Option<u32>>,
    pub policy_spans: Vec<Result<Spans, String>>,
    pub coverage: Option<Spans>,
    pub cap_global: Option<u32>,
    /// In-flight limit per site (its override, else the default per site).
    pub cap_site: Vec<Option<u32>>,
    svc_profile: Vec<Option<Profile>>,
    site_profile: Vec<Profile>,
    global_profile: Profile,
    /// Slots per service (placed and running) for naming who is in flight.
    pub svc_slots: Vec<Vec<(i64, i64, u32)>>,
    pub state: Vec<St>,
    pub slots: Vec<Slot>,
    pub ring_finish: Vec<Option<i64>>,
    pub cycles: Vec<Vec<String>>,
    pub warnings: Vec<String>,
    pub unknown_scope: Vec<String>,
}

const MAX_PUSHES: usize = 32;

pub(super) fn run(input: &PlanInput<'_>) -> Plan {
    let mut ctx = Ctx::prepare(input);
    ctx.schedule();
    ctx.assemble()
}

fn lower(s: &str) -> String {
    s.trim().to_lowercase()
}

impl<'i, 'a> Ctx<'i, 'a> {
    fn prepare(input: &'i PlanInput<'a>) -> Ctx<'i, 'a> {
        let est = input.estate;
        let n = est.servers.len();
        let mut warnings = Vec::new();
        let start = secs_ceil(input.start);
        let hz_end = secs_floor(input.horizon_end()).max(start);

        let names: Vec<&str> = est.servers.iter().map(|s| s.name.as_str()).collect();
        let mut by_name: HashMap<String, u32> = HashMap::with_capacity(n);
        for (i, s) in est.servers.iter().enumerate() {
            if by_name.insert(lower(&s.name), i as u32).is_some() {
                warnings.push(format!(
                    "server {:?} is listed twice; the last entry is used",
                    s.name
                ));
            }
        }
        let find = |name: &str| by_name.get(&lower(name)).copied();

        // Scope.
        let mut in_scope = vec![false; n];
        let mut unknown_scope = Vec::new();
        for name in &input.scope {
            match find(name) {
                Some(i) => in_scope[i as usize] = true,
                None => unknown_scope.push(name.clone()),
            }
        }
        unknown_scope.sort_by_key(|s| lower(s));
        unknown_scope.dedup_by(|a, b| a.eq_ignore_ascii_case(b));

        let mut due = vec![None; n];
        let mut due_source: Vec<Option<&'i str>> = vec![None; n];
        for (name, t) in &input.due {
            if let Some(i) = find(name) {
                due[i as usize] = Some(*t);
                due_source[i as usize] = input.due_sources.get(name).map(|x| x.as_str());
            }
        }
        let dur: Vec<i64> = est
            .servers
            .iter()
            .map(|s| input.duration_of(s).as_secs().max(60))
            .collect();

        // Sites.
        let mut site_ids: HashMap<String, u32> = HashMap::new();
        let mut site_names = Vec::new();
        let site_of: Vec<Option<u32>> = est
            .servers
            .iter()
            .map(|s| {
                s.site.as_deref().filter(|x| !x.trim().is_empty()).map(|x| {
                    let l = lower(x);
                    *site_ids.entry(l).or_insert_with(|| {
                        site_names.push(x.to_string());
                        (site_names.len() - 1) as u32
                    })
                })
            })
            .collect();

        // Services.
        let mut svc_ids: HashMap<String, u32> = HashMap::new();
        let mut svc_members = Vec::with_capacity(est.services.len());
        let mut svc_allowed = Vec::with_capacity(est.services.len());
        let mut server_svcs: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (k, svc) in est.services.iter().enumerate() {
            svc_ids.entry(lower(&svc.name)).or_insert(k as u32);
            let mut m: Vec<u32> = Vec::new();
            for name in &svc.members {
                match find(name) {
                    Some(i) => m.push(i),
                    None => warnings.push(format!(
                        "service {:?} lists unknown server {:?}",
                        svc.name, name
                    )),
                }
            }
            m.sort_unstable();
            m.dedup();
            for &i in &m {
                server_svcs[i as usize].push(k as u32);
            }
            svc_allowed.push(svc.budget.allowed(m.len()).min(u32::MAX as usize) as u32);
            svc_members.push(m);
        }

        // Dependencies: expand service ends to members.
        let expand = |t: &DependencyTarget, warnings: &mut Vec<String>| -> Vec<u32> {
            match t {
                DependencyTarget::Server(s) => match find(s) {
                    Some(i) => vec![i],
                    None => {
                        warnings.push(format!("dependency names unknown server {s:?}"));
                        Vec::new()
                    }
                },
                DependencyTarget::Service(s) => match svc_ids.get(&lower(s)) {
                    Some(&k) => svc_members.get(k as usize).cloned().unwrap_or_default(),
                    None => {
                        warnings.push(format!("dependency names unknown service {s:?}"));
                        Vec::new()
                    }
                },
            }
        };
        let mut edges: Vec<(u32, u32)> = Vec::with_capacity(est.dependencies.len());
        // "A depends on A" (directly, or through a service A belongs to) cannot be ordered:
        // an inventory error, reported as a cycle of one rather than dropped.
        let mut self_deps: BTreeMap<u32, String> = BTreeMap::new();
        for d in &est.dependencies {
            let a = expand(&d.dependent, &mut warnings);
            let b = expand(&d.depends_on, &mut warnings);
            for &x in &a {
                for &y in &b {
                    if x != y {
                        edges.push((x, y));
                    } else {
                        self_deps
                            .entry(x)
                            .or_insert_with(|| dependency_text(&d.dependent, &d.depends_on));
                    }
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        let mut deps_of: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut dependents_of: Vec<Vec<u32>> = vec![Vec::new(); n];
        for &(a, b) in &edges {
            deps_of[a as usize].push(b);
            dependents_of[b as usize].push(a);
        }

        let mut state: Vec<St> = in_scope
            .iter()
            .map(|&s| if s { St::Pending } else { St::OutOfScope })
            .collect();

        // Outcomes so far.
        let mut svc_failed: Vec<Vec<u32>> = vec![Vec::new(); est.services.len()];
        for (name, o) in &input.outcomes {
            let Some(i) = find(name) else {
                warnings.push(format!("job outcome for unknown server {name:?} ignored"));
                continue;
            };
            let iu = i as usize;
            if !in_scope[iu] {
                warnings.push(format!(
                    "job outcome for {:?}, which is not in scope, ignored",
                    names[iu]
                ));
                continue;
            }
            state[iu] = match o {
                JobOutcome::Finished { at } => St::Finished(secs_ceil(*at)),
                JobOutcome::Failed { .. } => {
                    for &k in &server_svcs[iu] {
                        svc_failed[k as usize].push(i);
                    }
                    St::Failed
                }
                JobOutcome::Running { .. } => {
                    let d = SignedDuration::from_secs(dur[iu]);
                    match o.occupied(input.start, d) {
                        Some((a, b)) => St::Running(secs_floor(a), secs_ceil(b)),
                        None => St::Pending,
                    }
                }
            };
        }

        // Rings, lowest order first; servers without a ring go last.
        let mut ring_list: Vec<&crate::inventory::Ring> = est.rings.iter().collect();
        ring_list.sort_by(|a, b| {
            a.order
                .cmp(&b.order)
                .then_with(|| lower(&a.name).cmp(&lower(&b.name)))
        });
        let mut rings: Vec<RingInfo> = ring_list
            .iter()
            .map(|r| {
                let soak = if input.emergency {
                    r.emergency_soak.unwrap_or(r.soak)
                } else {
                    r.soak
                };
                RingInfo {
                    name: Some(r.name.clone()),
                    soak: soak.as_secs().max(0),
                }
            })
            .collect();
        rings.push(RingInfo {
            name: None,
            soak: 0,
        });
        let implicit = (rings.len() - 1) as u32;
        let mut ring_ids: HashMap<String, u32> = HashMap::new();
        for (k, r) in ring_list.iter().enumerate() {
            ring_ids.entry(lower(&r.name)).or_insert(k as u32);
        }
        let mut ring_of = vec![implicit; n];
        for (i, s) in est.servers.iter().enumerate() {
            if let Some(r) = s.ring.as_deref().filter(|r| !r.trim().is_empty()) {
                match ring_ids.get(&lower(r)) {
                    Some(&k) => ring_of[i] = k,
                    None => {
                        if matches!(state[i], St::Pending) {
                            state[i] = St::Unplaced(
                                UnplacedRule::UnknownRing,
                                vec![format!("names ring {r:?}, which is not defined")],
                            );
                        }
                    }
                }
            }
        }

        // Window occurrences, once per window.
        let from_ts = to_ts(start);
        let to_ts_ = to_ts(hz_end);
        let windows: Vec<WindowInfo> = est
            .windows
            .iter()
            .map(|w| match WindowCalendar::new(w) {
                Ok(c) => {
                    let occ: Vec<(i64, i64)> = c
                        .occurrences(from_ts, to_ts_)
                        .into_iter()
                        .map(|iv| (secs_floor(iv.start), secs_floor(iv.end)))
                        .collect();
                    WindowInfo {
                        name: w.name.clone(),
                        tz: Some(c.time_zone().clone()),
                        emergency: w.emergency,
                        error: None,
                        max_len: c.duration().as_secs(),
                        occ,
                    }
                }
                Err(e) => WindowInfo {
                    name: w.name.clone(),
                    tz: None,
                    emergency: w.emergency,
                    error: Some(e.to_string()),
                    occ: Vec::new(),
                    max_len: 0,
                },
            })
            .collect();
        let mut win_ids: HashMap<String, u32> = HashMap::new();
        for (k, w) in est.windows.iter().enumerate() {
            win_ids.entry(lower(&w.name)).or_insert(k as u32);
        }
        let mut unknown_window_names: Vec<Vec<String>> = vec![Vec::new(); n];
        let server_windows: Vec<Vec<u32>> = est
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut v: Vec<u32> = Vec::new();
                for w in &s.windows {
                    match win_ids.get(&lower(w)) {
                        Some(&k) => v.push(k),
                        None => unknown_window_names[i].push(w.clone()),
                    }
                }
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();

        // Blackouts by scope.
        let mut global = Vec::new();
        let mut by_site: HashMap<u32, Vec<(i64, i64, u32)>> = HashMap::new();
        let mut by_svc: HashMap<u32, Vec<(i64, i64, u32)>> = HashMap::new();
        let mut by_server: HashMap<u32, Vec<(i64, i64, u32)>> = HashMap::new();
        for (k, b) in est.blackouts.iter().enumerate() {
            let iv = (secs_floor(b.start), secs_ceil(b.end), k as u32);
            match &b.scope {
                BlackoutScope::Global => global.push(iv),
                BlackoutScope::Site(s) => match site_ids.get(&lower(s)) {
                    Some(&id) => by_site.entry(id).or_default().push(iv),
                    None => warnings.push(format!(
                        "blackout {:?} names site {s:?}, which no server is in",
                        b.name
                    )),
                },
                BlackoutScope::Service(s) => match svc_ids.get(&lower(s)) {
                    Some(&id) => by_svc.entry(id).or_default().push(iv),
                    None => {
                        warnings.push(format!("blackout {:?} names unknown service {s:?}", b.name))
                    }
                },
                BlackoutScope::Server(s) => match find(s) {
                    Some(id) => by_server.entry(id).or_default().push(iv),
                    None => {
                        warnings.push(format!("blackout {:?} names unknown server {s:?}", b.name))
                    }
                },
            }
        }
        let to_spans = |m: HashMap<u32, Vec<(i64, i64, u32)>>| -> HashMap<u32, Spans> {
            m.into_iter().map(|(k, v)| (k, Spans::build(v))).collect()
        };

        // Backup policies.
        let mut policy_ids: HashMap<String, u32> = HashMap::new();
        for (k, p) in est.backup_policies.iter().enumerate() {
            policy_ids.entry(lower(&p.name)).or_insert(k as u32);
        }
        let backup_from = to_ts(start.saturating_sub(86_400));
        let policy_spans: Vec<Result<Spans, String>> = est
            .backup_policies
            .iter()
            .enumerate()
            .map(|(k, p)| match &p.job_window {
                None => Ok(Spans::default()),
                Some(w) => WindowCalendar::new(w)
                    .map(|c| {
                        Spans::build(
                            c.occurrences(backup_from, to_ts_)
                                .into_iter()
                                .map(|iv| (secs_floor(iv.start), secs_ceil(iv.end), k as u32))
                                .collect(),
                        )
                    })
                    .map_err(|e| e.to_string()),
            })
            .collect();
        let mut policy_of = vec![None; n];
        for (i, s) in est.servers.iter().enumerate() {
            if let Some(p) = &s.backup_policy {
                match policy_ids.get(&lower(p)) {
                    Some(&k) => policy_of[i] = Some(k),
                    None => {
                        if in_scope[i] {
                            warnings.push(format!(
                                "server {:?} names unknown backup policy {p:?}",
                                s.name
                            ));
                        }
                    }
                }
            }
        }

        // Coverage.
        let coverage = est.coverage.as_ref().map(|c| {
            let mut v = Vec::new();
            for w in &c.windows {
                match WindowCalendar::new(w) {
                    Ok(cal) => v.extend(
                        cal.occurrences(backup_from, to_ts_)
                            .into_iter()
                            .map(|iv| (secs_ceil(iv.start), secs_floor(iv.end), 0)),
                    ),
                    Err(e) => warnings.push(format!("coverage window ignored: {e}")),
                }
            }
            Spans::build(v)
        });

        let cap = input.capacity();
        let cap_site: Vec<Option<u32>> = site_names.iter().map(|x| cap.site_limit(x)).collect();
        for name in cap.sites.keys() {
            if !site_ids.contains_key(&lower(name)) {
                warnings.push(format!(
                    "capacity names site {name:?}, which no server is in"
                ));
            }
        }
        let mut ctx = Ctx {
            input,
            names,
            start,
            hz_end,
            in_scope,
            due,
            due_source,
            dur,
            site_of,
            site_profile: vec![Profile::default(); site_names.len()],
            site_names,
            svc_profile: Vec::new(),
            svc_slots: vec![Vec::new(); svc_members.len()],
            svc_members,
            svc_allowed,
            svc_failed,
            server_svcs,
            deps_of,
            dependents_of,
            ring_finish: vec![None; rings.len()],
            rings,
            ring_of,
            windows,
            server_windows,
            global_blackouts: Spans::build(global),
            site_blackouts: to_spans(by_site),
            svc_blackouts: to_spans(by_svc),
            server_blackouts: to_spans(by_server),
            policy_of,
            policy_spans,
            coverage,
            cap_global: cap.max_in_flight,
            cap_site,
            global_profile: Profile::default(),
            state,
            slots: Vec::new(),
            cycles: Vec::new(),
            warnings,
            unknown_scope,
        };
        ctx.svc_profile = (0..ctx.svc_members.len())
            .map(|k| {
                let members = ctx.svc_members[k].len();
                let eff = ctx.effective_allowed(k as u32);
                (eff as usize) < members || members == 0
            })
            .map(|needed| needed.then(Profile::default))
            .collect();
        ctx.seed_running_and_finished();
        ctx.find_cycles(&edges, &self_deps);
        ctx.preblock(&unknown_window_names);
        ctx
    }

    pub(super) fn site_limit(&self, site: u32) -> Option<u32> {
        self.cap_site.get(site as usize).copied().flatten()
    }

    pub(super) fn effective_allowed(&self, svc: u32) -> u32 {
        let k = svc as usize;
        let allowed = self.svc_allowed.get(k).copied().unwrap_or(0);
        let failed = self.svc_failed.get(k).map_or(0, |f| f.len()) as u32;
        allowed.saturating_sub(failed)
    }

    fn seed_running_and_finished(&mut self) {
        for i in 0..self.state.len() {
            match self.state[i] {
                St::Running(a, b) => {
                    self.occupy(i as u32, a, b);
                    self.bump_ring_finish(i, b);
                }
                St::Finished(at) => self.bump_ring_finish(i, at),
                _ => {}
            }
        }
    }

    fn bump_ring_finish(&mut self, i: usize, end: i64) {
        let r = self.ring_of[i] as usize;
        if let Some(f) = self.ring_finish.get_mut(r) {
            *f = Some(f.map_or(end, |x| x.max(end)));
        }
    }

    fn occupy(&mut self, s: u32, a: i64, b: i64) {
        let su = s as usize;
        for &k in &self.server_svcs[su] {
            let ku = k as usize;
            if let Some(Some(p)) = self.svc_profile.get_mut(ku) {
                p.add(a, b);
            }
            self.svc_slots[ku].push((a, b, s));
        }
        if let Some(site) = self.site_of[su]
            && self.site_limit(site).is_some()
            && let Some(p) = self.site_profile.get_mut(site as usize)
        {
            p.add(a, b);
        }
        if self.cap_global.is_some() {
            self.global_profile.add(a, b);
        }
    }

    fn find_cycles(&mut self, edges: &[(u32, u32)], self_deps: &BTreeMap<u32, String>) {
        let n = self.names.len();
        let mut g: petgraph::Graph<(), (), petgraph::Directed, u32> =
            petgraph::Graph::with_capacity(n, edges.len());
        for _ in 0..n {
            g.add_node(());
        }
        for &(a, b) in edges {
            g.add_edge(
                petgraph::graph::NodeIndex::new(a as usize),
                petgraph::graph::NodeIndex::new(b as usize),
                (),
            );
        }
        let mut cycles: Vec<Vec<u32>> = petgraph::algo::tarjan_scc(&g)
            .into_iter()
            .filter(|c| {
                c.len() > 1
                    || c.iter()
                        .any(|x| self_deps.contains_key(&(x.index() as u32)))
            })
            .map(|c| {
                c.into_iter()
                    .map(|x| x.index() as u32)
                    .collect::<Vec<u32>>()
            })
            .filter(|c| c.iter().any(|&x| self.in_scope[x as usize]))
            .collect();
        for c in &mut cycles {
            c.sort_by(|a, b| lower(self.names[*a as usize]).cmp(&lower(self.names[*b as usize])));
        }
        cycles.sort_by(|a, b| {
            let ka: Vec<String> = a.iter().map(|&x| lower(self.names[x as usize])).collect();
            let kb: Vec<String> = b.iter().map(|&x| lower(self.names[x as usize])).collect();
            ka.cmp(&kb)
        });
        for c in &cycles {
            let members: Vec<String> = c
                .iter()
                .map(|&x| self.names[x as usize].to_string())
                .collect();
            let text = match (c.as_slice(), members.as_slice()) {
                ([x], [name]) => format!(
                    "dependency cycle of one: {name} depends on itself ({}; an inventory error: remove that dependency)",
                    self_deps.get(x).map_or("", |t| t.as_str())
                ),
                _ => format!(
                    "dependency cycle between {} (an inventory error: one of these dependencies must go)",
                    members.join(", ")
                ),
            };
            for &x in c {
                if matches!(self.state[x as usize], St::Pending) {
                    self.state[x as usize] =
                        St::Unplaced(UnplacedRule::DependencyCycle, vec![text.clone()]);
                }
            }
            self.cycles.push(members);
        }
    }

    /// Rules that stop a server before any slot search.
    fn preblock(&mut self, unknown_window_names: &[Vec<String>]) {
        let n = self.names.len();
        // Dependents (transitively, any ring) of failed servers.
        let mut root: Vec<Option<u32>> = vec![None; n];
        let mut queue: VecDeque<u32> = VecDeque::new();
        for (i, st) in self.state.iter().enumerate() {
            if matches!(st, St::Failed) {
                root[i] = Some(i as u32);
                queue.push_back(i as u32);
            }
        }
        while let Some(x) = queue.pop_front() {
            let r = root[x as usize];
            for &d in &self.dependents_of[x as usize] {
                if root[d as usize].is_none() {
                    root[d as usize] = r;
                    queue.push_back(d);
                }
            }
        }
        for i in 0..n {
            if !matches!(self.state[i], St::Pending | St::Failed) {
                continue;
            }
            if matches!(self.state[i], St::Failed) {
                self.state[i] = St::Unplaced(
                    UnplacedRule::JobFailed,
                    vec![
                        "its job failed: resolve it (fix, roll back or record an exception) before it is planned again; until then it counts against its services' disruption budgets and blocks its dependents".to_string(),
                    ],
                );
                continue;
            }
            if let Some(r) = root[i] {
                let why = if self.deps_of[i].contains(&r) {
                    format!("depends on {}, whose job failed", self.names[r as usize])
                } else {
                    format!(
                        "depends (through other servers) on {}, whose job failed",
                        self.names[r as usize]
                    )
                };
                self.state[i] = St::Unplaced(UnplacedRule::DependsOnFailed, vec![why]);
                continue;
            }
            if let Some(rule) = self.calendar_block(i, &unknown_window_names[i]) {
                self.state[i] = St::Unplaced(rule.0, rule.1);
                continue;
            }
            for &k in &self.server_svcs[i] {
                if self.effective_allowed(k) == 0 {
                    let svc = &self.input.estate.services[k as usize];
                    let failed = &self.svc_failed[k as usize];
                    let mut why = vec![format!(
                        "service '{}' allows {} of {} members down (disruption budget {})",
                        svc.name,
                        self.svc_allowed[k as usize],
                        self.svc_members[k as usize].len(),
                        budget_text(&svc.budget)
                    )];
                    if !failed.is_empty() {
                        let f: Vec<&str> = failed.iter().map(|&x| self.names[x as usize]).collect();
                        why.push(format!(
                            "failed member(s) {} count against the budget until resolved",
                            f.join(", ")
                        ));
                    } else {
                        why.push("raise the budget or patch this service by hand".into());
                    }
                    self.state[i] = St::Unplaced(UnplacedRule::ServiceBudgetZero, why);
                    break;
                }
            }
            if !matches!(self.state[i], St::Pending) {
                continue;
            }
            if self.cap_global == Some(0) {
                self.state[i] = St::Unplaced(
                    UnplacedRule::CapacityZero,
                    vec!["capacity allows 0 servers in flight".into()],
                );
            } else if let Some(site) = self.site_of[i]
                && self.site_limit(site) == Some(0)
            {
                self.state[i] = St::Unplaced(
                    UnplacedRule::CapacityZero,
                    vec![format!(
                        "capacity allows 0 servers in flight at site '{}'",
                        self.site_names[site as usize]
                    )],
                );
            }
        }
    }

    fn calendar_block(&self, i: usize, unknown: &[String]) -> Option<(UnplacedRule, Vec<String>)> {
        let wins = &self.server_windows[i];
        if wins.is_empty() {
            let mut why = vec!["no maintenance windows assigned".to_string()];
            if !unknown.is_empty() {
                why.push(format!("unknown window name(s): {}", unknown.join(", ")));
            }
            return Some((UnplacedRule::NoWindows, why));
        }
        if let Some(p) = self.policy_of[i]
            && let Some(Err(e)) = self.policy_spans.get(p as usize)
        {
            return Some((
                UnplacedRule::InvalidCalendar,
                vec![format!(
                    "backup policy '{}' has an invalid job window, so backup times are unknown: {e}",
                    self.input.estate.backup_policies[p as usize].name
                )],
            ));
        }
        let valid: Vec<&WindowInfo> = wins
            .iter()
            .map(|&w| &self.windows[w as usize])
            .filter(|w| w.error.is_none())
            .collect();
        if valid.is_empty() {
            let errs: Vec<String> = wins
                .iter()
                .filter_map(|&w| self.windows[w as usize].error.clone())
                .collect();
            return Some((UnplacedRule::InvalidCalendar, errs));
        }
        let usable: Vec<&&WindowInfo> = valid
            .iter()
            .filter(|w| self.input.emergency || !w.emergency)
            .collect();
        if usable.is_empty() {
            return Some((
                UnplacedRule::OnlyEmergencyWindows,
                vec![format!(
                    "only emergency windows assigned ({}); they are used by emergency cycles only",
                    valid
                        .iter()
                        .map(|w| format!("'{}'", w.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )],
            ));
        }
        let longest = usable.iter().map(|w| w.max_len).max().unwrap_or(0);
        if self.dur[i] > longest {
            return Some((
                UnplacedRule::LongerThanWindows,
                vec![format!(
                    "needs {} but its longest window lasts {} ({})",
                    format_duration(SignedDuration::from_secs(self.dur[i])),
                    format_duration(SignedDuration::from_secs(longest)),
                    usable
                        .iter()
                        .map(|w| format!("'{}'", w.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )],
            ));
        }
        None
    }

    fn usable_windows(&self, s: usize) -> impl Iterator<Item = u32> + '_ {
        self.server_windows[s].iter().copied().filter(move |&w| {
            let info = &self.windows[w as usize];
            info.error.is_none() && (self.input.emergency || !info.emergency)
        })
    }

    /// The first obstacle to running `s` over `[a, b)`: where to try next, and why.
    fn obstacle(&self, s: usize, a: i64, b: i64) -> Option<(i64, Push)> {
        if let Some((e, l)) = self.global_blackouts.first_overlap(a, b) {
            return Some((e, Push::Blackout(l)));
        }
        if let Some(site) = self.site_of[s]
            && let Some(sp) = self.site_blackouts.get(&site)
            && let Some((e, l)) = sp.first_overlap(a, b)
        {
            return Some((e, Push::Blackout(l)));
        }
        for k in &self.server_svcs[s] {
            if let Some(sp) = self.svc_blackouts.get(k)
                && let Some((e, l)) = sp.first_overlap(a, b)
            {
                return Some((e, Push::Blackout(l)));
            }
        }
        if let Some(sp) = self.server_blackouts.get(&(s as u32))
            && let Some((e, l)) = sp.first_overlap(a, b)
        {
            return Some((e, Push::Blackout(l)));
        }
        if let Some(p) = self.policy_of[s]
            && let Some(Ok(sp)) = self.policy_spans.get(p as usize)
            && let Some((e, _)) = sp.first_overlap(a, b)
        {
            return Some((e, Push::Backup(p)));
        }
        if let Some(cov) = &self.coverage
            && let Err(next) = cov.covering(a, b)
        {
            return Some((next.unwrap_or(i64::MAX), Push::Coverage));
        }
        for &k in &self.server_svcs[s] {
            if let Some(Some(p)) = self.svc_profile.get(k as usize)
                && let Some((from, to)) = p.first_block(a, b, self.effective_allowed(k))
            {
                return Some((to, Push::Service { svc: k, from, to }));
            }
        }
        if let Some(site) = self.site_of[s]
            && let Some(limit) = self.site_limit(site)
            && let Some(p) = self.site_profile.get(site as usize)
            && let Some((_, to)) = p.first_block(a, b, limit)
        {
            return Some((to, Push::Site(site)));
        }
        if let Some(limit) = self.cap_global
            && let Some((_, to)) = self.global_profile.first_block(a, b, limit)
        {
            return Some((to, Push::Global));
        }
        None
    }

    /// Earliest feasible slot for `s` starting at or after `e`.
    #[allow(clippy::type_complexity)]
    fn search(&self, s: usize, e: i64) -> Result<(u32, i64, Vec<Push>, Vec<Skip>), Vec<Skip>> {
        let d = self.dur[s];
        let mut best: Option<(i64, u32, Vec<Push>)> = None;
        let mut skipped: Vec<Skip> = Vec::new();
        for w in self.usable_windows(s) {
            let occ = &self.windows[w as usize].occ;
            let i0 = occ.partition_point(|o| o.1 < e.saturating_add(d));
            for &(os, oe) in occ.iter().skip(i0) {
                if best.as_ref().is_some_and(|b| os >= b.0) || os >= self.hz_end {
                    break;
                }
                let mut t = os.max(e);
                let mut pushes: Vec<Push> = Vec::new();
                let found = loop {
                    let end = t.saturating_add(d);
                    if end > oe || end > self.hz_end {
                        break false;
                    }
                    match self.obstacle(s, t, end) {
                        None => break true,
                        Some((next, why)) => {
                            if pushes.len() < MAX_PUSHES && pushes.last() != Some(&why) {
                                pushes.push(why);
                            }
                            t = next.max(t + 1);
                        }
                    }
                };
                if found {
                    if best.as_ref().is_none_or(|b| t < b.0) {
                        best = Some((t, w, pushes));
                    }
                    break;
                }
                skipped.push(Skip {
                    window: w,
                    occ_start: os,
                    why: pushes.last().copied().unwrap_or(Push::TooShort),
                });
            }
        }
        match best {
            Some((t, w, pushes)) => {
                skipped.retain(|k| k.occ_start < t);
                skipped.sort_by_key(|k| (k.occ_start, k.window));
                Ok((w, t, pushes, skipped))
            }
            None => {
                skipped.sort_by_key(|k| (k.occ_start, k.window));
                Err(skipped)
            }
        }
    }

    fn schedule(&mut self) {
        let n = self.names.len();
        // Name rank for deterministic tie-breaking.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_cached_key(|&i| (lower(self.names[i as usize]), i));
        let mut rank = vec![0u32; n];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        let mut by_ring: Vec<Vec<u32>> = vec![Vec::new(); self.rings.len()];
        for &i in &order {
            if matches!(self.state[i as usize], St::Pending) {
                by_ring[self.ring_of[i as usize] as usize].push(i);
            }
        }
        #[allow(clippy::needless_range_loop)]
        for r in 0..self.rings.len() {
            // Ring barrier.
            let mut gate = Gate::PlanStart;
            let mut ring_start = self.start;
            for q in 0..r {
                if let Some(f) = self.ring_finish[q] {
                    let t = f.saturating_add(self.rings[q].soak);
                    if t > ring_start {
                        ring_start = t;
                        gate = Gate::Ring {
                            ring: q as u32,
                            finish: f,
                            soak: self.rings[q].soak,
                        };
                    }
                }
            }
            let members = std::mem::take(&mut by_ring[r]);
            self.schedule_ring(r as u32, &members, ring_start, gate, &rank);
        }
    }

    fn same_ring_pending_deps(&self, a: u32, r: u32) -> impl Iterator<Item = u32> + '_ {
        self.deps_of[a as usize]
            .iter()
            .copied()
            .filter(move |&b| self.ring_of[b as usize] == r && self.in_scope[b as usize])
    }

    fn schedule_ring(
        &mut self,
        r: u32,
        members: &[u32],
        ring_start: i64,
        gate: Gate,
        rank: &[u32],
    ) {
        if members.is_empty() {
            return;
        }
        let n = self.names.len();
        let pending = |st: &St| matches!(st, St::Pending);
        // In-degrees over same-ring pending dependencies.
        let mut indeg: HashMap<u32, u32> = HashMap::with_capacity(members.len());
        for &a in members {
            let c = self
                .same_ring_pending_deps(a, r)
                .filter(|&b| pending(&self.state[b as usize]))
                .count() as u32;
            indeg.insert(a, c);
        }
        // First pass: any topological order, to propagate due dates from dependents to
        // their dependencies (a dependency is as urgent as the most urgent thing waiting on it).
        let mut topo: Vec<u32> = Vec::with_capacity(members.len());
        {
            let mut deg = indeg.clone();
            let mut q: VecDeque<u32> = members
                .iter()
                .copied()
                .filter(|a| deg.get(a) == Some(&0))
                .collect();
            while let Some(x) = q.pop_front() {
                topo.push(x);
                for &d in &self.dependents_of[x as usize] {
                    if let Some(c) = deg.get_mut(&d) {
                        *c = c.saturating_sub(1);
                        if *c == 0 {
                            q.push_back(d);
                        }
                    }
                }
            }
        }
        let mut eff_due: HashMap<u32, i64> = HashMap::with_capacity(members.len());
        for &x in topo.iter().rev() {
            let own = self.due[x as usize].map_or(i64::MAX, secs_floor);
            let from_dependents = self.dependents_of[x as usize]
                .iter()
                .filter_map(|d| eff_due.get(d))
                .min()
                .copied()
                .unwrap_or(i64::MAX);
            eff_due.insert(x, own.min(from_dependents));
        }
        let key = |x: u32, eff_due: &HashMap<u32, i64>| {
            let tier = self.input.estate.servers[x as usize].tier.0;
            Reverse((
                eff_due.get(&x).copied().unwrap_or(i64::MAX),
                tier,
                rank[x as usize],
                x,
            ))
        };
        let mut heap: BinaryHeap<Reverse<(i64, u8, u32, u32)>> = members
            .iter()
            .copied()
            .filter(|a| indeg.get(a) == Some(&0))
            .map(|a| key(a, &eff_due))
            .collect();
        let mut done = 0usize;
        while let Some(Reverse((_, _, _, a))) = heap.pop() {
            done += 1;
            self.place_one(a, r, ring_start, gate);
            let dependents = self.dependents_of[a as usize].clone();
            for d in dependents {
                if let Some(c) = indeg.get_mut(&d) {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        heap.push(key(d, &eff_due));
                    }
                }
            }
        }
        if done < members.len() {
            // Cannot happen (cycles were removed), but never loop or drop a server silently.
            for &a in members {
                if matches!(self.state[a as usize], St::Pending) {
                    self.state[a as usize] = St::Unplaced(
                        UnplacedRule::DependencyCycle,
                        vec!["part of a dependency cycle".into()],
                    );
                }
            }
        }
        let _ = n;
    }

    fn place_one(&mut self, a: u32, r: u32, ring_start: i64, gate: Gate) {
        let au = a as usize;
        // Same-ring dependencies must be placed (or done) first.
        // A dependency that is not patched in this cycle (unplaced) is never taken down, so it
        // neither goes first nor can be in flight with `a`: it does not hold `a` back.
        let mut deps = Vec::new();
        let mut e = ring_start;
        let dep_list: Vec<u32> = self.same_ring_pending_deps(a, r).collect();
        for b in dep_list {
            match &self.state[b as usize] {
                St::Placed(k) => {
                    if let Some(slot) = self.slots.get(*k as usize) {
                        e = e.max(slot.end);
                    }
                    deps.push(b);
                }
                St::Running(_, end) => {
                    e = e.max(*end);
                    deps.push(b);
                }
                St::Finished(_) => deps.push(b),
                St::Unplaced(..) | St::Failed | St::Pending | St::OutOfScope => {}
            }
        }
        // Never in flight together with a running neighbour (either direction, any ring).
        let mut running_neighbours = Vec::new();
        for &b in self.deps_of[au].iter().chain(self.dependents_of[au].iter()) {
            if let St::Running(_, end) = self.state[b as usize] {
                e = e.max(end);
                running_neighbours.push(b);
            }
        }
        running_neighbours.sort_unstable();
        running_neighbours.dedup();
        let d = self.dur[au];
        if e.saturating_add(d) > self.hz_end {
            let mut why = vec![format!(
                "no slot before the horizon ({}): it cannot start before {}",
                self.fmt_utc(self.hz_end),
                self.fmt_utc(e)
            )];
            if let Gate::Ring { ring, finish, soak } = gate
                && ring_start == e
            {
                why.push(format!(
                    "ring '{}' finishes {} and soaks {}",
                    self.ring_label(ring),
                    self.fmt_utc(finish),
                    format_duration(SignedDuration::from_secs(soak))
                ));
            }
            self.state[au] = St::Unplaced(UnplacedRule::NoSlotBeforeHorizon, why);
            return;
        }
        match self.search(au, e) {
            Ok((w, t, pushes, skipped)) => {
                let end = t + d;
                let skipped_more = skipped.len().saturating_sub(3);
                let skipped: Vec<Skip> = skipped.into_iter().take(3).collect();
                let k = self.slots.len() as u32;
                self.slots.push(Slot {
                    server: a,
                    window: w,
                    start: t,
                    end,
                    facts: Facts {
                        gate: if ring_start > self.start {
                            gate
                        } else {
                            Gate::PlanStart
                        },
                        earliest: e,
                        deps,
                        running_neighbours,
                        pushes,
                        skipped,
                        skipped_more,
                    },
                });
                self.state[au] = St::Placed(k);
                self.occupy(a, t, end);
                self.bump_ring_finish(au, end);
            }
            Err(skipped) => {
                let why = explain::no_slot_reasons(self, au, e, ring_start, gate, &skipped);
                self.state[au] = St::Unplaced(UnplacedRule::NoSlotBeforeHorizon, why);
            }
        }
    }

    pub(super) fn ring_label(&self, r: u32) -> String {
        self.rings
            .get(r as usize)
            .and_then(|x| x.name.clone())
            .unwrap_or_else(|| "(no ring)".into())
    }

    pub(super) fn fmt_utc(&self, t: i64) -> String {
        format_instant(to_ts(t), &TimeZone::UTC)
    }

    pub(super) fn server_ring_name(&self, i: usize) -> Option<String> {
        let r = self.ring_of[i] as usize;
        match self.rings.get(r).and_then(|x| x.name.clone()) {
            Some(n) => Some(n),
            None => self.input.estate.servers[i].ring.clone(),
        }
    }

    fn assemble(self) -> Plan {
        let input = self.input;
        // Waves: distinct start instants in order.
        let mut starts: Vec<i64> = self.slots.iter().map(|s| s.start).collect();
        starts.sort_unstable();
        starts.dedup();
        let wave_of = |t: i64| starts.partition_point(|&x| x < t) as u32 + 1;
        let mut order: Vec<usize> = (0..self.slots.len()).collect();
        order.sort_by_cached_key(|&k| {
            let s = &self.slots[k];
            (s.start, lower(self.names[s.server as usize]))
        });
        let mut waves: Vec<Wave> = starts
            .iter()
            .enumerate()
            .map(|(i, &t)| Wave {
                number: i as u32 + 1,
                start: to_ts(t),
                end: to_ts(t),
                servers: Vec::new(),
            })
            .collect();
        let mut placements = Vec::with_capacity(self.slots.len());
        let mut late = Vec::new();
        for &k in &order {
            let slot = &self.slots[k];
            let i = slot.server as usize;
            let wave = wave_of(slot.start);
            if let Some(wv) = waves.get_mut(wave as usize - 1) {
                wv.servers.push(self.names[i].to_string());
                if to_ts(slot.end) > wv.end {
                    wv.end = to_ts(slot.end);
                }
            }
            let end = to_ts(slot.end);
            let due = self.due[i];
            let late_by = due.filter(|d| end > *d).map(|d| d.duration_until(end));
            if let (Some(d), Some(l)) = (due, late_by) {
                late.push(Late {
                    server: self.names[i].to_string(),
                    due: d,
                    due_source: self.due_source[i].map(str::to_string),
                    end,
                    late_by: l,
                });
            }
            let reasons = explain::placement_reasons(&self, slot, wave, &wave_of);
            placements.push(Placement {
                server: self.names[i].to_string(),
                ring: self.server_ring_name(i),
                wave,
                window: self.windows[slot.window as usize].name.clone(),
                start: to_ts(slot.start),
                end,
                reasons,
                due,
                due_source: self.due_source[i].map(str::to_string),
                late_by,
            });
        }
        for w in &mut waves {
            w.servers.sort_by_key(|s| lower(s));
        }
        late.sort_by_key(|a| lower(&a.server));

        let mut unplaced = Vec::new();
        let mut in_progress = Vec::new();
        let mut finished = Vec::new();
        for (i, st) in self.state.iter().enumerate() {
            match st {
                St::Unplaced(rule, why) => {
                    let mut reasons = why.clone();
                    if let Some(d) = self.due[i] {
                        reasons.push(format!(
                            "due {}{}",
                            format_instant(d, &TimeZone::UTC),
                            self.due_source[i]
                                .map(|x| format!(" ({x})"))
                                .unwrap_or_default()
                        ));
                    }
                    unplaced.push(Unplaced {
                        server: self.names[i].to_string(),
                        ring: self.server_ring_name(i),
                        rule: *rule,
                        reasons,
                        due: self.due[i],
                        due_source: self.due_source[i].map(str::to_string),
                    });
                }
                St::Running(a, b) => in_progress.push(InProgress {
                    server: self.names[i].to_string(),
                    ring: self.server_ring_name(i),
                    start: to_ts(*a),
                    end: to_ts(*b),
                }),
                St::Finished(_) => finished.push(self.names[i].to_string()),
                St::Pending => unplaced.push(Unplaced {
                    server: self.names[i].to_string(),
                    ring: self.server_ring_name(i),
                    rule: UnplacedRule::NoSlotBeforeHorizon,
                    reasons: vec!["not reached by the planner".into()],
                    due: self.due[i],
                    due_source: self.due_source[i].map(str::to_string),
                }),
                St::Failed | St::OutOfScope | St::Placed(_) => {}
            }
        }
        for name in &self.unknown_scope {
            unplaced.push(Unplaced {
                server: name.clone(),
                ring: None,
                rule: UnplacedRule::UnknownServer,
                reasons: vec!["in scope but not in the estate".into()],
                due: None,
                due_source: None,
            });
        }
        unplaced.sort_by_key(|a| lower(&a.server));
        in_progress.sort_by_key(|a| (a.start, lower(&a.server)));
        finished.sort_by_key(|s| lower(s));
        let finish = placements.iter().map(|p| p.end).max();
        Plan {
            cycle: input.cycle.clone(),
            emergency: input.emergency,
            start: input.start,
            horizon_end: input.horizon_end(),
            finish,
            waves,
            placements,
            unplaced,
            late,
            in_progress,
            finished,
            dependency_cycles: self.cycles,
            warnings: self.warnings,
        }
    }
}

pub(super) fn budget_text(b: &crate::inventory::DisruptionBudget) -> String {
    match b {
        crate::inventory::DisruptionBudget::MaxUnavailable(n) => format!("max {n} unavailable"),
        crate::inventory::DisruptionBudget::MaxUnavailablePercent(p) => {
            format!("max {p}% unavailable")
        }
    }
}

/// "APP-01 → service:app-farm", for naming a dependency record.
fn dependency_text(a: &DependencyTarget, b: &DependencyTarget) -> String {
    let t = |x: &DependencyTarget| match x {
        DependencyTarget::Server(n) => n.clone(),
        DependencyTarget::Service(n) => format!("service:{n}"),
    };
    format!("dependency {} → {}", t(a), t(b))
}

pub(super) fn rule_text(r: UnplacedRule) -> &'static str {
    match r {
        UnplacedRule::UnknownServer => "not in the estate",
        UnplacedRule::UnknownRing => "unknown ring",
        UnplacedRule::NoWindows => "no maintenance windows",
        UnplacedRule::InvalidCalendar => "invalid calendar",
        UnplacedRule::OnlyEmergencyWindows => "only emergency windows",
        UnplacedRule::LongerThanWindows => "longer than its windows",
        UnplacedRule::NoSlotBeforeHorizon => "no slot before the horizon",
        UnplacedRule::DependencyCycle => "dependency cycle",
        UnplacedRule::ServiceBudgetZero => "disruption budget of 0",
        UnplacedRule::CapacityZero => "capacity of 0",
        UnplacedRule::DependsOnUnplaced => "depends on an unplaced server",
        UnplacedRule::JobFailed => "job failed",
        UnplacedRule::DependsOnFailed => "depends on a failed server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_blocks_and_frees() {
        let mut p = Profile::default();
        p.add(10, 20);
        p.add(15, 30);
        assert_eq!(p.count_at(12), 1);
        assert_eq!(p.count_at(16), 2);
        assert_eq!(p.count_at(25), 1);
        assert_eq!(p.count_at(30), 0);
        assert_eq!(p.first_block(0, 10, 1), None);
        assert_eq!(p.first_block(0, 11, 1), Some((10, 15)));
        assert_eq!(p.first_block(12, 40, 2), Some((15, 20)));
        assert_eq!(p.first_block(20, 40, 2), None);
        assert_eq!(p.first_block(30, 40, 1), None);
    }

    #[test]
    fn spans_overlap_and_cover() {
        let s = Spans::build(vec![(10, 20, 1), (20, 25, 2), (40, 50, 3)]);
        assert_eq!(s.first_overlap(0, 10), None);
        assert_eq!(s.first_overlap(0, 11), Some((25, 1)));
        assert_eq!(s.first_overlap(25, 40), None);
        assert_eq!(s.covering(12, 24), Ok(()));
        assert_eq!(s.covering(22, 30), Err(Some(40)));
        assert_eq!(s.covering(30, 35), Err(Some(40)));
        assert_eq!(s.covering(45, 55), Err(None));
    }
}
