//! `bench api`: a stored catalog and a generated fleet, the real server in a child process,
//! and concurrent clients over loopback. Latencies are measured by the client (so they include
//! loopback HTTP: an upper bound of the server-side time); the server's peak memory is its
//! VmHWM from /proc just before it is stopped.

use super::bench::generate;
use anyhow::{Context, Result, bail};
use clap::Args;
use patchward_app::Actor;
use patchward_store::{SqliteStore, Store, TenantId};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct BenchApiArgs {
    /// Database with an imported catalog (copied; never changed).
    #[arg(long)]
    pub catalog_db: PathBuf,
    /// Number of generated servers stored.
    #[arg(long, default_value_t = 10_000)]
    pub servers: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Requests in all (half list pages, half server details).
    #[arg(long, default_value_t = 5_000)]
    pub requests: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn vm_hwm_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

pub async fn run(a: BenchApiArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("patchward-bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("api.db");
    // A consistent copy of the catalog database (VACUUM INTO includes the WAL's content).
    {
        let src = SqliteStore::open(&a.catalog_db).await?;
        src.vacuum_into(&db).await?;
    }
    let store = SqliteStore::open(&db).await?;
    let catalog = store.catalog().await?;
    let t = Instant::now();
    let servers = generate(&catalog, a.servers, a.seed);
    drop(catalog);
    store
        .upsert_servers(TenantId::DEFAULT, &servers, super::now())
        .await?;
    let store_s = t.elapsed().as_secs_f64();
    let app = super::app(store);
    let Some((admin, password)) = app.bootstrap_admin().await? else {
        bail!("the copied catalog database already has users");
    };
    let (_, _, token) = app
        .create_token(&Actor::cli(), Some(&admin), Some("bench"), Some(1))
        .await?;
    drop(app);

    let exe = std::env::current_exe().context("cannot find this binary")?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .arg("--db")
        .arg(&db)
        .args(["serve", "--http", "--listen", "127.0.0.1:0"])
        .env("PATCHWARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the server")?;
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let first = lines.next().context("the server printed nothing")??;
    let url = first
        .strip_prefix("patchward: listening on ")
        .context("unexpected first line")?
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    let listening_s = started.elapsed().as_secs_f64();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build()?;
    loop {
        let r = client.get(format!("{url}/readyz")).send().await;
        if r.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            bail!("the server was not ready within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready_s = started.elapsed().as_secs_f64();
    let auth = format!("Bearer {token}");

    // The fleet summary (served from the assessed fleet).
    let mut summary = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = client
            .get(format!("{url}/api/v1/exposure"))
            .header("Authorization", &auth)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("exposure: {}", r.status());
        }
        r.bytes().await?;
        summary.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    summary.sort_by(|x, y| x.total_cmp(y));

    // The web UI's dashboard and server list, as a signed-in user's browser asks for them.
    let login = client
        .post(format!("{url}/api/v1/session"))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"name": admin, "password": password}).to_string())
        .send()
        .await?;
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?
        .to_string();
    let mut pages_ms: Vec<(&str, Vec<f64>, usize)> = Vec::new();
    for path in ["/", "/servers", "/servers?decision=act&page=3"] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..20 {
            let r = client
                .get(format!("{url}{path}"))
                .header("Cookie", &cookie)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("{path}: {}", r.status());
            }
            let ms: f64 = r
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("app;dur="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            size = r.bytes().await?.len();
            times.push(ms);
        }
        times.sort_by(|x, y| x.total_cmp(y));
        pages_ms.push((path, times, size));
    }
    // Assets as a browser gets them (gzip), once per page load (then cached for a year).
    let mut assets = 0;
    for a in ["htmx.min.js", "app.css", "app.js"] {
        let r = client
            .get(format!("{url}/assets/{a}"))
            .header("Accept-Encoding", "gzip")
            .send()
            .await?;
        assets += r.bytes().await?.len();
    }

    // Ids to read: the first page lists them.
    let r = client
        .get(format!("{url}/api/v1/servers?per_page=500&sort=name"))
        .header("Authorization", &auth)
        .send()
        .await?;
    let page: serde_json::Value = serde_json::from_slice(&r.bytes().await?)?;
    let ids: Vec<i64> = page["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["id"].as_i64()).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        bail!("no servers listed");
    }
    let pages = (a.servers / 50).max(1);
    let per_client = a.requests.div_ceil(a.clients.max(1));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..a.clients.max(1) {
        let (client, url, auth, ids) = (client.clone(), url.clone(), auth.clone(), ids.clone());
        let mut x = a.seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        tasks.push(tokio::spawn(async move {
            let mut list = Vec::new();
            let mut detail = Vec::new();
            for k in 0..per_client {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (path, is_list) = if k % 2 == 0 {
                    (
                        format!(
                            "/api/v1/servers?page={}&per_page=50",
                            x as usize % pages + 1
                        ),
                        true,
                    )
                } else {
                    (
                        format!("/api/v1/servers/{}", ids[x as usize % ids.len()]),
                        false,
                    )
                };
                let t = Instant::now();
                let r = client
                    .get(format!("{url}{path}"))
                    .header("Authorization", &auth)
                    .send()
                    .await?;
                let ok = r.status().is_success();
                let server_ms: f64 = r
                    .headers()
                    .get("server-timing")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("app;dur="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                r.bytes().await?;
                if !ok {
                    anyhow::bail!("{path} failed");
                }
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if is_list {
                    list.push((ms, server_ms))
                } else {
                    detail.push((ms, server_ms))
                }
            }
            Ok::<_, anyhow::Error>((list, detail))
        }));
    }
    let (mut list, mut detail) = (Vec::new(), Vec::new());
    for task in tasks {
        let (l, d) = task.await??;
        list.extend(l);
        detail.extend(d);
    }
    let wall = t.elapsed().as_secs_f64();
    let split = |v: &[(f64, f64)]| {
        let mut client: Vec<f64> = v.iter().map(|x| x.0).collect();
        let mut server: Vec<f64> = v.iter().map(|x| x.1).collect();
        client.sort_by(|x, y| x.total_cmp(y));
        server.sort_by(|x, y| x.total_cmp(y));
        (client, server)
    };
    let (list_c, list_s) = split(&list);
    let (detail_c, detail_s) = split(&detail);
    let hwm = vm_hwm_mib(pid);
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "api: {} servers stored ({store_s:.1}s); server listening after {listening_s:.2}s, ready (index built, fleet assessed) after {ready_s:.2}s",
        a.servers
    );
    println!(
        "  exposure summary: median {:.1} ms, p99 {:.1} ms (20 requests)",
        percentile(&summary, 0.5),
        percentile(&summary, 0.99)
    );
    println!(
        "  {} clients, {} requests in {wall:.2}s ({:.0}/s)",
        a.clients,
        list.len() + detail.len(),
        (list.len() + detail.len()) as f64 / wall,
    );
    for (what, c, s) in [("list", &list_c, &list_s), ("detail", &detail_c, &detail_s)] {
        println!(
            "  {what:6}: server-side p50 {:.1} ms p99 {:.1} ms; client-observed p50 {:.1} ms p99 {:.1} ms",
            percentile(s, 0.5),
            percentile(s, 0.99),
            percentile(c, 0.5),
            percentile(c, 0.99)
        );
    }
    for (path, t, size) in &pages_ms {
        println!(
            "  web UI {path}: server-side p50 {:.1} ms p99 {:.1} ms (20 requests); HTML {:.1} KB, with assets {:.1} KB",
            percentile(t, 0.5),
            percentile(t, 0.99),
            *size as f64 / 1024.0,
            (*size + assets) as f64 / 1024.0
        );
    }
    println!(
        "  server peak RSS {}",
        hwm.map_or("unknown".into(), |m| format!("{m:.0} MiB"))
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
