//! Agents end to end, on SQLite and PostgreSQL, against a real server in this process (its
//! clock injected): enrolment tokens from the CLI and the API, `patchward simulate` enrolling
//! simulated Windows Servers that then appear in the inventory with their real builds,
//! single-use and expiring tokens, the enrolment rate limit, revocation at the next call,
//! tenant isolation, bad reports refused with the field named, and the audit trail.

use crate::api::{Backend, TestDb, call, client, on_both, user_token};
use crate::workflow::serve_in_process;
use crate::{fixtures, ok, pw};
use jiff::SignedDuration;
use patchward_agent::simulated::{SimulatedHost, Streams};
use patchward_agent::{Agent, AgentClient, AgentError, Tls};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;

on_both!(simulated_agents_enrol_report_and_are_revoked_at_their_next_call,);

/// Run the binary off the runtime's threads (the server under test shares them).
async fn pw_async(db: Option<&Path>, args: Vec<String>) -> std::process::Output {
    let db = db.map(Path::to_path_buf);
    tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_patchward"));
        if let Some(db) = db {
            c.arg("--db").arg(db);
        }
        c.args(&args).output().unwrap()
    })
    .await
    .unwrap()
}

fn host(seed: u64, i: u32) -> SimulatedHost {
    let streams = Streams::bundled().unwrap();
    SimulatedHost::generate(&streams, seed, i, "2026-08-12T09:00:00Z".parse().unwrap()).unwrap()
}

async fn simulated_agents_enrol_report_and_are_revoked_at_their_next_call(backend: Backend) {
    let Some(test_db) = TestDb::new("agents", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    ok(&pw(
        &db,
        &[
            "import",
            "feeds",
            fixtures()
                .join("msrc-cvrf/2026-Jul.xml.zst")
                .to_str()
                .unwrap(),
        ],
    ));
    let adm = user_token(&db, "adam", "admin", Some("default"));
    let viewer = user_token(&db, "vera", "viewer", Some("default"));
    let other = user_token(&db, "otto", "admin", Some("other"));
    let srv = serve_in_process(&db, "2026-08-12T09:00:00Z").await;
    let c = client();
    let u = |p: &str| format!("{}{p}", srv.url);

    // Only administrators make enrolment tokens; the token is shown once.
    let (s, _) = call(
        &c,
        Method::POST,
        &u("/api/v1/enrol-tokens"),
        Some(&viewer),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, tok) = call(
        &c,
        Method::POST,
        &u("/api/v1/enrol-tokens"),
        Some(&adm),
        Some(json!({"uses": 2, "expires_hours": 2, "label": "wave 1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{tok}");
    let token = tok["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("pwe_") && tok["uses_left"] == 2 && tok["status"] == "usable");
    let (_, list) = call(
        &c,
        Method::GET,
        &u("/api/v1/enrol-tokens"),
        Some(&adm),
        None,
    )
    .await;
    assert!(
        list[0]["token"].is_null(),
        "secrets are never listed: {list}"
    );

    // Twelve simulated Windows Servers enrol (one batch: one use of the token) and report,
    // as real HTTP clients.
    let out = pw_async(
        None,
        [
            "simulate",
            "--server",
            &srv.url,
            "--enrol-token",
            &token,
            "--agents",
            "12",
            "--seed",
            "5",
            "--faults",
            "none",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, servers) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?per_page=100"),
        Some(&viewer),
        None,
    )
    .await;
    let items = servers["items"].as_array().unwrap();
    let sims: Vec<&Value> = items
        .iter()
        .filter(|s| s["name"].as_str().unwrap().starts_with("sim05-"))
        .collect();
    assert_eq!(sims.len(), 12, "{servers}");
    // Each as its host reported it: the build of its installed cumulative update.
    let h3 = host(5, 3);
    let s3 = sims.iter().find(|s| s["name"] == h3.name.as_str()).unwrap();
    let (_, detail) = call(
        &c,
        Method::GET,
        &u(&format!("/api/v1/servers/{}", s3["id"])),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(
        detail["build"].as_str(),
        Some(h3.build.to_string().as_str()),
        "{detail}"
    );
    let (_, agents) = call(&c, Method::GET, &u("/api/v1/agents"), Some(&viewer), None).await;
    let agents = agents.as_array().unwrap();
    assert_eq!(agents.len(), 12);
    assert!(
        agents
            .iter()
            .all(|a| a["status"] == "active" && a["reported_at"].is_string())
    );

    // The batch took one use; the last one enrols one agent, and then the token is used up.
    let (_, list) = call(
        &c,
        Method::GET,
        &u("/api/v1/enrol-tokens"),
        Some(&adm),
        None,
    )
    .await;
    assert_eq!(list[0]["uses_left"], 1, "{list}");
    let client_of = || AgentClient::new(&srv.url, &Tls::Platform).unwrap();
    let mut first = Agent::new(host(6, 0), client_of(), None).unwrap();
    assert!(first.ensure_enrolled(Some(&token)).await.unwrap());
    let mut late = Agent::new(host(6, 3), client_of(), None).unwrap();
    let e = late.ensure_enrolled(Some(&token)).await.unwrap_err();
    assert!(e.to_string().contains("has been used"), "{e}");

    // The acceptance path: a default (one-time) token from the CLI, and `simulate --agents N`
    // with it; running it again with the same token is refused, naming why.
    let one = ok(&pw_async(
        Some(&db),
        ["enrol-tokens", "create"].map(String::from).to_vec(),
    )
    .await);
    let one = one.trim().to_string();
    assert!(
        one.starts_with("pwe_") && !one.contains('\n'),
        "the token alone on stdout: {one:?}"
    );
    let sim = |seed: &str| {
        [
            "simulate",
            "--server",
            &srv.url,
            "--enrol-token",
            &one,
            "--agents",
            "4",
            "--seed",
            seed,
            "--faults",
            "none",
        ]
        .map(String::from)
        .to_vec()
    };
    let out = pw_async(None, sim("17")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = pw_async(None, sim("18")).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("has been used"),
        "{err}"
    );
    let (_, servers) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?per_page=100"),
        Some(&viewer),
        None,
    )
    .await;
    let named = |prefix: &str| {
        servers["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"].as_str().unwrap().starts_with(prefix))
            .count()
    };
    assert_eq!((named("sim17-"), named("sim18-")), (4, 0), "{servers}");
    let mut again = Agent::new(host(6, 1), client_of(), None).unwrap();
    assert!(again.ensure_enrolled(Some(&one)).await.is_err());

    // The agent's own executable (what goes on a Windows Server) enrols and reports the same
    // way; its service commands say they are for Windows.
    let exe = Path::new(env!("CARGO_BIN_EXE_patchward")).with_file_name("patchward-agent");
    if exe.exists() {
        let (_, t) = call(
            &c,
            Method::POST,
            &u("/api/v1/enrol-tokens"),
            Some(&adm),
            Some(json!({})),
        )
        .await;
        let dir = crate::tmpdir("agent-exe-state");
        let args: Vec<String> = [
            "run",
            "--server",
            &srv.url,
            "--enrol-token",
            t["token"].as_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
            "--backend",
            "simulated",
            "--seed",
            "41",
            "--once",
        ]
        .map(String::from)
        .to_vec();
        let exe2 = exe.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(exe2)
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.contains("enrolled"), "{err}");
        assert!(dir.join("agent-state.json").exists());
        let (_, servers) = call(
            &c,
            Method::GET,
            &u("/api/v1/servers?per_page=100"),
            Some(&viewer),
            None,
        )
        .await;
        assert!(servers.to_string().contains(&host(41, 0).name), "{servers}");
        let out = std::process::Command::new(&exe)
            .args(["uninstall"])
            .output()
            .unwrap();
        assert!(
            !out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("service on Windows only")
        );
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is not built (cargo test --workspace builds it)",
            exe.display()
        );
    } else {
        eprintln!("skipping patchward-agent: {} is not built", exe.display());
    }

    // Tokens expire.
    let (_, short) = call(
        &c,
        Method::POST,
        &u("/api/v1/enrol-tokens"),
        Some(&adm),
        Some(json!({"expires_hours": 1})),
    )
    .await;
    srv.clock.advance(SignedDuration::from_hours(2));
    let mut expired = Agent::new(host(6, 3), client_of(), None).unwrap();
    let e = expired
        .ensure_enrolled(Some(short["token"].as_str().unwrap()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");

    // Revocation takes effect at the agent's next call.
    first.tick(srv.clock_now()).await.unwrap();
    let id = first.state().unwrap().agent_id;
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/agents/{id}/revoke")),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another tenant's agent is not found"
    );
    let (s, v) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/agents/{id}/revoke")),
        Some(&adm),
        None,
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{v}"
    );
    let e = first.tick(srv.clock_now()).await.unwrap_err();
    assert!(matches!(e, AgentError::Revoked(_)), "{e}");

    // Tenants: another tenant's agent reports into that tenant only.
    let (_, ot) = call(
        &c,
        Method::POST,
        &u("/api/v1/enrol-tokens"),
        Some(&other),
        Some(json!({})),
    )
    .await;
    let mut theirs = Agent::new(host(7, 0), client_of(), None).unwrap();
    theirs
        .ensure_enrolled(Some(ot["token"].as_str().unwrap()))
        .await
        .unwrap();
    assert!(theirs.tick(srv.clock_now()).await.unwrap().sent_inventory);
    let (_, mine) = call(&c, Method::GET, &u("/api/v1/agents"), Some(&adm), None).await;
    let (_, their_list) = call(&c, Method::GET, &u("/api/v1/agents"), Some(&other), None).await;
    let theirs_name = host(7, 0).name;
    assert!(!mine.to_string().contains(&theirs_name));
    assert_eq!(their_list.as_array().unwrap().len(), 1);
    assert!(!their_list.to_string().contains("sim05-"));

    // A bad report is refused with its field named, and the server keeps what it had.
    let cred = theirs.state().unwrap().credential.clone();
    let mut bad = host(7, 0).clone();
    let mut report = patchward_agent::Host::inventory(&mut bad, srv.clock_now());
    report.build = "10.0.20348".into();
    let resp = c
        .post(u("/agent/v1/inventory"))
        .bearer_auth(&cred)
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["field"], "build", "{body}");
    let good = patchward_agent::Host::inventory(&mut bad, srv.clock_now());
    let mut cases: Vec<(patchward_proto::agent::InventoryReport, &str)> = Vec::new();
    let mut r = good.clone();
    r.fqdn = Some("not a fqdn!!".into());
    cases.push((r, "fqdn"));
    let mut r = good.clone();
    r.services[0].start_mode = "sometimes".into();
    cases.push((r, "services[0].start_mode"));
    let mut r = good.clone();
    r.backups[0].last_success = Some("not a time".into());
    cases.push((r, "backups[0].last_success"));
    let mut r = good.clone();
    r.installed_kbs.push("KBX".into());
    let at = format!("installed_kbs[{}]", r.installed_kbs.len() - 1);
    cases.push((r, at.as_str()));
    for (report, field) in cases {
        let resp = c
            .post(u("/agent/v1/inventory"))
            .bearer_auth(&cred)
            .json(&report)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["field"], field, "{body}");
    }
    let (_, their_servers) = call(
        &c,
        Method::GET,
        &u(&format!("/api/v1/servers?q={theirs_name}")),
        Some(&other),
        None,
    )
    .await;
    assert!(
        their_servers
            .to_string()
            .contains(&host(7, 0).build.to_string()),
        "{their_servers}"
    );

    // Failed enrolments are rate-limited per source address, then even a good token waits.
    let (_, good) = call(
        &c,
        Method::POST,
        &u("/api/v1/enrol-tokens"),
        Some(&adm),
        Some(json!({})),
    )
    .await;
    srv.clock.advance(SignedDuration::from_mins(2)); // the earlier refusals' minute is over
    for _ in 0..10 {
        let resp = c
            .post(u("/agent/v1/enrol"))
            .json(&json!({"token": "pwe_wrong", "hostname": "x1", "protocol": 1, "agent_version": "0.1.0"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = c
        .post(u("/agent/v1/enrol"))
        .json(&json!({"token": good["token"], "hostname": "x2", "protocol": 1, "agent_version": "0.1.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    srv.clock.advance(SignedDuration::from_mins(2));
    let resp = c
        .post(u("/agent/v1/enrol"))
        .json(&json!({"token": good["token"], "hostname": "x2", "protocol": 1, "agent_version": "0.1.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "a minute later the limit is lifted"
    );

    // The audit trail names each agent's enrolment, reports and the revocation.
    let (_, audit) = call(
        &c,
        Method::GET,
        &u("/api/v1/audit?limit=5000"),
        Some(&adm),
        None,
    )
    .await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.iter().filter(|a| **a == "agent.enrol").count() >= 13,
        "{actions:?}"
    );
    assert!(actions.iter().filter(|a| **a == "agent.inventory").count() >= 12);
    assert!(actions.contains(&"agent.revoke") && actions.contains(&"enrol_token.create"));
}
