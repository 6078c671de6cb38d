//! The dashboard (UI-GUIDE: "within SLA? what needs me today?") and emergency proposals
//! (PRODUCT.md C4: KEV or exploited, or internet-exposed and critical, proposes an emergency
//! cycle). Counts come from the same fleet view as the server list, so they agree with it.

use super::exceptions::view as exception_view;
use super::{decode, rules_of};
use crate::fleet::{FleetView, owns};
use crate::{Actor, App, AppError, Result};
use jiff::ToSpan;
use jiff::civil::Date;
use patchward_core::access::{Permission, Role};
use patchward_core::exposure::CveFacts;
use patchward_core::priority::{Decision, Policy, PriorityCache, for_each_open_priority};
use patchward_core::workflow::{Cycle, CycleKind, Exception, ExceptionStatus};
use patchward_proto::{Dashboard, EmergencyProposal, StaleFeed, TrendPoint};
use patchward_store::{ControlStore, TenantId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A CVE open on some servers that calls for an emergency cycle.
#[derive(Debug)]
pub struct Emergency {
    pub cve: String,
    pub title: String,
    pub why: Vec<String>,
    pub kev: bool,
    pub ransomware: bool,
    /// Positions in the fleet view.
    pub servers: Vec<u32>,
    pub fixed_by: BTreeSet<String>,
}

/// Every open, unexcepted CVE that is in KEV, exploited, or internet-exposed and critical
/// (the priority's emergency flag), with the servers it is open on. Only servers whose counts
/// show a KEV or emergency finding, or an Act/Attend one (exploitation raises a decision to
/// Attend at least), are scanned; priorities come from a shared cache, as for the counts.
fn find_emergencies(fleet: &FleetView, policy: &Policy) -> Vec<Emergency> {
    let candidates: Vec<usize> = (0..fleet.servers.len())
        .filter(|&i| {
            let sum = &fleet.summaries[i];
            sum.kev > 0
                || sum.emergency > 0
                || sum.by_decision[Decision::Act as usize] > 0
                || sum.by_decision[Decision::Attend as usize] > 0
        })
        .collect();
    // (cve, position, facts, internet-critical) found per thread, merged below.
    type Hit = (Arc<CveFacts>, u32, bool);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = candidates.len().div_ceil(threads).max(64);
    let hits: Vec<Hit> = std::thread::scope(|scope| {
        let handles: Vec<_> = candidates
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut cache = PriorityCache::sparse();
                    let mut out = Vec::new();
                    for &i in part {
                        let s = &fleet.servers[i];
                        for_each_open_priority(
                            &fleet.index,
                            s,
                            policy,
                            fleet.as_of,
                            &mut cache,
                            |f, p| {
                                if (f.kev || f.exploited || p.emergency)
                                    && fleet.exceptions.covering(&s.name, f).is_none()
                                {
                                    let internet_critical = p.emergency && !f.kev && !f.exploited;
                                    out.push((f.clone(), i as u32, internet_critical));
                                }
                            },
                        );
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut by_cve: BTreeMap<String, Emergency> = BTreeMap::new();
    for (f, i, internet_critical) in hits {
        let e = by_cve
            .entry(f.cve.to_string())
            .or_insert_with(|| Emergency {
                cve: f.cve.to_string(),
                title: f.title.to_string(),
                why: Vec::new(),
                kev: f.kev,
                ransomware: f.kev_ransomware,
                servers: Vec::new(),
                fixed_by: BTreeSet::new(),
            });
        if !e.servers.contains(&i) {
            e.servers.push(i);
        }
        e.fixed_by.insert(f.install.to_string());
        let mut reasons = Vec::new();
        if f.kev {
            reasons.push(match f.kev_added {
                Some(d) => format!("in CISA KEV since {d}"),
                None => "in CISA KEV".to_string(),
            });
        }
        if f.kev_ransomware {
            reasons.push("used in ransomware campaigns (KEV)".into());
        }
        if f.exploited {
            reasons.push("exploited (MSRC)".into());
        }
        if internet_critical {
            reasons.push("critical on an internet-exposed server".into());
        }
        for r in reasons {
            if !e.why.contains(&r) {
                e.why.push(r);
            }
        }
    }
    let mut out: Vec<Emergency> = by_cve.into_values().collect();
    for e in &mut out {
        e.servers.sort_unstable();
    }
    out.sort_by(|a, b| {
        (b.ransomware, b.kev, b.servers.len())
            .cmp(&(a.ransomware, a.kev, a.servers.len()))
            .then(b.cve.cmp(&a.cve))
    });
    out
}

impl<S: ControlStore> App<S> {
    /// The fleet's emergencies, found once per fleet view (concurrent callers wait for the
    /// one search).
    pub(crate) async fn emergencies(&self, fleet: &Arc<FleetView>) -> Result<Arc<Vec<Emergency>>> {
        let found = fleet
            .emergencies
            .get_or_try_init(|| async {
                let (fl, policy) = (fleet.clone(), self.policy().clone());
                tokio::task::spawn_blocking(move || Arc::new(find_emergencies(&fl, &policy)))
                    .await
                    .map_err(|e| AppError::internal(e.to_string()))
            })
            .await?;
        Ok(found.clone())
    }

    /// `GET /api/v1/emergencies`: CVEs that call for an emergency cycle, most urgent first,
    /// with the emergency cycle already made for each (owners: counted on their servers).
    pub async fn emergency_proposals(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<Vec<EmergencyProposal>> {
        actor.require(Permission::Read)?;
        let fleet = self.fleet(tenant).await?;
        let found = self.emergencies(&fleet).await?;
        let mut made: BTreeMap<String, i64> = BTreeMap::new();
        for rec in self.store.cycles(tenant).await? {
            let c: Cycle = decode("cycle", rec.id, &rec.body)?;
            if c.kind == CycleKind::Emergency
                && c.state.is_open()
                && let Some(cve) = c.filter.cve
            {
                made.entry(cve).or_insert(rec.id);
            }
        }
        let mut out = Vec::new();
        for e in found.iter() {
            let servers: Vec<usize> = e
                .servers
                .iter()
                .map(|&i| i as usize)
                .filter(|&i| actor.role != Role::Owner || owns(actor, &fleet.servers[i]))
                .collect();
            if servers.is_empty() {
                continue;
            }
            out.push(EmergencyProposal {
                cve: e.cve.clone(),
                title: e.title.clone(),
                why: e.why.clone(),
                kev: e.kev,
                ransomware: e.ransomware,
                servers: servers.len() as u32,
                examples: servers
                    .iter()
                    .take(10)
                    .map(|&i| fleet.servers[i].name.clone())
                    .collect(),
                fixed_by: e.fixed_by.iter().cloned().collect(),
                cycle_id: made.get(&e.cve).copied(),
            });
        }
        Ok(out)
    }

    /// `GET /api/v1/dashboard`.
    pub async fn dashboard(&self, actor: &Actor, tenant: TenantId) -> Result<Dashboard> {
        actor.require(Permission::Read)?;
        let today = self.today();
        let summary = self.exposure_summary(actor, tenant).await?;
        let fleet = self.fleet(tenant).await?;
        let soon = today.checked_add(3.days()).unwrap_or(today);
        let act_due_soon_servers = fleet
            .servers
            .iter()
            .zip(&fleet.summaries)
            .filter(|(s, sum)| {
                (actor.role != Role::Owner || owns(actor, s))
                    && sum
                        .worst
                        .is_some_and(|(d, due): (Decision, Date)| d == Decision::Act && due <= soon)
            })
            .count() as u32;
        let stale_feeds = crate::feeds::summarise(&self.store.feed_status().await?, today)
            .into_iter()
            .filter(|l| l.stale)
            .map(|l| StaleFeed {
                max_age_days: crate::feeds::max_age_days(&l.feed),
                as_of: l.newest.map(|t| t.strftime("%Y-%m-%d").to_string()),
                feed: l.feed,
            })
            .collect();
        let mut expiring = Vec::new();
        for r in self.store.exceptions(tenant).await? {
            let e: Exception = decode("exception", r.id, &r.body)?;
            let pos = fleet.position_named(&e.server);
            if actor.role == Role::Owner && !pos.is_some_and(|i| owns(actor, &fleet.servers[i])) {
                continue;
            }
            if e.status(today) == ExceptionStatus::Expiring {
                expiring.push(exception_view(r.id, &e, pos.map(|i| fleet.ids[i]), today));
            }
        }
        expiring.sort_by(|a, b| a.expires.cmp(&b.expires));
        let rules = rules_of(&self.store, tenant).await?;
        let _ = &rules;
        let all = self.cycles(actor, tenant).await?;
        let mut trend = Vec::new();
        for rec in self.store.cycles(tenant).await? {
            let c: Cycle = decode("cycle", rec.id, &rec.body)?;
            if let Some(s) = c.snapshot {
                trend.push(TrendPoint {
                    label: c.name,
                    at: s.at.to_string(),
                    open: s.open,
                    act: s.act,
                    kev: s.kev,
                });
            }
        }
        trend.sort_by(|a, b| a.at.cmp(&b.at));
        let keep = trend.len().saturating_sub(11);
        trend.drain(..keep);
        trend.push(TrendPoint {
            label: "now".into(),
            at: self.now().to_string(),
            open: summary.open,
            act: summary.act,
            kev: summary.kev,
        });
        let mut proposals = self.emergency_proposals(actor, tenant).await?;
        proposals.truncate(5);
        Ok(Dashboard {
            summary,
            act_due_soon_servers,
            stale_feeds,
            expiring,
            cycles: all
                .into_iter()
                .filter(|c| !matches!(c.state.as_str(), "completed" | "cancelled"))
                .collect(),
            trend,
            proposals,
        })
    }
}
