//! Health probes and reboot policies in verification, on SQLite and PostgreSQL: the estate
//! gives services probes and servers a reboot policy; the agent runs the probes on "its
//! server" (here, this machine: real HTTP and TCP on loopback) after the reboot.
//! - a member whose HTTP, TCP and Windows service probes pass is verified, each probe a check;
//! - a member whose HTTP probe answers 503 needs remediation, naming the probe and the 503;
//! - a server whose policy is `never` is not restarted and needs remediation naming why;
//! - a slow download shows its progress on the job while it runs;
//! - a snapshot job whose checkpoint is more than an hour old when it can start (it waited
//!   on a pause) takes a new one.

use crate::api::{Backend, TestDb, on_both};
use crate::lab::{Estate, Lab};
use patchward_agent::simulated::Fault;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both!(probes_and_reboot_policies_decide_verification,);

/// A loopback HTTP server answering every request with `code` and `body`.
async fn http_server(code: u16, body: &'static str) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", l.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

async fn probes_and_reboot_policies_decide_verification(backend: Backend) {
    let Some(db) = TestDb::new("probes", backend) else {
        return;
    };
    let healthy = http_server(200, "{\"status\":\"Healthy\"}").await;
    let down = http_server(503, "starting").await;
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = port.local_addr().unwrap().port();
    let extra = |names: &[String]| {
        format!(
            "[[services]]\nname = \"shop\"\nmembers = [\"{}\"]\nmax_unavailable = 1\n\
             probes = [{{ http = \"{healthy}\", body_contains = \"Healthy\" }}, {{ tcp = \"127.0.0.1:{tcp}\" }}, {{ windows_service = \"w32time\" }}]\n\n\
             [[services]]\nname = \"api\"\nmembers = [\"{}\"]\nmax_unavailable = 1\n\
             probes = [{{ http = \"{down}\" }}]\nprobe_grace = \"0s\"\n",
            names[0], names[1]
        )
    };
    // Some simulated roles (domain controller, Hyper-V) need a rollback plan to start.
    let server = |i: usize| {
        let plan =
            "rollback = { method = \"uninstall_kb\", who = \"ops\", tested_on = \"2026-06-01\" }";
        match i {
            // Its checkpoint is someone's to take: this server runs no checkpoint hook.
            0 => "rollback = { method = \"snapshot\", who = \"virt\", tested_on = \"2026-06-01\" }"
                .to_string(),
            2 => format!("{plan}\nreboot = \"never\""),
            _ => plan.to_string(),
        }
    };
    let mut lab = Lab::start(
        &db,
        &format!("probes-{backend:?}"),
        41,
        &[None, None, None],
        Estate {
            extra: &extra,
            server: &server,
        },
    )
    .await;
    lab.tolerate_failures().await;
    // Before they start, jobs already show what they will run with.
    let planned = lab.jobs().await;
    assert_eq!(lab.job(&planned, 0)["probes"].as_array().unwrap().len(), 3);
    assert_eq!(lab.job(&planned, 2)["reboot_policy"], "never");
    let now = lab.start;
    for a in lab.agents.iter_mut() {
        a.tick(now).await.unwrap();
    }
    let jobs = lab.jobs().await;

    // 0: every probe passed, each a check of its verification.
    let j0 = lab.job(&jobs, 0);
    assert_eq!(j0["state"], "succeeded", "{j0}");
    assert_eq!(
        j0["probes"],
        serde_json::json!([
            format!("HTTP {healthy} answers 200 containing \"Healthy\""),
            format!("TCP 127.0.0.1:{tcp} accepts"),
            "service w32time running",
        ]),
        "{j0}"
    );
    let checks: Vec<(&str, bool, &str)> = j0["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("probe "))
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["passed"].as_bool().unwrap(),
                c["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        vec![
            (
                format!("probe HTTP {healthy} answers 200 containing \"Healthy\"").as_str(),
                true,
                "200 OK, body contains \"Healthy\""
            ),
            (
                format!("probe TCP 127.0.0.1:{tcp} accepts").as_str(),
                true,
                "accepted"
            ),
            ("probe service w32time running", true, "running"),
        ]
    );
    assert_eq!(j0["reboot_policy"], "if_required");
    let gates = &j0["steps"][0];
    assert_eq!(gates["step"], "gates");
    assert!(
        gates["detail"]
            .as_str()
            .unwrap()
            .contains("no checkpoint hook, so the checkpoint is virt's to take"),
        "a snapshot plan without a hook says who takes the checkpoint: {j0}"
    );

    // 1: installed and rebooted, but its application answers 503.
    let j1 = lab.job(&jobs, 1);
    assert_eq!(j1["state"], "needs_remediation", "{j1}");
    assert_eq!(
        j1["reasons"],
        serde_json::json!([format!(
            "probe HTTP {down} answers 200: 503 Service Unavailable, expected 200"
        )]),
        "{j1}"
    );

    // 2: its policy is never: installed, not restarted, and verification says why.
    let j2 = lab.job(&jobs, 2);
    assert_eq!(j2["state"], "needs_remediation", "{j2}");
    assert_eq!(j2["reboot_policy"], "never");
    let reboot = j2["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "reboot")
        .unwrap();
    assert_eq!(
        reboot["detail"], "not restarted: the reboot policy is never",
        "{j2}"
    );
    let reasons = j2["reasons"].to_string();
    assert!(
        reasons.contains("the server's reboot policy is never: restart it to finish"),
        "{j2}"
    );
    assert!(
        !lab.agents[2].host.pending_reboot.is_empty(),
        "never restarted"
    );
    drop(port);

    // Every job has ended: within the server's next minute the cycle completes by itself,
    // saying how its jobs ended.
    lab.srv.clock.set(now + jiff::SignedDuration::from_mins(2));
    let mut cycle = serde_json::Value::Null;
    for _ in 0..50 {
        let (_, c) = crate::api::call(
            &lab.c,
            reqwest::Method::GET,
            &lab.url(&format!("/api/v1/cycles/{}", lab.cycle)),
            Some(&lab.op),
            None,
        )
        .await;
        cycle = c;
        if cycle["state"] == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(cycle["state"], "completed", "{cycle}");
    assert!(
        cycle
            .to_string()
            .contains("every job ended: 2 needs remediation, 1 succeeded"),
        "{cycle}"
    );
}

on_both!(a_slow_download_reports_its_progress_while_the_job_runs,);

/// A download that takes a while (a slow link, a busy WSUS) is reported as it goes: the job's
/// download step shows its progress while it runs, then the job goes on and succeeds.
async fn a_slow_download_reports_its_progress_while_the_job_runs(backend: Backend) {
    let Some(db) = TestDb::new("slow-download", backend) else {
        return;
    };
    let plan = |_| {
        "rollback = { method = \"uninstall_kb\", who = \"ops\", tested_on = \"2026-06-01\" }"
            .to_string()
    };
    let mut lab = Lab::start(
        &db,
        &format!("slow-download-{backend:?}"),
        43,
        &[Some(Fault::SlowDownload(std::time::Duration::from_millis(
            2500,
        )))],
        Estate {
            extra: &|_| String::new(),
            server: &plan,
        },
    )
    .await;
    let now = lab.start;
    let mut agent = lab.agents.remove(0);
    let run = tokio::spawn(async move {
        let t = agent.tick(now).await;
        (agent, t)
    });
    // While it downloads: running, the download step open with its progress.
    let mut seen = Vec::new();
    for _ in 0..100 {
        let jobs = lab.jobs().await;
        let j = &jobs["jobs"][0];
        if let Some(d) = j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "download" && s["finished"].is_null())
        {
            assert_eq!(j["state"], "running", "{j}");
            let detail = d["detail"].as_str().unwrap().to_string();
            if !seen.contains(&detail) {
                seen.push(detail);
            }
        }
        if run.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (agent, t) = run.await.unwrap();
    t.unwrap();
    assert!(
        seen.iter()
            .any(|d| d.ends_with('%') && !d.ends_with(": 0%")),
        "progress was reported while downloading: {seen:?}"
    );
    let jobs = lab.jobs().await;
    let j = &jobs["jobs"][0];
    assert_eq!(j["state"], "succeeded", "{j}");
    let download = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "download")
        .unwrap();
    assert_eq!(download["ok"], true, "{j}");
    assert!(agent.host.downloading_since.is_none());
}

on_both!(a_checkpoint_older_than_an_hour_is_taken_again_before_the_install,);

async fn a_checkpoint_older_than_an_hour_is_taken_again_before_the_install(backend: Backend) {
    let Some(db) = TestDb::new("stale-checkpoint", backend) else {
        return;
    };
    let dir = crate::tmpdir(&format!("stale-checkpoint-{backend:?}"));
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$PATCHWARD_HOOK $PATCHWARD_SERVER\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let hooks = patchward_app::jobs::Hooks {
        checkpoint: Some(script.clone()),
        restore: Some(script),
        timeout: std::time::Duration::from_secs(60),
    };
    let plan = |_| {
        "rollback = { method = \"snapshot\", who = \"virt\", tested_on = \"2026-06-01\" }"
            .to_string()
    };
    let mut lab = Lab::start_with(
        &db,
        &format!("stale-checkpoint-{backend:?}"),
        47,
        &[None],
        Estate {
            extra: &|_| String::new(),
            server: &plan,
        },
        hooks,
    )
    .await;
    let mut agent = lab.agents.remove(0);
    let checkpoints = |jobs: &serde_json::Value| -> Vec<(bool, bool)> {
        jobs["jobs"][0]["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["finished"].is_null(), h["exit_code"] == 0))
            .collect()
    };
    let settle = || async {
        for _ in 0..100 {
            let j = lab.jobs().await;
            if checkpoints(&j).iter().all(|(running, _)| !running) {
                return j;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the hook is still running after 10 s");
    };
    let now = lab.start;
    agent.tick(now).await.unwrap();
    let j = settle().await;
    assert_eq!(checkpoints(&j), vec![(false, true)], "{j}");
    // Paused before it could start; resumed two hours later.
    let cycle = |p: &str| lab.url(&format!("/api/v1/cycles/{}/{p}", lab.cycle));
    for (path, who) in [("pause", &lab.op), ("resume", &lab.appr)] {
        if path == "resume" {
            lab.srv.clock.set(now + jiff::SignedDuration::from_hours(2));
        }
        let (s, v) = crate::api::call(
            &lab.c,
            reqwest::Method::POST,
            &cycle(path),
            Some(who),
            Some(serde_json::json!({"reason": "change freeze call"})),
        )
        .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{path}: {v}");
    }
    let later = now + jiff::SignedDuration::from_hours(2);
    agent.tick(later).await.unwrap();
    let j = settle().await;
    assert_eq!(
        checkpoints(&j),
        vec![(false, true), (false, true)],
        "the two-hour-old checkpoint is taken again: {j}"
    );
    assert_eq!(j["jobs"][0]["state"], "waiting", "{j}");
    agent.tick(later).await.unwrap();
    let j = lab.jobs().await;
    assert_eq!(j["jobs"][0]["state"], "succeeded", "{j}");
    assert_eq!(checkpoints(&j).len(), 2, "{j}");
}
