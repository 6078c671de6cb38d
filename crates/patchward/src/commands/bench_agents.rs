//! `bench agents`: N enrolled agents (each with its inventory reported) checking in against
//! the real server in one or more child processes, as real HTTP clients over loopback.
//! Two phases: paced (every agent once per `--interval`, as a fleet does) and saturated (as
//! fast as `--clients` connections go). Latency is measured by the client (loopback HTTP
//! included) and by the server (`Server-Timing`); memory is each server's VmHWM.

use anyhow::{Context, Result, bail};
use clap::Args;
use patchward_agent::Host;
use patchward_agent::simulated::{SimulatedHost, Streams};
use patchward_app::{Actor, AnyStore};
use patchward_proto::agent::{CheckIn, EnrolRequest, NewEnrolToken};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct BenchAgentsArgs {
    /// Simulated agents enrolled (each reports its inventory once before the phases).
    #[arg(long, default_value_t = 10_000)]
    pub agents: u32,
    /// Server processes sharing the database (more than one needs PostgreSQL: `--db URL`).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Concurrent client connections in the saturated phase.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// The agents' check-in interval in the paced phase, in seconds.
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// Length of each phase, in seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// An empty PostgreSQL database (`postgres://…`) instead of a temporary SQLite file.
    #[arg(long)]
    pub pg: Option<String>,
    /// Check in during a running wave: every agent's server has a job in a running cycle,
    /// its slot passed, its ring ("broad") waiting on the pilot's job, which runs. Every
    /// check-in then goes through ring promotion (the costly path of an offer).
    #[arg(long)]
    pub wave: bool,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn vm_hwm_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &str) -> Result<Served> {
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let mut child = Command::new(exe)
        .args(["--db", db, "serve", "--http", "--listen", "127.0.0.1:0"])
        .env("PATCHWARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the server")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let first = lines.next().context("the server printed nothing")??;
    let url = first
        .strip_prefix("patchward: listening on ")
        .context("unexpected first line")?
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    Ok(Served { child, url })
}

/// One check-in; (client ms, server ms).
async fn check_in(
    c: &reqwest::Client,
    url: &str,
    credential: &str,
    body: &str,
) -> Result<(f64, f64)> {
    let t = Instant::now();
    let r = c
        .post(format!("{url}/agent/v1/check-in"))
        .header("Authorization", format!("Bearer {credential}"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let ok = r.status().is_success();
    let server: f64 = r
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("app;dur="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let bytes = r.bytes().await?;
    if !ok {
        bail!("check-in refused: {}", String::from_utf8_lossy(&bytes));
    }
    Ok((t.elapsed().as_secs_f64() * 1000.0, server))
}

fn report(name: &str, n: usize, secs: f64, mut client: Vec<f64>, mut server: Vec<f64>) {
    client.sort_by(|a, b| a.total_cmp(b));
    server.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name}: {n} check-ins in {secs:.1} s = {:.0}/s; client p50 {:.2} ms p99 {:.2} ms max {:.1} ms; server p50 {:.3} ms p99 {:.3} ms",
        n as f64 / secs,
        percentile(&client, 0.5),
        percentile(&client, 0.99),
        client.last().copied().unwrap_or(f64::NAN),
        percentile(&server, 0.5),
        percentile(&server, 0.99),
    );
}

pub async fn run(a: BenchAgentsArgs) -> Result<()> {
    if a.replicas > 1 && a.pg.is_none() {
        bail!("--replicas above 1 share one database: give --pg postgres://…");
    }
    let dir = std::env::temp_dir().join(format!("patchward-bench-agents-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = match &a.pg {
        Some(url) => url.clone(),
        None => dir.join("agents.db").to_string_lossy().to_string(),
    };
    let store = AnyStore::open(&db).await?;
    if a.wave {
        // A wave needs findings to patch: the bundled KB builds and MSRC months.
        let fixtures = std::path::PathBuf::from(super::demo::REPO).join("fixtures");
        let feeds: Vec<std::path::PathBuf> = ["msrc-cvrf", "builds"]
            .iter()
            .map(|d| fixtures.join(d))
            .filter(|p| p.exists())
            .collect();
        let summary = super::import::import_feeds(&store, &feeds, false).await?;
        if !summary.errors.is_empty() || feeds.is_empty() {
            bail!(
                "--wave needs the bundled feeds under {} (run from a checkout)",
                fixtures.display()
            );
        }
    }
    let app = Arc::new(super::app(store));
    let (_, token) = app
        .create_enrol_token(
            &Actor::cli(),
            patchward_store::TenantId::DEFAULT,
            &NewEnrolToken {
                uses: Some(a.agents),
                ..NewEnrolToken::default()
            },
        )
        .await?;
    // Enrol and report through the application layer (the same functions the endpoints call).
    let streams = Arc::new(Streams::bundled().map_err(anyhow::Error::msg)?);
    let t = Instant::now();
    let now = super::now();
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 8u32;
    for w in 0..workers {
        let (app, token, streams) = (app.clone(), token.clone(), streams.clone());
        let total = a.agents;
        tasks.spawn(async move {
            let mut out = Vec::new();
            for i in (w..total).step_by(workers as usize) {
                let mut host = SimulatedHost::generate(&streams, 7, i, now).context("no hosts")?;
                let reply = app
                    .enrol(
                        &EnrolRequest {
                            token: token.clone(),
                            hostname: host.name.clone(),
                            protocol: 1,
                            agent_version: "bench".into(),
                        },
                        "bench",
                    )
                    .await?;
                let inv = host.inventory(now);
                let agent = app.authenticate_agent(&reply.credential).await?;
                app.report_inventory(&agent, &inv).await?;
                out.push((
                    reply.credential,
                    inv.digest(),
                    host.name.clone(),
                    host.caption(),
                ));
            }
            Ok::<_, anyhow::Error>(out)
        });
    }
    let mut agents = Vec::new();
    while let Some(r) = tasks.join_next().await {
        agents.extend(r??);
    }
    let setup_s = t.elapsed().as_secs_f64();
    println!(
        "setup: {} agents enrolled and reported in {setup_s:.1} s ({:.0}/s)",
        agents.len(),
        agents.len() as f64 / setup_s
    );
    if a.wave {
        let t = Instant::now();
        let jobs = setup_wave(&app, &agents).await?;
        println!(
            "wave: a running cycle with {jobs} jobs, the pilot's running and the rest waiting on it ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }
    drop(app);
    let agents: Vec<(String, String)> = agents.into_iter().map(|(c, d, _, _)| (c, d)).collect();

    let mut servers = Vec::new();
    for _ in 0..a.replicas.max(1) {
        servers.push(serve(&db)?);
    }
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients.max(8))
        .build()?;
    let bodies: Arc<Vec<(String, String)>> = Arc::new(
        agents
            .into_iter()
            .map(|(cred, digest)| {
                let body = serde_json::to_string(&CheckIn {
                    protocol: 1,
                    agent_version: "bench".into(),
                    inventory_digest: Some(digest),
                    wait_seconds: None,
                })
                .unwrap_or_default();
                (cred, body)
            })
            .collect(),
    );
    // Warm up the connections and the server's caches.
    for (i, (cred, body)) in bodies.iter().take(200).enumerate() {
        check_in(&client, &urls[i % urls.len()], cred, body).await?;
    }

    // Paced: every agent once per interval, spread evenly (what a fleet does).
    let per_second = f64::from(a.agents) / a.interval as f64;
    let total = (per_second * a.seconds as f64).round() as usize;
    let gap = Duration::from_secs_f64(1.0 / per_second);
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..total {
        let at = t + gap.mul_f64(k as f64);
        let (client, url, bodies) = (client.clone(), urls[k % urls.len()].clone(), bodies.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let (cred, body) = &bodies[k % bodies.len()];
            check_in(&client, &url, cred, body).await
        });
    }
    let (mut cl, mut sv) = (Vec::new(), Vec::new());
    let mut failed = 0usize;
    while let Some(r) = tasks.join_next().await {
        match r? {
            Ok((c, s)) => {
                cl.push(c);
                sv.push(s);
            }
            Err(e) => {
                if failed == 0 {
                    eprintln!("first failed check-in: {e}");
                }
                failed += 1;
            }
        }
    }
    if failed > 0 {
        println!("paced: {failed} check-ins failed");
    }
    report(
        &format!("paced ({} agents every {} s)", a.agents, a.interval),
        cl.len(),
        t.elapsed().as_secs_f64(),
        cl,
        sv,
    );

    // Saturated: as fast as the connections go.
    let t = Instant::now();
    let end = t + Duration::from_secs(a.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..a.clients.max(1) {
        let (client, urls, bodies) = (client.clone(), urls.clone(), bodies.clone());
        tasks.spawn(async move {
            let (mut cl, mut sv) = (Vec::new(), Vec::new());
            let mut k = w;
            while Instant::now() < end {
                let (cred, body) = &bodies[k % bodies.len()];
                let (c, s) = check_in(&client, &urls[k % urls.len()], cred, body).await?;
                cl.push(c);
                sv.push(s);
                k += a.clients.max(1);
            }
            Ok::<_, anyhow::Error>((cl, sv))
        });
    }
    let (mut cl, mut sv) = (Vec::new(), Vec::new());
    while let Some(r) = tasks.join_next().await {
        let (c, s) = r??;
        cl.extend(c);
        sv.extend(s);
    }
    report(
        &format!(
            "saturated ({} connections, {} server(s))",
            a.clients,
            servers.len()
        ),
        cl.len(),
        t.elapsed().as_secs_f64(),
        cl,
        sv,
    );
    for s in &servers {
        if let Some(m) = vm_hwm_mib(s.child.id()) {
            println!("server {} peak memory {m:.0} MiB", s.url);
        }
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The `--wave` scenario, set up through the application layer like any cycle: an estate with
/// a pilot ring (the first server) and a broad ring (the rest) and a window open now; a cycle
/// created, planned, approved and started; then every broad job's slot moved to have come
/// (as if it had waited on the pilot) and the pilot's agent given its job, which it holds.
/// Servers in the pilot ring (one of them, with a job whose gates pass, runs).
const PILOTS: usize = 20;

async fn setup_wave(
    app: &Arc<patchward_app::App<AnyStore>>,
    agents: &[(String, String, String, String)],
) -> Result<usize> {
    use patchward_core::access::Role;
    use patchward_store::JobStore;
    use std::fmt::Write as _;
    let t = patchward_store::TenantId::DEFAULT;
    let now = jiff::Timestamp::now();
    let from =
        (now - jiff::SignedDuration::from_hours(1)).to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let mut toml = format!(
        "[[rings]]\nname = \"pilot\"\norder = 1\nsoak = \"1h\"\n\n\
         [[rings]]\nname = \"broad\"\norder = 2\nsoak = \"0h\"\n\n\
         [[windows]]\nname = \"bench\"\nrrule = \"FREQ=DAILY\"\nstart = \"{:02}:{:02}\"\nduration = \"20h\"\ntime_zone = \"UTC\"\n",
        from.hour(),
        from.minute()
    );
    for (i, (_, _, name, caption)) in agents.iter().enumerate() {
        let _ = write!(
            toml,
            "\n[[servers]]\nname = \"{name}\"\nos = \"{caption}\"\nwindows = [\"bench\"]\nring = \"{}\"\nestimated_duration = \"30m\"\ntier = 3\n",
            if i < PILOTS { "pilot" } else { "broad" }
        );
    }
    let mut batch = patchward_app::hosts::HostBatch::default();
    batch
        .add("bench estate", toml.as_bytes())
        .map_err(|e| anyhow::anyhow!("the bench estate: {e}"))?;
    app.import_hosts(&Actor::cli(), t, batch).await?;
    let actor = |name: &str, role| Actor {
        user_id: None,
        name: name.into(),
        role,
        tenant: Some(t),
    };
    let (op, appr) = (
        actor("bench operator", Role::Operator),
        actor("bench approver", Role::Approver),
    );
    let names: Vec<String> = agents.iter().map(|a| a.2.clone()).collect();
    let cycle = app
        .create_cycle(
            &op,
            t,
            &patchward_proto::CreateCycleRequest {
                name: Some("bench wave".into()),
                servers: Some(names),
                ..Default::default()
            },
        )
        .await?;
    let id = cycle.summary.id;
    app.plan_cycle_id(&op, t, id, &patchward_proto::PlanCycleRequest::default())
        .await?;
    app.approve_cycle(
        &appr,
        t,
        id,
        &patchward_proto::ApproveRequest {
            ring: None,
            ticket: "BENCH".into(),
            comment: None,
        },
    )
    .await?;
    app.start_cycle(&op, t, id).await?;
    let records = app.store.jobs(t, id).await?;
    for rec in &records {
        let mut job: patchward_core::execution::Job = serde_json::from_str(&rec.body)?;
        job.slot_start = now - jiff::SignedDuration::from_mins(30);
        job.slot_end = now + jiff::SignedDuration::from_mins(30);
        app.store
            .update_job(
                t,
                rec.id,
                rec.version,
                &rec.state,
                &serde_json::to_string(&job)?,
                patchward_store::LeaseChange::Keep,
                now,
            )
            .await?;
    }
    // One pilot job runs (held by its agent); the ring waits for it.
    for (cred, digest, name, _) in agents.iter().take(PILOTS) {
        if !records.iter().any(|r| r.server.eq_ignore_ascii_case(name)) {
            continue;
        }
        let pilot = app.authenticate_agent(cred).await?;
        let reply = app
            .check_in(
                &pilot,
                &CheckIn {
                    protocol: 1,
                    agent_version: "bench".into(),
                    inventory_digest: Some(digest.clone()),
                    wait_seconds: None,
                },
            )
            .await?;
        if reply.job.is_some() {
            return Ok(records.len());
        }
    }
    bail!("no pilot job could start (gates): the wave is not set up")
}
