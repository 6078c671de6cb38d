//! `patchward`: the one binary. Operator commands work against the same store as the server
//! will: `--db FILE` (default `patchward.db`, env `PATCHWARD_DB`; `demo` defaults to
//! `patchward-demo.db`).

mod commands;
mod render;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "patchward",
    version,
    about = "Self-hosted Windows Server patch management: inventory, intelligence, exposure, priorities, plans",
    long_about = "Patchward holds the whole patch discipline in one program. Start with `patchward demo`, \
                  then `import feeds` (MSRC CVRF, CISA KEV, EPSS, NVD, lifecycle, KB builds), `import hosts` \
                  (CSV, estate TOML, systeminfo, wmic qfe, Get-HotFix), `assess` and `plan`."
)]
struct Cli {
    /// SQLite database file (created if missing), or a PostgreSQL server as a URL
    /// (postgres://USER:PASSWORD@HOST:PORT/DATABASE) [default: patchward.db; for `demo`, which
    /// runs on SQLite only: patchward-demo.db].
    // No clap default: `demo` must tell "given" from "defaulted" to pick its own default.
    #[arg(long, global = true, env = "PATCHWARD_DB")]
    db: Option<PathBuf>,
    /// The tenant to work in (an MSP's customer); default: the default tenant. `import hosts`
    /// and `users add` create it when new; other commands need it to exist.
    #[arg(long, global = true, env = "PATCHWARD_TENANT")]
    tenant: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo: a fresh database, the bundled real data, a sample estate, the assessment.
    Demo(commands::demo::DemoArgs),
    /// Import intelligence feeds or inventory from files and folders.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Exposure and priorities per server: missing updates, open CVEs, SSVC decisions, due dates.
    Assess(commands::assess::AssessArgs),
    /// List servers in the inventory.
    Servers(commands::list::ServersArgs),
    /// List CVEs in the catalog (Windows Server products), with filters.
    Cves(commands::list::CvesArgs),
    /// Intelligence feeds: what is stored, how current it is; fetch from the network.
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Show the prioritisation policy (defaults, or a policy file) as TOML.
    Policy(PolicyArgs),
    /// Plan a cycle into waves (windows, blackouts, dependencies, budgets, rings), store it, explain it.
    #[command(long_about = commands::plan::LONG_ABOUT)]
    Plan(commands::plan::PlanArgs),
    /// Run the server: the web UI at /, the REST API /api/v1 with OpenAPI and Swagger UI, TLS by default.
    Serve(commands::serve::ServeArgs),
    /// Server settings: print an example config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Users: add, list, disable, enable.
    #[command(subcommand)]
    Users(commands::access::UsersCommand),
    /// API tokens: create (printed once), list, revoke.
    #[command(subcommand)]
    Tokens(commands::access::TokensCommand),
    /// Enrolment tokens for agents: create (printed once), list, revoke.
    #[command(subcommand, name = "enrol-tokens")]
    EnrolTokens(commands::agents::EnrolTokensCommand),
    /// Agents enrolled in the tenant: list, revoke.
    #[command(subcommand)]
    Agents(commands::agents::AgentsCommand),
    /// Run an agent: enrol with a token, then check in and report this host's inventory.
    Agent(commands::agents::AgentArgs),
    /// Run N simulated Windows Server agents against a server (tests, demos, load).
    Simulate(commands::agents::SimulateArgs),
    /// Agentless execution: hand a wave to Ansible (ansible.windows.win_updates), read results.
    #[command(subcommand)]
    Ansible(commands::ansible::AnsibleCommand),
    /// The audit log: verify its hash chain.
    #[command(subcommand)]
    Audit(commands::access::AuditCommand),
    /// Print the API's OpenAPI document (JSON).
    Openapi,
    /// Measure import and exposure speed on real or generated data.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
}

#[derive(Subcommand)]
enum ImportCommand {
    /// MSRC CVRF (XML/JSON), CISA KEV, FIRST EPSS, NVD 2.0, lifecycle, KB build table; zstd/gzip ok.
    Feeds(ImportArgs),
    /// Server inventory CSV, estate TOML, systeminfo, wmic qfe, Get-HotFix captures.
    Hosts(ImportHostsArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// Files or folders (walked recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Args)]
pub struct ImportHostsArgs {
    /// Files or folders (walked recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// An example config file for `serve --config`, with every setting explained.
    Example,
}

#[derive(Subcommand)]
enum FeedsCommand {
    /// Feeds stored: source, as-of date, records, staleness.
    Status(commands::list::FeedStatusArgs),
    /// Fetch feeds from their public endpoints into a folder, then import them.
    Sync(commands::sync::SyncArgs),
}

#[derive(Args)]
struct PolicyArgs {
    /// Policy file to validate and show (TOML); without it, the defaults.
    #[arg(long)]
    policy: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    // `patchward assess | head`: a closed stdout ends the program quietly, as for other Unix
    // tools (Rust's print macros panic on a broken pipe instead).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The database file for every command but `demo`.
const DEFAULT_DB: &str = "patchward.db";

async fn run(cli: Cli) -> Result<()> {
    let db = cli.db.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    match cli.command {
        Command::Demo(a) => commands::demo::run(cli.db.as_deref(), a).await,
        Command::Import(ImportCommand::Feeds(a)) => {
            commands::import::feeds(&db, &a.paths).await.map(|_| ())
        }
        Command::Import(ImportCommand::Hosts(a)) => {
            commands::import::hosts(&db, cli.tenant.as_deref(), &a.paths)
                .await
                .map(|_| ())
        }
        Command::Assess(a) => commands::assess::run(&db, cli.tenant.as_deref(), a).await,
        Command::Servers(a) => commands::list::servers(&db, cli.tenant.as_deref(), a).await,
        Command::Cves(a) => commands::list::cves(&db, a).await,
        Command::Feeds(FeedsCommand::Status(a)) => {
            commands::list::feed_status(&db, cli.tenant.as_deref(), a).await
        }
        Command::Feeds(FeedsCommand::Sync(a)) => commands::sync::run(&db, a).await,
        Command::Policy(a) => {
            let p = commands::load_policy(a.policy.as_deref())?;
            print!("{}", toml::to_string_pretty(&p)?);
            Ok(())
        }
        Command::Plan(a) => commands::plan::run(&db, cli.tenant.as_deref(), a).await,
        Command::Bench(b) => commands::bench::run(b).await,
        Command::Serve(a) => commands::serve::run(&db, a).await,
        Command::Config(ConfigCommand::Example) => {
            print!("{}", commands::serve::CONFIG_EXAMPLE);
            Ok(())
        }
        Command::Users(c) => commands::access::users(&db, cli.tenant.as_deref(), c).await,
        Command::Tokens(c) => commands::access::tokens(&db, c).await,
        Command::Audit(c) => commands::access::audit(&db, c).await,
        Command::EnrolTokens(c) => {
            commands::agents::enrol_tokens(&db, cli.tenant.as_deref(), c).await
        }
        Command::Agents(c) => commands::agents::agents(&db, cli.tenant.as_deref(), c).await,
        Command::Agent(a) => commands::agents::agent(a).await,
        Command::Simulate(a) => commands::agents::simulate(a).await,
        Command::Ansible(c) => commands::ansible::run(&db, cli.tenant.as_deref(), c).await,
        Command::Openapi => {
            println!("{}", patchward_server::openapi().to_pretty_json()?);
            Ok(())
        }
    }
}
