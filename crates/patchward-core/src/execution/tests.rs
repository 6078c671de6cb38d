#![allow(clippy::unwrap_used)]

use super::gates::RingJob;
use super::*;
use crate::calendar::Interval;
use crate::inventory::{BackupPolicy, Blackout, BlackoutScope};
use jiff::{SignedDuration, Timestamp};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn host() -> HostSnapshot {
    HostSnapshot {
        at: Some(t("2026-12-08T21:00:00Z")),
        build: Some("10.0.20348.4000".parse().unwrap()),
        installed_kbs: vec!["KB5000001".into()],
        pending_reboot: vec![],
        last_boot: Some(t("2026-12-01T03:00:00Z")),
        services: vec![
            ("W3SVC".into(), "auto".into(), "running".into()),
            ("Spooler".into(), "manual".into(), "stopped".into()),
        ],
        last_backup: Some(t("2026-12-08T02:00:00Z")),
        backup_failing: false,
        free_mib: Some(20_000),
    }
}

fn policy() -> BackupPolicy {
    BackupPolicy {
        name: "nightly".into(),
        source: "Veeam".into(),
        max_age: SignedDuration::from_hours(24),
        job_window: None,
    }
}

fn input<'a>(
    h: &'a HostSnapshot,
    p: &'a BackupPolicy,
    blackouts: &'a [&'a Blackout],
) -> GateInput<'a> {
    GateInput {
        now: t("2026-12-08T22:00:00Z"),
        approved: true,
        window: Some(Interval::new(
            t("2026-12-08T21:00:00Z"),
            t("2026-12-09T01:00:00Z"),
        )),
        window_name: "Tue night",
        duration: SignedDuration::from_mins(90),
        blackouts,
        backup_policy: Some(p),
        backup_window: None,
        host: Some(h),
        rollback_required: true,
        rollback_present: true,
        min_free_mib: 10_240,
        unhealthy_dependencies: vec![],
        full_budgets: vec![],
    }
}

fn failed(r: &[GateResult]) -> Vec<Gate> {
    r.iter().filter(|g| !g.passed).map(|g| g.gate).collect()
}

#[test]
fn every_gate_passes_on_a_ready_server_and_each_fails_with_its_reason() {
    let (h, p) = (host(), policy());
    let ok = evaluate_gates(&input(&h, &p, &[]));
    assert_eq!(ok.len(), 10);
    assert!(failed(&ok).is_empty(), "{ok:?}");

    let mut i = input(&h, &p, &[]);
    i.now = t("2026-12-09T00:00:00Z"); // 60 minutes left, 90 needed
    let r = evaluate_gates(&i);
    assert_eq!(failed(&r), vec![Gate::Window]);
    assert!(
        r[1].reason.contains("less than the expected"),
        "{}",
        r[1].reason
    );

    let b = Blackout {
        name: "year-end freeze".into(),
        scope: BlackoutScope::Global,
        start: t("2026-12-08T23:00:00Z"),
        end: t("2026-12-10T00:00:00Z"),
        reason: None,
    };
    let bs = [&b];
    assert_eq!(
        failed(&evaluate_gates(&input(&h, &p, &bs))),
        vec![Gate::Blackout]
    );

    let mut stale = host();
    stale.last_backup = Some(t("2026-12-06T02:00:00Z"));
    stale.pending_reboot = vec!["CBS RebootPending".into()];
    stale.free_mib = Some(2_000);
    let mut i = input(&stale, &p, &[]);
    i.approved = false;
    i.rollback_present = false;
    i.unhealthy_dependencies = vec!["sql01 (its job failed)".into()];
    i.full_budgets = vec!["service web: 1 of 1 members already down".into()];
    i.backup_window = Some(Interval::new(
        t("2026-12-08T23:00:00Z"),
        t("2026-12-09T00:00:00Z"),
    ));
    let r = evaluate_gates(&i);
    assert_eq!(
        failed(&r),
        vec![
            Gate::Approval,
            Gate::BackupWindow,
            Gate::Backup,
            Gate::RollbackPlan,
            Gate::DiskSpace,
            Gate::PendingReboot,
            Gate::Dependencies,
            Gate::DisruptionBudget
        ]
    );
    assert!(r.iter().all(|g| !g.reason.is_empty()));
}

fn rj<'a>(ring: Option<&'a str>, state: JobState, finished: Option<&str>) -> RingJob<'a> {
    RingJob {
        ring,
        state,
        finished: finished.map(t),
    }
}

#[test]
fn a_ring_waits_for_the_one_before_to_be_verified_and_soaked_and_halts_over_budget() {
    let rings = [
        ("pilot", SignedDuration::from_hours(24)),
        ("broad", SignedDuration::from_hours(12)),
    ];
    let now = t("2026-12-09T12:00:00Z");
    let none = std::collections::BTreeMap::new();
    let running = [
        rj(
            Some("pilot"),
            JobState::Succeeded,
            Some("2026-12-08T23:00:00Z"),
        ),
        rj(Some("pilot"), JobState::Running, None),
        rj(Some("broad"), JobState::Waiting, None),
    ];
    assert_eq!(
        ring_gate(&rings, &running, Some("pilot"), 10, &none, now),
        RingGate::Open
    );
    assert!(
        matches!(ring_gate(&rings, &running, Some("broad"), 10, &none, now), RingGate::Waiting(w) if w.contains("not yet verified"))
    );
    let soaking = [
        rj(
            Some("pilot"),
            JobState::Succeeded,
            Some("2026-12-08T23:00:00Z"),
        ),
        rj(
            Some("PILOT"),
            JobState::Succeeded,
            Some("2026-12-09T01:00:00Z"),
        ),
        rj(Some("broad"), JobState::Waiting, None),
        rj(None, JobState::Waiting, None),
    ];
    assert!(
        matches!(ring_gate(&rings, &soaking, Some("broad"), 10, &none, now), RingGate::Waiting(w) if w.contains("soaks until 2026-12-10T01:00:00Z"))
    );
    assert_eq!(
        ring_gate(
            &rings,
            &soaking,
            Some("broad"),
            10,
            &none,
            t("2026-12-10T01:00:00Z")
        ),
        RingGate::Open
    );
    // Servers without a ring wait for every ring.
    assert!(matches!(
        ring_gate(&rings, &soaking, None, 10, &none, t("2026-12-10T01:00:00Z")),
        RingGate::Waiting(_)
    ));
    // One failure of two is over a 10% budget: the ring halts, and so does everything after.
    let failed = [
        rj(
            Some("pilot"),
            JobState::Succeeded,
            Some("2026-12-08T23:00:00Z"),
        ),
        rj(
            Some("pilot"),
            JobState::Failed,
            Some("2026-12-08T23:30:00Z"),
        ),
        rj(Some("broad"), JobState::Waiting, None),
    ];
    let later = t("2026-12-12T00:00:00Z");
    assert!(
        matches!(ring_gate(&rings, &failed, Some("broad"), 10, &none, later), RingGate::Halted(h) if h.contains("1 of 2"))
    );
    assert!(matches!(
        ring_gate(&rings, &failed, Some("pilot"), 10, &none, later),
        RingGate::Halted(_)
    ));
    // Someone accepted the pilot's failure: the next ring goes on.
    let accepted = std::collections::BTreeMap::from([("pilot".to_string(), 1)]);
    assert_eq!(
        ring_gate(&rings, &failed, Some("broad"), 10, &accepted, later),
        RingGate::Open
    );
    // A 50% budget tolerates it.
    assert_eq!(
        ring_gate(&rings, &failed, Some("broad"), 50, &none, later),
        RingGate::Open
    );
}

fn job() -> Job {
    Job {
        server: "web01".into(),
        ring: Some("pilot".into()),
        updates: vec!["KB5000002".into()],
        expected_build: Some("10.0.20348.4100".parse().unwrap()),
        window: "Tue night".into(),
        slot_start: t("2026-12-08T21:00:00Z"),
        slot_end: t("2026-12-08T22:30:00Z"),
        state: JobState::Running,
        steps: vec![],
        results: vec![],
        blocked_by: vec![],
        before: Some(host()),
        verification: None,
        outcome: String::new(),
        started: Some(t("2026-12-08T21:00:00Z")),
        finished: None,
        hooks: vec![],
        rollback: None,
        probes: vec![],
        probe_grace: None,
        reboot: RebootPolicy::IfRequired,
        found: vec![],
    }
}

#[test]
fn only_an_ended_job_that_installed_something_can_be_rolled_back() {
    use crate::inventory::RollbackMethod;
    let mut j = job();
    assert!(rollback_refusal(&j).unwrap().contains("running"));
    j.state = JobState::Failed;
    j.results = vec![UpdateResult {
        kb: "KB5000002".into(),
        installed: false,
        hresult: Some("0x800F0922".into()),
    }];
    assert!(
        rollback_refusal(&j)
            .unwrap()
            .contains("nothing was installed")
    );
    j.state = JobState::NeedsRemediation;
    j.results[0].installed = true;
    j.results[0].hresult = None;
    j.step_finished(StepKind::Reboot, t("2026-12-08T21:30:00Z"), true, "back");
    assert_eq!(rollback_refusal(&j), None);
    // Windows undid the update at boot: the host no longer has it, nothing to roll back.
    let mut undone = j.clone();
    let mut after = host();
    after.build = Some("10.0.20348.4000".parse().unwrap());
    undone.verification = Some(verify(&undone, undone.before.as_ref(), &after, &[], &[]));
    assert!(
        rollback_refusal(&undone)
            .unwrap()
            .contains("Windows undid them at boot")
    );
    j.begin_rollback(
        RollbackMethod::UninstallKb,
        "carol",
        "the LOB app fails",
        t("2026-12-08T23:00:00Z"),
    );
    assert_eq!(j.state, JobState::RollingBack);
    assert!(!j.state.is_terminal() && j.state.is_failure());
    let rb = j.rollback.clone().unwrap();
    assert_eq!(
        (rb.from, rb.updates.clone(), rb.first_step),
        (JobState::NeedsRemediation, vec!["KB5000002".to_string()], 1)
    );
    assert!(rollback_refusal(&j).unwrap().contains("being rolled back"));
    // The install's reboot is not the rollback's: a new reboot step opens and closes.
    assert!(j.rollback_steps().is_empty());
    j.rollback_step(
        StepKind::Reboot,
        t("2026-12-08T23:05:00Z"),
        None,
        "restarting",
    );
    j.rollback_step(
        StepKind::Reboot,
        t("2026-12-08T23:09:00Z"),
        Some(true),
        "back",
    );
    assert_eq!(j.rollback_steps().len(), 1);
    assert_eq!(j.steps[0].finished, Some(t("2026-12-08T21:30:00Z")));
    assert_eq!(j.rollback_steps()[0].ok, Some(true));

    // Done when the update is gone and no reboot is pending; each failure named.
    let mut after = host();
    after.installed_kbs = vec!["kb5000002".into()];
    after.pending_reboot = vec!["CBS".into()];
    let f = verify_rollback(&rb.updates, &after);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f[0].contains("KB5000002 is still installed") && f[1].contains("CBS"));
    after.installed_kbs.clear();
    after.pending_reboot.clear();
    assert!(verify_rollback(&rb.updates, &after).is_empty());
}

#[test]
fn a_hook_run_reads_as_a_sentence() {
    let mut h = HookRun {
        hook: HookKind::Checkpoint,
        command: "/etc/patchward/checkpoint".into(),
        started: t("2026-12-08T21:00:00Z"),
        finished: None,
        exit_code: None,
        output: "taking checkpoint\n".into(),
    };
    assert!(h.summary().contains("checkpoint hook is running"));
    h.finished = Some(t("2026-12-08T21:01:00Z"));
    h.exit_code = Some(3);
    h.output = "connecting\nvCenter refused: no such VM\n\n".into();
    assert_eq!(
        h.summary(),
        "the checkpoint hook exited with 3: vCenter refused: no such VM"
    );
    assert!(!h.succeeded());
    h.exit_code = Some(0);
    assert!(h.succeeded());
}

#[test]
fn verification_passes_only_when_every_check_does_and_names_what_failed() {
    let j = job();
    let mut after = host();
    after.installed_kbs = vec!["KB5000002".into()];
    after.build = Some("10.0.20348.4100".parse().unwrap());
    let v = verify(&j, j.before.as_ref(), &after, &[], &[]);
    assert!(v.verified, "{v:?}");
    assert_eq!(v.checks.len(), 6);

    let mut bad = after.clone();
    bad.build = Some("10.0.20348.4000".parse().unwrap());
    bad.pending_reboot = vec!["CBS RebootPending".into()];
    bad.services = vec![("W3SVC".into(), "auto".into(), "stopped".into())];
    bad.backup_failing = true;
    let events = [
        CriticalEvent {
            id: 7031,
            source: "Service Control Manager".into(),
            at: t("2026-12-08T21:40:00Z"),
            message: String::new(),
        },
        // Before the job: not ours.
        CriticalEvent {
            id: 6008,
            source: "EventLog".into(),
            at: t("2026-12-07T01:00:00Z"),
            message: String::new(),
        },
        // Not a critical ID.
        CriticalEvent {
            id: 19,
            source: "WindowsUpdateClient".into(),
            at: t("2026-12-08T21:30:00Z"),
            message: String::new(),
        },
    ];
    let v = verify(&j, j.before.as_ref(), &bad, &events, &[]);
    assert!(!v.verified);
    let f = v.failures();
    assert_eq!(f.len(), 5, "{f:?}");
    assert!(f.iter().any(|x| x.contains("W3SVC")));
    assert!(f.iter().any(|x| x.contains("7031") && !x.contains("6008")));
    let mut missing = after.clone();
    missing.installed_kbs = vec!["KB5000001".into()];
    let v = verify(&j, j.before.as_ref(), &missing, &[], &[]);
    assert_eq!(
        v.failures(),
        vec!["updates installed: not installed: KB5000002".to_string()]
    );
}

#[test]
fn every_probe_of_the_job_must_pass_and_one_the_agent_did_not_run_fails() {
    use crate::inventory::HealthProbe;
    let mut j = job();
    let http = HealthProbe::Http {
        url: "http://localhost:8080/health".into(),
        status: 200,
        body_contains: Some("Healthy".into()),
    };
    let tcp = HealthProbe::Tcp {
        host: "localhost".into(),
        port: 1433,
    };
    let svc = HealthProbe::WindowsService {
        name: "MSSQLSERVER".into(),
    };
    j.probes = vec![http.clone(), tcp.clone(), svc.clone()];
    let mut after = host();
    after.installed_kbs = vec!["KB5000002".into()];
    after.build = Some("10.0.20348.4100".parse().unwrap());
    let ok = |p: &HealthProbe| ProbeOutcome {
        probe: p.clone(),
        passed: true,
        detail: "ok".into(),
    };
    let all = [ok(&http), ok(&tcp), ok(&svc)];
    let v = verify(&j, j.before.as_ref(), &after, &[], &all);
    assert!(v.verified, "{v:?}");
    assert_eq!(v.checks.len(), 9);

    // A failing HTTP probe names its URL, status and what was seen; a probe the agent did not
    // report (an older agent) fails too; results for probes the job has not got are ignored.
    let stray = HealthProbe::Tcp {
        host: "localhost".into(),
        port: 1,
    };
    let outcomes = [
        ProbeOutcome {
            probe: http.clone(),
            passed: false,
            detail: "503 Service Unavailable".into(),
        },
        ok(&svc),
        ProbeOutcome {
            probe: stray,
            passed: false,
            detail: "connection refused".into(),
        },
    ];
    let v = verify(&j, j.before.as_ref(), &after, &[], &outcomes);
    assert!(!v.verified);
    assert_eq!(
        v.failures(),
        vec![
            "probe HTTP http://localhost:8080/health answers 200 containing \"Healthy\": \
             503 Service Unavailable"
                .to_string(),
            "probe TCP localhost:1433 accepts: not run by the agent (agents before protocol 2 \
             run no probes: upgrade it)"
                .to_string(),
        ]
    );
}

#[test]
fn a_reboot_the_policy_forbids_is_named_when_it_is_still_pending() {
    let mut j = job();
    j.reboot = crate::inventory::RebootPolicy::Never;
    let mut after = host();
    after.installed_kbs = vec!["KB5000002".into()];
    after.build = Some("10.0.20348.4100".parse().unwrap());
    after.pending_reboot = vec!["CBS RebootPending".into()];
    let v = verify(&j, j.before.as_ref(), &after, &[], &[]);
    assert_eq!(
        v.failures(),
        vec![
            "pending reboot: still pending: CBS RebootPending (the server's reboot policy is \
             never: restart it to finish)"
                .to_string()
        ]
    );
    assert_eq!(
        crate::inventory::RebootPolicy::parse("If-Required"),
        Some(crate::inventory::RebootPolicy::IfRequired)
    );
    assert_eq!(crate::inventory::RebootPolicy::parse("sometimes"), None);
}

#[test]
fn steps_open_and_close_in_order_and_states_parse_back() {
    let mut j = job();
    j.step_started(StepKind::Install, t("2026-12-08T21:05:00Z"), "2 updates");
    j.step_started(
        StepKind::Install,
        t("2026-12-08T21:06:00Z"),
        "still running after 1 min",
    );
    assert_eq!(j.steps.len(), 1);
    assert_eq!(j.steps[0].started, t("2026-12-08T21:05:00Z"));
    j.step_finished(StepKind::Install, t("2026-12-08T21:20:00Z"), true, "");
    // A progress report that arrives after the end does not reopen the step.
    j.step_started(
        StepKind::Install,
        t("2026-12-08T21:21:00Z"),
        "still running after 16 min",
    );
    assert_eq!(j.steps.len(), 1);
    assert!(j.steps[0].finished.is_some());
    j.step_finished(StepKind::Reboot, t("2026-12-08T21:25:00Z"), true, "back");
    assert_eq!(j.steps[0].detail, "still running after 1 min");
    assert_eq!(j.steps[1].started, j.steps[1].finished.unwrap());
    for s in JobState::ALL {
        assert_eq!(JobState::parse(s.as_str()), Some(s));
    }
    for k in StepKind::ALL {
        assert_eq!(StepKind::parse(k.as_str()), Some(k));
    }
    assert!(JobState::NeedsRemediation.is_failure() && JobState::Failed.is_terminal());
    assert!(!JobState::Blocked.is_terminal());
}

#[test]
fn planned_durations_are_learned_from_finished_jobs() {
    let m = SignedDuration::from_mins;
    assert_eq!(learned_duration(&[]), None);
    // Median 40 min, plus a quarter = 50 min.
    assert_eq!(learned_duration(&[m(35), m(40), m(90)]), Some(m(50)));
    // 37 min median → 46.25 → rounded up to 50.
    assert_eq!(learned_duration(&[m(34), m(40)]), Some(m(50)));
    // Instant jobs (simulated) still get a quarter of an hour.
    assert_eq!(learned_duration(&[SignedDuration::ZERO]), Some(m(15)));
}
