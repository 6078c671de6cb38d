//! Assessing fleets: exposure and priorities of every server, cached per tenant and keyed by
//! the store's revisions (so a cache is only ever a cache), and the read use cases over it:
//! the server list with filters, a server's findings, the fleet summary, a CVE's exposure.

use crate::wire::{self, decision_word};
use crate::workflow::ActiveExceptions;
use crate::{Actor, App, AppError, Result};
use jiff::civil::Date;
use patchward_core::access::{Permission, Role};
use patchward_core::exposure::{ExposureIndex, ServerExposure};
use patchward_core::intel::SupportPhase;
use patchward_core::inventory::Server;
use patchward_core::priority::{
    Decision, Policy, PriorityCache, ServerSummary, assess_fleet, assess_server, summarise_fleet,
    summarise_server_filtered, worst,
};
use patchward_proto::{
    CveExposure, ExposedServer, ExposureSummary, ServerDetail, ServerPage, ServerQuery,
};
use patchward_store::{ControlStore, TenantId};
use std::sync::Arc;

/// Assess servers against a catalog, most urgent first (the CLI's `assess`, the demo, benches).
pub fn assess_all(
    index: &ExposureIndex,
    servers: &[Server],
    policy: &Policy,
    as_of: Date,
) -> Vec<ServerExposure> {
    let mut out = on_all_cores(servers, |part, cache| {
        assess_fleet(index, part, policy, as_of, cache)
    });
    // Most urgent first: worst decision, then earliest due, then most open, then name.
    out.sort_by_cached_key(|s| {
        let w = worst(s);
        (
            std::cmp::Reverse(w.map(|k| k.0)),
            w.map(|k| k.1),
            std::cmp::Reverse(s.open_cves.len()),
            s.name.to_lowercase(),
        )
    });
    out
}

/// Counts per server (decisions, KEV, overdue) without keeping findings, in input order.
pub fn summarise_in_order(
    index: &ExposureIndex,
    servers: &[Server],
    policy: &Policy,
    as_of: Date,
) -> Vec<ServerSummary> {
    on_all_cores(servers, |part, cache| {
        summarise_fleet(index, part, policy, as_of, cache)
    })
}

/// [`summarise_in_order`], most urgent first (same order as [`assess_all`]).
pub fn summarise_all(
    index: &ExposureIndex,
    servers: &[Server],
    policy: &Policy,
    as_of: Date,
) -> Vec<ServerSummary> {
    let mut out = summarise_in_order(index, servers, policy, as_of);
    out.sort_by_cached_key(urgency);
    out
}

fn urgency(
    s: &ServerSummary,
) -> (
    std::cmp::Reverse<Option<Decision>>,
    Option<Date>,
    std::cmp::Reverse<usize>,
    String,
) {
    (
        std::cmp::Reverse(s.worst.map(|k| k.0)),
        s.worst.map(|k| k.1),
        std::cmp::Reverse(s.open),
        s.exposure.name.to_lowercase(),
    )
}

/// Servers are independent: split them over the cores, one priority cache per thread.
fn on_all_cores<T: Send>(
    servers: &[Server],
    f: impl Fn(&[Server], &mut PriorityCache) -> Vec<T> + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = servers.len().div_ceil(threads).max(64);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = servers
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut cache = PriorityCache::default();
                    f(part, &mut cache)
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// A tenant's assessed fleet: servers with their ids and summaries, in name order.
pub struct FleetView {
    key: (i64, String, Date),
    pub as_of: Date,
    /// The index the fleet was assessed with.
    pub index: Arc<ExposureIndex>,
    pub ids: Vec<i64>,
    pub servers: Vec<Server>,
    pub summaries: Vec<ServerSummary>,
    /// Positions most urgent first, and by name: sorted once, not per request.
    by_urgency: Vec<u32>,
    by_name: Vec<u32>,
    by_id: std::collections::HashMap<i64, u32>,
    /// Lower-case "name fqdn" per server, for search.
    search: Vec<Box<str>>,
    by_lower_name: std::collections::HashMap<String, u32>,
    /// Exceptions active on `as_of`, and per server how many open CVEs they cover (left out
    /// of `summaries`).
    pub exceptions: Arc<ActiveExceptions>,
    pub excepted: Vec<u32>,
    /// CVEs calling for an emergency cycle, found once per fleet (the dashboard's proposals).
    pub(crate) emergencies: tokio::sync::OnceCell<Arc<Vec<crate::workflow::Emergency>>>,
}

impl FleetView {
    fn new(
        key: (i64, String, Date),
        index: Arc<ExposureIndex>,
        ids: Vec<i64>,
        servers: Vec<Server>,
        summaries: Vec<ServerSummary>,
        exceptions: Arc<ActiveExceptions>,
        excepted: Vec<u32>,
    ) -> FleetView {
        let n = servers.len() as u32;
        let mut by_urgency: Vec<u32> = (0..n).collect();
        by_urgency.sort_by_cached_key(|&i| urgency(&summaries[i as usize]));
        let mut by_name: Vec<u32> = (0..n).collect();
        by_name.sort_by_cached_key(|&i| servers[i as usize].name.to_ascii_lowercase());
        let search = servers
            .iter()
            .map(|s| {
                format!("{} {}", s.name, s.fqdn.as_deref().unwrap_or(""))
                    .to_ascii_lowercase()
                    .into_boxed_str()
            })
            .collect();
        let by_id = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i as u32))
            .collect();
        let by_lower_name = servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.to_ascii_lowercase(), i as u32))
            .collect();
        FleetView {
            index,
            by_id,
            by_lower_name,
            exceptions,
            excepted,
            emergencies: tokio::sync::OnceCell::new(),
            as_of: key.2,
            key,
            ids,
            servers,
            summaries,
            by_urgency,
            by_name,
            search,
        }
    }
}

impl FleetView {
    /// The position of a server by name (ASCII case-insensitive).
    pub fn position_named(&self, name: &str) -> Option<usize> {
        self.by_lower_name
            .get(&name.trim().to_ascii_lowercase())
            .map(|&i| i as usize)
    }

    /// The position of a server by id.
    pub fn position(&self, id: i64) -> Option<usize> {
        self.by_id.get(&id).map(|&i| i as usize)
    }
}

/// Whether an owner-role actor owns the server (by owner name or e-mail, case-insensitive).
pub(crate) fn owns(actor: &Actor, s: &Server) -> bool {
    s.owner.as_ref().is_some_and(|o| {
        o.name.eq_ignore_ascii_case(&actor.name)
            || o.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(&actor.name))
    })
}

fn visible(actor: &Actor, s: &Server) -> bool {
    actor.role != Role::Owner || owns(actor, s)
}

/// Whether a server runs the release `r` (`2022`, `Windows Server 2022`, ...).
pub(crate) fn release_matches(s: &Server, sum: &ServerSummary, r: &str) -> bool {
    s.release.or(sum.exposure.release).is_some_and(|x| {
        let full = x.to_string();
        let short = full.trim_start_matches("Windows Server ");
        full.eq_ignore_ascii_case(r.trim()) || short.eq_ignore_ascii_case(r.trim())
    })
}

pub(crate) fn parse_decision(s: &str) -> Option<Decision> {
    match s.to_ascii_lowercase().as_str() {
        "act" => Some(Decision::Act),
        "attend" => Some(Decision::Attend),
        "track*" | "track-star" | "track_star" => Some(Decision::TrackStar),
        "track" => Some(Decision::Track),
        _ => None,
    }
}

pub(crate) fn check_cve(cve: &str) -> Result<String> {
    let up = cve.trim().to_ascii_uppercase();
    let ok = up.strip_prefix("CVE-").is_some_and(|rest| {
        let mut parts = rest.split('-');
        matches!((parts.next(), parts.next(), parts.next()),
            (Some(y), Some(n), None) if y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit())
                && (4..=9).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if ok {
        Ok(up)
    } else {
        Err(AppError::field(
            "cve",
            format!("{cve:?} is not a CVE id like CVE-2024-38063"),
        ))
    }
}

impl<S: ControlStore> App<S> {
    /// The exposure index of the stored catalog, built once per catalog revision (off the
    /// async runtime) and shared by every request.
    pub async fn index(&self) -> Result<Arc<ExposureIndex>> {
        let rev = self.store.catalog_revision().await?;
        let mut slot = self.intel.lock().await;
        if let Some((r, ix)) = slot.as_ref()
            && *r == rev
        {
            return Ok(ix.clone());
        }
        let catalog = self.store.catalog().await?;
        let ix = tokio::task::spawn_blocking(move || Arc::new(ExposureIndex::new(catalog)))
            .await
            .map_err(|e| AppError::internal(e.to_string()))?;
        *slot = Some((rev, ix.clone()));
        Ok(ix)
    }

    /// The tenant's fleet, assessed as of today; recomputed when the estate, the catalog or
    /// the date changed.
    pub async fn fleet(&self, tenant: TenantId) -> Result<Arc<FleetView>> {
        let (rev, cat) = self.store.revisions(tenant).await?;
        let today = self.today();
        let key = (rev, cat, today);
        if let Ok(cache) = self.fleets.lock()
            && let Some(v) = cache.get(&tenant)
            && v.key == key
        {
            return Ok(v.clone());
        }
        // The index (the catalog), the servers and the exceptions are independent reads.
        let (index, stored, exceptions) = tokio::join!(
            self.index(),
            self.store.stored_servers(tenant),
            self.store.exceptions(tenant)
        );
        let (index, stored) = (index?, stored?);
        let active = Arc::new(ActiveExceptions::new(&exceptions?, today)?);
        let policy = self.policy.clone();
        let view = tokio::task::spawn_blocking(move || {
            let (ids, servers): (Vec<i64>, Vec<Server>) =
                stored.into_iter().map(|s| (s.id, s.server)).unzip();
            let mut summaries = summarise_in_order(&index, &servers, &policy, today);
            // Servers with active exceptions: counted again without the excepted findings.
            let mut excepted = vec![0u32; servers.len()];
            let mut cache = PriorityCache::sparse();
            for (i, s) in servers.iter().enumerate() {
                if active.of(&s.name).is_empty() {
                    continue;
                }
                let (sum, left_out) =
                    summarise_server_filtered(&index, s, &policy, today, &mut cache, |f| {
                        active.covering(&s.name, f).is_none()
                    });
                summaries[i] = sum;
                excepted[i] = left_out as u32;
            }
            Arc::new(FleetView::new(
                key, index, ids, servers, summaries, active, excepted,
            ))
        })
        .await
        .map_err(|e| AppError::internal(e.to_string()))?;
        if let Ok(mut cache) = self.fleets.lock() {
            cache.insert(tenant, view.clone());
        }
        Ok(view)
    }

    /// `GET /api/v1/servers`: filters, search, sort and paging over the assessed fleet.
    pub async fn servers_page(
        &self,
        actor: &Actor,
        tenant: TenantId,
        q: &ServerQuery,
    ) -> Result<ServerPage> {
        actor.require(Permission::Read)?;
        let per_page = q.per_page.unwrap_or(50);
        if !(1..=500).contains(&per_page) {
            return Err(AppError::field("per_page", "per_page is 1 to 500"));
        }
        let page = q.page.unwrap_or(1);
        if page == 0 {
            return Err(AppError::field("page", "pages are numbered from 1"));
        }
        let min_decision = match q.decision.as_deref() {
            None => None,
            Some(d) => Some(parse_decision(d).ok_or_else(|| {
                AppError::field(
                    "decision",
                    format!("{d:?} is not a decision (act, attend, track-star, track)"),
                )
            })?),
        };
        let by_name = match q.sort.as_deref() {
            None | Some("urgency") => false,
            Some("name") => true,
            Some(other) => {
                return Err(AppError::field(
                    "sort",
                    format!("{other:?}: sort by `urgency` or `name`"),
                ));
            }
        };
        let fleet = self.fleet(tenant).await?;
        let needle = q.q.as_deref().map(str::to_ascii_lowercase);
        let order = if by_name {
            &fleet.by_name
        } else {
            &fleet.by_urgency
        };
        let hits: Vec<usize> = order
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| {
                let s = &fleet.servers[i];
                let sum = &fleet.summaries[i];
                visible(actor, s)
                    && needle
                        .as_deref()
                        .is_none_or(|n| fleet.search[i].contains(n))
                    && q.release
                        .as_deref()
                        .is_none_or(|r| release_matches(s, sum, r))
                    && q.kev.is_none_or(|k| (sum.kev > 0) == k)
                    && q.overdue.is_none_or(|o| (sum.overdue > 0) == o)
                    && min_decision.is_none_or(|m| sum.worst.is_some_and(|w| w.0 >= m))
                    && q.tag
                        .as_deref()
                        .is_none_or(|t| s.tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
                    && q.ring.as_deref().is_none_or(|r| {
                        s.ring.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(r))
                    })
                    && q.owner.as_deref().is_none_or(|o| {
                        s.owner
                            .as_ref()
                            .is_some_and(|x| x.name.eq_ignore_ascii_case(o))
                    })
                    && q.unsupported.is_none_or(|u| {
                        let out = sum
                            .exposure
                            .support
                            .as_ref()
                            .is_some_and(|p| p.phase == SupportPhase::Unsupported);
                        out == u
                    })
            })
            .collect();
        let total = hits.len() as u64;
        let start = (page as usize - 1).saturating_mul(per_page as usize);
        let items = hits
            .iter()
            .skip(start)
            .take(per_page as usize)
            .map(|&i| {
                wire::item(
                    fleet.ids[i],
                    &fleet.servers[i],
                    &fleet.summaries[i],
                    fleet.excepted[i],
                )
            })
            .collect();
        Ok(ServerPage {
            items,
            total,
            page,
            per_page,
            as_of: fleet.as_of.to_string(),
        })
    }

    /// `GET /api/v1/servers/{id}`: one server's findings with their reasons and what to install.
    /// Another tenant's id, or (owners) a server they do not own, is "not found".
    pub async fn server_detail(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        findings: Option<u32>,
    ) -> Result<ServerDetail> {
        actor.require(Permission::Read)?;
        let limit = findings.unwrap_or(100);
        if limit > 5000 {
            return Err(AppError::field("findings", "findings is 0 to 5000"));
        }
        // The fleet view is current (its revisions were checked) and holds every server.
        let fleet = self.fleet(tenant).await?;
        let at = fleet
            .by_id
            .get(&id)
            .map(|&i| i as usize)
            .filter(|&i| visible(actor, &fleet.servers[i]))
            .ok_or_else(|| AppError::not_found(format!("server {id}")))?;
        let index = fleet.index.clone();
        let policy = self.policy.clone();
        let today = fleet.as_of;
        let detail = tokio::task::spawn_blocking(move || {
            let server = &fleet.servers[at];
            let mut e = assess_server(&index, server, &policy, today);
            let mut excepted = Vec::new();
            let mut open = Vec::with_capacity(e.open_cves.len());
            for c in e.open_cves.drain(..) {
                match fleet.exceptions.covering(&server.name, &c.facts) {
                    Some((id, until)) => excepted.push((c, id, until)),
                    None => open.push(c),
                }
            }
            e.open_cves = open;
            wire::detail(id, server, &e, &excepted, today, limit as usize)
        })
        .await
        .map_err(|e| AppError::internal(e.to_string()))?;
        Ok(detail)
    }

    /// `GET /api/v1/estate`: services, dependencies, windows, blackouts, backup policies,
    /// rings and rollback plans (owners: those that concern their servers).
    pub async fn estate_view(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<patchward_proto::EstateView> {
        actor.require(Permission::Read)?;
        let fleet = self.fleet(tenant).await?;
        let estate = self.store.estate(tenant).await?;
        let servers: Vec<(i64, &Server)> = fleet
            .ids
            .iter()
            .zip(&fleet.servers)
            .filter(|(_, s)| visible(actor, s))
            .map(|(id, s)| (*id, s))
            .collect();
        Ok(wire::estate(&estate, &servers))
    }

    /// `GET /api/v1/exposure`: the fleet's open findings, counted.
    pub async fn exposure_summary(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<ExposureSummary> {
        actor.require(Permission::Read)?;
        let fleet = self.fleet(tenant).await?;
        let mut out = ExposureSummary {
            as_of: fleet.as_of.to_string(),
            servers: 0,
            servers_with_kev: 0,
            servers_with_overdue: 0,
            unsupported: 0,
            open: 0,
            act: 0,
            attend: 0,
            track_star: 0,
            track: 0,
            kev: 0,
            overdue: 0,
            excepted: 0,
        };
        for ((s, sum), excepted) in fleet
            .servers
            .iter()
            .zip(&fleet.summaries)
            .zip(&fleet.excepted)
        {
            if !visible(actor, s) {
                continue;
            }
            out.excepted += u64::from(*excepted);
            out.servers += 1;
            out.servers_with_kev += u32::from(sum.kev > 0);
            out.servers_with_overdue += u32::from(sum.overdue > 0);
            out.unsupported += u32::from(
                sum.exposure
                    .support
                    .as_ref()
                    .is_some_and(|p| p.phase == SupportPhase::Unsupported),
            );
            out.open += sum.open as u64;
            out.track += sum.by_decision[0] as u64;
            out.track_star += sum.by_decision[1] as u64;
            out.attend += sum.by_decision[2] as u64;
            out.act += sum.by_decision[3] as u64;
            out.kev += sum.kev as u64;
            out.overdue += sum.overdue as u64;
        }
        Ok(out)
    }

    /// `GET /api/v1/cves/{cve}`: who in the tenant is exposed to the CVE and what fixes it.
    pub async fn cve_exposure(
        &self,
        actor: &Actor,
        tenant: TenantId,
        cve: &str,
    ) -> Result<CveExposure> {
        actor.require(Permission::Read)?;
        let cve = check_cve(cve)?;
        let index = self.index().await?;
        let Some(v) = index.catalog.vulnerabilities.iter().find(|v| v.cve == cve) else {
            return Err(AppError::not_found(format!(
                "{cve} (not in the imported catalog)"
            )));
        };
        let title = v.title.clone();
        let id = cve.clone();
        let exploited = v.exploited;
        let fleet = self.fleet(tenant).await?;
        let policy = self.policy.clone();
        let actor = actor.clone();
        let as_of = fleet.as_of;
        let (kev, epss) = (
            index.kev(&cve).is_some(),
            index.epss(&cve).map(|e| e.epss as f32),
        );
        let scan_index = index.clone();
        let exposed = tokio::task::spawn_blocking(move || {
            let index = scan_index;
            let mut out = Vec::new();
            for (i, s) in fleet.servers.iter().enumerate() {
                if !visible(&actor, s) {
                    continue;
                }
                let mut hit = false;
                index.scan(s, as_of, |facts, _| hit |= *facts.cve == *cve);
                if !hit {
                    continue;
                }
                let e = assess_server(&index, s, &policy, as_of);
                for c in e.open_cves.iter().filter(|c| *c.facts.cve == *cve) {
                    out.push(ExposedServer {
                        id: fleet.ids[i],
                        name: s.name.clone(),
                        product: c.facts.product_id.to_string(),
                        decision: c
                            .priority
                            .as_ref()
                            .map(|p| decision_word(p.decision).to_string()),
                        due: c.priority.as_ref().map(|p| p.due.to_string()),
                        fixed_by: c.facts.fixed_by.iter().map(|k| k.to_string()).collect(),
                        exception_id: fleet.exceptions.covering(&s.name, &c.facts).map(|x| x.0),
                    });
                }
            }
            out
        })
        .await
        .map_err(|e| AppError::internal(e.to_string()))?;
        let cat = &index.catalog;
        let worst = cat.affected.iter().filter(|a| a.cve == id).max_by(|a, b| {
            a.severity.cmp(&b.severity).then(
                a.cvss_base
                    .partial_cmp(&b.cvss_base)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
        });
        let names: std::collections::HashMap<&str, &str> = cat
            .products
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str()))
            .collect();
        let mut fixes: Vec<patchward_proto::CveFix> = cat
            .fixes
            .iter()
            .filter(|f| f.cve == id)
            .map(|f| patchward_proto::CveFix {
                product: names
                    .get(f.product_id.as_str())
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| f.product_id.clone()),
                kb: f.kb.to_string(),
                fixed_build: f.fixed_build.map(|b| b.to_string()),
            })
            .collect();
        fixes.sort_by(|a, b| a.product.cmp(&b.product).then(a.kb.cmp(&b.kb)));
        fixes.dedup();
        let kev_entry = index.kev(&id);
        Ok(CveExposure {
            kev_added: kev_entry.map(|k| k.date_added.to_string()),
            kev_due: kev_entry.map(|k| k.due.to_string()),
            ransomware: kev_entry.is_some_and(|k| k.known_ransomware),
            severity: worst.and_then(|a| a.severity).map(|s| format!("{s:?}")),
            cvss: worst.and_then(|a| a.cvss_base),
            epss_percentile: index.epss(&id).map(|e| e.percentile as f32),
            cve: id,
            title,
            kev,
            epss,
            exploited,
            exposed,
            fixes,
        })
    }
}
