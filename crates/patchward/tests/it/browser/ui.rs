//! The web UI in a real headless Chromium against a real server (in this process, so the
//! clock can be moved) on the demo's database: log in; the dashboard's numbers agree with the
//! API; search a CVE and see who is exposed; an operator creates and plans the monthly cycle
//! and is refused as its approver with the reason; an approver approves with a ticket; an
//! exception is granted, then the clock passes its expiry and the finding is open again; an
//! owner sees only their servers. Pages stay under 200 KB and load nothing from elsewhere.
//! A screenshot of every step goes to `target/browser-artifacts/`.

use super::Browser;
use crate::api::{call, client, user_token};
use crate::tmpdir;
use crate::workflow::serve_in_process;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// The demo's database: every bundled feed and the demo estate (what `patchward demo` makes).
fn demo_db(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("demo.db");
    let out = Command::new(env!("CARGO_BIN_EXE_patchward"))
        .args(["demo", "--no-serve", "--demo-db"])
        .arg(&db)
        .args(["--as-of", "2026-12-04"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

async fn api(c: &reqwest::Client, url: &str, token: &str) -> Value {
    let (s, v) = call(c, Method::GET, url, Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{url}: {v}");
    v
}

async fn log_in(b: &Browser, base: &str, name: &str) {
    b.goto(&format!("{base}/login")).await;
    let user = b.find("input[name=name]").await;
    b.clear(&user).await;
    b.type_into(&user, name).await;
    b.type_into(
        &b.find("input[name=password]").await,
        "correct horse battery staple",
    )
    .await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.wait_for(
        async || b.current_url().await == format!("{base}/"),
        "the dashboard after logging in",
    )
    .await;
}

async fn log_out(b: &Browser) {
    b.click(&b.find("header form[action='/logout'] button").await)
        .await;
    b.find("input[name=password]").await;
}

async fn text_of(b: &Browser, css: &str) -> String {
    b.text(&b.find(css).await).await.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_workflow_in_a_real_browser() {
    let dir = tmpdir("browser-ui");
    let db = demo_db(&dir);
    let viewer = user_token(&db, "vera", "viewer", Some("default"));
    user_token(&db, "olga", "operator", Some("default"));
    user_token(&db, "alice", "approver", Some("default"));
    let owner = user_token(&db, "dba@contoso.example", "owner", Some("default"));
    let srv = serve_in_process(&db, "2026-12-04T09:00:00Z").await;
    let Some(b) = Browser::start().await else {
        return;
    };
    let base = srv.url.clone();
    let c = client();

    // Not signed in: the login page, and back to where we were going after it.
    b.goto(&format!("{base}/servers")).await;
    assert!(b.current_url().await.contains("/login?next=/servers"));
    b.type_into(&b.find("input[name=name]").await, "olga").await;
    b.type_into(&b.find("input[name=password]").await, "wrong password")
        .await;
    b.click(&b.find("form button[type=submit]").await).await;
    let err = text_of(&b, "#login-error").await;
    assert!(!err.is_empty(), "a failed login says so");
    b.screenshot("login-refused").await;
    log_in(&b, &base, "olga").await;

    // The dashboard's numbers are the API's.
    let sum = api(&c, &format!("{base}/api/v1/exposure"), &viewer).await;
    assert_eq!(text_of(&b, "#n-open").await, sum["open"].to_string());
    assert_eq!(text_of(&b, "#n-act .n").await, sum["act"].to_string());
    assert_eq!(
        text_of(&b, "#n-kev-servers").await,
        sum["servers_with_kev"].to_string()
    );
    assert_eq!(
        text_of(&b, "#n-unsupported").await,
        sum["unsupported"].to_string()
    );
    assert!(!b.find_all("#proposals tbody tr").await.is_empty());
    b.screenshot("dashboard").await;
    let weight = b.page_weight().await;
    assert!(weight < 200_000, "dashboard weighs {weight} bytes");
    assert!(b.foreign_requests(&base).await.is_empty());

    // Search a CVE and see the exposed servers.
    let props = api(&c, &format!("{base}/api/v1/emergencies"), &viewer).await;
    let cve = props[0]["cve"].as_str().unwrap().to_string();
    let exposure = api(&c, &format!("{base}/api/v1/cves/{cve}"), &viewer).await;
    b.goto(&format!("{base}/cves")).await;
    b.type_into(&b.find("input[type=search]").await, &cve.to_lowercase())
        .await;
    b.click(&b.find("form[role=search] button").await).await;
    b.wait_for(
        async || b.current_url().await.ends_with(&format!("/cves/{cve}")),
        "the CVE page",
    )
    .await;
    let rows = b.find_all("#exposed tbody tr").await;
    assert_eq!(rows.len(), exposure["exposed"].as_array().unwrap().len());
    let first = text_of(&b, "#exposed tbody tr td a").await;
    assert_eq!(first, exposure["exposed"][0]["name"].as_str().unwrap());
    b.screenshot("cve").await;

    // The operator creates the monthly cycle and plans it.
    b.goto(&format!("{base}/cycles")).await;
    b.click(&b.find("#new-cycle button[type=submit]").await)
        .await;
    b.wait_for(
        async || b.current_url().await.contains("done=created"),
        "the new cycle's page",
    )
    .await;
    assert_eq!(text_of(&b, "h1").await, "2026-11 Patch Tuesday");
    assert_eq!(text_of(&b, "ol.states li.current").await, "Draft");
    b.screenshot("cycle-draft").await;
    b.click(&b.find("#plan-button").await).await;
    b.wait_for(
        async || b.current_url().await.contains("done=planned"),
        "the planned cycle",
    )
    .await;
    assert_eq!(
        text_of(&b, "ol.states li.current").await,
        "Awaiting approval"
    );
    assert!(!b.find_all("#timeline svg rect.slot").await.is_empty());
    let cycle_url = b.current_url().await;
    let cycle_url = cycle_url.split('?').next().unwrap().to_string();
    // The same operator's approval is refused, with the reason on the page.
    let button = b.find("#approve-button").await;
    assert_eq!(b.property(&button, "disabled").await, json!(true));
    let why = text_of(&b, "#approve-why").await;
    assert!(why.contains("you prepared this cycle"), "{why}");
    b.screenshot("cycle-planned-approval-refused").await;
    // Even a forged form post is refused by the application, with the message.
    let csrf = b
        .execute(
            "return document.querySelector('input[name=csrf]').value",
            &[],
        )
        .await;
    b.execute(
        "const f = document.getElementById('approve-form'); \
         f.querySelectorAll('[disabled]').forEach(e => e.disabled = false); \
         f.querySelector('input[name=ticket]').value = 'CHG-SELF'; f.submit();",
        &[],
    )
    .await;
    b.wait_for(
        async || b.find_all(".flash.error").await.len() == 1,
        "the refusal",
    )
    .await;
    assert!(
        text_of(&b, ".flash.error")
            .await
            .contains("separation of duties")
    );
    assert!(csrf.as_str().is_some_and(|s| s.len() == 64));
    log_out(&b).await;

    // An approver approves the whole plan with a change ticket.
    log_in(&b, &base, "alice").await;
    b.goto(&cycle_url).await;
    b.type_into(&b.find("#approve-form input[name=ticket]").await, "CHG0042")
        .await;
    b.type_into(
        &b.find("#approve-form input[name=comment]").await,
        "CAB 2026-12-03",
    )
    .await;
    b.click(&b.find("#approve-button").await).await;
    b.wait_for(
        async || b.current_url().await.contains("done=approved"),
        "the approval",
    )
    .await;
    assert_eq!(text_of(&b, "ol.states li.current").await, "Approved");
    assert!(text_of(&b, "#approvals").await.contains("CHG0042"));
    b.screenshot("cycle-approved").await;

    // The operator starts it: its plan becomes one job per placed server, shown live.
    log_out(&b).await;
    log_in(&b, &base, "olga").await;
    b.goto(&cycle_url).await;
    b.click(&b.find("#start-button").await).await;
    b.wait_for(
        async || b.current_url().await.contains("done=running"),
        "the start",
    )
    .await;
    assert_eq!(text_of(&b, "ol.states li.current").await, "Running");
    let counts = text_of(&b, "#job-counts").await;
    assert!(counts.contains("waiting"), "{counts}");
    let rows = b.find_all("#job-list tbody tr").await;
    let placed = text_of(&b, "#h-plan + p").await;
    assert!(
        placed.starts_with(&format!("{} server(s) placed", rows.len())),
        "one job per placed server: {placed} / {} rows",
        rows.len()
    );
    assert_eq!(
        b.find_all("#jobs[hx-trigger='every 5s']").await.len(),
        1,
        "live"
    );
    b.screenshot("cycle-running-jobs").await;
    log_out(&b).await;
    log_in(&b, &base, "alice").await;

    // An exception with an expiry; when the clock passes it the finding is open again.
    let list = api(&c, &format!("{base}/api/v1/servers?decision=act"), &viewer).await;
    let sid = list["items"][0]["id"].as_i64().unwrap();
    b.goto(&format!("{base}/servers/{sid}")).await;
    let cve = text_of(&b, "#findings tbody tr td a").await;
    b.click(&b.find("#grant summary").await).await;
    b.type_into(&b.find("#grant input[name=reason]").await, "vendor support")
        .await;
    b.type_into(
        &b.find("#grant input[name=compensating_control]").await,
        "isolated VLAN",
    )
    .await;
    b.type_into(&b.find("#grant input[name=risk_owner]").await, "CISO")
        .await;
    b.execute(
        "document.querySelector('#grant input[name=expires]').value = '2026-12-20'",
        &[],
    )
    .await;
    b.click(&b.find("#grant button[type=submit]").await).await;
    b.wait_for(
        async || b.current_url().await.contains("done=granted"),
        "the grant",
    )
    .await;
    let excepted = text_of(&b, "#excepted").await;
    assert!(excepted.contains(&cve), "{excepted}");
    b.screenshot("exception-granted").await;
    srv.clock.set("2026-12-21T09:00:00Z".parse().unwrap());
    // Seventeen days later the session has expired too: the login page first.
    b.goto(&format!("{base}/servers/{sid}")).await;
    assert!(b.current_url().await.contains("/login?next="));
    log_in(&b, &base, "alice").await;
    b.goto(&format!("{base}/servers/{sid}")).await;
    assert!(b.find_all("#excepted").await.is_empty());
    let open: Vec<String> = {
        let mut v = Vec::new();
        for a in b.find_all("#findings tbody tr td:first-child a").await {
            v.push(b.text(&a).await);
        }
        v
    };
    assert!(
        open.contains(&cve),
        "{cve} open again: {} findings {:?}",
        open.len(),
        &open[..open.len().min(5)]
    );
    b.goto(&format!("{base}/exceptions?status=expired")).await;
    assert_eq!(b.find_all("#exceptions tbody tr").await.len(), 1);
    b.screenshot("exception-expired").await;
    log_out(&b).await;

    // The owner sees only their servers.
    log_in(&b, &base, "dba@contoso.example").await;
    b.goto(&format!("{base}/servers")).await;
    let mine = api(&c, &format!("{base}/api/v1/servers?per_page=500"), &owner).await;
    let rows = b.find_all("#servers tbody tr td:first-child a").await;
    assert_eq!(rows.len() as u64, mine["total"].as_u64().unwrap());
    for r in &rows {
        let n = b.text(r).await;
        assert!(n.starts_with("SQL"), "owner sees {n}");
    }
    b.screenshot("owner-servers").await;
    let weight = b.page_weight().await;
    assert!(weight < 200_000, "servers page weighs {weight} bytes");
    // Readable on a phone: the list is still there.
    b.set_window_size(390, 800).await;
    b.goto(&format!("{base}/servers")).await;
    assert!(!b.find_all("#servers tbody tr").await.is_empty());
    b.screenshot("owner-servers-phone").await;
}
