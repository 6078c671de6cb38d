//! `demo`: a fresh SQLite file, the bundled real data (MSRC months 2024-01 … 2026-07 plus
//! 2022-05 and 2023-02, CISA KEV, EPSS, NVD, lifecycle, KB builds), the Contoso sample estate,
//! and the assessment a person wants to read first.

use super::{as_of, import, load_policy};
use crate::Format;
use anyhow::{Context, Result, bail};
use clap::Args;
use patchward_core::exposure::ExposureIndex;
use patchward_store::{SqliteStore, Store, TenantId};
use std::path::{Path, PathBuf};

/// Where the repository keeps its bundled data (the demo runs from a checkout).
pub(crate) const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The demo's own database when neither `--db` nor `PATCHWARD_DB` names one.
pub const DEFAULT_DEMO_DB: &str = "patchward-demo.db";

#[derive(Args)]
pub struct DemoArgs {
    /// Demo database file (overrides `--db`); replaced on every run. Without it and without
    /// `--db`/`PATCHWARD_DB`: patchward-demo.db.
    #[arg(long)]
    pub demo_db: Option<PathBuf>,
    /// Replace the file named by `--db`/`PATCHWARD_DB` when it already exists (the demo starts
    /// from an empty database; without this flag an existing file there is left alone).
    #[arg(long)]
    pub replace: bool,
    /// Bundled data folder (default: the repository's fixtures/).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Estate file (default: examples/demo/estate.toml).
    #[arg(long)]
    pub estate: Option<PathBuf>,
    /// Assess as of this date (default today).
    #[arg(long)]
    pub as_of: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only import and assess; do not start the server afterwards.
    #[arg(long)]
    pub no_serve: bool,
    /// Where the demo server listens (loopback, plain HTTP; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
}

fn remove_db(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("cannot replace {}", p.display()))?;
        }
    }
    Ok(())
}

/// Which file the demo uses, and whether an existing one may be replaced: the demo's own
/// default file always may; a file the user named with `--db`/`PATCHWARD_DB` (which may be a
/// real database) only with `--replace`, so the demo never silently wipes one.
pub fn demo_db(db: Option<&Path>, a: &DemoArgs) -> (PathBuf, bool) {
    match (&a.demo_db, db) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(p)) => (p.to_path_buf(), a.replace),
        (None, None) => (PathBuf::from(DEFAULT_DEMO_DB), true),
    }
}

pub async fn run(db: Option<&Path>, a: DemoArgs) -> Result<()> {
    let (db, may_replace) = demo_db(db, &a);
    if patchward_app::AnyStore::is_url(&db.to_string_lossy()) {
        bail!(
            "the demo runs on a SQLite file only, and --db/PATCHWARD_DB names a PostgreSQL server: pass --demo-db FILE"
        );
    }
    let data = a
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(REPO).join("fixtures"));
    let estate = a
        .estate
        .clone()
        .unwrap_or_else(|| PathBuf::from(REPO).join("examples/demo/estate.toml"));
    // Show clean paths (the defaults are relative to this crate's manifest).
    let data = std::fs::canonicalize(&data).unwrap_or(data);
    let estate = std::fs::canonicalize(&estate).unwrap_or(estate);
    if !data.is_dir() {
        bail!(
            "bundled data not found at {} (run the demo from a checkout, or pass --data)",
            data.display()
        );
    }
    let as_of = as_of(a.as_of.as_deref())?;
    if db.exists() && !may_replace {
        bail!(
            "{} already exists and the demo starts from an empty database: pass --replace to replace it, or name another file",
            db.display()
        );
    }
    remove_db(&db)?;
    let store = SqliteStore::open(&db).await?;
    let feeds: Vec<PathBuf> = ["msrc-cvrf", "kev", "epss", "nvd", "lifecycle", "builds"]
        .iter()
        .map(|d| data.join(d))
        .filter(|p| p.exists())
        .collect();
    eprintln!(
        "demo: importing bundled feeds from {} into {}",
        data.display(),
        db.display()
    );
    let started = std::time::Instant::now();
    let summary = import::import_feeds(&store, &feeds, true).await?;
    import::report_feeds(&summary);
    if !summary.errors.is_empty() {
        bail!("the bundled data did not import cleanly");
    }
    let batch = match import::parse_hosts(std::slice::from_ref(&estate)) {
        Ok(b) => b,
        Err(errors) => bail!("{}", errors.join("\n")),
    };
    let n = import::store_hosts(&store, TenantId::DEFAULT, batch).await?;
    eprintln!(
        "demo: {n} servers from {} ({:.1}s)\n",
        estate.display(),
        started.elapsed().as_secs_f64()
    );

    let catalog = store.catalog().await?;
    let index = ExposureIndex::new(catalog);
    let servers = store.servers(TenantId::DEFAULT).await?;
    let policy = load_policy(None)?;
    let result = super::assess::assess_all(&index, &servers, &policy, as_of);
    print!(
        "{}",
        super::assess::render(&result, as_of, a.format, false, 15)?
    );
    if a.format == Format::Table {
        let db = db.display();
        println!(
            "\nNext: patchward --db {db} assess --host SQL-02 | assess --format json | cves --kev | feeds status\n\
             (data as of the bundled feeds; run `patchward feeds sync` where the network allows)"
        );
    }
    if a.no_serve {
        return Ok(());
    }
    let contoso = std::fs::read_to_string(&estate)
        .with_context(|| format!("cannot read {}", estate.display()))?;
    serve_demo(store, &a.listen, &contoso).await
}

/// The workflow a newcomer should see at once: the monthly cycle prepared and planned by an
/// operator and waiting for approval (the demo's administrator may approve it: they did not
/// prepare it), and exceptions granted by an approver, one of them expiring within 14 days.
/// Emergency proposals come from the real KEV data by themselves. Every step is in the audit
/// log under the demo actor's name.
async fn seed_workflow(app: &patchward_server::Shared) -> Result<Vec<String>> {
    use patchward_app::Actor;
    use patchward_core::access::Role;
    let tenant = Some(TenantId::DEFAULT);
    let operator = Actor {
        user_id: None,
        name: "olga (demo operator)".into(),
        role: Role::Operator,
        tenant,
    };
    let approver = Actor {
        user_id: None,
        name: "alice (demo approver)".into(),
        role: Role::Approver,
        tenant,
    };
    let t = TenantId::DEFAULT;
    let mut out = Vec::new();
    let cycle = app
        .create_cycle(
            &operator,
            t,
            &patchward_proto::CreateCycleRequest::default(),
        )
        .await?;
    let cycle = app
        .plan_cycle_id(
            &operator,
            t,
            cycle.summary.id,
            &patchward_proto::PlanCycleRequest::default(),
        )
        .await?;
    out.push(format!(
        "cycle {:?}: planned by the demo operator, waiting for approval ({} servers placed)",
        cycle.summary.name,
        cycle.summary.placed.unwrap_or(0)
    ));
    // Two exceptions on the least urgent servers with open findings: one expiring soon.
    let page = app
        .servers_page(
            &approver,
            t,
            &patchward_proto::ServerQuery {
                sort: Some("name".into()),
                per_page: Some(500),
                ..Default::default()
            },
        )
        .await?;
    let today = app.today();
    let mut granted = 0;
    for (item, days) in page
        .items
        .iter()
        .filter(|i| i.open > 0 && i.kev == 0)
        .zip([10i64, 75])
    {
        let detail = app.server_detail(&approver, t, item.id, Some(1)).await?;
        let Some(f) = detail.findings.first() else {
            continue;
        };
        let expires = today
            .checked_add(jiff::Span::new().days(days))
            .map(|d| d.to_string())
            .unwrap_or_default();
        app.grant_exception(
            &approver,
            t,
            &patchward_proto::CreateExceptionRequest {
                server: item.name.clone(),
                cve: Some(f.cve.clone()),
                update: None,
                reason: "the application vendor has not certified this update yet".into(),
                compensating_control: "reachable only from the management VLAN".into(),
                risk_owner: item.owner.clone().unwrap_or_else(|| "CISO".into()),
                expires,
            },
        )
        .await?;
        granted += 1;
    }
    out.push(format!(
        "{granted} exception(s) granted by the demo approver (one expiring within 14 days)"
    ));
    Ok(out)
}

/// Start the server on the demo database: a first administrator with a generated password and
/// an API token for the API browser, on loopback over plain HTTP (nothing leaves the machine);
/// then the lab's simulated agents enrol with it and their cycle starts. The banner comes last,
/// once everything it mentions exists.
async fn serve_demo(store: SqliteStore, listen: &str, contoso: &str) -> Result<()> {
    let listen: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?}: expected an address like 127.0.0.1:0"))?;
    if !listen.ip().is_loopback() {
        bail!("--listen {listen}: the demo serves plain HTTP, so only on a loopback address");
    }
    super::serve::init_logs_quiet();
    let app = std::sync::Arc::new(super::app(patchward_app::AnyStore::from(store)));
    let Some((admin, password)) = app.bootstrap_admin().await? else {
        bail!("the demo database already has users; start it with `patchward serve`");
    };
    let (_, _, token) = app
        .create_token(
            &patchward_app::Actor::cli(),
            Some(&admin),
            Some("demo"),
            Some(1),
        )
        .await?;
    let mut seeded = seed_workflow(&app).await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let server = tokio::spawn(patchward_server::serve(
        app.clone(),
        patchward_server::ServeOptions { listen, tls: None },
        move |url| {
            let _ = tx.send(url.to_string());
        },
    ));
    let Ok(url) = rx.await else {
        // It stopped before listening: its error says why.
        server.await??;
        bail!("the demo server stopped before listening");
    };
    let lab = match super::demo_lab::start(&app, &url, contoso).await {
        Ok((lines, task)) => {
            seeded.extend(lines);
            Some(task)
        }
        Err(e) => {
            eprintln!("demo: the lab of simulated agents did not start: {e:#}");
            None
        }
    };
    println!("\nThe server is running (Ctrl-C stops it):");
    println!(
        "  open the web UI at the URL below and log in as {admin:?} with the password {password} (shown once)"
    );
    for line in seeded {
        println!("  {line}");
    }
    println!("  API token (Swagger UI: Authorize → bearer): {token}");
    super::serve::banner(&url, None);
    let outcome = server.await;
    if let Some(task) = lab {
        task.abort();
    }
    outcome??;
    Ok(())
}
