//! The change workflow through the API, on SQLite and PostgreSQL, against a real server on
//! 127.0.0.1:0 running in this process so its clock can be injected (`FixedClock`): cycles
//! and their states, separation of duties, approvals withdrawn when the plan changes,
//! deferrals past their due date, emergency proposals from the real KEV catalog, exceptions
//! with their cap and expiry, the audit trail, and tenant isolation of every new route.

use crate::api::{Backend, TestDb, call, client, on_both, user_token};
use crate::{fixtures, ok, pw};
use jiff::{SignedDuration, Timestamp};
use patchward_app::{AnyStore, App, FixedClock};
use patchward_core::priority::Policy;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The demo estate (real builds, owners, rings, windows) with five MSRC months (two of 2025
/// with KEV CVEs still open on old builds) and the KEV catalog, in the default tenant; the Contoso estate in tenant `other`.
pub(crate) fn workflow_db(name: &str, backend: Backend) -> Option<TestDb> {
    let test_db = TestDb::new(name, backend)?;
    let db = test_db.spec.clone();
    let f = |p: &str| fixtures().join(p).to_str().unwrap().to_string();
    ok(&pw(
        &db,
        &[
            "import",
            "feeds",
            &f("msrc-cvrf/2025-Feb.xml.zst"),
            &f("msrc-cvrf/2025-Mar.xml.zst"),
            &f("msrc-cvrf/2026-May.xml.zst"),
            &f("msrc-cvrf/2026-Jun.xml.zst"),
            &f("msrc-cvrf/2026-Jul.xml.zst"),
            &f("kev/known_exploited_vulnerabilities_2026-08-07.json.zst"),
        ],
    ));
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    ok(&pw(
        &db,
        &[
            "import",
            "hosts",
            repo.join("examples/demo/estate.toml").to_str().unwrap(),
        ],
    ));
    ok(&pw(
        &db,
        &[
            "import",
            "hosts",
            "--tenant",
            "other",
            repo.join("examples/estates/contoso.toml").to_str().unwrap(),
        ],
    ));
    Some(test_db)
}

/// A real server in this process, on the store `db` names, with a clock the test moves.
pub(crate) struct InProcess {
    pub url: String,
    pub clock: Arc<FixedClock>,
    task: tokio::task::JoinHandle<()>,
}

impl InProcess {
    /// The server's clock now.
    pub fn clock_now(&self) -> jiff::Timestamp {
        patchward_app::Clock::now(&*self.clock)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn serve_in_process(db: &Path, at: &str) -> InProcess {
    serve_in_process_with(db, at, patchward_app::jobs::Hooks::default()).await
}

/// The same, running these operator hooks.
pub(crate) async fn serve_in_process_with(
    db: &Path,
    at: &str,
    hooks: patchward_app::jobs::Hooks,
) -> InProcess {
    let store = AnyStore::open(db.to_str().unwrap()).await.unwrap();
    let clock = Arc::new(FixedClock::new(at.parse().unwrap()));
    let app = Arc::new(App::new(store, clock.clone(), Policy::default()).with_hooks(hooks));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let opts = patchward_server::ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
    };
    let task = tokio::spawn(async move {
        let _ = patchward_server::serve(app, opts, move |u| {
            let _ = tx.send(u.to_string());
        })
        .await;
    });
    let url = rx.await.unwrap();
    InProcess { url, clock, task }
}

async fn get(c: &Client, url: &str, token: &str) -> Value {
    let (s, v) = call(c, Method::GET, url, Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "GET {url}: {v}");
    v
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_string())
        .collect()
}

on_both!(
    cycles_follow_the_workflow_rules,
    exceptions_are_capped_and_expire_back_into_open_findings,
);

async fn cycles_follow_the_workflow_rules(backend: Backend) {
    let Some(test_db) = workflow_db("wf-cycles", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    let op = user_token(&db, "olga", "operator", Some("default"));
    let appr = user_token(&db, "alice", "approver", Some("default"));
    let adm = user_token(&db, "adam", "admin", Some("default"));
    let viewer = user_token(&db, "vera", "viewer", Some("default"));
    let owner = user_token(&db, "dba@contoso.example", "owner", Some("default"));
    let other = user_token(&db, "otto", "admin", Some("other"));
    let srv = serve_in_process(&db, "2026-08-12T09:00:00Z").await;
    let c = client();
    let u = |p: &str| format!("{}{p}", srv.url);

    // Emergency proposals come from the real KEV catalog and agree with the CVE page.
    let props = get(&c, &u("/api/v1/emergencies"), &viewer).await;
    let first = &props.as_array().unwrap()[0];
    assert!(first["kev"].as_bool().unwrap(), "{first}");
    assert!(
        first["why"][0]
            .as_str()
            .unwrap()
            .starts_with("in CISA KEV since"),
        "{first}"
    );
    let cve = first["cve"].as_str().unwrap().to_string();
    let page = get(&c, &u(&format!("/api/v1/cves/{cve}")), &viewer).await;
    assert!(page["kev"].as_bool().unwrap() && page["kev_added"].is_string());
    let exposed: Vec<&Value> = page["exposed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["exception_id"].is_null())
        .collect();
    let mut distinct: Vec<&str> = exposed
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    distinct.dedup();
    assert_eq!(first["servers"].as_u64().unwrap() as usize, distinct.len());

    // An operator creates the monthly cycle: named after the current Patch Tuesday, in draft.
    let (s, cy) = call(
        &c,
        Method::POST,
        &u("/api/v1/cycles"),
        Some(&op),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{cy}");
    assert_eq!(cy["name"], "2026-08 Patch Tuesday");
    assert_eq!(
        (cy["state"].as_str(), cy["kind"].as_str()),
        (Some("draft"), Some("monthly"))
    );
    assert!(cy["servers"].as_u64().unwrap() > 3, "{cy}");
    let id = cy["id"].as_i64().unwrap();
    let (s, dup) = call(
        &c,
        Method::POST,
        &u("/api/v1/cycles"),
        Some(&op),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, dup["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    // Its approval before planning: the cycle has no plan.
    let (s, e) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/approvals")),
        Some(&appr),
        Some(json!({"ticket": "CHG-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(e["message"].as_str().unwrap().contains("plan it first"));

    // Planned by the operator; the operator's own approval is refused with the reason.
    let (s, cy) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/plan")),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cy}");
    assert_eq!(cy["state"], "planned");
    assert!(
        cy["plan"]["placements"].as_array().unwrap().len() > 2,
        "{}",
        cy["plan"]
    );
    assert!(!cy["can_approve"]["allowed"].as_bool().unwrap());
    let rings = names(&cy["rings"], "ring");
    assert!(rings.len() >= 2, "{rings:?}");
    let (s, e) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/approvals")),
        Some(&op),
        Some(json!({"ticket": "CHG-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(!e["message"].as_str().unwrap().is_empty());
    // Bad approvals name their field.
    let (s, e) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/approvals")),
        Some(&appr),
        Some(json!({"ticket": "  "})),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ticket"))
    );
    let (s, e) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/approvals")),
        Some(&appr),
        Some(json!({"ticket": "CHG-1", "ring": "no-such-ring"})),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ring"))
    );
    // Starting before approval says what is missing.
    let (s, e) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/transitions")),
        Some(&op),
        Some(json!({"to": "running"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("waiting for approval"),
        "{e}"
    );

    // The approver approves ring by ring; the last one approves the cycle.
    let mut cy = Value::Null;
    for (i, r) in rings.iter().enumerate() {
        assert_ne!(cy["state"], "approved", "approved before every ring was");
        let (s, v) = call(
            &c,
            Method::POST,
            &u(&format!("/api/v1/cycles/{id}/approvals")),
            Some(&appr),
            Some(json!({"ticket": format!("CHG-{i}"), "ring": r, "comment": "CAB"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        cy = v;
    }
    assert_eq!(cy["state"], "approved");
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/approvals")),
        Some(&appr),
        Some(json!({"ticket": "CHG-9", "ring": rings[0]})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "approving twice");

    // Removing a server re-plans and withdraws its ring's approval, naming the change.
    let placement = cy["plan"]["placements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["ring"].is_string())
        .unwrap()
        .clone();
    let (gone, ring) = (
        placement["server"].as_str().unwrap().to_string(),
        placement["ring"].as_str().unwrap().to_ascii_lowercase(),
    );
    let (s, cy) = call(
        &c,
        Method::PUT,
        &u(&format!("/api/v1/cycles/{id}/scope")),
        Some(&op),
        Some(json!({"remove": [gone]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cy}");
    assert_eq!(cy["state"], "planned", "{}", cy["history"]);
    let last = cy["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["from"].as_str(), last["to"].as_str()),
        (Some("approved"), Some("planned")),
        "{last}"
    );
    // The cycle's plan is made through the cycle: the plain plan route refuses its name.
    let (s, e) = call(
        &c,
        Method::POST,
        &u("/api/v1/plans"),
        Some(&op),
        Some(json!({"cycle": "2026-08 patch tuesday", "start": "2026-09-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("workflow cycle"),
        "{e}"
    );
    let withdrawn: Vec<&Value> = cy["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["withdrawn_at"].is_string())
        .collect();
    assert!(
        withdrawn
            .iter()
            .any(
                |a| a["ring"].as_str().map(str::to_ascii_lowercase) == Some(ring.clone())
                    && a["withdrawn_why"]
                        .as_str()
                        .unwrap()
                        .contains(&gone.to_ascii_lowercase())
            ),
        "{withdrawn:?}"
    );
    assert!(cy["approvals_withdrawn"].as_u64().unwrap() >= 1);
    let ring_state = cy["rings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ring"] == ring)
        .unwrap();
    assert!(!ring_state["approved"].as_bool().unwrap(), "{ring_state}");

    // Deferring a server with long-overdue KEV findings says it will be overdue.
    let item = cy["scope"].as_array().unwrap()[0].clone();
    let server = item["server"].as_str().unwrap().to_string();
    let (s, e) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/deferrals")),
        Some(&op),
        Some(
            json!({"server": server, "reason": "quarter end", "to_cycle": "2026-01 Patch Tuesday"}),
        ),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("to_cycle")),
        "{e}"
    );
    let (s, cy) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/deferrals")),
        Some(&op),
        Some(json!({"server": server, "reason": "quarter end"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cy}");
    let d = &cy["deferrals"][0];
    assert_eq!(d["to_cycle"], "2026-09 Patch Tuesday");
    assert_eq!(d["to_start"], "2026-09-08");
    assert!(
        !cy["scope"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["server"] == server)
    );
    if d["due"].as_str().unwrap() < "2026-09-08" {
        assert!(d["past_due"].as_bool().unwrap(), "{d}");
        assert!(d["note"].as_str().unwrap().contains("overdue"), "{d}");
        assert_eq!(cy["deferrals_past_due"], 1);
    } else {
        assert!(!d["past_due"].as_bool().unwrap(), "{d}");
    }

    // Approve again (whole plan), start, complete; a completed cycle cannot be cancelled.
    let (s, cy) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/approvals")),
        Some(&appr),
        Some(json!({"ticket": "CHG-20"})),
    )
    .await;
    assert_eq!(
        (s, cy["state"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{cy}"
    );
    for to in ["running", "completed"] {
        let (s, v) = call(
            &c,
            Method::POST,
            &u(&format!("/api/v1/cycles/{id}/transitions")),
            Some(&op),
            Some(json!({"to": to})),
        )
        .await;
        assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some(to)), "{v}");
    }
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{id}/transitions")),
        Some(&op),
        Some(json!({"to": "cancelled", "reason": "too late"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // An admin who prepares an emergency cycle cannot be its only approver.
    let (s, em) = call(
        &c,
        Method::POST,
        &u("/api/v1/cycles"),
        Some(&adm),
        Some(json!({"kind": "emergency", "cve": cve})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{em}");
    assert_eq!(em["name"], format!("{cve} emergency"));
    assert_eq!(
        em["deadline"], "2026-08-15",
        "the tenant's emergency SLA of 3 days"
    );
    assert_eq!(em["servers"].as_u64(), first["servers"].as_u64());
    let eid = em["id"].as_i64().unwrap();
    let props = get(&c, &u("/api/v1/emergencies"), &viewer).await;
    let again = props
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["cve"] == cve)
        .unwrap();
    assert_eq!(again["cycle_id"].as_i64(), Some(eid));
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{eid}/plan")),
        Some(&adm),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{eid}/approvals")),
        Some(&adm),
        Some(json!({"ticket": "EMER-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("separation of duties"),
        "{e}"
    );
    let (s, v) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{eid}/approvals")),
        Some(&appr),
        Some(json!({"ticket": "EMER-1"})),
    )
    .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{v}"
    );
    // Now that someone else approved, the preparer may add theirs.
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/cycles/{eid}/approvals")),
        Some(&adm),
        Some(json!({"ticket": "EMER-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // With two approvals required, one is not enough.
    let (s, _) = call(
        &c,
        Method::PUT,
        &u("/api/v1/workflow-rules"),
        Some(&adm),
        Some(
            json!({"approvals_required": 2, "separation_of_duties": true, "admins_approve": true,
            "exception_max_days": 180, "emergency_sla_days": 3}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v = get(&c, &u(&format!("/api/v1/cycles/{eid}")), &viewer).await;
    assert!(
        v["rings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["approved"].as_bool().unwrap())
    );

    // The owner sees only their servers in the scope.
    let v = get(&c, &u(&format!("/api/v1/cycles/{id}")), &owner).await;
    let own = names(&v["scope"], "server");
    assert!(own.iter().all(|n| n.starts_with("SQL")), "{own:?}");

    // Every step is in the audit log with its actor.
    let log = get(&c, &u("/api/v1/audit?limit=500"), &adm).await;
    let acts: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("cycle.create", "olga"),
        ("cycle.plan", "olga"),
        ("cycle.approve", "alice"),
        ("cycle.scope", "olga"),
        ("cycle.defer", "olga"),
        ("cycle.start", "olga"),
        ("cycle.complete", "olga"),
        ("cycle.create", "adam"),
        ("workflow.rules", "adam"),
    ] {
        assert!(
            acts.iter().any(|(a, b)| a == want.0 && b == want.1),
            "{want:?} missing from {acts:?}"
        );
    }

    // Another tenant sees none of it: every cycle route answers 404 for these ids.
    let listed = get(&c, &u("/api/v1/cycles"), &other).await;
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");
    for cid in [id, eid] {
        for (m, p, b) in [
            (Method::GET, format!("/api/v1/cycles/{cid}"), None),
            (
                Method::POST,
                format!("/api/v1/cycles/{cid}/plan"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/api/v1/cycles/{cid}/approvals"),
                Some(json!({"ticket": "X"})),
            ),
            (
                Method::PUT,
                format!("/api/v1/cycles/{cid}/scope"),
                Some(json!({"remove": ["DC-01"]})),
            ),
            (
                Method::POST,
                format!("/api/v1/cycles/{cid}/deferrals"),
                Some(json!({"server": "DC-01", "reason": "x"})),
            ),
            (
                Method::POST,
                format!("/api/v1/cycles/{cid}/transitions"),
                Some(json!({"to": "cancelled", "reason": "x"})),
            ),
        ] {
            let (s, v) = call(&c, m, &u(&p), Some(&other), b).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {v}");
        }
    }
    let props_other = get(&c, &u("/api/v1/emergencies"), &other).await;
    assert!(
        props_other
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["cycle_id"].is_null())
    );
}

async fn exceptions_are_capped_and_expire_back_into_open_findings(backend: Backend) {
    let Some(test_db) = workflow_db("wf-exceptions", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    let op = user_token(&db, "olga", "operator", Some("default"));
    let appr = user_token(&db, "alice", "approver", Some("default"));
    let adm = user_token(&db, "adam", "admin", Some("default"));
    let viewer = user_token(&db, "vera", "viewer", Some("default"));
    let other = user_token(&db, "otto", "admin", Some("other"));
    let srv = serve_in_process(&db, "2026-08-12T09:00:00Z").await;
    let c = client();
    let u = |p: &str| format!("{}{p}", srv.url);

    let list = get(&c, &u("/api/v1/servers?per_page=500"), &viewer).await;
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["open"].as_u64().unwrap() > 0)
        .unwrap()
        .clone();
    let sid = item["id"].as_i64().unwrap();
    let name = item["name"].as_str().unwrap().to_string();
    let before = get(
        &c,
        &u(&format!("/api/v1/servers/{sid}?findings=5000")),
        &viewer,
    )
    .await;
    let open_before = before["open"].as_u64().unwrap();
    let cve = before["findings"][0]["cve"].as_str().unwrap().to_string();
    let summary_before = get(&c, &u("/api/v1/exposure"), &viewer).await;

    let grant = |expires: &str, cve: &str| {
        json!({"server": name, "cve": cve, "reason": "vendor certification pending",
            "compensating_control": "host firewall blocks SMB from user VLANs",
            "risk_owner": "CISO", "expires": expires})
    };
    // Only approvers grant exceptions.
    for t in [&viewer, &op] {
        let (s, _) = call(
            &c,
            Method::POST,
            &u("/api/v1/exceptions"),
            Some(t),
            Some(grant("2026-09-01", &cve)),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    // The policy caps the expiry; the past is refused; fields are required; the finding
    // must be open.
    for (body, field) in [
        (grant("2027-03-01", &cve), "expires"),
        (grant("2026-08-12", &cve), "expires"),
        (grant("next week", &cve), "expires"),
        (grant("2026-09-01", "CVE-1999-0001"), "cve"),
        (
            json!({"server": name, "cve": cve, "update": "KB5000001", "reason": "r",
                "compensating_control": "c", "risk_owner": "o", "expires": "2026-09-01"}),
            "cve",
        ),
        (
            json!({"server": name, "cve": cve, "reason": " ", "compensating_control": "c",
                "risk_owner": "o", "expires": "2026-09-01"}),
            "reason",
        ),
        (
            json!({"server": "NO-SUCH", "cve": cve, "reason": "r", "compensating_control": "c",
                "risk_owner": "o", "expires": "2026-09-01"}),
            "server",
        ),
    ] {
        let (s, e) = call(
            &c,
            Method::POST,
            &u("/api/v1/exceptions"),
            Some(&appr),
            Some(body),
        )
        .await;
        assert_eq!(
            (s, e["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{e}"
        );
    }
    let listed = get(&c, &u("/api/v1/exceptions"), &viewer).await;
    assert!(
        listed.as_array().unwrap().is_empty(),
        "refused grants store nothing"
    );
    let (s, e) = call(
        &c,
        Method::PUT,
        &u("/api/v1/workflow-rules"),
        Some(&adm),
        Some(
            json!({"approvals_required": 1, "separation_of_duties": true, "admins_approve": true,
            "exception_max_days": 10, "emergency_sla_days": 3}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (s, e) = call(
        &c,
        Method::POST,
        &u("/api/v1/exceptions"),
        Some(&appr),
        Some(grant("2026-09-01", &cve)),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("expires")),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("at most 10 days"),
        "{e}"
    );
    let (s, _) = call(
        &c,
        Method::PUT,
        &u("/api/v1/workflow-rules"),
        Some(&adm),
        Some(
            json!({"approvals_required": 1, "separation_of_duties": true, "admins_approve": true,
            "exception_max_days": 180, "emergency_sla_days": 3}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // Granted: the finding leaves the open counts everywhere and is shown as excepted.
    let (s, ex) = call(
        &c,
        Method::POST,
        &u("/api/v1/exceptions"),
        Some(&appr),
        Some(grant("2026-09-01", &cve)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ex}");
    assert_eq!(
        (ex["status"].as_str(), ex["approver"].as_str()),
        (Some("active"), Some("alice"))
    );
    let xid = ex["id"].as_i64().unwrap();
    // The same finding is not excepted twice.
    let (s, e) = call(
        &c,
        Method::POST,
        &u("/api/v1/exceptions"),
        Some(&appr),
        Some(grant("2026-08-30", &cve)),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let during = get(
        &c,
        &u(&format!("/api/v1/servers/{sid}?findings=5000")),
        &viewer,
    )
    .await;
    let covered = during["excepted"].as_array().unwrap();
    assert!(
        covered
            .iter()
            .any(|f| f["cve"] == cve && f["exception_id"] == xid),
        "{covered:?}"
    );
    assert_eq!(
        during["open"].as_u64().unwrap() + covered.len() as u64,
        open_before
    );
    assert!(
        !during["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["cve"] == cve)
    );
    let row = get(&c, &u(&format!("/api/v1/servers?q={name}")), &viewer).await;
    assert_eq!(
        row["items"][0]["excepted"].as_u64().unwrap(),
        covered.len() as u64
    );
    let sum = get(&c, &u("/api/v1/exposure"), &viewer).await;
    assert_eq!(
        sum["open"].as_u64().unwrap() + sum["excepted"].as_u64().unwrap(),
        summary_before["open"].as_u64().unwrap()
    );
    let page = get(&c, &u(&format!("/api/v1/cves/{cve}")), &viewer).await;
    assert!(
        page["exposed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == name && e["exception_id"] == xid)
    );
    // Another tenant neither sees nor revokes it.
    assert!(
        get(&c, &u("/api/v1/exceptions"), &other)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/exceptions/{xid}/revoke")),
        Some(&other),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Two weeks before its expiry it is "expiring" on the list and the dashboard.
    srv.clock.advance(SignedDuration::from_hours(24 * 7));
    let exp = get(&c, &u("/api/v1/exceptions?status=expiring"), &viewer).await;
    assert_eq!(names(&exp, "subject"), std::slice::from_ref(&cve));
    let dash = get(&c, &u("/api/v1/dashboard"), &viewer).await;
    assert_eq!(dash["expiring"][0]["id"].as_i64(), Some(xid));
    assert_eq!(dash["summary"]["excepted"], sum["excepted"]);

    // The day after its expiry the finding is open again, with its priority recomputed.
    srv.clock
        .set("2026-09-02T08:00:00Z".parse::<Timestamp>().unwrap());
    let after = get(
        &c,
        &u(&format!("/api/v1/servers/{sid}?findings=5000")),
        &viewer,
    )
    .await;
    assert!(after["excepted"].as_array().unwrap().is_empty());
    let back = after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cve"] == cve)
        .unwrap();
    assert!(
        back["decision"].is_string() && back["exception_id"].is_null(),
        "{back}"
    );
    assert_eq!(after["open"].as_u64(), Some(open_before));
    let expired = get(&c, &u("/api/v1/exceptions?status=expired"), &viewer).await;
    assert_eq!(expired[0]["id"].as_i64(), Some(xid));

    // A revoked exception gives its findings back at once, and only once.
    let (s, ex2) = call(
        &c,
        Method::POST,
        &u("/api/v1/exceptions"),
        Some(&appr),
        Some(grant("2026-09-20", &cve)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ex2}");
    let x2 = ex2["id"].as_i64().unwrap();
    let d = get(
        &c,
        &u(&format!("/api/v1/servers/{sid}?findings=5000")),
        &viewer,
    )
    .await;
    assert!(d["open"].as_u64().unwrap() < open_before);
    let (s, v) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/exceptions/{x2}/revoke")),
        Some(&appr),
        Some(json!({"reason": "patched instead"})),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{v}"
    );
    let d = get(
        &c,
        &u(&format!("/api/v1/servers/{sid}?findings=5000")),
        &viewer,
    )
    .await;
    assert_eq!(d["open"].as_u64(), Some(open_before));
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/exceptions/{x2}/revoke")),
        Some(&appr),
        Some(json!({"reason": "again"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let log = get(&c, &u("/api/v1/audit?limit=500"), &adm).await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "exception.grant").count(),
        2
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "exception.revoke").count(),
        1
    );
}
