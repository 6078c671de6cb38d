//! The use cases of Patchward over a [`ControlStore`] and a [`Clock`]: importing hosts,
//! assessing fleets, reading servers and CVEs, accounts, tokens, sessions and the audit log.
//! The CLI, the server and the agent endpoints call these; none re-implements them.
//!
//! Every use case takes the [`Actor`] doing it: its role is checked here (not only in the
//! server), its tenant scopes what it sees, and writes are recorded in the audit log.

pub mod access;
pub mod agents;
pub mod audit;
pub mod clock;
pub mod error;
pub mod feeds;
pub mod fleet;
pub mod hosts;
pub mod jobs;
pub mod plan;
pub mod store;
mod wire;
pub mod workflow;

pub use clock::{Clock, FixedClock};
pub use error::{AppError, Result};
pub use store::AnyStore;

use jiff::civil::Date;
use patchward_core::access::{Permission, Role};
use patchward_core::exposure::ExposureIndex;
use patchward_core::priority::Policy;
use patchward_store::{ControlStore, TenantId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Who is doing something: a user (by session or token), or the local command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub user_id: Option<i64>,
    /// Shown in the audit log: the user name, or `cli` for the local command line.
    pub name: String,
    pub role: Role,
    /// `None`: provider-wide (acts on any tenant it names, the default tenant otherwise).
    pub tenant: Option<TenantId>,
}

impl Actor {
    /// Whoever runs the command line on the server's own database: a provider-wide admin.
    pub fn cli() -> Actor {
        Actor {
            user_id: None,
            name: "cli".into(),
            role: Role::Admin,
            tenant: None,
        }
    }

    pub fn require(&self, p: Permission) -> Result<()> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "the {} role does not allow this",
                self.role
            )))
        }
    }

    pub fn provider_wide(&self) -> bool {
        self.tenant.is_none()
    }
}

/// The application: a store, a clock, and caches that are only caches (every request checks
/// the store's revision, so several replicas stay consistent).
pub struct App<S: ControlStore> {
    pub store: S,
    clock: Arc<dyn Clock>,
    policy: Policy,
    /// The exposure index of the current catalog, keyed by the catalog's revision.
    intel: tokio::sync::Mutex<Option<(String, Arc<ExposureIndex>)>>,
    /// Per tenant: the assessed fleet, keyed by (estate revision, catalog revision, date).
    fleets: Mutex<HashMap<TenantId, Arc<fleet::FleetView>>>,
    /// Set once [`App::warm`] has built the index and every tenant's fleet.
    warm: std::sync::atomic::AtomicBool,
    /// Coalesced agent check-ins and the enrolment rate limit (this replica's only).
    agents: agents::AgentMemory,
    /// Per tenant: the estate as of its revision (the gates read it at every offer).
    estates: jobs::EstateCache,
    /// The operator's checkpoint and restore commands (`serve --checkpoint-hook ...`).
    hooks: jobs::Hooks,
    /// Hooks asked for, waiting for the server's loop to run them.
    hook_tasks: Mutex<Vec<jobs::HookTask>>,
    /// When the sweeper last looked for jobs whose window passed (it does once a minute).
    window_sweep: Mutex<Option<jiff::Timestamp>>,
    /// Per cycle: its jobs' rows without bodies, as offers read them (`jobs::summaries`).
    cycle_jobs: jobs::CycleJobsCache,
    /// Per cycle: its decoded body, as offers read it (`jobs::summaries`).
    cycles: jobs::CycleCache,
    /// Where each ring stands on the cached rows (`jobs::summaries`).
    ring_gates: jobs::RingGates,
    /// Per tenant: its workflow rules as offers read them (a second at most).
    rules_cache: std::sync::Mutex<
        std::collections::HashMap<
            TenantId,
            (std::time::Instant, patchward_core::workflow::WorkflowRules),
        >,
    >,
}

impl<S: ControlStore> App<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>, policy: Policy) -> App<S> {
        App {
            store,
            clock,
            policy,
            intel: tokio::sync::Mutex::new(None),
            fleets: Mutex::new(HashMap::new()),
            warm: std::sync::atomic::AtomicBool::new(false),
            agents: agents::AgentMemory::default(),
            estates: jobs::EstateCache::default(),
            hooks: jobs::Hooks::default(),
            hook_tasks: Mutex::new(Vec::new()),
            window_sweep: Mutex::new(None),
            cycle_jobs: jobs::CycleJobsCache::default(),
            cycles: jobs::CycleCache::default(),
            ring_gates: jobs::RingGates::default(),
            rules_cache: Default::default(),
        }
    }

    /// Run these hooks for snapshot rollback plans (the server's own configuration).
    pub fn with_hooks(mut self, hooks: jobs::Hooks) -> App<S> {
        self.hooks = hooks;
        self
    }

    /// Build the exposure index and assess every tenant's fleet, so the first requests find
    /// them ready (a server calls this right after it starts listening).
    pub async fn warm(&self) -> Result<()> {
        self.index().await?;
        let mut fleets = Vec::new();
        for t in self.store.tenants().await? {
            fleets.push(self.fleet(t.id).await?);
        }
        self.warm.store(true, std::sync::atomic::Ordering::Release);
        // Ready; then the dashboards' emergency proposals (a dashboard asking meanwhile waits
        // for the same search instead of starting its own).
        for fleet in &fleets {
            self.emergencies(fleet).await?;
        }
        Ok(())
    }

    /// Whether [`App::warm`] has finished.
    pub fn is_warm(&self) -> bool {
        self.warm.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    pub fn today(&self) -> Date {
        self.now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The tenant a request acts on. Tenant users always act on their own (naming another is
    /// answered like an unknown tenant); provider-wide actors name one, or get the default.
    pub async fn tenant_for(&self, actor: &Actor, name: Option<&str>) -> Result<TenantId> {
        match (actor.tenant, name) {
            (Some(own), None) => Ok(own),
            (Some(own), Some(n)) => {
                let t = self.store.tenant_by_name(n).await?;
                match t {
                    Some(t) if t.id == own => Ok(own),
                    _ => Err(AppError::not_found(format!("tenant {n}"))),
                }
            }
            (None, None) => Ok(TenantId::DEFAULT),
            (None, Some(n)) => self
                .store
                .tenant_by_name(n)
                .await?
                .map(|t| t.id)
                .ok_or_else(|| AppError::not_found(format!("tenant {n}"))),
        }
    }
}
