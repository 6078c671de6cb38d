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

use super::{load_policy, now, open};
use crate::Format;
use crate::render::{Table, csv};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use patchward_core::calendar::{format_duration, format_instant, format_slot, time_zone};
use patchward_core::exposure::ExposureIndex;
use patchward_core::inventory::Estate;
use patchward_core::plan::{JobOutcome, Plan, PlanInput, Violation, plan, replan, verify};
use patchward_store::{SqliteStore, Store};
use std::collections::{BTreeMap, BTreeSet};
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
                  Scope: --servers, else every server with open CVEs or missing updates (exposure). \
                  Due dates: each server's earliest priority due date, at 23:59 UTC.\n\n\
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

pub async fn run(db: &Path, a: PlanArgs) -> Result<()> {
    let tz = zone(&a.tz)?;
    if a.list {
        let store = open(db).await?;
        return list(&store, a.format, &tz).await;
    }
    if let Some(server) = &a.explain {
        let store = open(db).await?;
        return explain(&store, a.cycle.as_deref(), server, a.format, &tz).await;
    }
    let Some(cycle) = a.cycle.clone().filter(|c| !c.trim().is_empty()) else {
        bail!("--cycle NAME is required to make a plan (or use --list, or --explain SERVER)");
    };
    let store = open(db).await?;
    if a.replan {
        let path = a
            .outcomes
            .as_deref()
            .context("--replan needs --outcomes FILE")?;
        return replan_cycle(&store, &cycle, a.start.as_deref(), path, a.format, &tz).await;
    }
    let Some(start) = a.start.as_deref() else {
        bail!(
            "--start WHEN is required to make a plan (e.g. --start 2026-11-16T18:00 --tz America/Los_Angeles)"
        );
    };
    let start = parse_when(start, &tz).with_context(|| format!("--start {start:?}"))?;
    make_plan(&store, db, &cycle, start, &a, &tz).await
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

/// A due date (a calendar day) as an instant: 23:59 UTC that day.
fn due_instant(d: Date) -> Option<Timestamp> {
    d.at(23, 59, 0, 0)
        .to_zoned_datetime(TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

fn find_server<'e>(estate: &'e Estate, name: &str) -> Option<&'e str> {
    estate
        .servers
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
        .map(|s| s.name.as_str())
}

async fn make_plan(
    store: &SqliteStore,
    db: &Path,
    cycle: &str,
    start: Timestamp,
    a: &PlanArgs,
    tz: &TimeZone,
) -> Result<()> {
    let policy = load_policy(a.policy.as_deref())?;
    let estate = store.estate().await?;
    if estate.servers.is_empty() {
        bail!(
            "no servers in {}: import an estate with `patchward import hosts ESTATE.toml`",
            db.display()
        );
    }

    // Explicit servers: every name must be in the estate.
    let mut scope: Vec<String> = Vec::new();
    if !a.servers.is_empty() {
        let mut unknown = Vec::new();
        for n in a.servers.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            match find_server(&estate, n) {
                Some(name) if !scope.iter().any(|s| s == name) => scope.push(name.to_string()),
                Some(_) => {}
                None => unknown.push(n.to_string()),
            }
        }
        if !unknown.is_empty() {
            bail!(
                "unknown server(s) in --servers: {} (see `patchward servers`)",
                unknown.join(", ")
            );
        }
        if scope.is_empty() {
            bail!("--servers lists no server names");
        }
    }

    // Exposure: the default scope and every server's due date.
    let as_of = start.to_zoned_datetime(TimeZone::UTC).date();
    let catalog = store.catalog().await?;
    if catalog.fixes.is_empty() {
        eprintln!(
            "warning: no MSRC data imported yet, so no exposure and no due dates: import feeds first (`patchward import feeds`)"
        );
    }
    let index = ExposureIndex::new(&catalog);
    let assessed = super::assess::assess_all(&index, &estate.servers, &policy, as_of);
    let mut due: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut exposed: BTreeSet<String> = BTreeSet::new();
    for s in &assessed {
        if !s.open_cves.is_empty() || !s.missing_updates.is_empty() {
            exposed.insert(s.name.clone());
        }
        if let Some(d) = s
            .open_cves
            .iter()
            .filter_map(|c| c.priority.as_ref().map(|p| p.due))
            .min()
            .and_then(due_instant)
        {
            due.insert(s.name.clone(), d);
        }
    }
    if a.servers.is_empty() {
        scope = estate
            .servers
            .iter()
            .filter(|s| exposed.contains(&s.name))
            .map(|s| s.name.clone())
            .collect();
        if scope.is_empty() {
            bail!(
                "nothing to plan: no server has open CVEs or missing updates as of {as_of} (name servers with --servers)"
            );
        }
    }
    if let Some(r) = &a.ring {
        let Some(ring) = estate
            .rings
            .iter()
            .find(|x| x.name.eq_ignore_ascii_case(r.trim()))
        else {
            bail!(
                "unknown ring {r:?} (--ring); the estate has: {}",
                estate
                    .rings
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        scope.retain(|n| {
            estate.server(n).is_some_and(|s| {
                s.ring
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(&ring.name))
            })
        });
        if scope.is_empty() {
            bail!("no server in scope is in ring {:?}", ring.name);
        }
    }
    due.retain(|k, _| scope.contains(k));

    let mut input = PlanInput::new(cycle, &estate, start);
    input.scope = scope;
    input.due = due;
    input.emergency = a.emergency;
    input.horizon = SignedDuration::from_hours(i64::from(a.horizon_days) * 24);
    let p = plan(&input);
    check(&input, &p)?;
    save(store, &p).await?;
    print!("{}", render(&p, &estate, a.format, tz)?);
    Ok(())
}

/// Refuse a plan the independent checker rejects (a planner bug: it should never happen).
fn check(input: &PlanInput<'_>, p: &Plan) -> Result<()> {
    let violations: Vec<Violation> = verify(input, p);
    if violations.is_empty() {
        return Ok(());
    }
    for v in &violations {
        eprintln!(
            "violation: {:?}: {}: {}",
            v.rule,
            v.servers.join(", "),
            v.detail
        );
    }
    bail!(
        "the plan for cycle {:?} breaks {} hard rule(s) (listed above) and was not stored; please report this",
        p.cycle,
        violations.len()
    )
}

async fn save(store: &SqliteStore, p: &Plan) -> Result<()> {
    let json = serde_json::to_string(p)?;
    store.save_plan(&p.cycle, &json, now()).await?;
    eprintln!("plan: stored as cycle {:?}", p.cycle);
    Ok(())
}

/// The stored plan of a cycle, or the newest one.
async fn load(store: &SqliteStore, cycle: Option<&str>) -> Result<Plan> {
    let (name, json) = match cycle {
        Some(c) => match store.plan(c).await? {
            Some(j) => (c.to_string(), j),
            None => bail!("no plan stored for cycle {c:?} (see `patchward plan --list`)"),
        },
        None => {
            let Some((c, _)) = store.plans().await?.into_iter().next() else {
                bail!(
                    "no plan stored yet: make one with `patchward plan --cycle NAME --start WHEN`"
                );
            };
            let j = store
                .plan(&c)
                .await?
                .with_context(|| format!("plan {c:?} vanished"))?;
            (c, j)
        }
    };
    serde_json::from_str(&json).with_context(|| format!("stored plan {name:?} is unreadable"))
}

/// Rebuild a plan's input from the plan itself (see the module notes).
fn input_from_plan<'e>(estate: &'e Estate, p: &Plan) -> PlanInput<'e> {
    let mut scope: Vec<String> = Vec::new();
    let mut due = BTreeMap::new();
    for x in &p.placements {
        scope.push(x.server.clone());
        if let Some(d) = x.due {
            due.insert(x.server.clone(), d);
        }
    }
    for x in &p.unplaced {
        scope.push(x.server.clone());
        if let Some(d) = x.due {
            due.insert(x.server.clone(), d);
        }
    }
    scope.extend(p.in_progress.iter().map(|r| r.server.clone()));
    scope.extend(p.finished.iter().cloned());
    let mut input = PlanInput::new(p.cycle.clone(), estate, p.start);
    input.scope = scope;
    input.due = due;
    input.emergency = p.emergency;
    input.horizon = p
        .start
        .duration_until(p.horizon_end)
        .max(SignedDuration::ZERO);
    input
}

async fn replan_cycle(
    store: &SqliteStore,
    cycle: &str,
    from: Option<&str>,
    path: &Path,
    format: Format,
    tz: &TimeZone,
) -> Result<()> {
    let old = load(store, Some(cycle)).await?;
    let estate = store.estate().await?;
    let input = input_from_plan(&estate, &old);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read outcomes {}", path.display()))?;
    let outcomes = parse_outcomes(&path.display().to_string(), &text, &input.scope, tz)?;
    let now = match from {
        Some(s) => parse_when(s, tz).with_context(|| format!("--start {s:?}"))?,
        None => now(),
    };
    let p = replan(&input, now, &outcomes);
    // The input the re-plan used, for the checker (as `replan` builds it).
    let mut used = input.clone();
    used.start = now.max(input.start);
    used.horizon = used
        .start
        .duration_until(input.horizon_end())
        .max(SignedDuration::ZERO);
    used.outcomes = outcomes;
    check(&used, &p)?;
    save(store, &p).await?;
    print!("{}", render(&p, &estate, format, tz)?);
    Ok(())
}

/// `server,outcome,at[,expected_end]`, one job a line; an optional header line; `#` comments.
/// Server names must be in the plan's scope; errors name the file, line and field.
pub fn parse_outcomes(
    file: &str,
    text: &str,
    scope: &[String],
    tz: &TimeZone,
) -> Result<BTreeMap<String, JobOutcome>> {
    let mut out: BTreeMap<String, JobOutcome> = BTreeMap::new();
    let mut first = true;
    // Line by line (so errors name the file's own line numbers), each line read as CSV.
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let rec = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(::csv::Trim::All)
            .from_reader(trimmed.as_bytes())
            .records()
            .next()
            .unwrap_or_else(|| Ok(::csv::StringRecord::new()))
            .map_err(|e| anyhow!("{file}:{line}: {e}"))?;
        let is_header = first && rec.get(0).is_some_and(|f| f.eq_ignore_ascii_case("server"));
        first = false;
        if is_header {
            continue;
        }
        let at_line = |field: &str, msg: String| anyhow!("{file}:{line}: {field}: {msg}");
        if rec.len() < 3 || rec.len() > 4 {
            bail!(
                "{file}:{line}: expected server,outcome,at[,expected_end], got {} field(s)",
                rec.len()
            );
        }
        let name = rec.get(0).unwrap_or_default();
        let Some(server) = scope.iter().find(|s| s.eq_ignore_ascii_case(name)) else {
            return Err(at_line(
                "server",
                format!("{name:?} is not in this plan's scope"),
            ));
        };
        let when = |i: usize, field: &str| -> Result<Timestamp> {
            let v = rec.get(i).unwrap_or_default();
            parse_when(v, tz).map_err(|e| at_line(field, format!("{v:?}: {e:#}")))
        };
        let outcome_word = rec.get(1).unwrap_or_default();
        let expected = rec.get(3).filter(|v| !v.is_empty());
        let outcome = match outcome_word.to_ascii_lowercase().as_str() {
            "finished" | "failed" if expected.is_some() => {
                return Err(at_line(
                    "expected_end",
                    format!("only running jobs have an expected end, this one is {outcome_word}"),
                ));
            }
            "finished" => JobOutcome::Finished { at: when(2, "at")? },
            "failed" => JobOutcome::Failed { at: when(2, "at")? },
            "running" => {
                let started = when(2, "at")?;
                if expected.is_none() {
                    return Err(at_line(
                        "expected_end",
                        "a running job needs its expected end".into(),
                    ));
                }
                let expected_end = when(3, "expected_end")?;
                if expected_end <= started {
                    return Err(at_line(
                        "expected_end",
                        "must be after the start (`at`)".into(),
                    ));
                }
                JobOutcome::Running {
                    started,
                    expected_end,
                }
            }
            other => {
                return Err(at_line(
                    "outcome",
                    format!("{other:?} is not finished, failed or running"),
                ));
            }
        };
        if out.insert(server.clone(), outcome).is_some() {
            return Err(at_line(
                "server",
                format!("{server} has more than one outcome"),
            ));
        }
    }
    Ok(out)
}

async fn explain(
    store: &SqliteStore,
    cycle: Option<&str>,
    server: &str,
    format: Format,
    tz: &TimeZone,
) -> Result<()> {
    let p = load(store, cycle).await?;
    let estate = store.estate().await.unwrap_or_default();
    let missing = || match find_server(&estate, server) {
        Some(name) => anyhow!(
            "server {name} was not in the scope of plan {:?} (no open CVEs or missing updates, or left out by --servers/--ring)",
            p.cycle
        ),
        None => anyhow!(
            "no server named {server:?} in plan {:?} or in the estate (see `patchward servers`)",
            p.cycle
        ),
    };
    let out = match format {
        Format::Json => {
            let v = if let Some(x) = p.placement(server) {
                serde_json::json!({"cycle": p.cycle, "status": status_of(&p, &x.server), "placement": x})
            } else if let Some(u) = p.unplaced(server) {
                serde_json::json!({"cycle": p.cycle, "status": "unplaced", "unplaced": u})
            } else {
                let line = p.explain(server).ok_or_else(missing)?;
                serde_json::json!({"cycle": p.cycle, "explanation": line})
            };
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        Format::Csv => {
            let rows: Vec<Vec<String>> = csv_rows(&p)
                .into_iter()
                .filter(|r| r[2].eq_ignore_ascii_case(server))
                .collect();
            if rows.is_empty() {
                return Err(missing());
            }
            csv(CSV_HEADERS, &rows)?
        }
        Format::Table => {
            let mut s = String::new();
            if let Some(x) = p.placement(server) {
                let wtz = window_tz(&estate, &x.window);
                s.push_str(&format!(
                    "{}: wave {} of plan {:?}{}\n  slot: {} (window '{}')\n",
                    x.server,
                    x.wave,
                    p.cycle,
                    x.ring
                        .as_deref()
                        .map(|r| format!(", ring '{r}'"))
                        .unwrap_or_default(),
                    format_slot(x.start, x.end, &wtz),
                    x.window
                ));
                if let Some(d) = x.due {
                    s.push_str(&format!("  due: {}", format_instant(d, tz)));
                    if let Some(l) = x.late_by {
                        s.push_str(&format!(" (LATE by {})", format_duration(l)));
                    }
                    s.push('\n');
                }
                s.push_str("  reasons:\n");
                for r in &x.reasons {
                    s.push_str(&format!("    - {r}\n"));
                }
            } else if let Some(u) = p.unplaced(server) {
                s.push_str(&format!(
                    "{}: NOT PLACED in plan {:?}{}\n  rule: {}\n",
                    u.server,
                    p.cycle,
                    u.ring
                        .as_deref()
                        .map(|r| format!(", ring '{r}'"))
                        .unwrap_or_default(),
                    rule_label(u.rule)
                ));
                if let Some(d) = u.due {
                    s.push_str(&format!("  due: {}\n", format_instant(d, tz)));
                }
                s.push_str("  reasons:\n");
                for r in &u.reasons {
                    s.push_str(&format!("    - {r}\n"));
                }
            } else {
                s.push_str(&p.explain(server).ok_or_else(missing)?);
                s.push('\n');
            }
            s
        }
    };
    print!("{out}");
    Ok(())
}

async fn list(store: &SqliteStore, format: Format, tz: &TimeZone) -> Result<()> {
    let plans = store.plans().await?;
    let out = match format {
        Format::Json => {
            let v: Vec<_> = plans
                .iter()
                .map(|(c, t)| serde_json::json!({"cycle": c, "created_at": t}))
                .collect();
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        Format::Csv => csv(
            &["cycle", "created_at"],
            &plans
                .iter()
                .map(|(c, t)| vec![c.clone(), t.to_string()])
                .collect::<Vec<_>>(),
        )?,
        Format::Table => {
            if plans.is_empty() {
                "no plans stored: make one with `patchward plan --cycle NAME --start WHEN`\n"
                    .to_string()
            } else {
                let mut t = Table::new(&["CYCLE", "CREATED"]);
                for (c, at) in &plans {
                    t.row(vec![c.clone(), format_instant(*at, tz)]);
                }
                t.render()
            }
        }
    };
    print!("{out}");
    Ok(())
}

/// The zone a window's slots are shown in (UTC when the window is no longer in the estate).
fn window_tz(estate: &Estate, window: &str) -> TimeZone {
    estate
        .windows
        .iter()
        .find(|w| w.name == window)
        .and_then(|w| time_zone(&w.time_zone))
        .unwrap_or(TimeZone::UTC)
}

fn rule_label(r: patchward_core::plan::UnplacedRule) -> String {
    match serde_json::to_value(r) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{r:?}"),
    }
}

fn status_of(p: &Plan, server: &str) -> &'static str {
    if p.late.iter().any(|l| l.server == server) {
        "late"
    } else {
        "placed"
    }
}

const CSV_HEADERS: &[&str] = &[
    "cycle", "wave", "server", "ring", "start", "end", "status", "reasons",
];

/// One row per placement, unplaced server, running job and finished server.
fn csv_rows(p: &Plan) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for x in &p.placements {
        rows.push(vec![
            p.cycle.clone(),
            x.wave.to_string(),
            x.server.clone(),
            x.ring.clone().unwrap_or_default(),
            x.start.to_string(),
            x.end.to_string(),
            status_of(p, &x.server).to_string(),
            x.reasons.join("; "),
        ]);
    }
    for u in &p.unplaced {
        rows.push(vec![
            p.cycle.clone(),
            String::new(),
            u.server.clone(),
            u.ring.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            "unplaced".into(),
            u.reasons.join("; "),
        ]);
    }
    for r in &p.in_progress {
        rows.push(vec![
            p.cycle.clone(),
            String::new(),
            r.server.clone(),
            r.ring.clone().unwrap_or_default(),
            r.start.to_string(),
            r.end.to_string(),
            "running".into(),
            "still running (keeps its slot)".into(),
        ]);
    }
    for f in &p.finished {
        rows.push(vec![
            p.cycle.clone(),
            String::new(),
            f.clone(),
            String::new(),
            String::new(),
            String::new(),
            "finished".into(),
            "already finished in this cycle".into(),
        ]);
    }
    rows
}

pub fn render(p: &Plan, estate: &Estate, format: Format, tz: &TimeZone) -> Result<String> {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(p)?;
            s.push('\n');
            Ok(s)
        }
        Format::Csv => csv(CSV_HEADERS, &csv_rows(p)),
        Format::Table => Ok(render_table(p, estate, tz)),
    }
}

fn render_table(p: &Plan, estate: &Estate, tz: &TimeZone) -> String {
    let mut out = format!(
        "Plan {:?}{}: from {} (horizon {}): {} server(s) in {} wave(s){}; {} not placed; {} late\n",
        p.cycle,
        if p.emergency { " (EMERGENCY)" } else { "" },
        format_instant(p.start, tz),
        format_instant(p.horizon_end, tz),
        p.placements.len(),
        p.waves.len(),
        p.finish
            .map(|f| format!(", finishing {}", format_instant(f, tz)))
            .unwrap_or_default(),
        p.unplaced.len(),
        p.late.len()
    );
    let by_server: BTreeMap<&str, &patchward_core::plan::Placement> = p
        .placements
        .iter()
        .map(|x| (x.server.as_str(), x))
        .collect();
    for w in &p.waves {
        let first_tz = w
            .servers
            .first()
            .and_then(|s| by_server.get(s.as_str()))
            .map(|x| window_tz(estate, &x.window))
            .unwrap_or(TimeZone::UTC);
        out.push_str(&format!(
            "\nWave {}: {} ({} server(s))\n",
            w.number,
            format_slot(w.start, w.end, &first_tz),
            w.servers.len()
        ));
        let mut t = Table::new(&["  SERVER", "RING", "WINDOW", "SLOT", "REASONS"]);
        for s in &w.servers {
            let Some(x) = by_server.get(s.as_str()) else {
                continue;
            };
            let wtz = window_tz(estate, &x.window);
            let mut slot = format_slot(x.start, x.end, &wtz);
            if let Some(l) = x.late_by {
                slot.push_str(&format!(" LATE {}", format_duration(l)));
            }
            t.row(vec![
                format!("  {}", x.server),
                x.ring.clone().unwrap_or_else(|| "-".into()),
                x.window.clone(),
                slot,
                // The first reason restates wave, slot and window, which have columns here.
                x.reasons
                    .iter()
                    .skip(1)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            ]);
        }
        out.push_str(&t.render());
    }
    if !p.in_progress.is_empty() {
        out.push_str("\nStill running (keep their slots):\n");
        let mut t = Table::new(&["  SERVER", "RING", "SLOT"]);
        for r in &p.in_progress {
            t.row(vec![
                format!("  {}", r.server),
                r.ring.clone().unwrap_or_else(|| "-".into()),
                format_slot(r.start, r.end, tz),
            ]);
        }
        out.push_str(&t.render());
    }
    if !p.finished.is_empty() {
        out.push_str(&format!(
            "\nAlready finished in this cycle: {}\n",
            p.finished.join(", ")
        ));
    }
    if !p.unplaced.is_empty() {
        out.push_str("\nNot placed:\n");
        let mut t = Table::new(&["  SERVER", "RING", "RULE", "REASONS"]);
        for u in &p.unplaced {
            t.row(vec![
                format!("  {}", u.server),
                u.ring.clone().unwrap_or_else(|| "-".into()),
                rule_label(u.rule),
                u.reasons.join("; "),
            ]);
        }
        out.push_str(&t.render());
    }
    if !p.late.is_empty() {
        out.push_str("\nLate (finish after their due date):\n");
        let mut t = Table::new(&["  SERVER", "DUE", "ENDS", "LATE BY"]);
        for l in &p.late {
            t.row(vec![
                format!("  {}", l.server),
                format_instant(l.due, tz),
                format_instant(l.end, tz),
                format_duration(l.late_by),
            ]);
        }
        out.push_str(&t.render());
    }
    if !p.dependency_cycles.is_empty() {
        out.push_str("\nDependency cycles (inventory errors):\n");
        for c in &p.dependency_cycles {
            out.push_str(&format!("  {}\n", c.join(", ")));
        }
    }
    if !p.warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in &p.warnings {
            out.push_str(&format!("  {w}\n"));
        }
    }
    out.push_str("\nWhy a server is where it is: patchward plan --explain SERVER\n");
    out
}
