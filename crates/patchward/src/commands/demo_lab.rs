//! The demo's lab: ten simulated Windows Servers whose agents enrol with the running demo
//! server over HTTP, exactly as `patchward simulate` does, and a cycle that patches them live
//! while the newcomer watches its page. The lab joins the Contoso estate (its own rings and a
//! window open now, the same blackouts) so every gate applies as it would in production; one
//! host's update stops a service (its plan rolls back by itself) and one fails to install.

use anyhow::{Context, Result, anyhow};
use patchward_agent::simulated::{Fault, SimulatedHost, Streams};
use patchward_agent::{Agent, AgentClient, Host, Tls};
use patchward_app::Actor;
use patchward_app::hosts::HostBatch;
use patchward_core::access::Role;
use patchward_core::product::ServerRelease;
use patchward_proto::agent::{AGENT_PROTOCOL, EnrolBatchRequest, NewEnrolToken};
use patchward_store::TenantId;
use std::fmt::Write as _;
use std::time::Duration;

const HOSTS: usize = 10;
/// The demo's agents check in this often (real agents: every minute), so the cycle moves
/// while someone watches.
const TICK: Duration = Duration::from_secs(5);

/// What the lab's faults are, by host: one service that does not start after the reboot
/// (verification fails; the plan's automatic rollback uninstalls the update), one install
/// failure with its HRESULT.
fn fault_of(i: usize) -> Option<Fault> {
    match i {
        6 => Some(Fault::ServiceDoesNotStart),
        8 => Some(Fault::InstallFailure("0x800F0922".into())),
        _ => None,
    }
}

/// Enrol the lab's agents with the server at `url`, add the lab to the estate (`contoso`: the
/// estate file's text), and start its cycle. The agents keep checking in on a task of their
/// own. Returns the lines to print.
pub async fn start(
    app: &patchward_server::Shared,
    url: &str,
    contoso: &str,
) -> Result<(Vec<String>, tokio::task::JoinHandle<()>)> {
    let t = TenantId::DEFAULT;
    let now = jiff::Timestamp::now();
    let (_, token) = app
        .create_enrol_token(
            &Actor::cli(),
            t,
            &NewEnrolToken {
                tenant: None,
                uses: Some(1),
                expires_hours: Some(1),
                label: Some("demo lab".into()),
            },
        )
        .await?;
    let streams = Streams::bundled().map_err(|e| anyhow!("the bundled KB table: {e}"))?;
    let client = AgentClient::new(url, &Tls::Platform)?;
    let mut agents = Vec::with_capacity(HOSTS);
    let mut index = 0;
    while agents.len() < HOSTS && index < 1000 {
        let mut h = SimulatedHost::generate(&streams, 2026, index, now)
            .context("the bundled KB table has no cumulative updates")?;
        index += 1;
        if !matches!(
            h.release,
            ServerRelease::Server2019 | ServerRelease::Server2022
        ) {
            continue;
        }
        // Three months behind: the newest cumulative update is due.
        let old = h.stream[h.stream.len().saturating_sub(4)].clone();
        h.build = old.build;
        h.kbs = [old.kb].into();
        h.name = format!("LAB-{:02}", agents.len() + 1);
        let h = h.with_fault(fault_of(agents.len()), now);
        agents.push(Agent::new(h, client.clone(), None)?);
    }
    let reply = client
        .enrol_batch(&EnrolBatchRequest {
            token,
            hostnames: agents.iter().map(|a| a.host.hostname()).collect(),
            protocol: AGENT_PROTOCOL,
            agent_version: patchward_agent::AGENT_VERSION.to_string(),
        })
        .await?;
    for (a, r) in agents.iter_mut().zip(reply.agents) {
        a.adopt(r)?;
        a.tick(jiff::Timestamp::now()).await?;
    }

    // The lab joins the estate: two rings after Contoso's, a window open now.
    let utc =
        (now - jiff::SignedDuration::from_mins(30)).to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let mut lab = format!(
        "{contoso}\n\n# The demo's lab (simulated agents), added by `patchward demo`.\n\
         [[rings]]\nname = \"lab-pilot\"\norder = 11\nsoak = \"0h\"\n\n\
         [[rings]]\nname = \"lab-broad\"\norder = 12\nsoak = \"0h\"\n\n\
         [[windows]]\nname = \"lab-open-now\"\nrrule = \"FREQ=DAILY\"\nstart = \"{:02}:{:02}\"\n\
         duration = \"12h\"\ntime_zone = \"UTC\"\n",
        utc.hour(),
        utc.minute()
    );
    for (i, a) in agents.iter().enumerate() {
        let _ = write!(
            lab,
            "\n[[servers]]\nname = \"{}\"\nos = \"{}\"\nsite = \"Lab\"\nowner = {{ name = \"Lab team\", email = \"lab@contoso.example\" }}\n\
             windows = [\"lab-open-now\"]\nring = \"{}\"\nestimated_duration = \"5m\"\ntier = 3\n\
             rollback = {{ method = \"uninstall_kb\", who = \"lab team\", tested_on = \"2026-11-01\", automatic = true }}\n",
            a.host.name,
            a.host.caption(),
            if i < 2 { "lab-pilot" } else { "lab-broad" },
        );
    }
    let mut batch = HostBatch::default();
    batch
        .add("demo lab estate", lab.as_bytes())
        .map_err(|e| anyhow!("the demo lab's estate: {e}"))?;
    app.import_hosts(&Actor::cli(), t, batch).await?;

    // The cycle: prepared by the operator, approved by the approver, started.
    let operator = Actor {
        user_id: None,
        name: "olga (demo operator)".into(),
        role: Role::Operator,
        tenant: Some(t),
    };
    let approver = Actor {
        user_id: None,
        name: "alice (demo approver)".into(),
        role: Role::Approver,
        tenant: Some(t),
    };
    let names: Vec<String> = agents.iter().map(|a| a.host.name.clone()).collect();
    let cycle = app
        .create_cycle(
            &operator,
            t,
            &patchward_proto::CreateCycleRequest {
                name: Some("Lab — simulated agents, live".into()),
                servers: Some(names),
                ..Default::default()
            },
        )
        .await?;
    let id = cycle.summary.id;
    app.plan_cycle_id(
        &operator,
        t,
        id,
        &patchward_proto::PlanCycleRequest::default(),
    )
    .await?;
    app.approve_cycle(
        &approver,
        t,
        id,
        &patchward_proto::ApproveRequest {
            ring: None,
            ticket: "LAB-1".into(),
            comment: Some("the demo's lab".into()),
        },
    )
    .await?;
    let cycle = app.start_cycle(&operator, t, id).await?;

    let run = tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for a in agents.iter_mut().filter(|a| !a.host.down) {
                // The server may be busy or restarting: the agent tries again next time.
                let _ = a.tick(jiff::Timestamp::now()).await;
            }
        }
    });
    Ok((
        vec![format!(
            "cycle {:?}: {HOSTS} simulated servers (LAB-01…) patched live by their agents \
             ({} placed; open /cycles/{id})",
            cycle.summary.name,
            cycle.summary.placed.unwrap_or(0)
        )],
        run,
    ))
}
