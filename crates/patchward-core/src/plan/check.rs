//! An independent checker for plans: re-derives every hard rule of issue 3 from the input and
//! the plan alone. It shares no scheduling code with the planner — only the calendar (what a
//! window *means*) and the input's own definitions (durations, running-job intervals).
//! Straightforward sweeps and lookups, written for clarity rather than speed.

use super::Plan;
use super::input::{JobOutcome, PlanInput};
use crate::calendar::{Interval, IntervalSet, occurrences};
use crate::inventory::{BlackoutScope, DependencyTarget, Server};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Which rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckRule {
    /// Every in-scope server is placed, unplaced, running or finished — exactly once.
    Accounting,
    Duration,
    Horizon,
    Window,
    Blackout,
    BackupWindow,
    Coverage,
    /// A and B in flight at the same time.
    DependencyOverlap,
    /// Same ring: B must end before A starts.
    DependencyOrder,
    /// Placed although a dependency failed (directly or through other servers).
    BlockedDependency,
    DependencyCycle,
    RingOrder,
    DisruptionBudget,
    Capacity,
    SiteCapacity,
    Waves,
    Lateness,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: CheckRule,
    pub servers: Vec<String>,
    pub detail: String,
}

fn lc(s: &str) -> String {
    s.trim().to_lowercase()
}

fn v(rule: CheckRule, servers: &[&str], detail: String) -> Violation {
    Violation {
        rule,
        servers: servers.iter().map(|s| s.to_string()).collect(),
        detail,
    }
}

/// Whether `slot` lies inside one of `occ` (sorted by start). Only occurrences starting at most
/// one occurrence length before the slot ends can contain it, so few are looked at.
fn inside_one(occ: &[Interval], longest: SignedDuration, slot: &Interval) -> bool {
    let earliest = slot.end.checked_sub(longest).unwrap_or(slot.end);
    let upto = occ.partition_point(|o| o.start <= slot.start);
    occ[..upto]
        .iter()
        .rev()
        .take_while(|o| o.start >= earliest)
        .any(|o| o.contains(slot))
}

/// Check `plan` against every hard rule for `input`. Empty means the plan is valid.
pub fn verify(input: &PlanInput<'_>, plan: &Plan) -> Vec<Violation> {
    let est = input.estate;
    let mut out = Vec::new();
    // Looked up, never iterated in output order (a hash map: 100,000 servers).
    let servers: HashMap<String, &Server> = est.servers.iter().map(|s| (lc(&s.name), s)).collect();
    let scope: BTreeSet<String> = input
        .scope
        .iter()
        .map(|s| lc(s))
        .filter(|s| servers.contains_key(s))
        .collect();
    let outcomes: BTreeMap<String, JobOutcome> = input
        .outcomes
        .iter()
        .map(|(k, o)| (lc(k), *o))
        .filter(|(k, _)| scope.contains(k))
        .collect();
    let due: BTreeMap<String, Timestamp> = input.due.iter().map(|(k, t)| (lc(k), *t)).collect();
    let due_sources: BTreeMap<String, &String> = input
        .due_sources
        .iter()
        .filter(|(k, _)| input.due.contains_key(*k))
        .map(|(k, t)| (lc(k), t))
        .collect();
    let horizon_end = input.horizon_end();

    // --- accounting -------------------------------------------------------------------
    let mut placed: BTreeMap<String, (Timestamp, Timestamp)> = BTreeMap::new();
    for p in &plan.placements {
        let k = lc(&p.server);
        if !scope.contains(&k) {
            out.push(v(
                CheckRule::Accounting,
                &[&p.server],
                "placed but not in scope".into(),
            ));
        }
        if let Some(o) = outcomes.get(&k) {
            out.push(v(
                CheckRule::Accounting,
                &[&p.server],
                format!("placed although its job outcome is {o:?}"),
            ));
        }
        if placed.insert(k, (p.start, p.end)).is_some() {
            out.push(v(
                CheckRule::Accounting,
                &[&p.server],
                "placed twice".into(),
            ));
        }
    }
    let unplaced: BTreeSet<String> = plan.unplaced.iter().map(|u| lc(&u.server)).collect();
    for k in &scope {
        let is_placed = placed.contains_key(k);
        let is_unplaced = unplaced.contains(k);
        let expected_done = matches!(
            outcomes.get(k),
            Some(JobOutcome::Finished { .. } | JobOutcome::Running { .. })
        );
        if expected_done {
            continue;
        }
        if is_placed == is_unplaced {
            out.push(v(
                CheckRule::Accounting,
                &[k],
                if is_placed {
                    "both placed and unplaced".into()
                } else {
                    "in scope but neither placed nor listed as unplaced".into()
                },
            ));
        }
    }

    // Intervals in flight: placements + running jobs.
    let mut busy: BTreeMap<String, (Timestamp, Timestamp, bool)> = placed
        .iter()
        .map(|(k, (a, b))| (k.clone(), (*a, *b, true)))
        .collect();
    for (k, o) in &outcomes {
        if let Some(s) = servers.get(k)
            && let Some((a, b)) = o.occupied(input.start, input.duration_of(s))
        {
            busy.insert(k.clone(), (a, b, false));
        }
    }

    // Services: membership by server.
    let mut member_of: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, svc) in est.services.iter().enumerate() {
        let members: BTreeSet<String> = svc
            .members
            .iter()
            .map(|m| lc(m))
            .filter(|m| servers.contains_key(m))
            .collect();
        for m in members {
            member_of.entry(m).or_default().push(i);
        }
    }

    // Calendars, evaluated once over the span of all placements (an occurrence that contains
    // or overlaps a slot overlaps that span, so the answers are those of a per-slot look-up).
    let span = plan
        .placements
        .iter()
        .map(|p| (p.start, p.end))
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    let (lo, hi) = span.unwrap_or((input.start, input.start));
    // Window (lower-case name) → (emergency, occurrences in start order).
    let mut win_occ: BTreeMap<String, (bool, Vec<Interval>, SignedDuration)> = BTreeMap::new();
    for w in &est.windows {
        let occ = occurrences(w, lo, hi).unwrap_or_default();
        let longest = occ
            .iter()
            .map(|o| o.start.duration_until(o.end))
            .max()
            .unwrap_or(SignedDuration::ZERO);
        win_occ
            .entry(lc(&w.name))
            .or_insert((w.emergency, occ, longest));
    }
    // Backup policy (lower-case name) → (name, merged job-window occurrences).
    let mut backup_occ: BTreeMap<String, (&str, Result<IntervalSet, String>)> = BTreeMap::new();
    for pol in &est.backup_policies {
        let set = match &pol.job_window {
            None => Ok(IntervalSet::default()),
            Some(w) => occurrences(w, lo, hi)
                .map(IntervalSet::from_intervals)
                .map_err(|e| e.to_string()),
        };
        backup_occ
            .entry(lc(&pol.name))
            .or_insert((pol.name.as_str(), set));
    }
    let coverage: Option<IntervalSet> = est.coverage.as_ref().map(|cov| {
        let day = SignedDuration::from_hours(48);
        let from = lo.checked_sub(day).unwrap_or(lo);
        let to = hi.checked_add(day).unwrap_or(hi);
        IntervalSet::from_intervals(
            cov.windows
                .iter()
                .filter_map(|w| occurrences(w, from, to).ok())
                .flatten(),
        )
    });

    // --- per placement -----------------------------------------------------------------
    for p in &plan.placements {
        let k = lc(&p.server);
        let Some(server) = servers.get(&k) else {
            out.push(v(
                CheckRule::Accounting,
                &[&p.server],
                "not in the estate".into(),
            ));
            continue;
        };
        let name = p.server.as_str();
        let slot = Interval::new(p.start, p.end);
        let want = input.duration_of(server);
        if p.start.duration_until(p.end).as_secs() != want.as_secs() {
            out.push(v(
                CheckRule::Duration,
                &[name],
                format!(
                    "slot lasts {} but the job needs {}",
                    p.start.duration_until(p.end),
                    want
                ),
            ));
        }
        if p.start < input.start || p.end > horizon_end {
            out.push(v(
                CheckRule::Horizon,
                &[name],
                "outside [start, horizon]".into(),
            ));
        }
        // Inside one occurrence of one of its (usable) windows.
        let in_window = server.windows.iter().any(|n| {
            win_occ
                .get(&lc(n))
                .is_some_and(|(emergency, occ, longest)| {
                    (input.emergency || !emergency) && inside_one(occ, *longest, &slot)
                })
        });
        if !in_window {
            out.push(v(
                CheckRule::Window,
                &[name],
                format!(
                    "{}–{} is not inside one of its window occurrences",
                    p.start, p.end
                ),
            ));
        }
        let svcs: Vec<&str> = member_of
            .get(&k)
            .map(|v| v.iter().map(|&i| est.services[i].name.as_str()).collect())
            .unwrap_or_default();
        for b in &est.blackouts {
            let applies = match &b.scope {
                BlackoutScope::Global => true,
                BlackoutScope::Site(s) => server
                    .site
                    .as_deref()
                    .is_some_and(|x| x.trim().eq_ignore_ascii_case(s.trim())),
                BlackoutScope::Service(s) => svcs.iter().any(|x| x.eq_ignore_ascii_case(s.trim())),
                BlackoutScope::Server(s) => lc(s) == k,
            };
            if applies && b.start < p.end && p.start < b.end {
                out.push(v(
                    CheckRule::Blackout,
                    &[name],
                    format!("overlaps blackout {:?}", b.name),
                ));
            }
        }
        if let Some((pol, job)) = server
            .backup_policy
            .as_deref()
            .and_then(|pn| backup_occ.get(&lc(pn)))
        {
            match job {
                Ok(set) if set.first_overlap(&slot).is_some() => out.push(v(
                    CheckRule::BackupWindow,
                    &[name],
                    format!("overlaps the backup job window of {pol:?}"),
                )),
                Ok(_) => {}
                Err(e) => out.push(v(
                    CheckRule::BackupWindow,
                    &[name],
                    format!("backup job window cannot be evaluated: {e}"),
                )),
            }
        }
        if let Some(set) = &coverage
            && !set.covers(&slot)
        {
            out.push(v(
                CheckRule::Coverage,
                &[name],
                "outside team coverage".into(),
            ));
        }
        // Due dates.
        let d = due.get(&k).copied();
        if p.due != d {
            out.push(v(
                CheckRule::Lateness,
                &[name],
                "due date differs from the input".into(),
            ));
        }
        if p.due_source.as_deref() != due_sources.get(&k).map(|x| x.as_str()) {
            out.push(v(
                CheckRule::Lateness,
                &[name],
                "due date source differs from the input".into(),
            ));
        }
        let late = d.filter(|d| p.end > *d).map(|d| d.duration_until(p.end));
        if p.late_by != late {
            out.push(v(
                CheckRule::Lateness,
                &[name],
                format!("late_by should be {late:?}"),
            ));
        }
    }

    // --- dependencies --------------------------------------------------------------------
    // Service (lower-case name) → its members in the estate, built once: dependencies on a
    // service are common, and a scan of every service per edge is quadratic at 100,000 servers.
    let mut service_members: HashMap<String, Vec<String>> = HashMap::new();
    for svc in &est.services {
        service_members.entry(lc(&svc.name)).or_default().extend(
            svc.members
                .iter()
                .map(|m| lc(m))
                .filter(|m| servers.contains_key(m)),
        );
    }
    let members_of_service =
        |n: &str| -> Vec<String> { service_members.get(&lc(n)).cloned().unwrap_or_default() };
    let expand = |t: &DependencyTarget| -> Vec<String> {
        match t {
            DependencyTarget::Server(s) => {
                let k = lc(s);
                if servers.contains_key(&k) {
                    vec![k]
                } else {
                    Vec::new()
                }
            }
            DependencyTarget::Service(s) => members_of_service(s),
        }
    };
    // Sorted and deduplicated below (cheaper than a set at 300,000 edges).
    let mut pairs: Vec<(String, String)> = Vec::new();
    // Servers that depend on themselves: a cycle of one, never placed.
    let mut self_dependent: BTreeSet<String> = BTreeSet::new();
    for d in &est.dependencies {
        for a in expand(&d.dependent) {
            for b in expand(&d.depends_on) {
                if a != b {
                    pairs.push((a.clone(), b));
                } else {
                    self_dependent.insert(a.clone());
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    for k in &self_dependent {
        if placed.contains_key(k) {
            out.push(v(
                CheckRule::DependencyCycle,
                &[k],
                "placed although it depends on itself".into(),
            ));
        }
    }
    // Rings: position of each server's ring (no ring = after all rings).
    let mut rings: Vec<&crate::inventory::Ring> = est.rings.iter().collect();
    rings.sort_by(|a, b| {
        a.order
            .cmp(&b.order)
            .then_with(|| lc(&a.name).cmp(&lc(&b.name)))
    });
    let ring_pos = |s: &Server| -> Option<usize> {
        match s.ring.as_deref().filter(|r| !r.trim().is_empty()) {
            None => Some(rings.len()),
            Some(r) => rings
                .iter()
                .position(|x| x.name.eq_ignore_ascii_case(r.trim())),
        }
    };
    // Failed servers and everything depending on them (transitively).
    let mut blocked: BTreeSet<String> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, JobOutcome::Failed { .. }))
        .map(|(k, _)| k.clone())
        .collect();
    let mut rev: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in &pairs {
        rev.entry(b.as_str()).or_default().push(a.as_str());
    }
    let mut q: VecDeque<String> = blocked.iter().cloned().collect();
    while let Some(x) = q.pop_front() {
        for a in rev.get(x.as_str()).cloned().unwrap_or_default() {
            if blocked.insert(a.to_string()) {
                q.push_back(a.to_string());
            }
        }
    }
    for k in placed.keys() {
        if blocked.contains(k) {
            out.push(v(
                CheckRule::BlockedDependency,
                &[k],
                "placed although it (transitively) depends on a failed server".into(),
            ));
        }
    }
    for (a, b) in &pairs {
        let (Some(ia), Some(ib)) = (busy.get(a), busy.get(b)) else {
            continue;
        };
        if ia.0 < ib.1 && ib.0 < ia.1 && (ia.2 || ib.2) {
            out.push(v(
                CheckRule::DependencyOverlap,
                &[a, b],
                format!("{a} depends on {b} and they are in flight together"),
            ));
        }
    }
    for (a, b) in &pairs {
        let Some(&(a_start, _)) = placed.get(a) else {
            continue;
        };
        if !scope.contains(b) {
            continue;
        }
        let (Some(sa), Some(sb)) = (servers.get(a), servers.get(b)) else {
            continue;
        };
        if ring_pos(sa) != ring_pos(sb) {
            continue;
        }
        // Only a dependency that is taken down (placed or running) imposes an order. A finished
        // one, or one not patched in this cycle (unplaced; accounting above makes sure it is
        // listed as such), never is. A failed one is caught by the blocked set above.
        if let Some(&(_, b_end, _)) = busy.get(b)
            && b_end > a_start
        {
            out.push(v(
                CheckRule::DependencyOrder,
                &[a, b],
                format!("{a} starts before its same-ring dependency {b} ends"),
            ));
        }
    }
    // Cycles (independent Tarjan over the expanded graph).
    let mut keys: Vec<&str> = servers.keys().map(|k| k.as_str()).collect();
    keys.sort_unstable();
    let ids: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut g = petgraph::Graph::<(), ()>::new();
    let nodes: Vec<_> = keys.iter().map(|_| g.add_node(())).collect();
    for (a, b) in &pairs {
        if let (Some(&x), Some(&y)) = (ids.get(a.as_str()), ids.get(b.as_str())) {
            g.add_edge(nodes[x], nodes[y], ());
        }
    }
    for scc in petgraph::algo::tarjan_scc(&g) {
        if scc.len() < 2 {
            continue;
        }
        for n in &scc {
            let k = keys[n.index()];
            if placed.contains_key(k) {
                out.push(v(
                    CheckRule::DependencyCycle,
                    &[k],
                    "placed although it is in a dependency cycle".into(),
                ));
            }
        }
    }

    // --- rings ---------------------------------------------------------------------------
    let soak = |i: usize| -> SignedDuration {
        rings.get(i).map_or(SignedDuration::ZERO, |r| {
            if input.emergency {
                r.emergency_soak.unwrap_or(r.soak)
            } else {
                r.soak
            }
        })
    };
    let mut ring_end: BTreeMap<usize, Timestamp> = BTreeMap::new();
    for k in &scope {
        let Some(s) = servers.get(k) else { continue };
        let Some(pos) = ring_pos(s) else { continue };
        let end = match (busy.get(k), outcomes.get(k)) {
            (Some(&(_, e, _)), _) => Some(e),
            (None, Some(JobOutcome::Finished { at })) => Some(*at),
            _ => None,
        };
        if let Some(e) = end {
            let x = ring_end.entry(pos).or_insert(e);
            if e > *x {
                *x = e;
            }
        }
    }
    for p in &plan.placements {
        let Some(s) = servers.get(&lc(&p.server)) else {
            continue;
        };
        let Some(pos) = ring_pos(s) else {
            out.push(v(
                CheckRule::RingOrder,
                &[&p.server],
                "placed with an unknown ring".into(),
            ));
            continue;
        };
        for (&q, &end) in ring_end.range(..pos) {
            let gate = end.checked_add(soak(q)).unwrap_or(Timestamp::MAX);
            if p.start < gate {
                out.push(v(
                    CheckRule::RingOrder,
                    &[&p.server],
                    format!(
                        "starts {} before ring #{q} finished + soak ({gate})",
                        p.start
                    ),
                ));
            }
        }
    }

    // --- budgets and capacity ------------------------------------------------------------
    let sweep =
        |items: Vec<(Timestamp, Timestamp, bool, String)>, limit: usize| -> Option<Vec<String>> {
            let mut ev: Vec<(Timestamp, i32, bool, String)> = Vec::new();
            for (a, b, is_plan, n) in items {
                ev.push((a, 1, is_plan, n.clone()));
                ev.push((b, -1, is_plan, n));
            }
            ev.sort_by_key(|x| (x.0, x.1));
            let mut now: BTreeSet<String> = BTreeSet::new();
            for (_, d, is_plan, n) in ev {
                if d < 0 {
                    now.remove(&n);
                } else {
                    now.insert(n);
                    if is_plan && now.len() > limit {
                        return Some(now.into_iter().collect());
                    }
                }
            }
            None
        };
    for svc in &est.services {
        let members: BTreeSet<String> = svc
            .members
            .iter()
            .map(|m| lc(m))
            .filter(|m| servers.contains_key(m))
            .collect();
        let allowed = svc.budget.allowed(members.len());
        let failed = members
            .iter()
            .filter(|m| matches!(outcomes.get(*m), Some(JobOutcome::Failed { .. })))
            .count();
        let items: Vec<_> = members
            .iter()
            .filter_map(|m| busy.get(m).map(|&(a, b, p)| (a, b, p, m.clone())))
            .collect();
        if items.iter().any(|x| x.2) && failed + 1 > allowed {
            out.push(v(
                CheckRule::DisruptionBudget,
                &[],
                format!("service {:?} has a member placed but allows {allowed} down with {failed} failed", svc.name),
            ));
            continue;
        }
        if let Some(who) = sweep(items, allowed.saturating_sub(failed)) {
            let w: Vec<&str> = who.iter().map(|s| s.as_str()).collect();
            out.push(v(
                CheckRule::DisruptionBudget,
                &w,
                format!(
                    "service {:?} allows {allowed} down ({failed} failed)",
                    svc.name
                ),
            ));
        }
    }
    let cap = input.capacity();
    let all: Vec<(Timestamp, Timestamp, bool, String)> = busy
        .iter()
        .map(|(k, &(a, b, p))| (a, b, p, k.clone()))
        .collect();
    if let Some(limit) = cap.max_in_flight
        && let Some(who) = sweep(all.clone(), limit as usize)
    {
        let w: Vec<&str> = who.iter().map(|s| s.as_str()).collect();
        out.push(v(
            CheckRule::Capacity,
            &w,
            format!("more than {limit} in flight"),
        ));
    }
    {
        // Each site's limit: its own override (`capacity.sites`), else the default per site.
        let mut overrides: BTreeMap<String, u32> = BTreeMap::new();
        for (k, n) in &cap.sites {
            overrides.entry(lc(k)).or_insert(*n);
        }
        let mut by_site: BTreeMap<String, Vec<(Timestamp, Timestamp, bool, String)>> =
            BTreeMap::new();
        for item in all {
            if let Some(site) = servers
                .get(&item.3)
                .and_then(|s| s.site.as_deref())
                .filter(|s| !s.trim().is_empty())
            {
                by_site.entry(lc(site)).or_default().push(item);
            }
        }
        for (site, items) in by_site {
            let Some(limit) = overrides.get(&site).copied().or(cap.max_in_flight_per_site) else {
                continue;
            };
            if let Some(who) = sweep(items, limit as usize) {
                let w: Vec<&str> = who.iter().map(|s| s.as_str()).collect();
                out.push(v(
                    CheckRule::SiteCapacity,
                    &w,
                    format!("more than {limit} in flight at site {site}"),
                ));
            }
        }
    }

    // --- waves ---------------------------------------------------------------------------
    for (i, w) in plan.waves.iter().enumerate() {
        if w.number as usize != i + 1 {
            out.push(v(
                CheckRule::Waves,
                &[],
                format!("wave {} is numbered out of order", w.number),
            ));
        }
        if i > 0 && plan.waves[i - 1].start >= w.start {
            out.push(v(
                CheckRule::Waves,
                &[],
                format!("wave {} does not start after the previous one", w.number),
            ));
        }
    }
    // (wave number, server) pairs, so that membership is a lookup, not a scan of the wave.
    let in_wave: BTreeSet<(u32, &str)> = plan
        .waves
        .iter()
        .flat_map(|w| w.servers.iter().map(move |s| (w.number, s.as_str())))
        .collect();
    for p in &plan.placements {
        match plan.waves.get((p.wave as usize).wrapping_sub(1)) {
            Some(w)
                if w.start == p.start
                    && in_wave.contains(&(w.number, p.server.as_str()))
                    && w.end >= p.end => {}
            _ => out.push(v(
                CheckRule::Waves,
                &[&p.server],
                format!("wave {} does not match its slot", p.wave),
            )),
        }
        if p.reasons.is_empty() {
            out.push(v(
                CheckRule::Waves,
                &[&p.server],
                "placement without reasons".into(),
            ));
        }
    }
    let wave_servers: usize = plan.waves.iter().map(|w| w.servers.len()).sum();
    if wave_servers != plan.placements.len() {
        out.push(v(
            CheckRule::Waves,
            &[],
            "waves and placements disagree".into(),
        ));
    }
    out
}
