//! Agentless execution through Ansible (C7): a wave's jobs become an inventory and a playbook
//! that runs `ansible.windows.win_updates` over WinRM with the approved KBs as its accept list;
//! each host's registered result is kept as JSON and read back into its job (installed and
//! failed KBs with their HRESULT, reboot). Without an agent there is no pre-patch snapshot, so
//! verification rests on the module's report and says so. The gates an agent's facts decide
//! (backup age, free space, pending reboot, services) cannot be checked here; the slot, the
//! window, blackouts, the rollback plan, ring promotion and a pause are.

use super::{ring_jobs, ring_order};
use crate::workflow::decode;
use crate::{Actor, App, AppError, Result};
use jiff::SignedDuration;
use patchward_core::access::Permission;
use patchward_core::execution::{
    Check, Job, JobState, RingGate, StepKind, UpdateResult, Verification, ring_gate,
};
use patchward_core::workflow::CycleState;
use patchward_feeds::ansible::WinUpdatesResult;
use patchward_store::{ControlStore, LeaseChange, TenantId};
use std::fmt::Write as _;

/// How long a wave handed to Ansible may run before its jobs count as lost.
const ANSIBLE_LEASE: SignedDuration = SignedDuration::from_hours(8);
/// The "agent" that holds a job run by Ansible (no agent id is 0).
const ANSIBLE: i64 = 0;

/// One host of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct AnsibleHost {
    pub job: i64,
    pub server: String,
    /// What Ansible connects to: the FQDN, else the name.
    pub address: String,
    pub kbs: Vec<String>,
}

/// An inventory and a playbook for one wave.
#[derive(Debug, Clone, PartialEq)]
pub struct AnsibleBundle {
    pub cycle: String,
    pub inventory: String,
    pub playbook: String,
    pub hosts: Vec<AnsibleHost>,
    /// Jobs left out, each with why (their ring waits, the cycle is paused, ...).
    pub left_out: Vec<String>,
}

/// A YAML scalar that means exactly this string (JSON strings are YAML).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl<S: ControlStore> App<S> {
    /// Hand the startable jobs of a running cycle (of one wave, or all) to Ansible: they are
    /// marked running (held by Ansible, so no agent takes them) and returned as a bundle.
    pub async fn ansible_bundle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        wave: Option<u32>,
    ) -> Result<AnsibleBundle> {
        actor.require(Permission::Operate)?;
        let (_, cycle) = self.load_cycle(tenant, id).await?;
        if cycle.state != CycleState::Running {
            return Err(AppError::new(
                patchward_proto::ErrorCode::Conflict,
                format!("the cycle is {}: start it first", cycle.state),
            ));
        }
        let plan = self.stored_plan(tenant, &cycle.name).await?;
        let estate = self.cached_estate(tenant).await?;
        let records = self.store.jobs(tenant, id).await?;
        let rings = ring_order(&estate);
        let budget = crate::workflow::rules_of(&self.store, tenant)
            .await?
            .failure_budget_percent;
        let now = self.now();
        let mut hosts = Vec::new();
        let mut left_out = Vec::new();
        for rec in &records {
            let mut job: Job = decode("job", rec.id, &rec.body)?;
            if job.state.is_terminal() || job.state == JobState::Running {
                continue;
            }
            let in_wave = plan
                .placements
                .iter()
                .find(|p| p.server.eq_ignore_ascii_case(&rec.server))
                .map(|p| p.wave);
            if wave.is_some() && in_wave != wave {
                continue;
            }
            if let Some(p) = &cycle.paused {
                left_out.push(format!("{}: the cycle is paused ({})", rec.server, p.why));
                continue;
            }
            match ring_gate(
                &rings,
                &ring_jobs(&records),
                rec.ring.as_deref(),
                budget,
                &cycle.accepted_failures,
                now,
            ) {
                RingGate::Open => {}
                RingGate::Waiting(w) | RingGate::Halted(w) => {
                    left_out.push(format!("{}: {w}", rec.server));
                    continue;
                }
            }
            // What can be checked without an agent: the slot has come and the window is
            // open with the whole duration left, no blackout applies.
            if now < job.slot_start {
                left_out.push(format!(
                    "{}: its slot starts at {}",
                    rec.server, job.slot_start
                ));
                continue;
            }
            let duration = job.slot_start.duration_until(job.slot_end);
            match super::offer::occurrence(&estate, &job, now) {
                Some(w) if now + duration <= w.end => {}
                _ => {
                    left_out.push(format!(
                        "{}: window {:?} is not open now with {} left",
                        rec.server,
                        job.window,
                        patchward_core::calendar::format_duration(duration)
                    ));
                    continue;
                }
            }
            let server = estate
                .servers
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&rec.server));
            let services: Vec<&str> = estate
                .services
                .iter()
                .filter(|s| {
                    s.members
                        .iter()
                        .any(|m| m.eq_ignore_ascii_case(&rec.server))
                })
                .map(|s| s.name.as_str())
                .collect();
            if let Some(b) = estate.blackouts.iter().find(|b| {
                patchward_core::calendar::blackout_applies(
                    b,
                    &rec.server,
                    server.and_then(|s| s.site.as_deref()),
                    &services,
                ) && b.start < now + duration
                    && now < b.end
            }) {
                left_out.push(format!(
                    "{}: blackout {:?} until {}",
                    rec.server, b.name, b.end
                ));
                continue;
            }
            if server.is_some_and(|s| s.requires_rollback_plan() && s.rollback.is_none()) {
                left_out.push(format!(
                    "{}: a rollback plan is required for this server and there is none",
                    rec.server
                ));
                continue;
            }
            let address = estate
                .servers
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&rec.server))
                .and_then(|s| s.fqdn.clone())
                .unwrap_or_else(|| rec.server.clone());
            job.state = JobState::Running;
            job.started = Some(now);
            job.outcome = "handed to Ansible".into();
            job.step_finished(
                StepKind::Gates,
                now,
                true,
                "handed to Ansible by an operator",
            );
            job.step_started(StepKind::Install, now, "ansible.windows.win_updates");
            let granted = self
                .store_job(
                    tenant,
                    rec.id,
                    rec.version,
                    JobState::Running.as_str(),
                    &crate::workflow::encode("job", &job)?,
                    LeaseChange::Grant {
                        agent: ANSIBLE,
                        until: now + ANSIBLE_LEASE,
                    },
                    now,
                )
                .await?;
            if granted.is_none() {
                left_out.push(format!("{}: changed meanwhile; export again", rec.server));
                continue;
            }
            hosts.push(AnsibleHost {
                job: rec.id,
                server: rec.server.clone(),
                address,
                kbs: job.updates.clone(),
            });
        }
        if hosts.is_empty() {
            return Err(AppError::new(
                patchward_proto::ErrorCode::Conflict,
                format!(
                    "no job of this cycle{} can start now{}",
                    wave.map(|w| format!(" in wave {w}")).unwrap_or_default(),
                    if left_out.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", left_out.join("; "))
                    }
                ),
            ));
        }
        self.record(
            actor,
            Some(tenant),
            "cycle.ansible",
            &format!("cycle:{id}"),
            serde_json::json!({"wave": wave, "hosts": hosts.iter().map(|h| &h.server).collect::<Vec<_>>(), "left_out": left_out}),
        )
        .await?;
        Ok(AnsibleBundle {
            inventory: inventory(&hosts),
            playbook: playbook(&cycle.name, wave),
            cycle: cycle.name,
            hosts,
            left_out,
        })
    }

    /// Read the hosts' results back into their jobs. Hosts without a result file (Ansible
    /// did not get to them) are named and left running until their lease lapses.
    pub async fn record_ansible_results(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        results: &[(String, WinUpdatesResult)],
    ) -> Result<Vec<(String, JobState, String)>> {
        actor.require(Permission::Operate)?;
        let records = self.store.jobs(tenant, id).await?;
        let mut out = Vec::new();
        for (server, r) in results {
            let Some(rec) = records
                .iter()
                .find(|j| j.server.eq_ignore_ascii_case(server))
            else {
                return Err(AppError::field(
                    "results",
                    format!("{server}: no job of this cycle"),
                ));
            };
            if rec.lease_agent != Some(ANSIBLE) || rec.state != JobState::Running.as_str() {
                out.push((
                    rec.server.clone(),
                    JobState::parse(&rec.state).unwrap_or(JobState::Waiting),
                    "not handed to Ansible; left as it is".into(),
                ));
                continue;
            }
            let now = self.now();
            let mut job: Job = decode("job", rec.id, &rec.body)?;
            let (state, why) = judge(&mut job, r, now);
            job.end(state, now, why.clone());
            let written = self
                .store_job(
                    tenant,
                    rec.id,
                    rec.version,
                    state.as_str(),
                    &crate::workflow::encode("job", &job)?,
                    LeaseChange::Release,
                    now,
                )
                .await?;
            if written.is_some() {
                self.record(
                    actor,
                    Some(tenant),
                    &format!("job.{state}"),
                    &format!("job:{}", rec.id),
                    serde_json::json!({"server": rec.server, "cycle": id, "via": "ansible", "outcome": why}),
                )
                .await?;
            }
            out.push((rec.server.clone(), state, why));
        }
        Ok(out)
    }
}

/// A job's end from its host's result.
fn judge(job: &mut Job, r: &WinUpdatesResult, now: jiff::Timestamp) -> (JobState, String) {
    if r.failed && r.updates.is_empty() {
        job.step_finished(StepKind::Install, now, false, "the module failed");
        return (
            JobState::Failed,
            format!(
                "win_updates failed: {}",
                r.msg.clone().unwrap_or_else(|| "no message".into())
            ),
        );
    }
    if r.unreachable {
        job.step_finished(StepKind::Install, now, false, "unreachable");
        return (
            JobState::Failed,
            format!("unreachable: {}", r.msg.clone().unwrap_or_default()),
        );
    }
    job.results = job
        .updates
        .iter()
        .map(|kb| {
            let u = r.updates.iter().find(|u| u.kbs.iter().any(|k| k == kb));
            UpdateResult {
                kb: kb.clone(),
                installed: u.is_some_and(|u| u.installed),
                hresult: u.and_then(|u| u.hresult.clone()),
            }
        })
        .collect();
    let failed: Vec<String> = job
        .results
        .iter()
        .filter(|x| !x.installed)
        .map(|x| match &x.hresult {
            Some(h) => format!("{} failed with {h}", x.kb),
            None => format!("{} was not offered by Windows Update", x.kb),
        })
        .collect();
    job.step_finished(
        StepKind::Install,
        now,
        failed.is_empty(),
        &format!(
            "{} installed",
            job.results.iter().filter(|x| x.installed).count()
        ),
    );
    if !failed.is_empty() {
        return (JobState::Failed, failed.join("; "));
    }
    job.step_finished(
        StepKind::Reboot,
        now,
        !r.reboot_required,
        if r.rebooted {
            "rebooted by Ansible"
        } else {
            "no reboot"
        },
    );
    let checks = vec![
        Check {
            name: "updates installed".into(),
            passed: true,
            detail: format!("{} installed (Ansible's report)", job.updates.join(", ")),
        },
        Check {
            name: "pending reboot".into(),
            passed: !r.reboot_required,
            detail: if r.reboot_required {
                "Windows still requires a reboot".into()
            } else {
                "none".into()
            },
        },
    ];
    let v = Verification {
        verified: checks.iter().all(|c| c.passed),
        checks,
        // What Ansible could not install is in the failed results, not missing after a boot.
        missing_updates: Vec::new(),
    };
    job.step_finished(
        StepKind::Verify,
        now,
        v.verified,
        "from the Ansible result (no agent: build, services and events not checked)",
    );
    let ok = v.verified;
    job.verification = Some(v);
    if ok {
        (
            JobState::Succeeded,
            "installed (verified from the Ansible result only: no agent)".into(),
        )
    } else {
        (
            JobState::NeedsRemediation,
            "a reboot is still required after the updates".into(),
        )
    }
}

fn inventory(hosts: &[AnsibleHost]) -> String {
    let mut s = String::from(
        "# Generated by Patchward: the hosts of one wave, with the updates approved for each.\n\
         # Connection settings (transport, port, credentials) belong in group_vars or here.\n\
         all:\n  children:\n    patchward:\n      vars:\n        ansible_connection: winrm\n        ansible_port: 5986\n        ansible_winrm_transport: kerberos\n      hosts:\n",
    );
    for h in hosts {
        let kbs: Vec<String> = h.kbs.iter().map(|k| q(k)).collect();
        let _ = write!(
            s,
            "        {}:\n          ansible_host: {}\n          patchward_job: {}\n          patchward_kbs: [{}]\n",
            q(&h.server),
            q(&h.address),
            h.job,
            kbs.join(", ")
        );
    }
    s
}

fn playbook(cycle: &str, wave: Option<u32>) -> String {
    let what = match wave {
        Some(w) => format!("{cycle}, wave {w}"),
        None => cycle.to_string(),
    };
    format!(
        "# Generated by Patchward for {what}. Installs exactly the approved updates of each host\n\
         # (accept_list), reboots as needed, and keeps each host's result in results/ for\n\
         # `patchward ansible results`.\n\
         - name: {name}\n  hosts: patchward\n  gather_facts: false\n  vars:\n    patchward_results: \"{{{{ playbook_dir }}}}/results\"\n  tasks:\n\
         \x20   - name: Install the approved updates\n      ansible.windows.win_updates:\n        category_names: \"*\"\n        accept_list: \"{{{{ patchward_kbs }}}}\"\n        reboot: true\n        reboot_timeout: 1800\n      register: patchward_result\n      ignore_errors: true\n      ignore_unreachable: true\n\
         \x20   - name: Keep the result for Patchward\n      ansible.builtin.copy:\n        content: \"{{{{ patchward_result | to_json }}}}\"\n        dest: \"{{{{ patchward_results }}}}/{{{{ inventory_hostname }}}}.json\"\n        mode: \"0600\"\n      delegate_to: localhost\n",
        name = q(&format!("Patchward: {what}"))
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_quotes_every_value_and_lists_the_kbs() {
        let inv = inventory(&[AnsibleHost {
            job: 7,
            server: "web01".into(),
            address: "web01.corp.example".into(),
            kbs: vec!["KB5094128".into(), "KB5087068".into()],
        }]);
        assert!(inv.contains("        \"web01\":\n          ansible_host: \"web01.corp.example\"\n          patchward_job: 7\n          patchward_kbs: [\"KB5094128\", \"KB5087068\"]\n"), "{inv}");
        let pb = playbook("2026-12 Patch Tuesday", Some(2));
        assert!(pb.contains("accept_list: \"{{ patchward_kbs }}\""), "{pb}");
        assert!(
            pb.contains("- name: \"Patchward: 2026-12 Patch Tuesday, wave 2\""),
            "{pb}"
        );
    }
}
