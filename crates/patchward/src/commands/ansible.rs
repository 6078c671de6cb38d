//! `ansible`: agentless execution. `export` hands a wave of a running cycle to Ansible (an
//! inventory and a playbook using `ansible.windows.win_updates`), `results` reads the hosts'
//! results back into their jobs, `run` does both around `ansible-playbook`.

use super::{app, open, tenant};
use crate::render::Table;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use patchward_app::Actor;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum AnsibleCommand {
    /// Write DIR/inventory.yml and DIR/playbook.yml for the jobs of a running cycle that may
    /// start now (one wave, or all); they are marked running, held by Ansible.
    Export(ExportArgs),
    /// Read DIR/results/HOST.json (what the playbook keeps) back into the jobs.
    Results(ResultsArgs),
    /// Export, run `ansible-playbook`, then read the results.
    Run(RunArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    /// The cycle: its id or its name.
    #[arg(long)]
    pub cycle: String,
    /// Only this wave of the plan.
    #[arg(long)]
    pub wave: Option<u32>,
    /// Folder to write (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct ResultsArgs {
    #[arg(long)]
    pub cycle: String,
    /// The folder `export` wrote (its results/ subfolder is read).
    #[arg(long)]
    pub from: PathBuf,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// The ansible-playbook to run.
    #[arg(long, default_value = "ansible-playbook")]
    pub ansible_playbook: PathBuf,
}

async fn cycle_id(
    app: &patchward_app::App<patchward_app::AnyStore>,
    t: patchward_store::TenantId,
    c: &str,
) -> Result<i64> {
    let cycles = app.cycles(&Actor::cli(), t).await?;
    cycles
        .iter()
        .find(|x| x.id.to_string() == c.trim() || x.name.eq_ignore_ascii_case(c.trim()))
        .map(|x| x.id)
        .ok_or_else(|| {
            anyhow!(
                "--cycle {c:?}: no such cycle (there are: {})",
                cycles
                    .iter()
                    .map(|x| format!("{} {:?}", x.id, x.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

pub async fn run(db: &Path, tenant_name: Option<&str>, c: AnsibleCommand) -> Result<()> {
    let store = open(db).await?;
    let t = tenant(&store, tenant_name).await?;
    let app = app(store);
    match c {
        AnsibleCommand::Export(a) => export(&app, t, &a).await.map(|_| ()),
        AnsibleCommand::Results(a) => {
            let id = cycle_id(&app, t, &a.cycle).await?;
            results(&app, t, id, &a.from).await
        }
        AnsibleCommand::Run(a) => {
            let id = export(&app, t, &a.export).await?;
            let status = std::process::Command::new(&a.ansible_playbook)
                .arg("-i")
                .arg(a.export.out.join("inventory.yml"))
                .arg(a.export.out.join("playbook.yml"))
                .status()
                .with_context(|| {
                    format!(
                        "cannot run {} (install ansible-core and the ansible.windows collection, \
                         or give --ansible-playbook); the jobs stay held by Ansible until their \
                         lease lapses",
                        a.ansible_playbook.display()
                    )
                })?;
            if !status.success() {
                eprintln!("ansible-playbook exited with {status}; reading what it kept");
            }
            results(&app, t, id, &a.export.out).await
        }
    }
}

async fn export(
    app: &patchward_app::App<patchward_app::AnyStore>,
    t: patchward_store::TenantId,
    a: &ExportArgs,
) -> Result<i64> {
    let id = cycle_id(app, t, &a.cycle).await?;
    let b = app
        .ansible_bundle(&Actor::cli(), t, id, a.wave)
        .await
        .map_err(|e| anyhow!(e.message))?;
    std::fs::create_dir_all(a.out.join("results"))
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    std::fs::write(a.out.join("inventory.yml"), &b.inventory)?;
    std::fs::write(a.out.join("playbook.yml"), &b.playbook)?;
    eprintln!(
        "{} host(s) of {:?} handed to Ansible: {}",
        b.hosts.len(),
        b.cycle,
        b.hosts
            .iter()
            .map(|h| h.server.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for l in &b.left_out {
        eprintln!("  left out: {l}");
    }
    eprintln!(
        "run: ansible-playbook -i {0}/inventory.yml {0}/playbook.yml, then patchward ansible results --cycle {id} --from {0}",
        a.out.display()
    );
    Ok(id)
}

async fn results(
    app: &patchward_app::App<patchward_app::AnyStore>,
    t: patchward_store::TenantId,
    id: i64,
    dir: &Path,
) -> Result<()> {
    let folder = dir.join("results");
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(&folder).with_context(|| format!("cannot read {}", folder.display()))?;
    for e in entries {
        let path = e?.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let host = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let bytes = std::fs::read(&path)?;
        let r = patchward_feeds::ansible::parse_result(&path.display().to_string(), &bytes)
            .map_err(|e| anyhow!("{e}"))?;
        found.push((host, r));
    }
    if found.is_empty() {
        bail!("{}: no host result (HOST.json) to read", folder.display());
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let outcomes = app
        .record_ansible_results(&Actor::cli(), t, id, &found)
        .await
        .map_err(|e| anyhow!(e.message))?;
    let mut table = Table::new(&["server", "state", "outcome"]);
    for (server, state, why) in outcomes {
        table.row(vec![server, state.to_string(), why]);
    }
    print!("{}", table.render());
    Ok(())
}
