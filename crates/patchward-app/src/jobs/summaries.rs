//! The other jobs of a cycle, as every offer reads them (ring promotion, dependencies,
//! disruption budgets): their rows without bodies, cached per cycle for a second (up to five
//! while one offer reads them again) and dropped at once when this replica changes the state
//! of one of the cycle's jobs; and where each ring stands on those rows, worked out once per
//! read and second rather than at every check-in. Another replica's writes
//! are seen within the second; the one decision that cannot wait — may this server start now
//! beside its dependencies and its service's other members — is checked again on fresh rows
//! right after the lease is taken ([`App::recheck_neighbours`] in `offer`).

use crate::{App, Result};
use jiff::Timestamp;
use patchward_core::execution::{RingGate, ring_gate};
use patchward_core::inventory::Estate;
use patchward_core::workflow::Cycle;
use patchward_store::{ControlStore, JobRecord, JobSummary, LeaseChange, TenantId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long a cycle's rows are reused.
const FRESH: Duration = Duration::from_secs(1);
/// How old rows may be while another offer reads them again.
const STALE_AT_MOST: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(crate) struct CycleJobsCache(
    Mutex<HashMap<(TenantId, i64), Entry>>,
    /// One read at a time: offers that miss together share the first one's rows.
    tokio::sync::Mutex<()>,
);

/// Per cycle: its decoded body as offers read it (the pause, accepted failures, approvals, the
/// name), for at most a second and dropped at once when this replica writes the cycle. A big
/// cycle's body (its scope of thousands of servers) is megabytes of JSON: decoding it at every
/// check-in of a waiting server is what a fleet cannot afford.
#[derive(Default)]
pub(crate) struct CycleCache(
    Mutex<HashMap<(TenantId, i64), DecodedCycle>>,
    Mutex<HashMap<(TenantId, i64), u64>>,
    /// One decode at a time; meanwhile others use the previous one (a few seconds old).
    tokio::sync::Mutex<()>,
);

/// When it was decoded, at which generation, and the cycle's name and body.
type DecodedCycle = (Instant, u64, Arc<(String, Cycle)>);

/// How long a decoded cycle is reused (another replica's pause is seen within this).
const CYCLE_FRESH: Duration = Duration::from_secs(5);

/// Where a ring stands, per (rows read, decoded cycle, estate, ring, failure budget, second):
/// the same inputs give the same answer, and a fleet's check-ins in one second share it.
#[derive(Default)]
pub(crate) struct RingGates(Mutex<HashMap<GateKey, GateMemo>>);

type GateKey = (usize, usize, usize, String, u32, i64);
/// The inputs held weakly (an address is only reused once its value is gone), and the answer.
type GateMemo = (
    Weak<Vec<JobSummary>>,
    Weak<(String, Cycle)>,
    Weak<Estate>,
    RingGate,
);

#[derive(Default)]
struct Entry {
    /// Bumped by every write of one of the cycle's jobs on this replica.
    generation: u64,
    read: Option<(Instant, u64, Arc<Vec<JobSummary>>)>,
}

impl<S: ControlStore> App<S> {
    /// The cycle's jobs without bodies; `fresh` reads the store whatever the cache holds.
    pub(crate) async fn cycle_summaries(
        &self,
        tenant: TenantId,
        cycle: i64,
        fresh: bool,
    ) -> Result<Arc<Vec<JobSummary>>> {
        if !fresh && let Some(jobs) = self.cached_summaries(tenant, cycle) {
            return Ok(jobs);
        }
        let _reading = if fresh {
            None
        } else {
            // Rows past their second, with nothing written here since: while one offer reads
            // them again, the others use these (a fleet does not queue behind the read).
            match (
                self.cycle_jobs.1.try_lock(),
                self.stale_summaries(tenant, cycle),
            ) {
                (Ok(guard), _) => Some(guard),
                (Err(_), Some(stale)) => return Ok(stale),
                (Err(_), None) => Some(self.cycle_jobs.1.lock().await),
            }
        };
        let generation = {
            let map = crate::agents::lock(&self.cycle_jobs.0);
            let entry = map.get(&(tenant, cycle));
            if let Some(Entry {
                generation,
                read: Some((at, read_gen, jobs)),
            }) = entry
                && !fresh
                && read_gen == generation
                && at.elapsed() < FRESH
            {
                return Ok(jobs.clone());
            }
            entry.map_or(0, |e| e.generation)
        };
        let jobs = Arc::new(self.store.job_summaries(tenant, cycle).await?);
        let mut map = crate::agents::lock(&self.cycle_jobs.0);
        let entry = map.entry((tenant, cycle)).or_default();
        // A write that happened while reading makes this read stale: keep it out.
        if entry.generation == generation {
            entry.read = Some((Instant::now(), generation, jobs.clone()));
        }
        Ok(jobs)
    }

    /// The cycle's name and body, as offers read them (see [`CycleCache`]).
    pub(crate) async fn cycle_for_offer(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<Arc<(String, Cycle)>> {
        let key = (tenant, id);
        let generation = {
            let gens = crate::agents::lock(&self.cycles.1);
            gens.get(&key).copied().unwrap_or(0)
        };
        let cached = crate::agents::lock(&self.cycles.0).get(&key).cloned();
        let stale = match cached {
            Some((at, g, c)) if g == generation && at.elapsed() < CYCLE_FRESH => return Ok(c),
            // Written here since: never reuse it.
            Some((_, g, c)) if g == generation => Some(c),
            _ => None,
        };
        let _decoding = match (self.cycles.2.try_lock(), stale) {
            (Ok(guard), _) => guard,
            (Err(_), Some(stale)) => return Ok(stale),
            (Err(_), None) => self.cycles.2.lock().await,
        };
        if let Some((at, g, c)) = crate::agents::lock(&self.cycles.0).get(&key)
            && *g == generation
            && at.elapsed() < CYCLE_FRESH
        {
            return Ok(c.clone());
        }
        let (rec, c) = self.load_cycle(tenant, id).await?;
        let c = Arc::new((rec.name, c));
        let mut map = crate::agents::lock(&self.cycles.0);
        if map.len() > 1000 {
            map.clear();
        }
        map.insert(key, (Instant::now(), generation, c.clone()));
        Ok(c)
    }

    /// Whether `ring` may start: [`ring_gate`] on these rows, memoized (see [`RingGates`]).
    pub(crate) fn ring_gate_of(
        &self,
        jobs: &Arc<Vec<JobSummary>>,
        cycle: &Arc<(String, Cycle)>,
        estate: &Arc<Estate>,
        ring: Option<&str>,
        failure_budget_percent: u32,
        now: Timestamp,
    ) -> RingGate {
        let key = (
            Arc::as_ptr(jobs) as usize,
            Arc::as_ptr(cycle) as usize,
            Arc::as_ptr(estate) as usize,
            patchward_core::workflow::ring_key(ring),
            failure_budget_percent,
            now.as_second(),
        );
        if let Some((j, c, e, gate)) = crate::agents::lock(&self.ring_gates.0).get(&key)
            && j.upgrade().is_some_and(|j| Arc::ptr_eq(&j, jobs))
            && c.upgrade().is_some_and(|c| Arc::ptr_eq(&c, cycle))
            && e.upgrade().is_some_and(|e| Arc::ptr_eq(&e, estate))
        {
            return gate.clone();
        }
        let gate = ring_gate(
            &super::ring_order(estate),
            &super::ring_jobs(jobs),
            ring,
            failure_budget_percent,
            &cycle.1.accepted_failures,
            now,
        );
        let mut memo = crate::agents::lock(&self.ring_gates.0);
        // Entries of older seconds and reads are of no more use.
        if memo.len() > 256 {
            memo.retain(|_, (j, _, _, _)| j.strong_count() > 0);
            if memo.len() > 256 {
                memo.clear();
            }
        }
        memo.insert(
            key,
            (
                Arc::downgrade(jobs),
                Arc::downgrade(cycle),
                Arc::downgrade(estate),
                gate.clone(),
            ),
        );
        gate
    }

    /// This replica wrote the cycle: offers read it again.
    pub(crate) fn cycle_changed(&self, tenant: TenantId, id: i64) {
        *crate::agents::lock(&self.cycles.1)
            .entry((tenant, id))
            .or_insert(0) += 1;
    }

    /// The rows read last, however old, unless this replica wrote one of the jobs since.
    fn stale_summaries(&self, tenant: TenantId, cycle: i64) -> Option<Arc<Vec<JobSummary>>> {
        let map = crate::agents::lock(&self.cycle_jobs.0);
        match map.get(&(tenant, cycle)) {
            Some(Entry {
                generation,
                read: Some((at, read_gen, jobs)),
            }) if read_gen == generation && at.elapsed() < STALE_AT_MOST => Some(jobs.clone()),
            _ => None,
        }
    }

    fn cached_summaries(&self, tenant: TenantId, cycle: i64) -> Option<Arc<Vec<JobSummary>>> {
        let map = crate::agents::lock(&self.cycle_jobs.0);
        match map.get(&(tenant, cycle)) {
            Some(Entry {
                generation,
                read: Some((at, read_gen, jobs)),
            }) if read_gen == generation && at.elapsed() < FRESH => Some(jobs.clone()),
            _ => None,
        }
    }

    /// Write a job (versioned, see `JobStore::update_job`) and drop the cycle's cached rows.
    #[allow(clippy::too_many_arguments)] // one write, spelled out
    pub(crate) async fn store_job(
        &self,
        tenant: TenantId,
        id: i64,
        version: i64,
        state: &str,
        body: &str,
        lease: LeaseChange,
        now: Timestamp,
    ) -> Result<Option<JobRecord>> {
        let written = self
            .store
            .update_job(tenant, id, version, state, body, lease, now)
            .await?;
        if let Some(rec) = &written {
            let mut map = crate::agents::lock(&self.cycle_jobs.0);
            if map.len() > 10_000 {
                map.clear();
            }
            let entry = map.entry((rec.tenant, rec.cycle)).or_default();
            // A write that leaves the job's state as the cached rows have it (a new reason
            // while it waits, a step of a running job) changes nothing offers read of it.
            let same = entry.read.as_ref().is_some_and(|(_, _, jobs)| {
                jobs.iter().any(|j| j.id == rec.id && j.state == rec.state)
            });
            if !same {
                entry.generation += 1;
                entry.read = None;
            }
        }
        Ok(written)
    }
}
