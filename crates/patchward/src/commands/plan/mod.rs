//! `plan`: plan a cycle from the stored estate and exposure, store it, show it; explain one
//! server's placement; list stored plans; re-plan after job outcomes.
//!
//! # Scope and due dates
//! Without `--servers`, the scope is every server of the estate that has open CVEs or missing
//! updates according to the exposure engine (default or `--policy` priorities, assessed as of
//! the UTC date of `--start`). A server's due date is the earliest priority due date of its open
//! CVEs, as the instant **23:59 UTC** of that date: a due date is a calendar day, and the end of
//! that day in UTC is the latest reading that is the same on every host.
//!
//! # What is stored
//! The [`Plan`] itself, as JSON, under the cycle name (replacing an earlier plan of that cycle).
//! A re-plan rebuilds its input from the stored plan (scope = every server the plan accounts
//! for, due dates, emergency flag, horizon end) and the estate as stored now.

mod files;
mod show;

pub use files::{parse_due_file, parse_outcomes, parse_server_list};
pub use show::render;

use super::{load_policy, now, open};
use crate::Format;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};
use patchward_app::plan::{self, PlanSpec};
use patchward_app::{Actor, AnyStore};
use patchward_core::calendar::{format_instant, time_zone};
use patchward_core::inventory::Estate;
use patchward_core::plan::Plan;
use patchward_store::{Store, TenantId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const MODES: [&str; 3] = ["explain", "list", "replan"];

/// `patchward plan --help` (set on the subcommand in main.rs).
pub const LONG_ABOUT: &str = "Plan a patch cycle: waves that respect maintenance windows, blackouts, backup \
                  windows, dependencies, disruption budgets, capacity and ring soak times, with a \
                  reason for every placement. The plan is checked independently and stored under \
                  its cycle name.\n\n\
                  Modes:\n  \
                  plan --cycle NAME --start WHEN [...]          make and store a plan\n  \
                  plan --explain SERVER [--cycle NAME]          why a server is where it is (latest plan by default)\n  \
                  plan --list                                   stored plans\n  \
                  plan --cycle NAME --replan --outcomes FILE    re-plan the rest after job outcomes\n\n\
                  Scope: --servers or --servers-file, else every server with open CVEs or missing \
                  updates (exposure). \
                  Due dates: the earliest that applies of each server's priority due dates (23:59 UTC \
                  that day), the cycle --deadline and its line in the --due file; a late placement \
                  names the date it misses and where it came from.\n\n\
                  Due file (CSV with header server,due; # comments): due is YYYY-MM-DD (23:59 UTC that \
                  day) or an RFC 3339 instant. An unknown server, a bad date or a missing column is an \
                  error naming file:line and field; nothing is stored.\n\n\
                  Outcomes file (CSV, optional header, # comments): server,outcome,at[,expected_end] \
                  with outcome finished|failed|running; for running, `at` is when it started and \
                  expected_end is required. It lists every outcome so far: a failed server left out \
                  of it counts as resolved and is planned again.";

#[derive(Args, Clone)]
pub struct PlanArgs {
    /// Cycle name; the plan is stored under it (replacing an earlier plan of the same cycle).
    #[arg(long, value_name = "NAME")]
    pub cycle: Option<String>,
    /// Nothing starts before this: RFC 3339 (2026-11-16T08:00:00Z, 2026-11-16T08:00-08:00) or
    /// YYYY-MM-DD[THH:MM] in --tz. With --replan: the instant to re-plan from (default now).
    #[arg(long, value_name = "WHEN")]
    pub start: Option<String>,
    /// IANA time zone for --start and outcome times without an offset, and for the plan's
    /// header and due dates (slots are shown in their window's zone).
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub tz: String,
    /// Emergency cycle: may use emergency windows and the rings' emergency soak.
    #[arg(long, conflicts_with_all = MODES)]
    pub emergency: bool,
    /// Nothing may end later than this many days after --start.
    #[arg(long, value_name = "N", default_value_t = 90, conflicts_with_all = MODES, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub horizon_days: u32,
    /// Plan only these servers (comma-separated); default: every exposed server.
    #[arg(long, value_name = "A,B,..", value_delimiter = ',', conflicts_with_all = MODES)]
    pub servers: Vec<String>,
    /// Plan only the servers named in FILE: one a line (blank lines and # comments allowed), or
    /// a CSV whose first column is headed `server`. For long lists; combines with --servers.
    #[arg(long, value_name = "FILE", conflicts_with_all = MODES)]
    pub servers_file: Option<PathBuf>,
    /// Cycle deadline: every server in scope is due by then. YYYY-MM-DD (23:59 UTC that day),
    /// RFC 3339, or YYYY-MM-DDTHH:MM in --tz.
    #[arg(long, value_name = "DATE|DATETIME", conflicts_with_all = MODES)]
    pub deadline: Option<String>,
    /// Per-server due dates: CSV with header `server,due` (due: YYYY-MM-DD = 23:59 UTC that
    /// day, or an RFC 3339 instant). A server's due date is the earliest that applies.
    #[arg(long, value_name = "FILE", conflicts_with_all = MODES)]
    pub due: Option<PathBuf>,
    /// Plan only the in-scope servers of this ring.
    #[arg(long, value_name = "R", conflicts_with_all = MODES)]
    pub ring: Option<String>,
    /// Priority policy file (TOML) for due dates; default policy otherwise.
    #[arg(long, value_name = "FILE", conflicts_with_all = MODES)]
    pub policy: Option<PathBuf>,
    /// table; json (the plan as stored); csv (one row per server: cycle, wave, server, ring,
    /// start, end, status placed/late/unplaced/running/finished, reasons).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Show one server's placement (or why it is not placed) in the stored plan.
    #[arg(long, value_name = "SERVER", conflicts_with_all = ["list", "replan", "start"])]
    pub explain: Option<String>,
    /// List stored plans, newest first.
    #[arg(long, conflicts_with_all = ["explain", "replan", "cycle", "start"])]
    pub list: bool,
    /// Re-plan the stored plan of --cycle after the job outcomes in --outcomes.
    #[arg(long, requires = "outcomes", requires = "cycle")]
    pub replan: bool,
    /// Job outcomes so far (CSV: server,outcome,at[,expected_end]); with --replan.
    #[arg(long, value_name = "FILE", requires = "replan")]
    pub outcomes: Option<PathBuf>,
}

pub async fn run(db: &Path, tenant: Option<&str>, a: PlanArgs) -> Result<()> {
    let tz = zone(&a.tz)?;
    if a.list {
        let store = open(db).await?;
        let tenant = super::tenant(&store, tenant).await?;
        return show::list(&store, tenant, a.format, &tz).await;
    }
    if let Some(server) = &a.explain {
        let store = open(db).await?;
        let tenant = super::tenant(&store, tenant).await?;
        return show::explain(&store, tenant, a.cycle.as_deref(), server, a.format, &tz).await;
    }
    let Some(cycle) = a.cycle.clone().filter(|c| !c.trim().is_empty()) else {
        bail!("--cycle NAME is required to make a plan (or use --list, or --explain SERVER)");
    };
    let store = open(db).await?;
    let tenant = super::tenant(&store, tenant).await?;
    if a.replan {
        let path = a
            .outcomes
            .as_deref()
            .context("--replan needs --outcomes FILE")?;
        return replan_cycle(
            &store,
            tenant,
            &cycle,
            a.start.as_deref(),
            path,
            a.format,
            &tz,
        )
        .await;
    }
    let Some(start) = a.start.as_deref() else {
        bail!(
            "--start WHEN is required to make a plan (e.g. --start 2026-11-16T18:00 --tz America/Los_Angeles)"
        );
    };
    let start = parse_when(start, &tz).with_context(|| format!("--start {start:?}"))?;
    make_plan(&store, tenant, db, &cycle, start, &a, &tz).await
}

/// An IANA zone from the binary's bundled database.
fn zone(name: &str) -> Result<TimeZone> {
    time_zone(name).ok_or_else(|| {
        anyhow!("unknown time zone {name:?} (--tz): use an IANA name such as UTC, Europe/Berlin or America/Los_Angeles")
    })
}

/// RFC 3339 / an instant with an offset or zone annotation, or a local `YYYY-MM-DD[THH:MM[:SS]]`
/// in `tz` (midnight for a bare date; DST gaps move forward, folds take the earlier instant).
pub fn parse_when(s: &str, tz: &TimeZone) -> Result<Timestamp> {
    let t = s.trim();
    if t.is_empty() {
        bail!("empty date/time");
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(z) = t.parse::<ZonedDateTime>() {
        return Ok(z.timestamp());
    }
    // DateTime before Date: jiff parses a Date out of a date-time string, dropping the time.
    let local = if let Ok(dt) = t.replacen(' ', "T", 1).parse::<DateTime>() {
        dt
    } else if let Ok(d) = t.parse::<Date>() {
        d.to_datetime(jiff::civil::Time::midnight())
    } else {
        bail!(
            "not a date/time: expected RFC 3339 (2026-11-16T08:00:00Z) or YYYY-MM-DD[THH:MM] in the --tz zone"
        );
    };
    Ok(local
        .to_zoned_datetime(tz.clone())
        .with_context(|| format!("{t} is out of range"))?
        .timestamp())
}

pub use patchward_app::plan::due_instant;

/// A due date or deadline: a bare `YYYY-MM-DD` is 23:59 UTC that day (as for priority due
/// dates); otherwise an instant as for `--start`.
pub fn parse_due(s: &str, tz: &TimeZone) -> Result<Timestamp> {
    let t = s.trim();
    if t.len() == 10
        && let Ok(d) = t.parse::<Date>()
    {
        return due_instant(d).with_context(|| format!("{t} is out of range"));
    }
    parse_when(t, tz)
}

fn find_server<'e>(estate: &'e Estate, name: &str) -> Option<&'e str> {
    estate
        .servers
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
        .map(|s| s.name.as_str())
}

/// Server names resolved case-insensitively in O(1): built once per command, so that scopes
/// and due files of 100,000 names cost a hash lookup each, not a scan of the estate.
pub struct Names<'e> {
    by_lower: HashMap<String, &'e str>,
}

impl<'e> Names<'e> {
    pub fn new(estate: &'e Estate) -> Names<'e> {
        let mut by_lower = HashMap::with_capacity(estate.servers.len());
        for s in &estate.servers {
            // The first entry wins, as `Estate::server` finds it.
            by_lower
                .entry(s.name.trim().to_lowercase())
                .or_insert(s.name.as_str());
        }
        Names { by_lower }
    }

    pub fn get(&self, name: &str) -> Option<&'e str> {
        self.by_lower.get(&name.trim().to_lowercase()).copied()
    }
}

async fn make_plan(
    store: &AnyStore,
    tenant: TenantId,
    db: &Path,
    cycle: &str,
    start: Timestamp,
    a: &PlanArgs,
    tz: &TimeZone,
) -> Result<()> {
    let policy = load_policy(a.policy.as_deref())?;
    let app = super::app(store.clone());
    let cli = Actor::cli();
    // The estate and the exposure index (the catalog) are independent reads: side by side.
    let (estate, index) = tokio::join!(app.estate(&cli, tenant), app.index());
    let (estate, _) = (estate?, index?);
    if estate.servers.is_empty() {
        bail!(
            "no servers in {}: import an estate with `patchward import hosts ESTATE.toml`",
            db.display()
        );
    }
    let names = Names::new(&estate);

    // Explicit servers: every name must be in the estate.
    let mut listed: Vec<String> = a.servers.clone();
    if let Some(path) = &a.servers_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read server list {}", path.display()))?;
        listed.extend(parse_server_list(&path.display().to_string(), &text)?);
    }
    let explicit = !a.servers.is_empty() || a.servers_file.is_some();
    let scope = if explicit {
        let what = match (a.servers.is_empty(), a.servers_file.is_some()) {
            (false, false) => "--servers",
            (true, _) => "--servers-file",
            (false, true) => "--servers/--servers-file",
        };
        Some(
            plan::resolve_names(&estate, &listed, what)
                .map_err(|e| anyhow!("{} (see `patchward servers`)", e.message))?,
        )
    } else {
        None
    };

    // External due dates are read before any work, so that a bad file stops everything.
    let deadline = match &a.deadline {
        Some(d) => {
            let at = parse_due(d, tz).with_context(|| format!("--deadline {d:?}"))?;
            Some((at, format!("cycle deadline {}", format_instant(at, tz))))
        }
        None => None,
    };
    let due = match &a.due {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read due file {}", path.display()))?;
            parse_due_file(&path.display().to_string(), &text, &names, tz)?
                .into_iter()
                .map(|r| (r.server, r.due, r.source))
                .collect()
        }
        None => Vec::new(),
    };
    drop(names);
    let spec = PlanSpec {
        cycle: cycle.to_string(),
        start,
        scope,
        deadline,
        due,
        ring: a.ring.clone(),
        emergency: a.emergency,
        horizon_days: a.horizon_days,
        policy,
    };
    let made = app
        .plan_cycle(&cli, tenant, estate, spec)
        .await
        .map_err(|e| match e.field.as_deref() {
            Some("ring") => anyhow!("--ring: {}", e.message),
            _ => anyhow!(e.message),
        })?;
    for w in &made.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("plan: stored as cycle {:?}", made.plan.cycle);
    print!("{}", render(&made.plan, &made.estate, a.format, tz)?);
    Ok(())
}

/// The stored plan of a cycle, or the newest one.
async fn load(store: &AnyStore, tenant: TenantId, cycle: Option<&str>) -> Result<Plan> {
    let (name, json) = match cycle {
        Some(c) => match store.plan(tenant, c).await? {
            Some(j) => (c.to_string(), j),
            None => bail!("no plan stored for cycle {c:?} (see `patchward plan --list`)"),
        },
        None => {
            let Some((c, _)) = store.plans(tenant).await?.into_iter().next() else {
                bail!(
                    "no plan stored yet: make one with `patchward plan --cycle NAME --start WHEN`"
                );
            };
            let j = store
                .plan(tenant, &c)
                .await?
                .with_context(|| format!("plan {c:?} vanished"))?;
            (c, j)
        }
    };
    serde_json::from_str(&json).with_context(|| format!("stored plan {name:?} is unreadable"))
}

async fn replan_cycle(
    store: &AnyStore,
    tenant: TenantId,
    cycle: &str,
    from: Option<&str>,
    path: &Path,
    format: Format,
    tz: &TimeZone,
) -> Result<()> {
    let app = super::app(store.clone());
    let cli = Actor::cli();
    let scope = app
        .plan_scope(&cli, tenant, cycle)
        .await
        .map_err(|e| anyhow!(e.message))?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read outcomes {}", path.display()))?;
    let outcomes = parse_outcomes(&path.display().to_string(), &text, &scope, tz)?;
    let now = match from {
        Some(s) => parse_when(s, tz).with_context(|| format!("--start {s:?}"))?,
        None => now(),
    };
    let made = app
        .replan_cycle(&cli, tenant, cycle, now, outcomes)
        .await
        .map_err(|e| anyhow!(e.message))?;
    eprintln!("plan: stored as cycle {:?}", made.plan.cycle);
    print!("{}", render(&made.plan, &made.estate, format, tz)?);
    Ok(())
}
