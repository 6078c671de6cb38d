//! `enrol-tokens`, `agents`, `agent` and `simulate`: the CLI side of agents. Tokens and the
//! agent list go through the application layer like the API; `agent` and `simulate` are
//! clients of a running server's `/agent/v1`, exactly as an agent on a Windows Server is.

use super::{app, now, open, tenant};
use crate::render::Table;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use patchward_agent::simulated::{Fault, SimulatedHost, Streams};
use patchward_agent::{Agent, AgentClient, AgentError, Host, Tls};
use patchward_app::Actor;
use patchward_proto::agent::{AGENT_PROTOCOL, EnrolBatchRequest, MAX_ENROL_BATCH, NewEnrolToken};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Subcommand)]
pub enum EnrolTokensCommand {
    /// Create an enrolment token for the tenant (`--tenant`); prints only the token (shown once).
    Create(EnrolTokenArgs),
    /// List the tenant's enrolment tokens (never their secrets).
    List,
    /// Revoke an enrolment token by id.
    Revoke { id: i64 },
}

#[derive(Args)]
pub struct EnrolTokenArgs {
    /// How many enrolments it allows (default 1: a one-time token). An agent enrolls alone;
    /// `simulate` enrols its whole fleet, up to 10,000 hosts, in one enrolment.
    #[arg(long)]
    pub uses: Option<u32>,
    /// Hours until it expires (default 24, at most 720).
    #[arg(long)]
    pub expires_hours: Option<u32>,
    /// A label shown in the token list (default "agents").
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Subcommand)]
pub enum AgentsCommand {
    /// List the tenant's agents: server, version, last check-in, status.
    List,
    /// Revoke an agent by id: its next call is refused.
    Revoke {
        /// The agent's id (`agents list`).
        id: i64,
    },
}

/// How an agent reaches the server.
#[derive(Args, Clone)]
pub struct ConnectArgs {
    /// The control plane's URL (what `patchward serve` printed).
    #[arg(long, env = "PATCHWARD_SERVER")]
    pub server: String,
    /// Trust exactly the certificate with this SHA-256 fingerprint (what `patchward serve`
    /// printed for its self-signed certificate); without it, the platform's trust store.
    #[arg(long, env = "PATCHWARD_SERVER_FINGERPRINT")]
    pub server_fingerprint: Option<String>,
    /// The enrolment token (`agent`: needed only the first time, then the state file holds
    /// the agent's credential; `simulate`: always, its agents keep no state).
    #[arg(long, env = "PATCHWARD_ENROL_TOKEN")]
    pub enrol_token: Option<String>,
}

impl ConnectArgs {
    fn client(&self) -> Result<AgentClient> {
        let tls = match &self.server_fingerprint {
            Some(fp) => Tls::pinned(fp).map_err(|e| anyhow!("--server-fingerprint: {e}"))?,
            None => Tls::Platform,
        };
        Ok(AgentClient::new(&self.server, &tls)?)
    }
}

#[derive(Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Where the agent keeps its state (credential, last report).
    #[arg(long, env = "PATCHWARD_AGENT_STATE", default_value = "patchward-agent")]
    pub state_dir: PathBuf,
    /// How the agent sees its host: `simulated` (a deterministic Windows Server from
    /// `--seed`), or `wua` (the Windows Update Agent, PowerShell and the registry; Windows
    /// only, run it as SYSTEM).
    #[arg(long, default_value = "simulated")]
    pub backend: String,
    /// Seed of the simulated host.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Check in once (and report if asked), then exit.
    #[arg(long)]
    pub once: bool,
}

#[derive(Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// How many simulated agents to run (each a real HTTP client with its own credential).
    #[arg(long, default_value_t = 10)]
    pub agents: u32,
    /// Seed of the simulated estate: the same seed gives the same hosts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fault profile: `none`, or `mixed` (about one host in five fails: install failure with
    /// 0x800F0922 or 0x80070002, update rolled back at boot, a service that does not start,
    /// a reboot that never returns, a stale backup; and one in ten downloads for 20 seconds,
    /// then succeeds).
    #[arg(long, default_value = "none")]
    pub faults: String,
    /// Keep the agents checking in (and running the jobs they are offered) for this many
    /// seconds (default: enrol, report, check in once, then exit).
    #[arg(long)]
    pub duration: Option<u64>,
}

pub async fn enrol_tokens(
    db: &Path,
    tenant_name: Option<&str>,
    c: EnrolTokensCommand,
) -> Result<()> {
    let store = open(db).await?;
    let t = tenant(&store, tenant_name).await?;
    let app = app(store);
    let cli = Actor::cli();
    match c {
        EnrolTokensCommand::Create(a) => {
            let req = NewEnrolToken {
                tenant: None,
                uses: a.uses,
                expires_hours: a.expires_hours,
                label: a.label,
            };
            let (rec, secret) =
                app.create_enrol_token(&cli, t, &req)
                    .await
                    .map_err(|e| match &e.field {
                        Some(f) => anyhow!("--{}: {}", f.replace('_', "-"), e.message),
                        None => anyhow!(e.message),
                    })?;
            // The token alone on stdout: `T=$(patchward enrol-tokens create)`.
            println!("{secret}");
            eprintln!(
                "enrolment token {} allows {} enrolment(s) until {} (shown once)",
                rec.id, rec.uses_left, rec.expires_at
            );
        }
        EnrolTokensCommand::List => {
            let mut table = Table::new(&["id", "label", "uses left", "expires", "status", "by"]);
            for rec in app.enrol_tokens(&cli, t).await? {
                let v = app.enrol_token_view(&rec, None).await?;
                table.row(vec![
                    v.id.to_string(),
                    v.label,
                    v.uses_left.to_string(),
                    v.expires_at,
                    v.status,
                    v.created_by,
                ]);
            }
            print!("{}", table.render());
        }
        EnrolTokensCommand::Revoke { id } => {
            app.revoke_enrol_token(&cli, t, id).await?;
            eprintln!("enrolment token {id} revoked");
        }
    }
    Ok(())
}

pub async fn agents(db: &Path, tenant_name: Option<&str>, c: AgentsCommand) -> Result<()> {
    let store = open(db).await?;
    let t = tenant(&store, tenant_name).await?;
    let app = app(store);
    let cli = Actor::cli();
    match c {
        AgentsCommand::List => {
            let mut table =
                Table::new(&["id", "server", "version", "last seen", "status", "reported"]);
            for v in app.agents(&cli, t).await? {
                table.row(vec![
                    v.id.to_string(),
                    v.server,
                    v.agent_version,
                    v.last_seen,
                    v.status,
                    v.reported_at.unwrap_or_default(),
                ]);
            }
            print!("{}", table.render());
        }
        AgentsCommand::Revoke { id } => {
            let v = app.revoke_agent(&cli, t, id).await?;
            eprintln!("agent {id} of {} revoked", v.server);
        }
    }
    Ok(())
}

fn streams() -> Result<Streams> {
    Streams::bundled().map_err(|e| anyhow!("the bundled KB table: {e}"))
}

/// `patchward agent`: one agent, its state in `--state-dir`, until stopped (or `--once`).
pub async fn agent(a: AgentArgs) -> Result<()> {
    match a.backend.as_str() {
        "simulated" => {
            let host = SimulatedHost::generate(&streams()?, a.seed, 0, now())
                .ok_or_else(|| anyhow!("the bundled KB table has no cumulative updates"))?;
            run_agent(host, &a).await
        }
        #[cfg(windows)]
        "wua" => {
            let host = patchward_agent::wua::WuaHost::new().map_err(anyhow::Error::msg)?;
            run_agent(host, &a).await
        }
        #[cfg(not(windows))]
        "wua" => bail!("--backend wua: the Windows Update Agent backend runs only on Windows"),
        other => bail!("--backend {other:?}: expected simulated or wua"),
    }
}

async fn run_agent<H: patchward_agent::Host>(host: H, a: &AgentArgs) -> Result<()> {
    let mut agent = Agent::new(host, a.connect.client()?, Some(a.state_dir.clone()))?;
    if !a.once {
        agent = agent.with_long_poll();
    }
    if agent
        .ensure_enrolled(a.connect.enrol_token.as_deref())
        .await?
    {
        let s = agent.state().map(|s| (s.agent_id, s.server.clone()));
        if let Some((id, server)) = s {
            eprintln!(
                "enrolled as agent {id} for {server}; state in {}",
                a.state_dir.display()
            );
        }
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    agent
        .run(a.once, stop, &mut |m: &str| eprintln!("{m}"))
        .await?;
    Ok(())
}

/// `patchward simulate`: N simulated agents in this process, each enrolling with the token,
/// reporting its host and checking in, as real HTTP clients.
pub async fn simulate(a: SimulateArgs) -> Result<()> {
    let fault_of = Fault::profile(&a.faults).map_err(|e| anyhow!("--faults: {e}"))?;
    if a.agents == 0 || a.agents > 100_000 {
        bail!("--agents: 1 to 100000");
    }
    let token = a
        .connect
        .enrol_token
        .clone()
        .context("--enrol-token: the simulated agents enrol with it (`enrol-tokens create`)")?;
    let streams = std::sync::Arc::new(streams()?);
    let client = a.connect.client()?;
    let start = now();
    let deadline = a
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut agents = Vec::with_capacity(a.agents as usize);
    for i in 0..a.agents {
        let mut draw = a.seed ^ u64::from(i).wrapping_mul(0x9E37_79B9);
        let fault = fault_of(patchward_agent::simulated::splitmix(&mut draw));
        let host = SimulatedHost::generate(&streams, a.seed, i, start)
            .ok_or_else(|| anyhow!("the bundled KB table has no cumulative updates"))?
            .with_fault(fault, start);
        let mut agent = Agent::new(host, client.clone(), None)?
            .with_jitter_seed(a.seed.wrapping_mul(31).wrapping_add(u64::from(i)));
        if a.duration.is_some() {
            agent = agent.with_long_poll();
        }
        agents.push(agent);
    }
    // The fleet enrols the way a provisioning tool brings one up: one use of the token for
    // each batch of up to MAX_ENROL_BATCH hosts, each host with its own credential.
    for chunk in agents.chunks_mut(MAX_ENROL_BATCH) {
        let req = EnrolBatchRequest {
            token: token.clone(),
            hostnames: chunk.iter().map(|a| a.host.hostname()).collect(),
            protocol: AGENT_PROTOCOL,
            agent_version: patchward_agent::AGENT_VERSION.to_string(),
        };
        let reply = client.enrol_batch(&req).await.map_err(|e| {
            anyhow!(
                "enrolling {} simulated agents: {e} (simulate enrols up to {MAX_ENROL_BATCH} \
                 agents with one use of a token: create another with `patchward enrol-tokens \
                 create`)",
                chunk.len()
            )
        })?;
        for (agent, r) in chunk.iter_mut().zip(reply.agents) {
            agent.adopt(r)?;
        }
    }
    // Report and check in, a bounded number at a time (each report is one write).
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut agent) in agents.into_iter().enumerate() {
        let sem = sem.clone();
        let spread = u64::try_from(i).unwrap_or(0) * 60_000 / u64::from(a.agents.max(1));
        tasks.spawn(async move {
            {
                let _permit = sem.acquire().await;
                agent.tick(now()).await?;
            }
            let Some(deadline) = deadline else {
                return Ok::<_, AgentError>(agent.host.name);
            };
            // Spread the first check-ins over the interval, then keep the agent's rhythm.
            let mut next = Duration::from_millis(spread);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(next) => {}
                    _ = tokio::time::sleep_until(deadline) => return Ok(agent.host.name),
                }
                // A host whose reboot never returned is gone: its agent falls silent.
                if agent.host.down {
                    tokio::time::sleep_until(deadline).await;
                    return Ok(agent.host.name);
                }
                let ticked = tokio::select! {
                    t = agent.tick(now()) => t,
                    _ = tokio::time::sleep_until(deadline) => return Ok(agent.host.name),
                };
                match ticked {
                    Ok(t) => {
                        // Progress for whoever watches: each job's outcome as it happens.
                        if let Some((job, state)) = &t.job {
                            eprintln!("{}: job {job} {state}", agent.host.name);
                        }
                        next = t.next;
                    }
                    Err(AgentError::Revoked(m)) => return Err(AgentError::Revoked(m)),
                    // The server may be restarting: try again in a minute, as an agent does.
                    Err(_) => next = Duration::from_secs(60),
                }
            }
        });
    }
    let (mut ok, mut failed) = (0u32, Vec::new());
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => failed.push(e.to_string()),
            Err(e) => failed.push(e.to_string()),
        }
    }
    eprintln!(
        "{ok} simulated agents enrolled and reported to {}{}",
        a.connect.server,
        if failed.is_empty() {
            String::new()
        } else {
            format!("; {} failed", failed.len())
        }
    );
    if let Some(first) = failed.first() {
        bail!(
            "{} of {} agents failed; the first: {first}",
            failed.len(),
            a.agents
        );
    }
    Ok(())
}
