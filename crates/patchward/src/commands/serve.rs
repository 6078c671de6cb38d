//! `serve`, `config example`: settings from flags, then environment, then a config file.

use super::{app, open};
use anyhow::{Context, Result, bail};
use clap::Args;
use patchward_app::jobs::Hooks;
use patchward_server::{ServeOptions, TlsFiles, default_tls_dir, self_signed};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

#[derive(Args, Clone, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the URL is printed)
    /// [default: 127.0.0.1:8443].
    #[arg(long, env = "PATCHWARD_LISTEN")]
    pub listen: Option<String>,
    /// Plain HTTP, for running behind a reverse proxy that terminates TLS.
    #[arg(long, env = "PATCHWARD_HTTP")]
    pub http: bool,
    /// TLS certificate (PEM); without it a self-signed one is generated beside the database.
    #[arg(long, env = "PATCHWARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "PATCHWARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Config file (TOML; see `patchward config example`).
    #[arg(long, env = "PATCHWARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Command run before a server whose rollback plan is `snapshot` is touched, to take its
    /// VM checkpoint (exit 0: taken). Its environment names the server: PATCHWARD_HOOK,
    /// PATCHWARD_SERVER, PATCHWARD_FQDN, PATCHWARD_JOB, PATCHWARD_CYCLE, PATCHWARD_TENANT.
    #[arg(long, env = "PATCHWARD_CHECKPOINT_HOOK")]
    pub checkpoint_hook: Option<PathBuf>,
    /// Command run to roll such a server back: revert the VM to that checkpoint.
    #[arg(long, env = "PATCHWARD_RESTORE_HOOK")]
    pub restore_hook: Option<PathBuf>,
    /// Minutes a hook may run before it is killed and counts as failed [default: 30].
    #[arg(long, env = "PATCHWARD_HOOK_TIMEOUT_MINUTES")]
    pub hook_timeout_minutes: Option<u64>,
}

/// The config file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<String>,
    http: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    checkpoint_hook: Option<PathBuf>,
    restore_hook: Option<PathBuf>,
    hook_timeout_minutes: Option<u64>,
}

pub const CONFIG_EXAMPLE: &str = r#"# Patchward server settings. Flags override environment variables, which override this file.
# Use: patchward --db /var/lib/patchward/patchward.db serve --config /etc/patchward/patchward.toml

# Address and port (env PATCHWARD_LISTEN; default 127.0.0.1:8443). Port 0 picks a free port and
# prints it. To serve agents and browsers on the network: "0.0.0.0:8443".
# listen = "0.0.0.0:8443"

# Logs go to stderr; PATCHWARD_LOG sets the filter (e.g. "info", "warn,tower_http=info") and
# PATCHWARD_LOG_FORMAT=json writes one JSON object per line.

# Plain HTTP, only behind a reverse proxy that terminates TLS (env PATCHWARD_HTTP=true).
http = false

# Your certificate and key, PEM (env PATCHWARD_TLS_CERT, PATCHWARD_TLS_KEY). Without them a
# self-signed certificate is generated on first start, kept beside the database in DB.tls/,
# and its SHA-256 fingerprint printed.
# tls_cert = "/etc/patchward/tls/cert.pem"
# tls_key = "/etc/patchward/tls/key.pem"

# Hooks for servers whose rollback plan is "snapshot" (env PATCHWARD_CHECKPOINT_HOOK,
# PATCHWARD_RESTORE_HOOK): commands the server runs, with PATCHWARD_HOOK, PATCHWARD_SERVER,
# PATCHWARD_FQDN, PATCHWARD_JOB, PATCHWARD_CYCLE and PATCHWARD_TENANT in their environment.
# The checkpoint hook runs before the server is touched (exit 0: checkpoint taken; otherwise
# the job is blocked and tried again 5 minutes later); the restore hook is its rollback.
# Exit code and output are kept on the job and in the audit log.
# checkpoint_hook = "/etc/patchward/hooks/checkpoint"
# restore_hook = "/etc/patchward/hooks/restore"
# hook_timeout_minutes = 30
"#;

/// What the flags, environment and file say, merged: how to listen, the TLS fingerprint,
/// and the hooks.
pub fn options(db: &Path, a: &ServeArgs) -> Result<(ServeOptions, Option<String>, Hooks)> {
    let file: ConfigFile = match &a.config {
        None => ConfigFile::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config {}", p.display()))?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
    };
    let listen_text = a
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen_text.parse().with_context(|| {
        format!("listen {listen_text:?}: expected an address and port like 127.0.0.1:8443")
    })?;
    let mut hooks = Hooks {
        checkpoint: a.checkpoint_hook.clone().or(file.checkpoint_hook),
        restore: a.restore_hook.clone().or(file.restore_hook),
        ..Hooks::default()
    };
    // Absolute and executable now, so a hook that cannot run is said at start, not when a
    // server needs its checkpoint.
    for (name, hook) in [
        ("checkpoint", &mut hooks.checkpoint),
        ("restore", &mut hooks.restore),
    ] {
        if let Some(p) = hook.as_mut() {
            let abs = std::fs::canonicalize(&*p)
                .ok()
                .with_context(|| format!("--{name}-hook {}: no such file", p.display()))?;
            if !abs.is_file() {
                bail!(
                    "--{name}-hook {}: not a file (a directory?): give the executable to run",
                    p.display()
                );
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&abs)?.permissions().mode();
                if mode & 0o111 == 0 {
                    bail!("--{name}-hook {}: not executable (chmod +x)", abs.display());
                }
            }
            *p = abs;
        }
    }
    match a.hook_timeout_minutes.or(file.hook_timeout_minutes) {
        None => {}
        Some(m @ 1..=1440) => hooks.timeout = std::time::Duration::from_secs(m * 60),
        Some(m) => bail!("--hook-timeout-minutes (hook_timeout_minutes) {m}: 1 to 1440"),
    }
    let http = a.http || file.http.unwrap_or(false);
    let cert = a.tls_cert.clone().or(file.tls_cert);
    let key = a.tls_key.clone().or(file.tls_key);
    if http {
        return Ok((ServeOptions { listen, tls: None }, None, hooks));
    }
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let fp = patchward_server::tls_fingerprint(&cert)?;
            Ok((
                ServeOptions {
                    listen,
                    tls: Some(TlsFiles { cert, key }),
                },
                Some(fp),
                hooks,
            ))
        }
        (None, None) => {
            let (files, fp) = self_signed(&default_tls_dir(db), &[listen.ip().to_string()])?;
            Ok((
                ServeOptions {
                    listen,
                    tls: Some(files),
                },
                Some(fp),
                hooks,
            ))
        }
        _ => bail!("tls_cert and tls_key go together: give both or neither"),
    }
}

/// Logs on stderr: `PATCHWARD_LOG` filters (default `info`); `PATCHWARD_LOG_FORMAT=json`
/// writes one JSON object per event (for a log shipper), otherwise readable lines.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PATCHWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("PATCHWARD_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Logs for the demo: warnings only, so its output stays readable.
pub fn init_logs_quiet() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PATCHWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `serve`: open the store, bootstrap the first administrator, listen.
pub async fn run(db: &Path, a: ServeArgs) -> Result<()> {
    init_logs();
    let (opts, fingerprint, hooks) = options(db, &a)?;
    // Which hooks run for snapshot plans (stderr, with the other start-up notes).
    for (what, hook, without) in [
        (
            "checkpoint",
            &hooks.checkpoint,
            "servers whose rollback plan is a snapshot are checkpointed by the plan's owner",
        ),
        (
            "restore",
            &hooks.restore,
            "snapshot rollbacks are restored by people and recorded as done",
        ),
    ] {
        match hook {
            Some(p) => eprintln!(
                "{what} hook: {} (killed after {} min)",
                p.display(),
                hooks.timeout.as_secs() / 60
            ),
            None => eprintln!("{what} hook: none ({without})"),
        }
    }
    let store = open(db).await?;
    let app = Arc::new(app(store).with_hooks(hooks));
    if let Some((name, password)) = app.bootstrap_admin().await? {
        eprintln!("first start: created the administrator {name:?} with the password {password}");
        eprintln!("  (shown once; create your own accounts with `patchward users add`)");
    }
    serve(app, opts, fingerprint).await
}

pub async fn serve(
    app: patchward_server::Shared,
    opts: ServeOptions,
    fingerprint: Option<String>,
) -> Result<()> {
    if opts.tls.is_none() && !opts.listen.ip().is_loopback() {
        eprintln!(
            "warning: plain HTTP: passwords and tokens cross the network in clear unless a \
             reverse proxy in front terminates TLS"
        );
    }
    patchward_server::serve(app, opts, |url| banner(url, fingerprint.as_deref())).await?;
    Ok(())
}

/// Where the server listens and what to open, on stdout.
pub fn banner(url: &str, fingerprint: Option<&str>) {
    println!("patchward: listening on {url}");
    println!(
        "  web UI: {url}/   API browser: {url}/api/v1/docs   OpenAPI: {url}/api/v1/openapi.json"
    );
    match fingerprint {
        Some(fp) => println!("  TLS certificate SHA-256: {fp}"),
        None => println!("  TLS: off (plain HTTP)"),
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
