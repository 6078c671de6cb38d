//! `patchward serve`: the REST API (`/api/v1`, described by an OpenAPI 3.1 document and
//! browsable with Swagger UI from the binary), authentication (bearer tokens, cookie sessions
//! with CSRF protection), TLS, health checks and graceful shutdown.
//!
//! Handlers are thin: they authenticate, call the application layer (`patchward-app`) and map
//! its results to wire types. The server keeps no state between requests beyond caches the
//! store's revisions validate, so replicas behind a load balancer are safe.

mod agent_api;
mod api;
mod auth;
mod error;
mod tls;
mod ui;

pub use api::{Need, ROUTES, openapi};
pub use tls::{TlsFiles, fingerprint as tls_fingerprint, self_signed};

use patchward_app::{AnyStore, App};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The store the server runs on: SQLite or PostgreSQL, as `--db` says.
pub type ServerStore = AnyStore;
pub type Shared = Arc<App<ServerStore>>;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// `None`: plain HTTP (behind a reverse proxy that terminates TLS).
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Bind, report the URL through `bound` (port 0 becomes the real port), then serve until
/// Ctrl-C or SIGTERM, finishing requests in flight.
pub async fn serve(
    app: Shared,
    opts: ServeOptions,
    bound: impl FnOnce(&str),
) -> Result<(), ServeError> {
    let router = api::router(app.clone());
    let listener = std::net::TcpListener::bind(opts.listen).map_err(|source| ServeError::Bind {
        addr: opts.listen,
        source,
    })?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    bound(&format!("{scheme}://{addr}"));
    // Build the index and assess the fleets while already answering (/readyz says when).
    let warm = app.clone();
    tokio::spawn(async move {
        let t = std::time::Instant::now();
        match warm.warm().await {
            Ok(()) => tracing::info!(seconds = t.elapsed().as_secs_f64(), "ready"),
            Err(e) => tracing::error!(error = %e, "warming up failed; requests will retry"),
        }
    });
    // Agents' check-ins are coalesced in memory and written together every second; the same
    // task ends jobs whose lease lapsed.
    let beats = app.clone();
    let heartbeats = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = beats.flush_heartbeats().await {
                tracing::warn!(error = %e, "cannot record agents' check-ins; will retry");
            }
            // Jobs whose server never came back from its reboot, and lapsed leases.
            if let Err(e) = beats.sweep_jobs().await {
                tracing::warn!(error = %e, "cannot sweep lapsed jobs; will retry");
            }
            // Jobs whose window passed with nobody to run them (once a minute).
            if let Err(e) = beats.sweep_windows().await {
                tracing::warn!(error = %e, "cannot sweep jobs whose window passed; will retry");
            }
            // Operator hooks asked for (checkpoints, restores), each in a task of its own.
            for task in beats.take_hook_tasks() {
                let app = beats.clone();
                tokio::spawn(async move {
                    if let Err(e) = app.run_hook(&task).await {
                        tracing::warn!(error = %e, job = task.job, "cannot record a hook's outcome");
                    }
                });
            }
        }
    });
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    match opts.tls {
        None => {
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(service)
                .await?
        }
        Some(files) => {
            let config = tls::rustls_config(&files).await?;
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(service)
                .await?
        }
    }
    heartbeats.abort();
    if let Err(e) = app.flush_heartbeats().await {
        tracing::warn!(error = %e, "agents' last check-ins were not recorded");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Where a self-signed certificate is kept for a database: beside a SQLite file; for a
/// PostgreSQL URL (no file to sit beside), `patchward.tls` in the working directory.
pub fn default_tls_dir(db: &std::path::Path) -> PathBuf {
    if AnyStore::is_url(&db.to_string_lossy()) {
        return PathBuf::from("patchward.tls");
    }
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".tls");
    db.with_file_name(name)
}
