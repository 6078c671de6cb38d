//! The other jobs of a cycle, as every offer reads them (ring promotion, dependencies,
//! disruption budgets): their rows without bodies, cached per cycle for at most a second and
//! dropped at once when this replica writes one of the cycle's jobs. Another replica's writes
//! are seen within the second; the one decision that cannot wait — may this server start now
//! beside its dependencies and its service's other members — is checked again on fresh rows
//! right after the lease is taken ([`App::recheck_neighbours`] in `offer`).

use crate::{App, Result};
use jiff::Timestamp;
use patchward_store::{ControlStore, JobRecord, JobSummary, LeaseChange, TenantId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cycle's rows are reused.
const FRESH: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct CycleJobsCache(Mutex<HashMap<(TenantId, i64), Entry>>);

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
            entry.generation += 1;
            entry.read = None;
        }
        Ok(written)
    }
}
