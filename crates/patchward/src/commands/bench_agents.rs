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
                out.push((reply.credential, inv.digest()));
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
    drop(app);

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
    while let Some(r) = tasks.join_next().await {
        let (c, s) = r??;
        cl.push(c);
        sv.push(s);
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
