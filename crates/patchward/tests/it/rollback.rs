//! Rollback through the agent and the operator's hooks, on SQLite and PostgreSQL, against a
//! real server in this process (injected clock) that runs real hook scripts:
//! - a failed verification rolls back by itself when the plan says `automatic`;
//! - otherwise an approver (not an operator) asks for it, and the agent uninstalls;
//! - a succeeded job can be rolled back; a removal that fails needs remediation, with its
//!   HRESULT;
//! - a snapshot plan takes a checkpoint through the checkpoint hook before the install (a
//!   failing hook blocks the job, which is tried again five minutes later), and its rollback
//!   is the restore hook, whose exit code and output are kept;
//! - a plan done by people is recorded as done, not pretended.

use crate::api::{Backend, TestDb, call, client, on_both, user_token};
use crate::workflow::serve_in_process_with;
use crate::{fixtures, ok, pw};
use jiff::{SignedDuration, Timestamp};
use patchward_agent::simulated::{Fault, SimulatedHost, Streams};
use patchward_agent::{Agent, AgentClient, Tls};
use patchward_core::product::ServerRelease;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::fmt::Write as _;

on_both!(jobs_roll_back_through_the_agent_and_the_hooks,);

/// The hosts: (fault, rollback plan).
fn hosts() -> Vec<(Option<Fault>, &'static str)> {
    vec![
        // 0: verification fails, automatic uninstall.
        (
            Some(Fault::ServiceDoesNotStart),
            r#"method = "uninstall_kb", who = "ops", tested_on = "2026-06-01", automatic = true"#,
        ),
        // 1: verification fails, an approver decides.
        (
            Some(Fault::ServiceDoesNotStart),
            r#"method = "uninstall_kb", who = "ops", tested_on = "2026-06-01""#,
        ),
        // 2: snapshot: checkpoint, succeeds; rolled back later by the restore hook.
        (
            None,
            r#"method = "snapshot", who = "virt", tested_on = "2026-06-01""#,
        ),
        // 3: snapshot whose first checkpoint fails.
        (
            None,
            r#"method = "snapshot", who = "virt", tested_on = "2026-06-01""#,
        ),
        // 4: succeeds; its rollback's removal fails.
        (
            Some(Fault::UninstallFailure),
            r#"method = "uninstall_kb", who = "ops", tested_on = "2026-06-01""#,
        ),
        // 5: restored from backup by people.
        (
            Some(Fault::ServiceDoesNotStart),
            r#"method = "restore_from_backup", who = "backup team", tested_on = "2026-06-01""#,
        ),
    ]
}

async fn jobs_roll_back_through_the_agent_and_the_hooks(backend: Backend) {
    let Some(test_db) = TestDb::new("rollback", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    let f = |p: &str| fixtures().join(p).to_str().unwrap().to_string();
    ok(&pw(
        &db,
        &[
            "import",
            "feeds",
            &f("builds/windows-server-kb-fixedbuild_from-msrc-cvrf_2016-2026.csv.zst"),
            &f("msrc-cvrf/2026-Jun.xml.zst"),
        ],
    ));
    let op = user_token(&db, "olga", "operator", Some("default"));
    let appr = user_token(&db, "alice", "approver", Some("default"));
    let adm = user_token(&db, "adam", "admin", Some("default"));
    let start: Timestamp = "2026-08-12T01:00:00Z".parse().unwrap();

    // The simulated hosts first: the hook script names two of them.
    let streams = Streams::bundled().unwrap();
    let plans = hosts();
    let mut sims = Vec::new();
    let mut index = 0u32;
    while sims.len() < plans.len() {
        let mut h = SimulatedHost::generate(&streams, 29, index, start).unwrap();
        index += 1;
        if !matches!(
            h.release,
            ServerRelease::Server2019 | ServerRelease::Server2022
        ) {
            continue;
        }
        let old = h.stream[h.stream.len() - 3].clone();
        h.build = old.build;
        h.kbs = [old.kb].into();
        let fault = plans[sims.len()].0.clone();
        sims.push(h.with_fault(fault, start));
    }
    let dir = crate::tmpdir(&format!("rollback-hooks-{backend:?}"));
    let _ = std::fs::remove_file(dir.join("once"));
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             echo \"$PATCHWARD_HOOK $PATCHWARD_SERVER job $PATCHWARD_JOB tenant $PATCHWARD_TENANT\"\n\
             if [ \"$PATCHWARD_HOOK:$PATCHWARD_SERVER\" = \"checkpoint:{h3}\" ] && [ ! -e {once} ]; then\n\
             touch {once}; echo 'vCenter refused: VM is busy' >&2; exit 3\n\
             fi\n\
             exit 0\n",
            h3 = sims[3].name,
            once = dir.join("once").display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let hooks = patchward_app::jobs::Hooks {
        checkpoint: Some(script.clone()),
        restore: Some(script.clone()),
        timeout: std::time::Duration::from_secs(60),
    };
    let srv = serve_in_process_with(&db, "2026-08-12T01:00:00Z", hooks).await;
    let c = client();
    let u = |p: &str| format!("{}{p}", srv.url);

    let (_, tok) = call(
        &c,
        Method::POST,
        &u("/api/v1/enrol-tokens"),
        Some(&adm),
        Some(json!({"uses": 10})),
    )
    .await;
    let token = tok["token"].as_str().unwrap().to_string();
    let mut agents = Vec::new();
    for h in sims {
        let client = AgentClient::new(&srv.url, &Tls::Platform).unwrap();
        let mut a = Agent::new(h, client, None).unwrap();
        a.ensure_enrolled(Some(&token)).await.unwrap();
        a.tick(start).await.unwrap();
        agents.push(a);
    }
    let mut toml = String::from(
        "[capacity]\nmax_in_flight = 50\nmax_in_flight_per_site = 50\n\n\
         [[windows]]\nname = \"night\"\nrrule = \"FREQ=DAILY\"\nstart = \"00:00\"\nduration = \"10h\"\ntime_zone = \"UTC\"\n",
    );
    for (a, (_, plan)) in agents.iter().zip(&plans) {
        let _ = write!(
            toml,
            "\n[[servers]]\nname = \"{}\"\nos = \"{}\"\nwindows = [\"night\"]\nestimated_duration = \"60m\"\ntier = 3\nrollback = {{ {plan} }}\n",
            a.host.name,
            a.host.caption(),
        );
    }
    let estate = crate::tmpdir(&format!("rollback-estate-{backend:?}")).join("estate.toml");
    std::fs::write(&estate, toml).unwrap();
    ok(&pw(&db, &["import", "hosts", estate.to_str().unwrap()]));
    let (s, cy) = call(
        &c,
        Method::POST,
        &u("/api/v1/cycles"),
        Some(&op),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, cy["servers"].as_u64()),
        (StatusCode::CREATED, Some(6)),
        "{cy}"
    );
    let id = cy["id"].as_i64().unwrap();
    for (path, who, body) in [
        ("plan", &op, None),
        ("approvals", &appr, Some(json!({"ticket": "CHG-7"}))),
        ("start", &op, None),
    ] {
        let (s, v) = call(
            &c,
            Method::POST,
            &u(&format!("/api/v1/cycles/{id}/{path}")),
            Some(who),
            body,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
    // Every failure here is on purpose: the ring tolerates them all (the tenant's rule).
    let (_, mut rules) = call(
        &c,
        Method::GET,
        &u("/api/v1/workflow-rules"),
        Some(&adm),
        None,
    )
    .await;
    assert_eq!(rules["failure_budget_percent"], 10, "the default: {rules}");
    rules["failure_budget_percent"] = json!(101);
    let (s, e) = call(
        &c,
        Method::PUT,
        &u("/api/v1/workflow-rules"),
        Some(&adm),
        Some(rules.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "failure_budget_percent", "{e}");
    rules["failure_budget_percent"] = json!(100);
    let (s, v) = call(
        &c,
        Method::PUT,
        &u("/api/v1/workflow-rules"),
        Some(&adm),
        Some(rules),
    )
    .await;
    assert_eq!(
        (s, v["failure_budget_percent"].as_u64()),
        (StatusCode::OK, Some(100)),
        "{v}"
    );
    let jobs_url = u(&format!("/api/v1/cycles/{id}/jobs"));
    let job_of = |jobs: &Value, server: &str| -> Value {
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["server"] == server)
            .cloned()
            .unwrap()
    };
    let names: Vec<String> = agents.iter().map(|a| a.host.name.clone()).collect();
    // Wait (real time) until the server's loop has run the hooks asked for.
    let settle = || async {
        for _ in 0..100 {
            let (_, j) = call(&c, Method::GET, &jobs_url, Some(&op), None).await;
            let running = j["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|j| j["hooks"].as_array().unwrap().clone())
                .any(|h| h["finished"].is_null());
            if !running {
                return j;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("hooks still running after 10 s");
    };

    // Round 1: the uninstall plans run; the snapshot plans take their checkpoints first.
    let mut now = start;
    for a in agents.iter_mut() {
        a.tick(now).await.unwrap();
    }
    let jobs = settle().await;
    let j2 = job_of(&jobs, &names[2]);
    assert_eq!(j2["state"], "waiting", "{j2}");
    assert_eq!(j2["hooks"][0]["hook"], "checkpoint", "{jobs}");
    assert_eq!(j2["hooks"][0]["exit_code"], 0, "{j2}");
    assert!(
        j2["hooks"][0]["output"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "checkpoint {} job {} tenant default",
                names[2], j2["id"]
            )),
        "the hook's environment names the job: {j2}"
    );
    // Host 0: its verification failed and its plan rolls it back by itself.
    let j0 = job_of(&jobs, &names[0]);
    assert_eq!(j0["state"], "rolling_back", "{j0}");
    assert_eq!(j0["rollback"]["requested_by"], "policy");
    assert!(
        j0["rollback"]["reason"]
            .as_str()
            .unwrap()
            .contains("automatic services"),
        "{j0}"
    );
    assert_eq!(job_of(&jobs, &names[1])["state"], "needs_remediation");
    assert_eq!(job_of(&jobs, &names[4])["state"], "succeeded");
    assert_eq!(job_of(&jobs, &names[5])["state"], "needs_remediation");

    // Round 2: the checkpoint taken, host 2 is patched; host 3's checkpoint failed and
    // blocks it; host 0's agent uninstalls.
    now += SignedDuration::from_mins(1);
    srv.clock.set(now);
    for a in agents.iter_mut() {
        a.tick(now).await.unwrap();
    }
    let jobs = settle().await;
    assert_eq!(job_of(&jobs, &names[2])["state"], "succeeded");
    let j3 = job_of(&jobs, &names[3]);
    assert_eq!(j3["state"], "blocked", "{j3}");
    assert!(
        j3["outcome"]
            .as_str()
            .unwrap()
            .contains("checkpoint hook exited with 3: vCenter refused: VM is busy"),
        "{j3}"
    );
    let j0 = job_of(&jobs, &names[0]);
    assert_eq!(j0["state"], "rolled_back", "{j0}");
    assert_eq!(j0["rollback"]["results"][0]["installed"], false, "{j0}");
    assert_eq!(
        agents[0].host.build,
        {
            let s = &agents[0].host.stream;
            s[s.len() - 3].build
        },
        "the host is back on its build before the cycle"
    );
    let steps: Vec<&str> = j0["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        &steps[steps.len() - 3..],
        ["rollback", "reboot", "verify"],
        "the rollback's own steps follow the install's: {steps:?}"
    );

    // Approvers decide rollbacks; operators may not.
    let rollback = |job: &Value| u(&format!("/api/v1/jobs/{}/rollback", job["id"]));
    let j1 = job_of(&jobs, &names[1]);
    let (s, e) = call(
        &c,
        Method::POST,
        &rollback(&j1),
        Some(&op),
        Some(json!({"reason": "app down"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, e) = call(
        &c,
        Method::POST,
        &rollback(&j1),
        Some(&appr),
        Some(json!({"reason": 3})),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
        "a wrong type is refused, naming the field: {e}"
    );
    // The approver does it from the cycle page: a Roll back form on each ended job.
    let login = c
        .post(u("/api/v1/session"))
        .header("Content-Type", "application/json")
        .body(json!({"name": "alice", "password": "correct horse battery staple"}).to_string())
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let panel = c
        .get(u(&format!("/cycles/{id}/jobs")))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = format!("action=\"/cycles/{id}/jobs/{}/rollback\"", j1["id"]);
    assert!(panel.contains(&form), "{panel}");
    let done = format!("action=\"/cycles/{id}/jobs/{}/rollback\"", j0["id"]);
    assert!(
        !panel.contains(&done),
        "a rolled-back job has no Roll back form"
    );
    let csrf = panel
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let posted = c
        .post(u(&format!("/cycles/{id}/jobs/{}/rollback", j1["id"])))
        .header("Cookie", &cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&reason=the+ERP+client+fails+to+start"))
        .send()
        .await
        .unwrap();
    assert!(
        posted.url().as_str().contains("done=rolling-back"),
        "{}",
        posted.url()
    );
    let page = posted.text().await.unwrap();
    assert!(page.contains("Rollback asked for"), "the flash says so");
    let (_, now_jobs) = call(&c, Method::GET, &jobs_url, Some(&op), None).await;
    assert_eq!(
        job_of(&now_jobs, &names[1])["state"],
        "rolling_back",
        "{now_jobs}"
    );
    // A succeeded job can be rolled back too; snapshot → the restore hook; by hand → refused
    // until done.
    for (i, reason) in [
        (2, "report server slow since the patch"),
        (4, "LOB app errors"),
    ] {
        let (s, v) = call(
            &c,
            Method::POST,
            &rollback(&job_of(&jobs, &names[i])),
            Some(&appr),
            Some(json!({ "reason": reason })),
        )
        .await;
        assert_eq!(
            (s, v["state"].as_str()),
            (StatusCode::OK, Some("rolling_back")),
            "{v}"
        );
    }
    let j5 = job_of(&jobs, &names[5]);
    let (s, e) = call(
        &c,
        Method::POST,
        &rollback(&j5),
        Some(&appr),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("restore_from_backup by backup team"),
        "{e}"
    );
    let (s, v) = call(
        &c,
        Method::POST,
        &rollback(&j5),
        Some(&appr),
        Some(json!({"reason": "restored from last night's backup", "done": true})),
    )
    .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("rolled_back")),
        "{v}"
    );
    let (s, e) = call(
        &c,
        Method::POST,
        &rollback(&j5),
        Some(&appr),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("rolled back already"),
        "{e}"
    );

    // The restore hook ran meanwhile.
    let jobs = settle().await;
    let j2 = job_of(&jobs, &names[2]);
    assert_eq!(j2["state"], "rolled_back", "{j2}");
    assert_eq!(j2["hooks"][1]["hook"], "restore", "{j2}");
    assert_eq!(j2["hooks"][1]["exit_code"], 0, "{j2}");
    assert!(
        j2["hooks"][1]["output"]
            .as_str()
            .unwrap()
            .starts_with("restore "),
        "{j2}"
    );

    // Round 3, ten minutes later: host 3's checkpoint is taken again; the rollbacks run.
    now += SignedDuration::from_mins(10);
    srv.clock.set(now);
    for a in agents.iter_mut() {
        a.tick(now).await.unwrap();
    }
    let jobs = settle().await;
    let j1 = job_of(&jobs, &names[1]);
    assert_eq!(j1["state"], "rolled_back", "{j1}");
    assert_eq!(j1["rollback"]["requested_by"], "alice");
    let j4 = job_of(&jobs, &names[4]);
    assert_eq!(j4["state"], "needs_remediation", "{j4}");
    assert!(
        j4["outcome"]
            .as_str()
            .unwrap()
            .contains("could not be removed (0x800F0825)"),
        "{j4}"
    );
    assert_eq!(job_of(&jobs, &names[3])["hooks"][1]["exit_code"], 0);
    now += SignedDuration::from_mins(1);
    srv.clock.set(now);
    agents[3].tick(now).await.unwrap();
    let jobs = settle().await;
    assert_eq!(job_of(&jobs, &names[3])["state"], "succeeded");

    // The audit log has each decision with its actor, and each hook with its exit code.
    let (_, audit) = call(
        &c,
        Method::GET,
        &u("/api/v1/audit?limit=10000"),
        Some(&adm),
        None,
    )
    .await;
    let entries = audit.as_array().unwrap();
    let count = |action: &str, actor: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["actor"].as_str().unwrap().contains(actor))
            .count()
    };
    assert_eq!(count("job.rollback", "alice"), 4, "{audit}");
    assert_eq!(
        count("job.rollback", "system:jobs"),
        1,
        "the automatic one: {audit}"
    );
    assert_eq!(count("job.hook.checkpoint", ""), 3);
    assert_eq!(
        count("job.rolled_back", "system:jobs"),
        3,
        "two through the agent, one by the restore hook"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "job.hook.checkpoint" && e["detail"]["exit_code"] == 3),
        "{audit}"
    );
}
