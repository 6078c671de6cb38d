//! A whole cycle executed by 50 simulated agents across three rings, with faults, on SQLite
//! and PostgreSQL, against a real server in this process with an injected clock: jobs succeed,
//! fail with their HRESULT, are rolled back at boot or need remediation as their faults
//! dictate; promotion waits for verification and soak; a ring over its failure budget halts
//! and the next ring does not start; a reboot that never returns ends as needs-remediation
//! after the timeout; every step and gate decision is in the audit log.

use crate::api::{Backend, TestDb, call, client, on_both, user_token};
use crate::lab::{Estate, Lab};
use crate::workflow::serve_in_process;
use crate::{fixtures, ok, pw};
use jiff::{SignedDuration, Timestamp};
use patchward_agent::simulated::{Fault, SimulatedHost, Streams};
use patchward_agent::{Agent, AgentClient, Tls};
use patchward_core::product::ServerRelease;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

on_both!(a_cycle_runs_through_three_rings_with_faults,);

/// The fault each host index gets (pilot = hosts 0..10, broad = 10..35, late = 35..50).
/// The pilot's one failure is within its budget (10% of 10); the broad ring's third failure
/// (agents check in in index order) is over its budget of 2 of 25, so host 34 never starts.
fn fault_of(i: u32) -> Option<Fault> {
    match i {
        5 => Some(Fault::RebootNeverReturns),
        31 => Some(Fault::InstallFailure("0x800F0922".into())),
        32 => Some(Fault::RolledBackAtBoot),
        33 => Some(Fault::ServiceDoesNotStart),
        _ => None,
    }
}

fn ring_of(i: u32) -> &'static str {
    match i {
        0..10 => "pilot",
        10..35 => "broad",
        _ => "late",
    }
}

async fn a_cycle_runs_through_three_rings_with_faults(backend: Backend) {
    let Some(test_db) = TestDb::new("exec", backend) else {
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
    let srv = serve_in_process(&db, "2026-08-12T01:00:00Z").await;
    let c = client();
    let u = |p: &str| format!("{}{p}", srv.url);

    // 50 hosts of supported releases, each three months behind, enrolled and reported.
    let (_, tok) = call(
        &c,
        Method::POST,
        &u("/api/v1/enrol-tokens"),
        Some(&adm),
        Some(json!({"uses": 50})),
    )
    .await;
    let token = tok["token"].as_str().unwrap().to_string();
    let streams = Streams::bundled().unwrap();
    let mut agents = Vec::new();
    let mut index = 0u32;
    while agents.len() < 50 {
        let mut h = SimulatedHost::generate(&streams, 11, index, start).unwrap();
        index += 1;
        if !matches!(
            h.release,
            ServerRelease::Server2016 | ServerRelease::Server2019 | ServerRelease::Server2022
        ) {
            continue;
        }
        let i = agents.len() as u32;
        let old = h.stream[h.stream.len() - 4].clone();
        h.build = old.build;
        h.kbs = [old.kb].into();
        let h = h.with_fault(fault_of(i), start);
        let client = AgentClient::new(&srv.url, &Tls::Platform).unwrap();
        let mut a = Agent::new(h, client, None).unwrap();
        a.ensure_enrolled(Some(&token)).await.unwrap();
        assert!(a.tick(start).await.unwrap().sent_inventory);
        agents.push(a);
    }

    // The estate gives them rings (soak 1h), a daily window and a duration.
    let mut toml = String::from(
        "[capacity]\nmax_in_flight = 50\nmax_in_flight_per_site = 50\n\n\
         [[rings]]\nname = \"pilot\"\norder = 1\nsoak = \"1h\"\n\n\
         [[rings]]\nname = \"broad\"\norder = 2\nsoak = \"1h\"\n\n\
         [[rings]]\nname = \"late\"\norder = 3\nsoak = \"0h\"\n\n\
         [[windows]]\nname = \"daily\"\nrrule = \"FREQ=DAILY\"\nstart = \"00:00\"\nduration = \"23h\"\ntime_zone = \"UTC\"\n",
    );
    for (i, a) in agents.iter().enumerate() {
        let _ = write!(
            toml,
            "\n[[servers]]\nname = \"{}\"\nos = \"{}\"\nwindows = [\"daily\"]\nring = \"{}\"\n{}tier = 3\n\
             rollback = {{ method = \"uninstall_kb\", who = \"ops\", tested_on = \"2026-06-01\" }}\n",
            a.host.name,
            a.host.caption(),
            ring_of(i as u32),
            // The pilot's servers have no estimate: the planner's default, then what it learns.
            if i < 10 {
                ""
            } else {
                "estimated_duration = \"60m\"\n"
            }
        );
    }
    let estate = crate::tmpdir(&format!("exec-estate-{backend:?}")).join("sim-estate.toml");
    std::fs::write(&estate, toml).unwrap();
    ok(&pw(&db, &["import", "hosts", estate.to_str().unwrap()]));

    // The cycle: created and planned by the operator, approved by the approver, started.
    let (s, cy) = call(
        &c,
        Method::POST,
        &u("/api/v1/cycles"),
        Some(&op),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{cy}");
    assert_eq!(cy["servers"], 50, "every host is behind: {cy}");
    let id = cy["id"].as_i64().unwrap();
    let (s, cy) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/plan")),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cy}");
    let (s, e) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/start")),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "not approved yet: {e}");
    let (s, cy) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/approvals")),
        Some(&appr),
        Some(json!({"ticket": "CHG-42"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cy}");
    let (s, cy) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/start")),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(
        (s, cy["state"].as_str()),
        (StatusCode::OK, Some("running")),
        "{cy}"
    );

    // Run: every agent checks in every half hour of the injected clock.
    let jobs_url = u(&format!("/api/v1/cycles/{id}/jobs"));
    let mut now = start;
    let mut jobs = Value::Null;
    for _ in 0..200 {
        for a in agents.iter_mut().filter(|a| !a.host.down) {
            a.tick(now).await.unwrap();
        }
        now += SignedDuration::from_mins(30);
        srv.clock.set(now);
        let (_, j) = call(&c, Method::GET, &jobs_url, Some(&op), None).await;
        jobs = j;
        let busy = jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| !j["reasons"].to_string().contains("over its failure budget"))
            .any(|j| matches!(j["state"].as_str(), Some("waiting" | "blocked" | "running")));
        if !busy {
            break;
        }
    }
    let by_server: BTreeMap<String, &Value> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["server"].as_str().unwrap().to_string(), j))
        .collect();
    assert_eq!(by_server.len(), 50, "one job per placed server: {jobs}");
    let job = |i: usize| by_server[&agents[i].host.name];
    // The pilot ring: verified, each server now at the build its update brings, except the
    // one whose reboot never returned: needs remediation once the timeout passed.
    for i in (0..10).filter(|i| *i != 5) {
        let j = job(i);
        assert_eq!(j["state"], "succeeded", "{j}");
        assert!(
            j["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["passed"] == true)
        );
        assert_eq!(
            j["expected_build"].as_str(),
            Some(agents[i].host.build.to_string().as_str())
        );
        let steps: Vec<&str> = j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            ["gates", "scan", "download", "install", "reboot", "verify"],
            "{j}"
        );
    }
    let gone = job(5);
    assert_eq!(gone["state"], "needs_remediation", "{gone}");
    assert!(
        gone["outcome"]
            .as_str()
            .unwrap()
            .contains("did not come back"),
        "{gone}"
    );
    // Promotion waited for the whole pilot ring (the lost server included) and its soak.
    let finished = |i: usize| {
        job(i)["finished"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", job(i)))
            .parse::<Timestamp>()
            .unwrap()
    };
    let pilot_done = (0..10).map(finished).max().unwrap();
    for i in 10..34 {
        let started: Timestamp = job(i)["started"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", job(i)))
            .parse()
            .unwrap();
        assert!(
            started >= pilot_done + SignedDuration::from_hours(1),
            "{}",
            job(i)
        );
    }
    // The broad ring's faults, each as it dictates.
    for i in 10..31 {
        assert_eq!(job(i)["state"], "succeeded", "{}", job(i));
    }
    let failed = job(31);
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["results"][0]["hresult"], "0x800F0922", "{failed}");
    assert!(
        failed["reasons"]
            .to_string()
            .contains("failed with 0x800F0922"),
        "{failed}"
    );
    assert_eq!(
        failed["rollback_refused"], "nothing was installed: the failed updates were not applied",
        "{failed}"
    );
    assert!(job(10)["rollback_refused"].is_null(), "{}", job(10));
    let rolled = job(32);
    assert_eq!(rolled["state"], "needs_remediation", "{rolled}");
    assert!(
        rolled["rollback_refused"]
            .as_str()
            .is_some_and(|r| r.contains("Windows undid them at boot")),
        "{rolled}"
    );
    assert!(
        rolled["reasons"]
            .to_string()
            .contains("updates installed: not installed"),
        "{rolled}"
    );
    assert!(
        rolled["reasons"]
            .to_string()
            .contains("Microsoft-Windows-WindowsUpdateClient 20"),
        "{rolled}"
    );
    let service = job(33);
    assert_eq!(service["state"], "needs_remediation");
    assert!(
        service["reasons"]
            .to_string()
            .contains("automatic services"),
        "{service}"
    );
    // Three failures of 25 are over the 10% budget: the ring halts — its last server and the
    // next ring never start.
    let broad = jobs["rings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ring"] == "broad")
        .unwrap();
    assert_eq!(broad["status"], "halted", "{jobs}");
    for i in 34..50 {
        let j = job(i);
        assert_eq!(j["state"], "waiting", "{j}");
        assert!(j["started"].is_null(), "{j}");
        assert!(
            j["reasons"].to_string().contains("over its failure budget"),
            "{j}"
        );
        // Its outcome says what it waits on now, not what was planned.
        assert!(
            j["outcome"]
                .as_str()
                .unwrap()
                .starts_with("waiting: ring broad:"),
            "{j}"
        );
    }
    let late = jobs["rings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ring"] == "late")
        .unwrap();
    assert_eq!(late["status"], "halted", "{jobs}");

    // An agent acts only on its own server's job: another agent's job, or one of another
    // tenant, is not found; a stale fencing token is refused.
    let target = job(34)["id"].as_i64().unwrap();
    let mine = job(0)["id"].as_i64().unwrap();
    let report = json!({"token": 1, "step": "scan", "status": "finished"});
    let post = |cred: String, id: i64| {
        let c = c.clone();
        let url = u(&format!("/agent/v1/jobs/{id}/steps"));
        let report = report.clone();
        async move {
            c.post(url)
                .bearer_auth(cred)
                .json(&report)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let cred0 = agents[0].state().unwrap().credential.clone();
    assert_eq!(post(cred0.clone(), target).await, StatusCode::NOT_FOUND);
    assert_eq!(
        post(cred0, mine).await,
        StatusCode::CONFLICT,
        "its lease is over"
    );
    let otto = user_token(&db, "otto", "admin", Some("other"));
    let (_, ot) = call(
        &c,
        Method::POST,
        &u("/api/v1/enrol-tokens"),
        Some(&otto),
        Some(json!({})),
    )
    .await;
    let mut stranger = Agent::new(
        SimulatedHost::generate(&streams, 99, 0, start).unwrap(),
        AgentClient::new(&srv.url, &Tls::Platform).unwrap(),
        None,
    )
    .unwrap();
    stranger
        .ensure_enrolled(Some(ot["token"].as_str().unwrap()))
        .await
        .unwrap();
    let cred = stranger.state().unwrap().credential.clone();
    assert_eq!(post(cred.clone(), target).await, StatusCode::NOT_FOUND);
    assert_eq!(post(cred, mine).await, StatusCode::NOT_FOUND);
    let (s, _) = call(&c, Method::GET, &jobs_url, Some(&otto), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant's cycle");

    // Every step and gate decision is in the audit log.
    let (_, audit) = call(
        &c,
        Method::GET,
        &u("/api/v1/audit?limit=10000"),
        Some(&adm),
        None,
    )
    .await;
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for e in audit.as_array().unwrap() {
        *count
            .entry(e["action"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(count.get("job.start"), Some(&34), "{count:?}");
    assert_eq!(count.get("job.succeeded"), Some(&30), "{count:?}");
    assert_eq!(count.get("job.failed"), Some(&1), "{count:?}");
    assert_eq!(count.get("job.needs_remediation"), Some(&3), "{count:?}");
    assert!(
        count.get("job.step").copied().unwrap_or(0) >= 34 * 4,
        "{count:?}"
    );
    assert_eq!(count.get("cycle.start"), Some(&1));
    assert_eq!(count.get("cycle.jobs"), Some(&1));

    // Durations learned from finished jobs feed the next plan: the pilot's servers had no
    // estimate (the default by role), and their jobs took no time at all (simulated): the
    // planner now allows the learned quarter of an hour; the lost server keeps the default.
    let pilot: Vec<String> = agents[..10].iter().map(|a| a.host.name.clone()).collect();
    let (s, next) = call(
        &c,
        Method::POST,
        &u("/api/v1/plans"),
        Some(&op),
        Some(json!({"cycle": "learned", "start": now.to_string(), "servers": pilot})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{next}");
    let slot = |name: &str| {
        let p = next["placements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["server"] == name)
            .unwrap_or_else(|| panic!("{name} placed: {next}"));
        let a: Timestamp = p["start"].as_str().unwrap().parse().unwrap();
        let b: Timestamp = p["end"].as_str().unwrap().parse().unwrap();
        a.duration_until(b)
    };
    assert_eq!(slot(&agents[0].host.name), SignedDuration::from_mins(15));
    assert_ne!(slot(&agents[5].host.name), SignedDuration::from_mins(15));

    // A pause stops new starts; resuming past the halted ring (an approver's decision)
    // accepts its failures: its last server runs, the next ring waits for the soak; then the
    // cycle is cancelled and what has not started ends as cancelled.
    let cyc = |p: &str| u(&format!("/api/v1/cycles/{id}/{p}"));
    let (s, _) = call(
        &c,
        Method::POST,
        &cyc("pause"),
        Some(&op),
        Some(json!({"reason": "change freeze call"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = call(
        &c,
        Method::POST,
        &cyc("resume"),
        Some(&op),
        Some(json!({"ring": "broad", "reason": "go"})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "operators do not accept failures: {e}"
    );
    let (s, cy) = call(
        &c,
        Method::POST,
        &cyc("resume"),
        Some(&appr),
        Some(json!({"ring": "broad", "reason": "the three failures are understood"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cy}");
    for a in agents.iter_mut().filter(|a| !a.host.down) {
        a.tick(now).await.unwrap();
    }
    let (_, after) = call(&c, Method::GET, &jobs_url, Some(&op), None).await;
    let state_of = |i: usize| {
        after["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["server"] == agents[i].host.name.as_str())
            .unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state_of(34), "succeeded", "{after}");
    let late = after["rings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ring"] == "late")
        .unwrap();
    assert_eq!(late["status"], "waiting", "{after}");
    assert!(
        late["reason"].as_str().unwrap().contains("soaks until"),
        "{late}"
    );
    let (s, cy) = call(
        &c,
        Method::POST,
        &cyc("transitions"),
        Some(&op),
        Some(json!({"to": "cancelled", "reason": "stopping here"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cy}");
    let (_, after) = call(&c, Method::GET, &jobs_url, Some(&op), None).await;
    for a in &agents[35..50] {
        let j = after["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["server"] == a.host.name.as_str())
            .unwrap();
        assert_eq!(j["state"], "cancelled", "{j}");
        assert!(j["reasons"].to_string().contains("stopping here"), "{j}");
    }
    assert_eq!(state_of(34), "succeeded");
}

on_both!(killed_servers_and_agents_lose_no_job_and_run_none_twice,);

/// The real server in a child process, killed with SIGKILL at three points of a running cycle
/// and restarted on the same database; an agent that dies in the middle of its install
/// resumes from its state file. Every job completes exactly once.
async fn killed_servers_and_agents_lose_no_job_and_run_none_twice(backend: Backend) {
    let Some(test_db) = TestDb::new("crash", backend) else {
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
    let mut server = crate::api::start(&db, &["--http"]);
    let c = client();
    let now = Timestamp::now();
    let (_, tok) = call(
        &c,
        Method::POST,
        &format!("{}/api/v1/enrol-tokens", server.url),
        Some(&adm),
        Some(json!({"uses": 12})),
    )
    .await;
    let token = tok["token"].as_str().unwrap().to_string();
    let streams = Streams::bundled().unwrap();
    let state_dir = crate::tmpdir(&format!("crash-agent-{backend:?}"));
    let mut agents = Vec::new();
    let mut index = 0;
    while agents.len() < 12 {
        let mut h = SimulatedHost::generate(&streams, 23, index, now).unwrap();
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
        // Agent 8 keeps its state in a directory, as a real agent does.
        let dir = (agents.len() == 8).then(|| state_dir.clone());
        let client = AgentClient::new(&server.url, &Tls::Platform).unwrap();
        let mut a = Agent::new(h, client, dir).unwrap();
        a.ensure_enrolled(Some(&token)).await.unwrap();
        a.tick(now).await.unwrap();
        agents.push(a);
    }
    // A window open now (UTC), every server in it at once.
    let from = now - SignedDuration::from_hours(1);
    let from = from.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let mut toml = format!(
        "[capacity]\nmax_in_flight = 50\nmax_in_flight_per_site = 50\n\n\
         [[windows]]\nname = \"now\"\nrrule = \"FREQ=DAILY\"\nstart = \"{:02}:{:02}\"\nduration = \"10h\"\ntime_zone = \"UTC\"\n",
        from.hour(),
        from.minute()
    );
    for a in &agents {
        let _ = write!(
            toml,
            "\n[[servers]]\nname = \"{}\"\nos = \"{}\"\nwindows = [\"now\"]\nestimated_duration = \"60m\"\ntier = 3\n\
             rollback = {{ method = \"snapshot\", who = \"ops\", tested_on = \"2026-06-01\" }}\n",
            a.host.name,
            a.host.caption()
        );
    }
    let estate = crate::tmpdir(&format!("crash-estate-{backend:?}")).join("estate.toml");
    std::fs::write(&estate, toml).unwrap();
    ok(&pw(&db, &["import", "hosts", estate.to_str().unwrap()]));
    let u = |base: &str, p: &str| format!("{base}{p}");
    let (s, cy) = call(
        &c,
        Method::POST,
        &u(&server.url, "/api/v1/cycles"),
        Some(&op),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, cy["servers"].as_u64()),
        (StatusCode::CREATED, Some(12)),
        "{cy}"
    );
    let id = cy["id"].as_i64().unwrap();
    let (s, cy) = call(
        &c,
        Method::POST,
        &u(&server.url, &format!("/api/v1/cycles/{id}/plan")),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cy}");
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&server.url, &format!("/api/v1/cycles/{id}/approvals")),
        Some(&appr),
        Some(json!({"ticket": "CHG-7"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&server.url, &format!("/api/v1/cycles/{id}/start")),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // The plan's slots start at the cycle's start, rounded up to the second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let restart = |old: crate::api::Server| {
        drop(old); // SIGKILL, no graceful shutdown
        crate::api::start(&db, &["--http"])
    };
    let reconnect = |agents: &mut Vec<Agent<SimulatedHost>>, url: &str| {
        for a in agents.iter_mut() {
            a.set_client(AgentClient::new(url, &Tls::Platform).unwrap())
                .unwrap();
        }
    };
    // 1: killed right after the start; 2: after four agents ran their jobs.
    server = restart(server);
    reconnect(&mut agents, &server.url);
    for a in agents.iter_mut().take(4) {
        let t = a.tick(Timestamp::now()).await.unwrap();
        let (_, jobs) = call(
            &c,
            Method::GET,
            &u(&server.url, &format!("/api/v1/cycles/{id}/jobs")),
            Some(&op),
            None,
        )
        .await;
        assert_eq!(
            t.job.as_ref().map(|j| j.1.as_str()),
            Some("succeeded"),
            "{t:?} {jobs}"
        );
    }
    server = restart(server);
    reconnect(&mut agents, &server.url);
    // 3: killed in the middle of a job: agent 5 took its job and reported the install started.
    let cred = agents[5].state().unwrap().credential.clone();
    let raw = AgentClient::new(&server.url, &Tls::Platform).unwrap();
    let reply = raw
        .check_in(
            &cred,
            &patchward_proto::agent::CheckIn {
                protocol: 1,
                agent_version: "test".into(),
                inventory_digest: Some(
                    patchward_agent::Host::inventory(&mut agents[5].host, now).digest(),
                ),
                wait_seconds: None,
            },
        )
        .await
        .unwrap();
    let offer = reply.job.expect("agent 5 is offered its job");
    let step = |s: &str, st: &str| patchward_proto::agent::StepReport {
        token: offer.token,
        step: s.into(),
        status: st.into(),
        detail: String::new(),
        results: vec![],
        inventory: None,
        events: vec![],
        probes: vec![],
        found: vec![],
    };
    // Its scan found each KB by identity: after the restart, the agent is told what it found
    // and installs exactly those.
    let mut scanned = step("scan", "finished");
    scanned.found = patchward_agent::Host::scan(&mut agents[5].host, &offer.updates, now).unwrap();
    let found5: Vec<String> = scanned
        .found
        .iter()
        .map(|f| format!("{}: {} revision {}", f.kb, f.update_id, f.revision))
        .collect();
    assert!(!found5.is_empty());
    let mut forged = scanned.clone();
    forged.found[0].update_id = "x' or IsInstalled=1 or 'a'='a".into();
    match raw.step(&cred, offer.job_id, &forged).await {
        Err(patchward_agent::ClientError::Refused(e)) => {
            assert_eq!(e.field.as_deref(), Some("found[0].update_id"), "{e:?}")
        }
        other => panic!("a scan result that is not a GUID is refused: {other:?}"),
    }
    raw.step(&cred, offer.job_id, &scanned).await.unwrap();
    raw.step(&cred, offer.job_id, &step("download", "finished"))
        .await
        .unwrap();
    raw.step(&cred, offer.job_id, &step("install", "started"))
        .await
        .unwrap();
    server = restart(server);
    reconnect(&mut agents, &server.url);
    // An agent dies in the middle of its install: a new process with the same state file
    // resumes the job it holds.
    let cred8 = agents[8].state().unwrap().credential.clone();
    let raw = AgentClient::new(&server.url, &Tls::Platform).unwrap();
    let reply = raw
        .check_in(
            &cred8,
            &patchward_proto::agent::CheckIn {
                protocol: 1,
                agent_version: "test".into(),
                inventory_digest: Some(
                    patchward_agent::Host::inventory(&mut agents[8].host, now).digest(),
                ),
                wait_seconds: None,
            },
        )
        .await
        .unwrap();
    let offer8 = reply.job.expect("agent 8 is offered its job");
    for (name, status) in [
        ("scan", "finished"),
        ("download", "finished"),
        ("install", "started"),
    ] {
        let mut s8 = step(name, status);
        s8.token = offer8.token;
        raw.step(&cred8, offer8.job_id, &s8).await.unwrap();
    }
    let host8 = agents[8].host.clone();
    agents[8] = Agent::new(
        host8,
        AgentClient::new(&server.url, &Tls::Platform).unwrap(),
        Some(state_dir.clone()),
    )
    .unwrap();
    assert_eq!(
        agents[8].state().map(|s| s.agent_id),
        Some(offer8.job_id).and(agents[8].state().map(|s| s.agent_id))
    );
    // Everyone checks in until nothing is left.
    for _ in 0..3 {
        for a in agents.iter_mut() {
            a.tick(Timestamp::now()).await.unwrap();
        }
    }
    let (_, jobs) = call(
        &c,
        Method::GET,
        &u(&server.url, &format!("/api/v1/cycles/{id}/jobs")),
        Some(&op),
        None,
    )
    .await;
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 12);
    let j5 = jobs
        .iter()
        .find(|j| j["server"] == agents[5].host.name.as_str())
        .unwrap();
    assert_eq!(j5["found"], json!(found5), "{j5}");
    for j in jobs {
        assert_eq!(j["state"], "succeeded", "{j}");
        let steps: Vec<&str> = j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            ["gates", "scan", "download", "install", "reboot", "verify"],
            "each step once: {j}"
        );
    }
    let (_, audit) = call(
        &c,
        Method::GET,
        &u(&server.url, "/api/v1/audit?limit=10000"),
        Some(&adm),
        None,
    )
    .await;
    let mut per_job: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in audit.as_array().unwrap() {
        let action = e["action"].as_str().unwrap();
        if action == "job.start" || action == "job.succeeded" {
            *per_job
                .entry((
                    action.to_string(),
                    e["target"].as_str().unwrap().to_string(),
                ))
                .or_default() += 1;
        }
    }
    assert_eq!(per_job.len(), 24, "{per_job:?}");
    assert!(
        per_job.values().all(|n| *n == 1),
        "exactly once: {per_job:?}"
    );
    drop(server);
}

on_both!(an_agentless_wave_goes_through_ansible_and_its_results_come_back,);

/// Estates without agents: a wave becomes an inventory and a playbook that `ansible-playbook
/// --syntax-check` accepts (ansible-core and the ansible.windows collection, installed by
/// `.ci/run`); results in the module's documented shape come back into the jobs.
async fn an_agentless_wave_goes_through_ansible_and_its_results_come_back(backend: Backend) {
    let Some(test_db) = TestDb::new("ansible", backend) else {
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
    let now = Timestamp::now();
    let from = (now - SignedDuration::from_hours(1)).to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let mut toml = format!(
        "[[windows]]\nname = \"now\"\nrrule = \"FREQ=DAILY\"\nstart = \"{:02}:{:02}\"\nduration = \"10h\"\ntime_zone = \"UTC\"\n",
        from.hour(),
        from.minute()
    );
    // Three Server 2022 hosts three cumulative updates behind (from the bundled KB table):
    // each misses June 2026's.
    let streams = Streams::bundled().unwrap();
    let s2022 = &streams.by_release[&ServerRelease::Server2022];
    let march = &s2022[s2022.len() - 4];
    for name in ["app01", "app02", "app03"] {
        let _ = write!(
            toml,
            "\n[[servers]]\nname = \"{name}\"\nfqdn = \"{name}.corp.example\"\nos = \"Windows Server 2022 Datacenter\"\n\
             build = \"{}\"\nkbs = [\"{}\"]\nwindows = [\"now\"]\nestimated_duration = \"60m\"\ntier = 3\n",
            march.build, march.kb
        );
    }
    let dir = crate::tmpdir(&format!("ansible-{backend:?}"));
    std::fs::write(dir.join("estate.toml"), toml).unwrap();
    ok(&pw(
        &db,
        &["import", "hosts", dir.join("estate.toml").to_str().unwrap()],
    ));
    let server = crate::api::start(&db, &["--http"]);
    let c = client();
    let u = |p: &str| format!("{}{p}", server.url);
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
        (StatusCode::CREATED, Some(3)),
        "{cy}"
    );
    let id = cy["id"].as_i64().unwrap();
    call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/plan")),
        Some(&op),
        None,
    )
    .await;
    call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/approvals")),
        Some(&appr),
        Some(json!({"ticket": "CHG-9"})),
    )
    .await;
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/start")),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    // Export: the files, every host's approved KB, and the jobs held by Ansible.
    let out = dir.join("wave");
    ok(&pw(
        &db,
        &[
            "ansible",
            "export",
            "--cycle",
            &id.to_string(),
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let inventory = std::fs::read_to_string(out.join("inventory.yml")).unwrap();
    let playbook = std::fs::read_to_string(out.join("playbook.yml")).unwrap();
    let (_, jobs) = call(
        &c,
        Method::GET,
        &u(&format!("/api/v1/cycles/{id}/jobs")),
        Some(&op),
        None,
    )
    .await;
    let june = jobs["jobs"][0]["updates"][0].as_str().unwrap().to_string();
    for name in ["app01", "app02", "app03"] {
        assert!(
            inventory.contains(&format!(
                "\"{name}\":\n          ansible_host: \"{name}.corp.example\""
            )),
            "{inventory}"
        );
    }
    assert!(
        inventory.contains(&format!("patchward_kbs: [\"{june}\"")),
        "{inventory}"
    );
    assert!(
        playbook.contains("ansible.windows.win_updates:"),
        "{playbook}"
    );
    assert!(
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["state"] == "running"),
        "{jobs}"
    );
    // Exporting again hands nothing more over.
    let again = pw(
        &db,
        &[
            "ansible",
            "export",
            "--cycle",
            &id.to_string(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!again.status.success());
    // The playbook passes ansible-playbook's syntax check.
    match std::process::Command::new("ansible-playbook")
        .arg("--syntax-check")
        .arg("-i")
        .arg(out.join("inventory.yml"))
        .arg(out.join("playbook.yml"))
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "syntax check: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            assert!(
                std::env::var("CI").is_err(),
                "ansible-playbook is missing under CI: {e}"
            );
            eprintln!(
                "skipped the syntax check: ansible-playbook not found ({e}); .ci/run installs it"
            );
        }
    }
    // Results as the playbook keeps them: installed and rebooted; failed with an HRESULT;
    // unreachable.
    let kb_digits = june.trim_start_matches("KB");
    let results = out.join("results");
    std::fs::write(
        results.join("app01.json"),
        format!(r#"{{"changed": true, "failed": false, "reboot_required": false, "rebooted": true, "installed_update_count": 1, "failed_update_count": 0,
           "updates": {{"1f2e": {{"id": "1f2e", "title": "2026-06 Cumulative Update ({june})", "kb": ["{kb_digits}"], "downloaded": true, "installed": true}}}}}}"#),
    )
    .unwrap();
    std::fs::write(
        results.join("app02.json"),
        format!(r#"{{"changed": false, "failed": true, "reboot_required": false, "failed_update_count": 1,
           "updates": {{"3c4d": {{"id": "3c4d", "title": "2026-06 Cumulative Update ({june})", "kb": ["{kb_digits}"], "downloaded": true, "installed": false,
             "failure_hresult_code": 2148469026, "failure_msg": "CBS could not apply it"}}}}}}"#),
    )
    .unwrap();
    std::fs::write(
        results.join("app03.json"),
        r#"{"unreachable": true, "msg": "ntlm: the specified credentials were rejected by the server"}"#,
    )
    .unwrap();
    let table = ok(&pw(
        &db,
        &[
            "ansible",
            "results",
            "--cycle",
            &id.to_string(),
            "--from",
            out.to_str().unwrap(),
        ],
    ));
    assert!(
        table.contains("app02") && table.contains("0x800F0922"),
        "{table}"
    );
    let (_, jobs) = call(
        &c,
        Method::GET,
        &u(&format!("/api/v1/cycles/{id}/jobs")),
        Some(&op),
        None,
    )
    .await;
    let by: BTreeMap<&str, &Value> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["server"].as_str().unwrap(), j))
        .collect();
    assert_eq!(by["app01"]["state"], "succeeded", "{}", by["app01"]);
    assert!(
        by["app01"]["outcome"]
            .as_str()
            .unwrap()
            .contains("Ansible result only")
    );
    assert_eq!(by["app02"]["state"], "failed");
    assert_eq!(
        by["app02"]["results"][0]["hresult"], "0x800F0922",
        "{}",
        by["app02"]
    );
    assert_eq!(by["app03"]["state"], "failed");
    assert!(
        by["app03"]["reasons"].to_string().contains("unreachable"),
        "{}",
        by["app03"]
    );
    // A broken result file is named and changes nothing.
    std::fs::write(results.join("app01.json"), "{\"updates\": [1]}").unwrap();
    let bad = pw(
        &db,
        &[
            "ansible",
            "results",
            "--cycle",
            &id.to_string(),
            "--from",
            out.to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("app01.json"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    drop(server);
}

on_both!(jobs_nobody_runs_in_their_window_move_or_fail_by_themselves,);

/// The sweeper decides for servers that do not check in: a job whose agent was silent for its
/// whole window moves to the window's next occurrence; a server without any agent fails,
/// naming why — neither waits for ever.
async fn jobs_nobody_runs_in_their_window_move_or_fail_by_themselves(backend: Backend) {
    let Some(test_db) = TestDb::new("sweep", backend) else {
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
    let srv = serve_in_process(&db, "2026-08-12T01:00:00Z").await;
    let c = client();
    let u = |p: &str| format!("{}{p}", srv.url);
    let streams = Streams::bundled().unwrap();
    let mut hosts = Vec::new();
    let mut index = 0;
    while hosts.len() < 2 {
        let mut h = SimulatedHost::generate(&streams, 31, index, start).unwrap();
        index += 1;
        if h.release != ServerRelease::Server2022 {
            continue;
        }
        let old = h.stream[h.stream.len() - 3].clone();
        h.build = old.build;
        h.kbs = [old.kb].into();
        hosts.push(h);
    }
    // The first has an agent that reports once and then falls silent; the second none.
    let (_, tok) = call(
        &c,
        Method::POST,
        &u("/api/v1/enrol-tokens"),
        Some(&adm),
        Some(json!({})),
    )
    .await;
    let mut silent = Agent::new(
        hosts[0].clone(),
        AgentClient::new(&srv.url, &Tls::Platform).unwrap(),
        None,
    )
    .unwrap();
    silent
        .ensure_enrolled(Some(tok["token"].as_str().unwrap()))
        .await
        .unwrap();
    silent.tick(start).await.unwrap();
    let mut toml = String::from(
        "[[windows]]\nname = \"night\"\nrrule = \"FREQ=DAILY\"\nstart = \"00:00\"\nduration = \"2h\"\ntime_zone = \"UTC\"\n",
    );
    for h in &hosts {
        let _ = write!(
            toml,
            "\n[[servers]]\nname = \"{}\"\nos = \"{}\"\nbuild = \"{}\"\nkbs = [\"{}\"]\nwindows = [\"night\"]\nestimated_duration = \"30m\"\ntier = 3\n",
            h.name,
            h.caption(),
            h.build,
            h.kbs.iter().next().unwrap()
        );
    }
    let estate = crate::tmpdir(&format!("sweep-estate-{backend:?}")).join("estate.toml");
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
        (StatusCode::CREATED, Some(2)),
        "{cy}"
    );
    let id = cy["id"].as_i64().unwrap();
    for (path, who, body) in [
        ("plan", &op, None),
        ("approvals", &appr, Some(json!({"ticket": "CHG-9"}))),
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
    // Twenty minutes on, nobody has checked in: the operator re-plans the rest of the cycle
    // from its outcomes, and both jobs get a slot from now, still in tonight's window.
    srv.clock.set("2026-08-12T01:20:00Z".parse().unwrap());
    let replan = u(&format!("/api/v1/cycles/{id}/replan"));
    let (s, e) = call(&c, Method::POST, &replan, Some(&appr), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "approvers do not plan: {e}");
    let (s, re) = call(&c, Method::POST, &replan, Some(&op), None).await;
    assert_eq!(s, StatusCode::OK, "{re}");
    for j in re["jobs"].as_array().unwrap() {
        assert!(
            j["outcome"]
                .as_str()
                .unwrap()
                .starts_with("re-planned to 2026-08-12T01:20:00Z in night"),
            "{re}"
        );
        assert_eq!(j["slot_end"], "2026-08-12T01:50:00Z", "{j}");
    }
    // Nobody checks in; the window closes (02:00) and the grace passes.
    srv.clock.set("2026-08-12T02:06:00Z".parse().unwrap());
    let jobs_url = u(&format!("/api/v1/cycles/{id}/jobs"));
    let mut jobs = Value::Null;
    for _ in 0..50 {
        let (_, j) = call(&c, Method::GET, &jobs_url, Some(&op), None).await;
        jobs = j;
        let decided =
            jobs["jobs"].as_array().unwrap().iter().all(|j| {
                j["outcome"].as_str().unwrap().starts_with("moved") || j["state"] == "failed"
            });
        if decided {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let job = |name: &str| {
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["server"] == name)
            .cloned()
            .unwrap()
    };
    let moved = job(&hosts[0].name);
    assert_eq!(moved["state"], "waiting", "{jobs}");
    assert_eq!(
        moved["slot_start"], "2026-08-13T00:00:00Z",
        "the next night: {moved}"
    );
    assert!(
        moved["outcome"]
            .as_str()
            .unwrap()
            .contains("its agent was silent"),
        "{moved}"
    );
    let failed = job(&hosts[1].name);
    assert_eq!(failed["state"], "failed", "{jobs}");
    assert!(
        failed["outcome"]
            .as_str()
            .unwrap()
            .contains("has no enrolled agent"),
        "{failed}"
    );
    // That failure halts the ring (its budget is 0 of 2). The agent is back the next night
    // and long-polls: its check-in is held open while the ring waits, and answers with the
    // job as soon as an approver goes on past the halt.
    let night: Timestamp = "2026-08-13T00:10:00Z".parse().unwrap();
    srv.clock.set(night);
    let mut silent = silent.with_long_poll();
    let polling = tokio::spawn(async move {
        let t0 = std::time::Instant::now();
        let t = silent.tick(night).await.unwrap();
        (t, t0.elapsed())
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        !polling.is_finished(),
        "the check-in is held while there is no work"
    );
    let (s, v) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/resume")),
        Some(&appr),
        Some(json!({"ring": "", "reason": "the agentless one is patched by hand"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (t, took) = polling.await.unwrap();
    let (_, j) = call(&c, Method::GET, &jobs_url, Some(&op), None).await;
    assert_eq!(t.job.map(|j| j.1), Some("succeeded".to_string()), "{j}");
    assert!(
        took < std::time::Duration::from_secs(10),
        "answered when the work came, not at the end of the poll: {took:?}"
    );
    assert!(t.next <= std::time::Duration::from_secs(16), "{:?}", t.next);
    // A cycle that does not exist is 404, whatever ring is named.
    let (s, v) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{}/resume", id + 1_000_000)),
        Some(&appr),
        Some(json!({"ring": "pilot", "reason": "typo in the id"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

on_both!(a_service_never_has_more_members_down_than_its_budget_even_when_all_start_at_once,);

/// Six members of a service that allows one down check in at the same instant, each job
/// passing its gates on what it read; whichever leases second sees the first on fresh rows and
/// steps back. Their reboots never return, so whoever started stays running: exactly one.
async fn a_service_never_has_more_members_down_than_its_budget_even_when_all_start_at_once(
    backend: Backend,
) {
    let Some(test_db) = TestDb::new("budget-race", backend) else {
        return;
    };
    let extra = |names: &[String]| {
        format!(
            "[[services]]\nname = \"web\"\nmembers = [{}]\nmax_unavailable = 1\n",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let plan = |_| {
        "rollback = { method = \"uninstall_kb\", who = \"ops\", tested_on = \"2026-06-01\" }"
            .to_string()
    };
    let mut lab = Lab::start(
        &test_db,
        &format!("budget-race-{backend:?}"),
        37,
        &vec![Some(Fault::RebootNeverReturns); 6],
        Estate {
            extra: &extra,
            server: &plan,
        },
    )
    .await;
    let (srv, c, op) = (&lab.srv, &lab.c, &lab.op);
    let agents = &mut lab.agents;
    let jobs_url = format!("{}/api/v1/cycles/{}/jobs", srv.url, lab.cycle);
    // The planner placed them one after another (the budget allows one down); at 05:00 every
    // slot has come and tonight's window is still open, so each may start now.
    srv.clock.set("2026-08-12T05:00:00Z".parse().unwrap());
    let now: Timestamp = "2026-08-12T05:00:00Z".parse().unwrap();
    let running = || async {
        let (_, j) = call(c, Method::GET, &jobs_url, Some(op), None).await;
        let n = j["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["state"] == "running")
            .count();
        (n, j)
    };
    // All at once: those that lease together see each other and step back (at most one
    // stays).
    let ticks = agents.iter_mut().map(|a| a.tick(now));
    for r in futures_util::future::join_all(ticks).await {
        r.unwrap();
    }
    let (n, j) = running().await;
    assert!(n <= 1, "at most one member down: {j}");
    let stepped = j["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["outcome"].as_str().unwrap().starts_with("stepped back"))
        .count();
    assert!(n == 1 || stepped > 0, "{j}");
    // One after another (as jitter spreads real check-ins): one starts, the rest are blocked
    // by the budget; and again all at once, nothing changes.
    for a in agents.iter_mut().filter(|a| !a.host.down) {
        a.tick(now).await.unwrap();
    }
    let (n, j) = running().await;
    assert_eq!(n, 1, "{j}");
    let ticks = agents
        .iter_mut()
        .filter(|a| !a.host.down)
        .map(|a| a.tick(now));
    for r in futures_util::future::join_all(ticks).await {
        r.unwrap();
    }
    let (n, j) = running().await;
    assert_eq!(n, 1, "{j}");
    assert!(
        j["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["state"] == "blocked")
            .all(|x| x["reasons"].to_string().contains("disruption_budget")),
        "{j}"
    );
}
