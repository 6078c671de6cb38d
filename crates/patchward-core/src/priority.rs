//! Priorities (PRODUCT.md C4): a CISA SSVC decision — Act / Attend / Track* / Track — per open
//! CVE per server, with its reasons in words and a due date.
//!
//! Decision points, as CISA defines them:
//! - Exploitation: *active* when the CVE is in CISA KEV or MSRC says "Exploited:Yes" (KEV wins
//!   over MSRC, which never flips its flag later); *PoC* when publicly disclosed or EPSS is at
//!   or above the policy threshold; else *none*.
//! - Automatable: from the CVSS vector — network, low complexity, no privileges, no user
//!   interaction.
//! - Technical impact: *total* when confidentiality and integrity are both high (CVSS), or, with
//!   no vector, when MSRC rates it remote code execution or elevation of privilege.
//! - Mission & well-being: from the server — criticality tier, infrastructure roles, internet
//!   exposure (thresholds are policy).
//!
//! The table is CISA's coordinator tree (SSVC "CISA Levels"). Due date = CVE release + the SLA
//! days of the outcome; the KEV due date wins when earlier.

use crate::exposure::HashMap;
use crate::exposure::OpenCve;
use crate::intel::CvssFacts;
use crate::inventory::{InternetExposure, Server};
use crate::product::ServerRelease;
use jiff::civil::Date;
use jiff::{Span, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Decision {
    Track,
    #[serde(rename = "Track*")]
    TrackStar,
    Attend,
    Act,
}

impl Decision {
    pub fn label(self) -> &'static str {
        match self {
            Decision::Act => "Act",
            Decision::Attend => "Attend",
            Decision::TrackStar => "Track*",
            Decision::Track => "Track",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exploitation {
    None,
    Poc,
    Active,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissionImpact {
    Low,
    Medium,
    High,
}

/// SLA days per outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaDays {
    pub act: i64,
    pub attend: i64,
    pub track_star: i64,
    pub track: i64,
}

/// The prioritisation policy: configuration with sensible defaults (`patchward policy show`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub sla_days: SlaDays,
    /// EPSS probability at or above which exploitation counts as "PoC".
    pub epss_poc_threshold: f64,
    /// Tiers at or below this number are high mission impact.
    pub high_mission_max_tier: u8,
    /// Tiers at or below this number are (at least) medium mission impact.
    pub medium_mission_max_tier: u8,
    /// Infrastructure roles (DC, DNS, DHCP, Hyper-V, CA, backup) make mission impact high.
    pub infrastructure_is_high: bool,
    /// Internet exposure raises mission impact one level.
    pub internet_exposure_raises: bool,
    /// The KEV due date wins when it is earlier than the SLA date.
    pub kev_due_wins: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            sla_days: SlaDays {
                act: 3,
                attend: 14,
                track_star: 30,
                track: 60,
            },
            epss_poc_threshold: 0.1,
            high_mission_max_tier: 1,
            medium_mission_max_tier: 2,
            infrastructure_is_high: true,
            internet_exposure_raises: true,
            kev_due_wins: true,
        }
    }
}

impl Policy {
    pub fn sla(&self, d: Decision) -> i64 {
        match d {
            Decision::Act => self.sla_days.act,
            Decision::Attend => self.sla_days.attend,
            Decision::TrackStar => self.sla_days.track_star,
            Decision::Track => self.sla_days.track,
        }
    }

    /// Problems that make the policy unusable (negative days, threshold outside 0..1).
    pub fn validate(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in [
            ("sla_days.act", self.sla_days.act),
            ("sla_days.attend", self.sla_days.attend),
            ("sla_days.track_star", self.sla_days.track_star),
            ("sla_days.track", self.sla_days.track),
        ] {
            if !(0..=3650).contains(&v) {
                out.push(format!("{name} must be between 0 and 3650 days, not {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.epss_poc_threshold) {
            out.push(format!(
                "epss_poc_threshold must be between 0 and 1, not {}",
                self.epss_poc_threshold
            ));
        }
        if !(1..=4).contains(&self.high_mission_max_tier)
            || !(1..=4).contains(&self.medium_mission_max_tier)
        {
            out.push("mission tiers must be between 1 and 4".into());
        }
        out
    }
}

/// The decision for one open CVE on one server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Priority {
    pub decision: Decision,
    pub exploitation: Exploitation,
    pub automatable: bool,
    pub total_impact: bool,
    pub mission: MissionImpact,
    pub due: Date,
    pub overdue: bool,
    /// Proposes an emergency cycle (actively exploited and Act, or internet-exposed critical).
    pub emergency: bool,
    /// What the reasons in words are made of ([`Priority::reasons`]): kept instead of the
    /// words, which a fleet of millions of findings cannot afford to hold.
    #[serde(skip)]
    why: Why,
}

/// The inputs of a decision that its reasons name, beyond the CVE's own facts.
#[derive(Debug, Clone, PartialEq)]
struct Why {
    /// "mission impact high: tier 1 domain controller" (shared by the servers of a mission).
    mission: Arc<str>,
    epss_threshold: f64,
    /// When the SLA clock started, and whether that was the KEV listing (else the fix).
    start: Date,
    kev_started: bool,
    sla_days: i64,
    /// The KEV due date was earlier than the SLA date and won.
    kev_due_won: bool,
}

impl Priority {
    /// The decision's reasons in words, most important first: exploitation, automatable,
    /// technical impact, mission, due date.
    pub fn reasons(&self, cve: &crate::exposure::CveFacts) -> Vec<String> {
        let w = &self.why;
        let mut reasons = Vec::with_capacity(6);
        match self.exploitation {
            Exploitation::Active => {
                if cve.kev {
                    let ransom = if cve.kev_ransomware {
                        ", known ransomware use"
                    } else {
                        ""
                    };
                    match cve.kev_due {
                        Some(d) => {
                            reasons.push(format!("in CISA KEV (federal due date {d}{ransom})"))
                        }
                        None => reasons.push(format!("in CISA KEV{ransom}")),
                    }
                }
                if cve.exploited {
                    reasons.push("Microsoft: exploitation detected".into());
                } else if cve.kev {
                    reasons.push("Microsoft did not flag it exploited; KEV overrides".into());
                }
            }
            Exploitation::Poc => {
                if cve.publicly_disclosed {
                    reasons.push("publicly disclosed before the fix".into());
                }
                if let Some(e) = cve.epss.filter(|e| *e >= w.epss_threshold) {
                    reasons.push(format!(
                        "EPSS {:.3} ≥ {} (likely to be exploited)",
                        e, w.epss_threshold
                    ));
                }
            }
            Exploitation::None => reasons.push(match cve.epss {
                Some(e) => format!("no known exploitation (EPSS {e:.3})"),
                None => "no known exploitation".into(),
            }),
        }
        reasons.push(if self.automatable {
            "automatable: network, no privileges, no user interaction".into()
        } else {
            "not automatable (needs local access, privileges or user interaction)".into()
        });
        let impact_word = cve.impact.as_deref().unwrap_or("impact");
        reasons.push(if self.total_impact {
            format!("total technical impact ({impact_word})")
        } else {
            format!("partial technical impact ({impact_word})")
        });
        reasons.push(w.mission.to_string());
        let sla_text = format!(
            "{} SLA {} days from {} ({})",
            self.decision.label(),
            w.sla_days,
            w.start,
            if w.kev_started {
                "added to KEV"
            } else {
                "fix released"
            }
        );
        reasons.push(if w.kev_due_won {
            format!(
                "due {}: KEV due date is earlier than the {sla_text}",
                self.due
            )
        } else {
            format!("due {}: {sla_text}", self.due)
        });
        reasons
    }
}

/// CISA's coordinator tree.
pub fn ssvc(e: Exploitation, automatable: bool, total: bool, m: MissionImpact) -> Decision {
    use Decision::*;
    use Exploitation as E;
    use MissionImpact as M;
    match (e, automatable, total, m) {
        (E::None, false, false, _) => Track,
        (E::None, false, true, M::High) => TrackStar,
        (E::None, false, true, _) => Track,
        (E::None, true, _, M::High) => Attend,
        (E::None, true, _, _) => Track,
        (E::Poc, false, false, M::High) => TrackStar,
        (E::Poc, false, false, _) => Track,
        (E::Poc, false, true, M::High) => Attend,
        (E::Poc, false, true, M::Medium) => TrackStar,
        (E::Poc, false, true, M::Low) => Track,
        (E::Poc, true, false, M::High) => Attend,
        (E::Poc, true, false, _) => Track,
        (E::Poc, true, true, M::High) => Attend,
        (E::Poc, true, true, M::Medium) => TrackStar,
        (E::Poc, true, true, M::Low) => Track,
        (E::Active, false, false, M::High) => Attend,
        (E::Active, false, false, _) => Track,
        (E::Active, false, true, M::High) => Act,
        (E::Active, false, true, M::Medium) => Attend,
        (E::Active, false, true, M::Low) => Track,
        (E::Active, true, false, M::High) => Act,
        (E::Active, true, false, _) => Attend,
        (E::Active, true, true, M::Low) => Attend,
        (E::Active, true, true, _) => Act,
    }
}

/// Mission & well-being impact of a server, with the reason in words.
pub fn mission_impact(server: &Server, policy: &Policy) -> (MissionImpact, String) {
    let tier = server.tier.0;
    let infra: Vec<&str> = server
        .roles
        .iter()
        .filter(|r| r.is_infrastructure())
        .map(|r| r.label())
        .collect();
    let (mut level, mut why) = if tier <= policy.high_mission_max_tier {
        (MissionImpact::High, format!("tier {tier}"))
    } else if policy.infrastructure_is_high && !infra.is_empty() {
        (
            MissionImpact::High,
            format!("tier {tier} {}", infra.join("/")),
        )
    } else if tier <= policy.medium_mission_max_tier {
        (MissionImpact::Medium, format!("tier {tier}"))
    } else {
        (MissionImpact::Low, format!("tier {tier}"))
    };
    if !infra.is_empty() && !why.contains(infra[0]) {
        why = format!("{why} {}", infra.join("/"));
    }
    if policy.internet_exposure_raises && server.exposure != InternetExposure::Internal {
        let what = if server.exposure == InternetExposure::Exposed {
            "internet-exposed"
        } else {
            "partly exposed (DMZ)"
        };
        if server.exposure == InternetExposure::Exposed || level == MissionImpact::Low {
            level = match level {
                MissionImpact::Low => MissionImpact::Medium,
                _ => MissionImpact::High,
            };
        }
        why = format!("{why}, {what}");
    }
    (
        level,
        format!(
            "mission impact {}: {why}",
            match level {
                MissionImpact::High => "high",
                MissionImpact::Medium => "medium",
                MissionImpact::Low => "low",
            }
        ),
    )
}

/// Decide one open CVE on one server as of a date.
pub fn prioritise(cve: &OpenCve, server: &Server, policy: &Policy, as_of: Date) -> Priority {
    let (level, why) = mission_impact(server, policy);
    prioritise_for(
        cve,
        &(level, Arc::from(why)),
        server.exposure,
        policy,
        as_of,
    )
}

/// Decide one open CVE for a server whose mission impact is already known.
pub fn prioritise_for(
    cve: &crate::exposure::CveFacts,
    (mission, why): &(MissionImpact, Arc<str>),
    exposure: InternetExposure,
    policy: &Policy,
    as_of: Date,
) -> Priority {
    let mission = *mission;
    let exploitation = if cve.kev || cve.exploited {
        Exploitation::Active
    } else if cve.publicly_disclosed || cve.epss.is_some_and(|e| e >= policy.epss_poc_threshold) {
        Exploitation::Poc
    } else {
        Exploitation::None
    };
    let facts = cve.cvss_vector.as_deref().and_then(CvssFacts::parse);
    let automatable = facts.is_some_and(|f| f.automatable());
    let total_impact = match facts {
        Some(f) => f.total_impact(),
        None => cve.impact.as_deref().is_some_and(|i| {
            i.eq_ignore_ascii_case("Remote Code Execution")
                || i.eq_ignore_ascii_case("Elevation of Privilege")
        }),
    };
    let decision = ssvc(exploitation, automatable, total_impact, mission);

    // The SLA clock starts when a fix existed for this product: MSRC re-releases old CVEs with
    // new fixes (e.g. a 2024 CVE first fixed for Server 2022 in 2025).
    let fix_date = cve
        .released
        .max(cve.fix_released)
        .map(|t: Timestamp| t.to_zoned_datetime(jiff::tz::TimeZone::UTC).date())
        .unwrap_or(as_of);
    // Exploitation known only from KEV starts its clock when CISA added it: a CVE that was
    // "Track" for a year is not a year overdue the day it turns "Act".
    let start = match cve.kev_added {
        Some(added) if exploitation == Exploitation::Active && !cve.exploited => {
            fix_date.max(added)
        }
        _ => fix_date,
    };
    let sla_days = policy.sla(decision);
    let mut due = start
        .checked_add(Span::new().days(sla_days))
        .unwrap_or(start);
    let kev_due_won = match cve.kev_due {
        Some(k) if policy.kev_due_wins && k < due => {
            due = k;
            true
        }
        _ => false,
    };
    let overdue = due < as_of;
    let critical = cve.severity == Some("Critical");
    let emergency = (exploitation == Exploitation::Active && decision == Decision::Act)
        || (exposure == InternetExposure::Exposed && critical && automatable);
    Priority {
        decision,
        exploitation,
        automatable,
        total_impact,
        mission,
        due,
        overdue,
        emergency,
        why: Why {
            mission: why.clone(),
            epss_threshold: policy.epss_poc_threshold,
            start,
            kev_started: start > fix_date,
            sla_days,
            kev_due_won,
        },
    }
}

/// The priorities computed for one facts slot, by mission id.
type SlotPriorities = Vec<(u32, Arc<Priority>)>;

/// Priorities depend only on a CVE's facts (with its fix date) and the server's mission, so a
/// fleet shares them: one cache per assessment run (same policy, same date).
#[derive(Default)]
pub struct PriorityCache {
    /// Interned (mission, its reason, exposure) of the servers seen so far.
    missions: HashMap<(MissionImpact, Arc<str>, InternetExposure), u32>,
    /// Per facts slot: the priorities computed for it, by mission id (a fleet has few
    /// missions per CVE, so a short list beats a hash lookup per finding).
    table: Vec<SlotPriorities>,
    /// One server's assessment touches a few hundred slots of hundreds of thousands: a map
    /// instead of the dense table, which would be allocated and dropped whole per server.
    sparse: Option<HashMap<u32, SlotPriorities>>,
}

impl PriorityCache {
    /// A cache for one server (see `sparse`).
    pub fn sparse() -> PriorityCache {
        PriorityCache {
            sparse: Some(HashMap::default()),
            ..PriorityCache::default()
        }
    }

    fn mission_id(
        &mut self,
        index: &crate::exposure::ExposureIndex,
        mission: &(MissionImpact, Arc<str>),
        exposure: InternetExposure,
    ) -> u32 {
        if self.sparse.is_none() && self.table.len() < index.slots() {
            self.table.resize_with(index.slots(), Vec::new);
        }
        let next = self.missions.len() as u32;
        *self
            .missions
            .entry((mission.0, mission.1.clone(), exposure))
            .or_insert(next)
    }

    fn get(
        &mut self,
        slot: u32,
        mission_id: u32,
        make: impl FnOnce() -> Priority,
    ) -> &Arc<Priority> {
        let list = match &mut self.sparse {
            Some(map) => map.entry(slot).or_default(),
            None => &mut self.table[slot as usize],
        };
        let at = match list.iter().position(|(m, _)| *m == mission_id) {
            Some(i) => i,
            None => {
                list.push((mission_id, Arc::new(make())));
                list.len() - 1
            }
        };
        &list[at].1
    }
}

/// A server's mission with its reason shared (interned per cache).
fn mission_of(server: &Server, policy: &Policy) -> (MissionImpact, Arc<str>) {
    let (level, why) = mission_impact(server, policy);
    (level, Arc::from(why))
}

/// Exposure plus a priority for every open CVE, most urgent first.
pub fn assess_server(
    index: &crate::exposure::ExposureIndex,
    server: &Server,
    policy: &Policy,
    as_of: Date,
) -> crate::exposure::ServerExposure {
    assess_server_cached(index, server, policy, as_of, &mut PriorityCache::sparse())
}

/// [`assess_server`] sharing priorities across servers through `cache`.
pub fn assess_server_cached(
    index: &crate::exposure::ExposureIndex,
    server: &Server,
    policy: &Policy,
    as_of: Date,
    cache: &mut PriorityCache,
) -> crate::exposure::ServerExposure {
    let mut e = index.assess(server, as_of);
    prioritise_exposure(&mut e, index, server, policy, as_of, cache);
    e
}

/// Give every open CVE of an assessed server its priority, most urgent first.
pub fn prioritise_exposure(
    e: &mut crate::exposure::ServerExposure,
    index: &crate::exposure::ExposureIndex,
    server: &Server,
    policy: &Policy,
    as_of: Date,
    cache: &mut PriorityCache,
) {
    let mission = mission_of(server, policy);
    let id = cache.mission_id(index, &mission, server.exposure);
    for c in &mut e.open_cves {
        let p = cache.get(c.slot, id, || {
            prioritise_for(c, &mission, server.exposure, policy, as_of)
        });
        c.priority = Some(p.clone());
    }
    // Most urgent first: decision, due date, CVSS (highest first), CVE id. Keys are read once
    // per finding, not once per comparison.
    e.open_cves.sort_by_cached_key(|c| {
        (
            c.priority
                .as_ref()
                .map(|p| (std::cmp::Reverse(p.decision), p.due)),
            std::cmp::Reverse(c.cvss.map(|v| (v * 10.0).round() as i32)),
            c.order,
        )
    });
}

/// What decides a server's exposure: servers alike in all of it are in the same patch state
/// and have the same open CVEs (fleets built from one image and patched in rings share a few).
type PatchState<'s> = (
    &'s str,
    Option<ServerRelease>,
    Option<crate::build::OsBuild>,
    Option<crate::product::Installation>,
    bool,
    &'s std::collections::BTreeSet<crate::catalog::Kb>,
);

fn patch_state(s: &Server) -> PatchState<'_> {
    (
        s.os.as_str(),
        s.release,
        s.build,
        s.installation,
        s.hotpatch,
        &s.installed_kbs,
    )
}

/// The servers' indices, grouped by patch state (each group assessed once).
fn by_patch_state(servers: &[Server]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..servers.len()).collect();
    order.sort_by(|a, b| patch_state(&servers[*a]).cmp(&patch_state(&servers[*b])));
    order
}

/// [`assess_server_cached`] for many servers: each patch state is assessed once and its
/// findings shared (then prioritised per server). Results are in the order of `servers`.
pub fn assess_fleet(
    index: &crate::exposure::ExposureIndex,
    servers: &[Server],
    policy: &Policy,
    as_of: Date,
    cache: &mut PriorityCache,
) -> Vec<crate::exposure::ServerExposure> {
    let mut out: Vec<Option<crate::exposure::ServerExposure>> = vec![None; servers.len()];
    let mut last: Option<(usize, crate::exposure::ServerExposure)> = None;
    for i in by_patch_state(servers) {
        let s = &servers[i];
        let mut e = match &last {
            Some((j, base)) if patch_state(&servers[*j]) == patch_state(s) => {
                let mut e = base.clone();
                e.name.clone_from(&s.name);
                e
            }
            _ => {
                let base = index.assess(s, as_of);
                last = Some((i, base.clone()));
                base
            }
        };
        prioritise_exposure(&mut e, index, s, policy, as_of, cache);
        out[i] = Some(e);
    }
    out.into_iter().flatten().collect()
}

/// [`summarise_server`] for many servers, each patch state scanned once.
pub fn summarise_fleet(
    index: &crate::exposure::ExposureIndex,
    servers: &[Server],
    policy: &Policy,
    as_of: Date,
    cache: &mut PriorityCache,
) -> Vec<ServerSummary> {
    let mut out: Vec<Option<ServerSummary>> = vec![None; servers.len()];
    // The last state's exposure and its open CVEs (shared facts only).
    let mut last: Option<(
        usize,
        crate::exposure::ServerExposure,
        Vec<Arc<crate::exposure::CveFacts>>,
    )> = None;
    for i in by_patch_state(servers) {
        let s = &servers[i];
        if !matches!(&last, Some((j, _, _)) if patch_state(&servers[*j]) == patch_state(s)) {
            let mut open = Vec::new();
            let e = index.scan(s, as_of, |facts, _| open.push(facts.clone()));
            last = Some((i, e, open));
        }
        let Some((_, head, open)) = &last else {
            continue;
        };
        let mut sum = count(index, s, policy, as_of, cache, open.iter());
        sum.exposure = head.clone();
        sum.exposure.name.clone_from(&s.name);
        out[i] = Some(sum);
    }
    out.into_iter().flatten().collect()
}

/// What a fleet view needs of a server: its exposure without findings, and counts. Built
/// without materialising a single finding (see [`crate::exposure::ExposureIndex::scan`]).
#[derive(Debug, Clone, Serialize)]
pub struct ServerSummary {
    #[serde(flatten)]
    pub exposure: crate::exposure::ServerExposure,
    pub open: usize,
    /// Open CVEs per decision: Track, Track*, Attend, Act.
    pub by_decision: [usize; 4],
    pub kev: usize,
    pub overdue: usize,
    pub emergency: usize,
    /// The most urgent decision and its earliest due date.
    pub worst: Option<(Decision, Date)>,
}

/// [`assess_server_cached`] reduced to counts, for fleets: the same decisions, nothing kept
/// per finding.
pub fn summarise_server(
    index: &crate::exposure::ExposureIndex,
    server: &Server,
    policy: &Policy,
    as_of: Date,
    cache: &mut PriorityCache,
) -> ServerSummary {
    let mut open = Vec::new();
    let exposure = index.scan(server, as_of, |facts, _| open.push(facts.clone()));
    let mut sum = count(index, server, policy, as_of, cache, open.iter());
    sum.exposure = exposure;
    sum
}

/// [`summarise_server`] counting only the open CVEs `keep` accepts (the workflow leaves
/// findings under an active exception out of the open counts). Returns the summary and how
/// many open CVEs were left out.
pub fn summarise_server_filtered(
    index: &crate::exposure::ExposureIndex,
    server: &Server,
    policy: &Policy,
    as_of: Date,
    cache: &mut PriorityCache,
    keep: impl Fn(&crate::exposure::CveFacts) -> bool,
) -> (ServerSummary, usize) {
    let mut open = Vec::new();
    let mut left_out = 0;
    let exposure = index.scan(server, as_of, |facts, _| {
        if keep(facts) {
            open.push(facts.clone());
        } else {
            left_out += 1;
        }
    });
    let mut sum = count(index, server, policy, as_of, cache, open.iter());
    sum.exposure = exposure;
    (sum, left_out)
}

/// Each open CVE of a server with its priority, without building the server's findings (the
/// same decisions as [`assess_server_cached`]; what the dashboard's emergency proposals scan).
pub fn for_each_open_priority(
    index: &crate::exposure::ExposureIndex,
    server: &Server,
    policy: &Policy,
    as_of: Date,
    cache: &mut PriorityCache,
    mut f: impl FnMut(&Arc<crate::exposure::CveFacts>, &Priority),
) {
    let mut open = Vec::new();
    index.scan(server, as_of, |facts, _| open.push(facts.clone()));
    let mission = mission_of(server, policy);
    let id = cache.mission_id(index, &mission, server.exposure);
    for facts in &open {
        let p = cache.get(facts.slot, id, || {
            prioritise_for(facts, &mission, server.exposure, policy, as_of)
        });
        f(facts, p);
    }
}

/// Counts of a server's open CVEs by their priorities (exposure left empty).
fn count<'f>(
    index: &crate::exposure::ExposureIndex,
    server: &Server,
    policy: &Policy,
    as_of: Date,
    cache: &mut PriorityCache,
    open: impl Iterator<Item = &'f Arc<crate::exposure::CveFacts>>,
) -> ServerSummary {
    let mission = mission_of(server, policy);
    let id = cache.mission_id(index, &mission, server.exposure);
    let mut sum = ServerSummary {
        exposure: crate::exposure::ServerExposure::empty(&server.name),
        open: 0,
        by_decision: [0; 4],
        kev: 0,
        overdue: 0,
        emergency: 0,
        worst: None,
    };
    for facts in open {
        let p = cache.get(facts.slot, id, || {
            prioritise_for(facts, &mission, server.exposure, policy, as_of)
        });
        sum.open += 1;
        sum.by_decision[p.decision as usize] += 1;
        sum.kev += usize::from(facts.kev);
        sum.overdue += usize::from(p.overdue);
        sum.emergency += usize::from(p.emergency);
        if sum
            .worst
            .is_none_or(|(d, due)| p.decision > d || (p.decision == d && p.due < due))
        {
            sum.worst = Some((p.decision, p.due));
        }
    }
    sum
}

/// The most urgent decision on a server (for sorting a fleet).
pub fn worst(e: &crate::exposure::ServerExposure) -> Option<(Decision, Date)> {
    e.open_cves
        .iter()
        .filter_map(|c| c.priority.as_ref().map(|p| (p.decision, p.due)))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_corners() {
        assert_eq!(
            ssvc(Exploitation::None, false, false, MissionImpact::Low),
            Decision::Track
        );
        assert_eq!(
            ssvc(Exploitation::None, false, true, MissionImpact::High),
            Decision::TrackStar
        );
        assert_eq!(
            ssvc(Exploitation::Active, true, true, MissionImpact::High),
            Decision::Act
        );
        assert_eq!(
            ssvc(Exploitation::Active, false, true, MissionImpact::Medium),
            Decision::Attend
        );
        assert_eq!(
            ssvc(Exploitation::Poc, true, true, MissionImpact::Medium),
            Decision::TrackStar
        );
        assert_eq!(
            ssvc(Exploitation::Active, true, false, MissionImpact::Low),
            Decision::Attend
        );
    }

    #[test]
    fn tree_is_monotone_in_every_input() {
        let es = [Exploitation::None, Exploitation::Poc, Exploitation::Active];
        let ms = [
            MissionImpact::Low,
            MissionImpact::Medium,
            MissionImpact::High,
        ];
        for (i, e) in es.iter().enumerate() {
            for a in [false, true] {
                for t in [false, true] {
                    for (j, m) in ms.iter().enumerate() {
                        let d = ssvc(*e, a, t, *m);
                        if i + 1 < es.len() {
                            assert!(ssvc(es[i + 1], a, t, *m) >= d);
                        }
                        if j + 1 < ms.len() {
                            assert!(ssvc(*e, a, t, ms[j + 1]) >= d);
                        }
                        assert!(ssvc(*e, true, t, *m) >= d);
                        assert!(ssvc(*e, a, true, *m) >= d);
                    }
                }
            }
        }
    }
}
