//! `patchward-agent`: the agent alone, the small executable put on each Windows Server.
//!
//! ```text
//! patchward-agent install --server URL [--server-fingerprint FP] --enrol-token T   (Windows, as an administrator)
//! patchward-agent uninstall                                                         (Windows)
//! patchward-agent run --server URL [--enrol-token T] [--state-dir DIR] [--backend wua|simulated] [--once]
//! patchward-agent service ...      (what the service manager starts; not for people)
//! ```
//!
//! The same protocol loop as `patchward agent` ([`patchward_agent::Agent::run`]).

use clap::{Args, Parser, Subcommand};
use patchward_agent::simulated::{SimulatedHost, Streams};
use patchward_agent::{Agent, AgentClient, Host, Tls};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "patchward-agent",
    version,
    about = "The Patchward agent for Windows Servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol this server now, then install and start the PatchwardAgent service (LocalSystem,
    /// automatic start, restarted after a failure; state in %ProgramData%\Patchward\agent).
    /// Windows only; run it as an administrator.
    Install {
        #[command(flatten)]
        connect: Connect,
        /// The enrolment token (`patchward enrol-tokens create`); used once, never stored.
        #[arg(long, env = "PATCHWARD_ENROL_TOKEN")]
        enrol_token: String,
    },
    /// Stop and remove the service (its state folder stays). Windows only.
    Uninstall,
    /// Run in the foreground until Ctrl-C (or `--once`).
    Run {
        #[command(flatten)]
        connect: Connect,
        /// The enrolment token, needed only the first time (then the state file holds the
        /// agent's credential).
        #[arg(long, env = "PATCHWARD_ENROL_TOKEN")]
        enrol_token: Option<String>,
        /// Where the agent keeps its state [default: %ProgramData%\Patchward\agent on
        /// Windows, ./patchward-agent elsewhere].
        #[arg(long, env = "PATCHWARD_AGENT_STATE")]
        state_dir: Option<PathBuf>,
        /// `wua` (the Windows Update Agent; Windows only, the default there) or `simulated`
        /// (a deterministic simulated Windows Server; the default elsewhere).
        #[arg(long)]
        backend: Option<String>,
        /// Seed of the simulated host.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Check in once (and report if asked), then exit.
        #[arg(long)]
        once: bool,
    },
    /// The service's entry point (started by the service manager after `install`).
    #[command(hide = true)]
    Service {
        #[command(flatten)]
        connect: Connect,
    },
}

#[derive(Args)]
struct Connect {
    /// The control plane's URL (what `patchward serve` printed).
    #[arg(long, env = "PATCHWARD_SERVER")]
    server: String,
    /// Trust exactly the certificate with this SHA-256 fingerprint (what `patchward serve`
    /// printed for its self-signed certificate); without it, the system's trust store.
    #[arg(long, env = "PATCHWARD_SERVER_FINGERPRINT")]
    server_fingerprint: Option<String>,
}

impl Connect {
    fn client(&self) -> Result<AgentClient, String> {
        let tls = match &self.server_fingerprint {
            Some(fp) => Tls::pinned(fp).map_err(|e| format!("--server-fingerprint: {e}"))?,
            None => Tls::Platform,
        };
        AgentClient::new(&self.server, &tls).map_err(|e| e.to_string())
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patchward-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Run {
            connect,
            enrol_token,
            state_dir,
            backend,
            seed,
            once,
        } => {
            let state_dir = state_dir.unwrap_or_else(default_state_dir);
            let backend = backend
                .unwrap_or_else(|| if cfg!(windows) { "wua" } else { "simulated" }.to_string());
            runtime()?.block_on(async move {
                match backend.as_str() {
                    "simulated" => {
                        let streams = Streams::bundled()?;
                        let host =
                            SimulatedHost::generate(&streams, seed, 0, jiff::Timestamp::now())
                                .ok_or("the bundled KB table has no cumulative updates")?;
                        foreground(host, &connect, enrol_token.as_deref(), state_dir, once).await
                    }
                    #[cfg(windows)]
                    "wua" => {
                        let host = patchward_agent::wua::WuaHost::new()?;
                        foreground(host, &connect, enrol_token.as_deref(), state_dir, once).await
                    }
                    #[cfg(not(windows))]
                    "wua" => Err("--backend wua runs only on Windows".to_string()),
                    other => Err(format!("--backend {other:?}: expected wua or simulated")),
                }
            })
        }
        #[cfg(windows)]
        Command::Install {
            connect,
            enrol_token,
        } => {
            let dir = patchward_agent::service::state_dir();
            runtime()?.block_on(async {
                let host = patchward_agent::wua::WuaHost::new()?;
                let mut agent = Agent::new(host, connect.client()?, Some(dir.clone()))
                    .map_err(|e| e.to_string())?;
                agent
                    .ensure_enrolled(Some(&enrol_token))
                    .await
                    .map_err(|e| e.to_string())?;
                // The first report now, so the server lists this host at once.
                agent
                    .tick(jiff::Timestamp::now())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(())
            })?;
            patchward_agent::service::install(
                &connect.server,
                connect.server_fingerprint.as_deref(),
            )?;
            eprintln!(
                "enrolled and installed the {} service; state in {}",
                patchward_agent::service::SERVICE_NAME,
                dir.display()
            );
            Ok(())
        }
        #[cfg(windows)]
        Command::Uninstall => {
            patchward_agent::service::uninstall()?;
            eprintln!(
                "the {} service is removed",
                patchward_agent::service::SERVICE_NAME
            );
            Ok(())
        }
        #[cfg(windows)]
        Command::Service { connect } => {
            patchward_agent::service::dispatch(patchward_agent::service::ServiceConfig {
                server: connect.server,
                fingerprint: connect.server_fingerprint,
            })
        }
        #[cfg(not(windows))]
        Command::Install { .. } | Command::Uninstall | Command::Service { .. } => Err(
            "the agent runs as a service on Windows only; here, use `patchward-agent run`"
                .to_string(),
        ),
    }
}

fn default_state_dir() -> PathBuf {
    #[cfg(windows)]
    {
        patchward_agent::service::state_dir()
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("patchward-agent")
    }
}

async fn foreground<H: Host>(
    host: H,
    connect: &Connect,
    token: Option<&str>,
    state_dir: PathBuf,
    once: bool,
) -> Result<(), String> {
    let mut agent =
        Agent::new(host, connect.client()?, Some(state_dir.clone())).map_err(|e| e.to_string())?;
    if !once {
        agent = agent.with_long_poll();
    }
    if agent
        .ensure_enrolled(token)
        .await
        .map_err(|e| e.to_string())?
    {
        eprintln!("enrolled; state in {}", state_dir.display());
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    agent
        .run(once, stop, &mut |m: &str| eprintln!("{m}"))
        .await
        .map_err(|e| e.to_string())
}
