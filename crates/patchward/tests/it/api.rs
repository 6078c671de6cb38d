//! The REST API against a real server on 127.0.0.1:0 (the real binary, a temporary database),
//! driven by the real HTTP client: authentication on every route of the OpenAPI document,
//! the route × role matrix, tenant isolation, CSRF, token revocation, lockout, field errors,
//! concurrent writers, the audit chain, TLS and the OpenAPI snapshot.

use crate::{fixtures, ok, pw, tmpdir};
use patchward_server::{Need, ROUTES};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `patchward serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    /// Lines the server printed on stdout after the URL (the TLS fingerprint).
    pub banner: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(db: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchward"))
        .arg("--db")
        .arg(db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("PATCHWARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("patchward: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let mut banner = Vec::new();
    for _ in 0..2 {
        if let Some(Ok(l)) = lines.next() {
            banner.push(l);
        }
    }
    // Keep reading, so the server never writes into a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, url, banner }
}

pub(crate) fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().build().unwrap()
}

/// A user with a role (and tenant), and a token for them, made with the CLI.
pub(crate) fn user_token(db: &Path, name: &str, role: &str, tenant: Option<&str>) -> String {
    let mut args = vec!["users", "add", name, "--role", role, "--password-stdin"];
    if let Some(t) = tenant {
        args.extend(["--tenant", t]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchward"))
        .arg("--db")
        .arg(db)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    ok(&out);
    let token = ok(&pw(db, &["tokens", "create", "--user", name]));
    let token = token.trim().to_string();
    assert!(
        token.starts_with("pwt_") && !token.contains('\n'),
        "{token:?}"
    );
    token
}

pub(crate) async fn call(
    c: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = c.request(method, url);
    if let Some(t) = token {
        r = r.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Two tenants: the default one with the fixture inventory (DC-01 owned by
/// identity@example.com) and `contoso` with the Contoso estate; one MSRC month and KEV.
fn estate_db(name: &str, backend: Backend) -> Option<TestDb> {
    let test_db = TestDb::new(name, backend)?;
    let db = test_db.spec.clone();
    ok(&pw(
        &db,
        &[
            "import",
            "feeds",
            fixtures()
                .join("msrc-cvrf/2024-Jul.xml.zst")
                .to_str()
                .unwrap(),
            fixtures()
                .join("kev/known_exploited_vulnerabilities_2026-08-07.json.zst")
                .to_str()
                .unwrap(),
        ],
    ));
    ok(&pw(
        &db,
        &[
            "import",
            "hosts",
            fixtures().join("inventory/servers.csv").to_str().unwrap(),
        ],
    ));
    let contoso =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/estates/contoso.toml");
    ok(&pw(
        &db,
        &[
            "import",
            "hosts",
            "--tenant",
            "contoso",
            contoso.to_str().unwrap(),
        ],
    ));
    Some(test_db)
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test: a SQLite file in a fresh folder, or a fresh database on the
/// PostgreSQL server `PATCHWARD_TEST_PG` names (dropped afterwards). `spec` is what `--db`
/// takes: the file's path or the database's URL.
pub struct TestDb {
    pub spec: PathBuf,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// `None` (after saying why) for PostgreSQL without a server outside CI; under `CI=true`
    /// a missing server fails the test.
    pub fn new(name: &str, backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb {
                spec: tmpdir(name).join("api.db"),
                pg: None,
            }),
            Backend::Postgres => {
                let url = match std::env::var("PATCHWARD_TEST_PG") {
                    Ok(u) if !u.trim().is_empty() => u,
                    _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
                        "PATCHWARD_TEST_PG is not set but CI=true: the API tests must run on \
                         PostgreSQL in CI (.ci/run starts a server and sets it)"
                    ),
                    _ => {
                        eprintln!("skipped on PostgreSQL: PATCHWARD_TEST_PG is not set");
                        return None;
                    }
                };
                let db = format!("pw_api_{}_{}", name.replace('-', "_"), std::process::id());
                pg_exec(&url, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
                pg_exec(&url, &format!("CREATE DATABASE {db}"));
                let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
                Some(TestDb {
                    spec: PathBuf::from(format!("{base}/{db}")),
                    pg: Some((url.clone(), db)),
                })
            }
        }
    }

    /// Run one SQL statement on this database.
    pub fn exec(&self, sql: &str) {
        match &self.pg {
            Some(_) => pg_exec(self.spec.to_str().unwrap(), sql),
            None => {
                let (path, sql) = (self.spec.clone(), sql.to_string());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        use sqlx::Connection;
                        let mut conn = sqlx::SqliteConnection::connect(&format!(
                            "sqlite://{}",
                            path.display()
                        ))
                        .await
                        .unwrap();
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut conn)
                            .await
                            .unwrap();
                    })
                })
                .join()
                .unwrap()
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort: a database left behind (e.g. held by an autovacuum worker a moment
        // longer) is dropped by the next run of the same test, or with the CI machine.
        if let Some((url, db)) = &self.pg {
            let (url, sql) = (
                url.clone(),
                format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            );
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

/// One statement on a PostgreSQL URL, on a thread of its own (callers may be inside a runtime).
fn pg_exec(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        })
    })
    .join()
    .unwrap();
}

/// Each scenario on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}
pub(crate) use on_both;

on_both!(
    every_route_needs_credentials_and_the_role_matrix_holds,
    tenants_never_see_each_other,
    sessions_need_csrf_tokens_revoke_at_once_and_logins_lock_out,
    bad_requests_name_the_field_and_store_nothing,
    eight_concurrent_writers_lose_nothing_and_the_audit_chain_holds,
    changing_or_deleting_an_audit_entry_is_detected_and_named,
    feed_uploads_follow_the_import_rules,
);

async fn feed_uploads_follow_the_import_rules(backend: Backend) {
    let Some(test_db) = estate_db("api-feeds", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    let root = user_token(&db, "root", "admin", None);
    let tenant_admin = user_token(&db, "t-admin", "admin", Some("default"));
    let server = start(&db, &["--http"]);
    let c = client();
    let upload = |token: String, name: &'static str, body: Vec<u8>| {
        let c = c.clone();
        let url = format!("{}/api/v1/feeds?name={name}", server.url);
        async move {
            let r = c
                .post(url)
                .header("Authorization", format!("Bearer {token}"))
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            (status, v)
        }
    };
    let month = std::fs::read(fixtures().join("msrc-cvrf/2024-Aug.xml.zst")).unwrap();
    let (_, before) = call(
        &c,
        Method::GET,
        &format!("{}/api/v1/feeds", server.url),
        Some(&root),
        None,
    )
    .await;
    // A tenant's administrator may not change what every tenant shares.
    let (s, e) = upload(tenant_admin.clone(), "2024-Aug.xml.zst", month.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // Compressed MSRC month: stored, then unchanged.
    let (s, r) = upload(root.clone(), "2024-Aug.xml.zst", month.clone()).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["stored"], 1);
    let (_, r) = upload(root.clone(), "2024-Aug.xml.zst", month).await;
    assert_eq!(r["unchanged"], 1, "{r}");
    // An inventory file or garbage is refused, naming why; nothing is stored.
    let (s, e) = upload(
        root.clone(),
        "servers.csv",
        b"name,os\nA,Windows Server 2022\n".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("import hosts"),
        "{e}"
    );
    let mut broken = std::fs::read(fixtures().join("msrc-cvrf/2024-Jan.xml.zst")).unwrap();
    broken.truncate(broken.len() / 2);
    let (s, e) = upload(root.clone(), "2024-Jan.xml.zst", broken).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["message"].as_str().unwrap().contains("2024-Jan"), "{e}");
    let (_, after) = call(
        &c,
        Method::GET,
        &format!("{}/api/v1/feeds", server.url),
        Some(&root),
        None,
    )
    .await;
    let months = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["feed"] == "msrc-cvrf")
            .count()
    };
    assert_eq!(months(&after), months(&before) + 1, "{after}");
    // The import is in the audit log.
    let (_, audit) = call(
        &c,
        Method::GET,
        &format!("{}/api/v1/audit?action=feeds.import", server.url),
        Some(&root),
        None,
    )
    .await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "root"),
        "{audit}"
    );
}

/// Every operation of the served OpenAPI document as (METHOD, path template).
async fn operations(c: &Client, url: &str) -> Vec<(String, String)> {
    let (s, doc) = call(
        c,
        Method::GET,
        &format!("{url}/api/v1/openapi.json"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, _) in item.as_object().unwrap() {
            if ["get", "post", "put", "patch", "delete"].contains(&m.as_str()) {
                ops.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops.sort();
    ops
}

fn concrete(path: &str, id: i64) -> String {
    path.replace("{id}", &id.to_string())
        .replace("{cve}", "CVE-2024-38063")
        .replace("{cycle}", "no-such-cycle")
}

/// A body that passes deserialisation where one is needed but changes nothing lasting.
fn probe_body(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/api/v1/session") => Some(json!({"name": "nobody", "password": "x"})),
        ("POST", "/api/v1/users") => Some(json!({"name": "probe", "role": "no-such-role"})),
        ("POST", "/api/v1/tokens") => Some(json!({"expires_days": 0})),
        ("POST", "/api/v1/tenants") => Some(json!({"name": ""})),
        ("POST", "/api/v1/plans") => Some(json!({"cycle": "", "start": "soon"})),
        ("POST", "/api/v1/cycles") => Some(json!({"kind": "no-such-kind"})),
        ("POST", "/api/v1/cycles/{id}/approvals") => Some(json!({"ticket": "CHG-0"})),
        ("PUT", "/api/v1/cycles/{id}/scope") => Some(json!({"remove": ["nobody"]})),
        ("POST", "/api/v1/cycles/{id}/deferrals") => {
            Some(json!({"server": "nobody", "reason": "probe"}))
        }
        ("POST", "/api/v1/cycles/{id}/transitions") => Some(json!({"to": "running"})),
        ("POST", "/api/v1/exceptions") => Some(json!({
            "server": "nobody", "cve": "CVE-2024-38063", "reason": "r",
            "compensating_control": "c", "risk_owner": "o", "expires": "2000-01-01"})),
        ("POST", "/api/v1/exceptions/{id}/revoke") => Some(json!({"reason": "probe"})),
        ("PUT", "/api/v1/workflow-rules") => Some(json!({
            "approvals_required": 0, "separation_of_duties": true, "admins_approve": true,
            "exception_max_days": 180, "emergency_sla_days": 3})),
        _ => None,
    }
}

async fn every_route_needs_credentials_and_the_role_matrix_holds(backend: Backend) {
    let Some(test_db) = estate_db("api-matrix", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    let mut tokens = Vec::new();
    for role in ["viewer", "owner", "operator", "approver", "admin"] {
        let name = if role == "owner" {
            "identity@example.com".to_string()
        } else {
            format!("t-{role}")
        };
        tokens.push((role, user_token(&db, &name, role, Some("default"))));
    }
    tokens.push(("provider-admin", user_token(&db, "root", "admin", None)));
    let server = start(&db, &["--http"]);
    let c = client();
    let ops = operations(&c, &server.url).await;

    // The table the guard enforces and the document agree, both ways.
    let mut table: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    table.sort();
    assert_eq!(
        ops, table,
        "OpenAPI operations and the permission table differ"
    );

    for (m, p) in &ops {
        let need = ROUTES.iter().find(|r| r.0 == m && r.1 == p).unwrap().2;
        let url = format!("{}{}", server.url, concrete(p, 999_999));
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let (s, body) = call(&c, method.clone(), &url, None, probe_body(m, p)).await;
        if need == Need::Public {
            assert_ne!(s, StatusCode::FORBIDDEN, "{m} {p}");
        } else {
            assert_eq!(
                s,
                StatusCode::UNAUTHORIZED,
                "{m} {p} without credentials: {body}"
            );
            assert_eq!(body["code"], "unauthenticated");
        }
        // A wrong token is no better than none.
        if need != Need::Public {
            let (s, _) = call(&c, method.clone(), &url, Some("pwt_0000"), probe_body(m, p)).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p} with a wrong token");
        }
        if need == Need::Public {
            continue;
        }
        for (role, token) in &tokens {
            // Sessions and own tokens are per user: skip logging a token user out.
            let (s, body) = call(&c, method.clone(), &url, Some(token), probe_body(m, p)).await;
            let allowed = match need {
                Need::Authenticated | Need::Read => true,
                Need::Operate => matches!(*role, "operator" | "admin" | "provider-admin"),
                Need::Approve => matches!(*role, "approver" | "admin" | "provider-admin"),
                Need::Administer => matches!(*role, "admin" | "provider-admin"),
                Need::ProviderAdmin => *role == "provider-admin",
                Need::Public => unreachable!(),
            };
            if allowed {
                assert!(
                    s != StatusCode::FORBIDDEN && s != StatusCode::UNAUTHORIZED,
                    "{role} must be allowed {m} {p}: {s} {body}"
                );
            } else {
                assert_eq!(
                    s,
                    StatusCode::FORBIDDEN,
                    "{role} must be refused {m} {p}: {body}"
                );
                assert_eq!(body["code"], "forbidden");
            }
        }
    }

    // Owners see only the servers they own.
    let owner = &tokens.iter().find(|t| t.0 == "owner").unwrap().1;
    let (s, page) = call(
        &c,
        Method::GET,
        &format!("{}/api/v1/servers?per_page=500", server.url),
        Some(owner),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("DC-")),
        "{names:?}"
    );
    let viewer = &tokens[0].1;
    let (_, all) = call(
        &c,
        Method::GET,
        &format!("{}/api/v1/servers?per_page=500", server.url),
        Some(viewer),
        None,
    )
    .await;
    assert!(all["total"].as_u64().unwrap() > page["total"].as_u64().unwrap());
    let other = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| !i["name"].as_str().unwrap().starts_with("DC-"))
        .unwrap();
    let (s, _) = call(
        &c,
        Method::GET,
        &format!("{}/api/v1/servers/{}", server.url, other["id"]),
        Some(owner),
        None,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "an owner reads a server they do not own"
    );
}

async fn tenants_never_see_each_other(backend: Backend) {
    let Some(test_db) = estate_db("api-tenants", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    let a = user_token(&db, "a-admin", "admin", Some("default"));
    let b = user_token(&db, "b-admin", "admin", Some("contoso"));
    let root = user_token(&db, "root", "admin", None);
    let server = start(&db, &["--http"]);
    let c = client();
    let u = |p: &str| format!("{}{p}", server.url);

    let (_, pa) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?per_page=500"),
        Some(&a),
        None,
    )
    .await;
    let (_, pb) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?per_page=500"),
        Some(&b),
        None,
    )
    .await;
    let ids = |p: &Value| -> Vec<i64> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    let (ia, ib) = (ids(&pa), ids(&pb));
    assert!(!ia.is_empty() && !ib.is_empty());
    assert!(ia.iter().all(|i| !ib.contains(i)));
    assert_eq!(pa["total"].as_u64().unwrap() as usize, ia.len());
    assert_eq!(pb["total"].as_u64().unwrap() as usize, ib.len());

    // Another tenant's server id answers like an id that does not exist.
    for id in &ia {
        let (s, body) = call(
            &c,
            Method::GET,
            &u(&format!("/api/v1/servers/{id}")),
            Some(&b),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    }
    let (s, _) = call(
        &c,
        Method::GET,
        &u(&format!("/api/v1/servers/{}", ib[0])),
        Some(&b),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?tenant=default"),
        Some(&b),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "naming another tenant");

    // The release filter takes the short form the document gives.
    let (_, r22) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?release=2022&per_page=500"),
        Some(&a),
        None,
    )
    .await;
    let r22_items = r22["items"].as_array().unwrap();
    assert!(!r22_items.is_empty());
    assert!(
        r22_items
            .iter()
            .all(|i| i["release"].as_str().unwrap().contains("2022")),
        "{r22}"
    );
    // Counts and lists stay inside the tenant.
    let (_, ea) = call(&c, Method::GET, &u("/api/v1/exposure"), Some(&a), None).await;
    let (_, eb) = call(&c, Method::GET, &u("/api/v1/exposure"), Some(&b), None).await;
    assert_eq!(ea["servers"].as_u64().unwrap() as usize, ia.len());
    assert_eq!(eb["servers"].as_u64().unwrap() as usize, ib.len());
    let (_, users_b) = call(&c, Method::GET, &u("/api/v1/users"), Some(&b), None).await;
    let names: Vec<&str> = users_b
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b-admin"]);
    let (_, audit_b) = call(&c, Method::GET, &u("/api/v1/audit"), Some(&b), None).await;
    assert!(
        audit_b
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == "contoso"),
        "{audit_b}"
    );
    // Numbered 1, 2, 3, ... among B's own entries, without the chain that spans every tenant:
    // nothing counts A's activity.
    let seqs: Vec<i64> = audit_b
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "{audit_b}"
    );
    assert!(
        audit_b
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["hash"].is_null() && e["prev_hash"].is_null())
    );
    let (_, later) = call(&c, Method::GET, &u("/api/v1/audit?after=1"), Some(&b), None).await;
    assert_eq!(later.as_array().unwrap().len(), seqs.len() - 1);
    // Ids are random, so they do not count records either.
    let mut all_ids: Vec<i64> = ia.iter().chain(&ib).copied().collect();
    all_ids.sort();
    assert!(
        all_ids.windows(2).all(|w| w[1] - w[0] > 1),
        "ids look sequential: {all_ids:?}"
    );
    let (_, tokens_b) = call(&c, Method::GET, &u("/api/v1/tokens"), Some(&b), None).await;
    assert!(
        tokens_b
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["user"] == "b-admin")
    );
    // Tenant B's admin cannot disable A's users or revoke A's tokens: not found.
    let (_, users_a) = call(&c, Method::GET, &u("/api/v1/users"), Some(&a), None).await;
    let a_id = users_a[0]["id"].as_i64().unwrap();
    let (s, _) = call(
        &c,
        Method::POST,
        &u(&format!("/api/v1/users/{a_id}/disable")),
        Some(&b),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, tokens_a) = call(&c, Method::GET, &u("/api/v1/tokens"), Some(&a), None).await;
    let (s, _) = call(
        &c,
        Method::DELETE,
        &u(&format!("/api/v1/tokens/{}", tokens_a[0]["id"])),
        Some(&b),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The estate's objects too: Contoso's services, windows and rings are B's alone.
    let (s, eb) = call(&c, Method::GET, &u("/api/v1/estate"), Some(&b), None).await;
    assert_eq!(s, StatusCode::OK, "{eb}");
    assert!(!eb["services"].as_array().unwrap().is_empty(), "{eb}");
    assert!(!eb["windows"].as_array().unwrap().is_empty());
    assert!(!eb["rings"].as_array().unwrap().is_empty());
    let (_, ea2) = call(&c, Method::GET, &u("/api/v1/estate"), Some(&a), None).await;
    for k in ["services", "windows", "rings", "dependencies", "blackouts"] {
        assert!(
            ea2[k].as_array().unwrap().is_empty(),
            "{k} of B leaked to A: {ea2}"
        );
    }
    // Plans: B plans its cycle; the plan names B's servers only; A cannot read it.
    let (s, pb_plan) = call(
        &c,
        Method::POST,
        &u("/api/v1/plans"),
        Some(&b),
        Some(json!({"cycle": "2024-08 Patch Tuesday", "start": "2024-08-13T18:00:00Z"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{pb_plan}");
    let b_names: Vec<&str> = pb["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    let planned: Vec<&str> = pb_plan["placements"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pb_plan["unplaced"].as_array().unwrap())
        .map(|x| x["server"].as_str().unwrap())
        .collect();
    assert!(!planned.is_empty(), "{pb_plan}");
    assert!(planned.iter().all(|n| b_names.contains(n)), "{planned:?}");
    assert!(
        pb_plan["placements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| !x["reasons"].as_array().unwrap().is_empty())
    );
    let cycle_url = u("/api/v1/plans/2024-08%20Patch%20Tuesday");
    let (s, again) = call(&c, Method::GET, &cycle_url, Some(&b), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["placements"], pb_plan["placements"]);
    let (s, _) = call(&c, Method::GET, &cycle_url, Some(&a), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "A reads B's plan");
    let a_only = pa["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .find(|n| !b_names.iter().any(|b| b.eq_ignore_ascii_case(n)))
        .unwrap();
    let (s, e) = call(
        &c,
        Method::POST,
        &u("/api/v1/plans"),
        Some(&b),
        Some(json!({"cycle": "x", "start": "2024-08-13T18:00:00Z", "servers": [a_only]})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "A's server named in B's plan: {e}"
    );
    assert_eq!(e["field"], "servers");
    // A CVE's exposure is per tenant too: take one open on a server of A.
    let mut cve = None;
    for id in &ia {
        let (_, d) = call(
            &c,
            Method::GET,
            &u(&format!("/api/v1/servers/{id}")),
            Some(&a),
            None,
        )
        .await;
        if let Some(f) = d["findings"].as_array().and_then(|f| f.first()) {
            cve = Some(f["cve"].as_str().unwrap().to_string());
            break;
        }
    }
    let cve = cve.expect("some server of the fixture inventory has an open CVE");
    let (s, ca) = call(
        &c,
        Method::GET,
        &u(&format!("/api/v1/cves/{cve}")),
        Some(&a),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{ca}");
    let exposed = ca["exposed"].as_array().unwrap();
    assert!(!exposed.is_empty());
    for e in exposed {
        assert!(ia.contains(&e["id"].as_i64().unwrap()));
        assert!(!e["fixed_by"].as_array().unwrap().is_empty(), "{e}");
    }
    let (_, cb) = call(
        &c,
        Method::GET,
        &u(&format!("/api/v1/cves/{cve}")),
        Some(&b),
        None,
    )
    .await;
    for e in cb["exposed"].as_array().unwrap() {
        assert!(ib.contains(&e["id"].as_i64().unwrap()));
    }
    // The provider-wide administrator reads either, by name.
    let (_, pr) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?per_page=500&tenant=contoso"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(ids(&pr), ib);
}

async fn sessions_need_csrf_tokens_revoke_at_once_and_logins_lock_out(backend: Backend) {
    let Some(test_db) = estate_db("api-session", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    let admin = user_token(&db, "alice", "admin", Some("default"));
    let server = start(&db, &["--http"]);
    let c = client();
    let u = |p: &str| format!("{}{p}", server.url);

    // Log in: a cookie and a CSRF token.
    let resp = c
        .post(u("/api/v1/session"))
        .header("Content-Type", "application/json")
        .body(json!({"name": "alice", "password": "correct horse battery staple"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let cookie = cookie.split(';').next().unwrap().to_string();
    let login: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    let csrf = login["csrf_token"].as_str().unwrap().to_string();
    let me = c
        .get(u("/api/v1/me"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // A cookie write without the CSRF token is refused; with it, it passes.
    let r = c
        .post(u("/api/v1/tokens"))
        .header("Cookie", &cookie)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap()["code"],
        "csrf_rejected"
    );
    let r = c
        .post(u("/api/v1/tokens"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", "f00")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(u("/api/v1/tokens"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .header("Content-Type", "application/json")
        .body(json!({"label": "ci"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();

    // The new token works, is revoked, and fails at the very next request.
    let (s, _) = call(&c, Method::GET, &u("/api/v1/servers"), Some(&secret), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &c,
        Method::DELETE,
        &u(&format!("/api/v1/tokens/{}", created["token"]["id"])),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = call(&c, Method::GET, &u("/api/v1/servers"), Some(&secret), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");

    // Logout ends the session.
    let r = c
        .delete(u("/api/v1/session"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let me = c
        .get(u("/api/v1/me"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // Wrong passwords lock the account after five, even when twenty arrive at once: at most
    // five are checked; then even the right one is refused.
    let mut guesses = Vec::new();
    for _ in 0..20 {
        let (c, url) = (c.clone(), u("/api/v1/session"));
        guesses.push(tokio::spawn(async move {
            call(
                &c,
                Method::POST,
                &url,
                None,
                Some(json!({"name": "alice", "password": "wrong password!"})),
            )
            .await
            .0
        }));
    }
    let mut checked = 0;
    for g in guesses {
        match g.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::LOCKED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!((1..=5).contains(&checked), "{checked} guesses were checked");
    let (s, body) = call(
        &c,
        Method::POST,
        &u("/api/v1/session"),
        None,
        Some(json!({"name": "alice", "password": "correct horse battery staple"})),
    )
    .await;
    assert_eq!(s, StatusCode::LOCKED, "{body}");
    assert_eq!(body["code"], "locked_out");
    // A disabled user's token stops at once.
    let bob = user_token(&db, "bob", "viewer", Some("default"));
    let (s, _) = call(&c, Method::GET, &u("/api/v1/servers"), Some(&bob), None).await;
    assert_eq!(s, StatusCode::OK);
    ok(&pw(&db, &["users", "disable", "bob"]));
    let (s, _) = call(&c, Method::GET, &u("/api/v1/servers"), Some(&bob), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn bad_requests_name_the_field_and_store_nothing(backend: Backend) {
    let Some(test_db) = estate_db("api-fields", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    let admin = user_token(&db, "alice", "admin", Some("default"));
    let server = start(&db, &["--http"]);
    let c = client();
    let u = |p: &str| format!("{}{p}", server.url);
    let cases = [
        (json!({"name": "x", "role": "wizard"}), "role"),
        (json!({"name": 5, "role": "viewer"}), "name"),
        (json!({"role": "viewer"}), "name"),
        (
            json!({"name": "x", "role": "viewer", "password": "short"}),
            "password",
        ),
        (json!({"name": "bad name!", "role": "viewer"}), "name"),
        // serde would read an array as the struct's fields in order: a JSON object only.
        (json!(["arrayuser", "viewer"]), "body"),
        (json!("viewer"), "body"),
        (json!(42), "body"),
    ];
    for (body, field) in cases {
        let (s, e) = call(
            &c,
            Method::POST,
            &u("/api/v1/users"),
            Some(&admin),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {e}");
        assert_eq!(e["code"], "invalid_field");
        assert_eq!(e["field"], field, "{body} → {e}");
    }
    let (_, users) = call(&c, Method::GET, &u("/api/v1/users"), Some(&admin), None).await;
    assert!(!users.to_string().contains("arrayuser"), "{users}");
    let (s, e) = call(
        &c,
        Method::POST,
        &u("/agent/v1/enrol"),
        None,
        Some(json!(["pwe_x", "WEB01", 2, "0.1.0"])),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body")),
        "the agents' API too: {e}"
    );
    // Unknown fields are errors, not silently dropped (a typo'd "pasword" would make an
    // account without a password).
    let (s, e) = call(
        &c,
        Method::POST,
        &u("/api/v1/users"),
        Some(&admin),
        Some(json!({"name": "typo", "role": "viewer", "pasword": "long enough password"})),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("pasword")),
        "{e}"
    );
    let (s, e) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?relase=2022"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("relase")),
        "{e}"
    );
    // A method a path does not take is 405, not a server error; HEAD is GET without a body.
    let (s, e) = call(&c, Method::PUT, &u("/api/v1/servers"), Some(&admin), None).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
        "{e}"
    );
    let (s, _) = call(&c, Method::DELETE, &u("/api/v1/exposure"), None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, _) = call(&c, Method::HEAD, &u("/api/v1/servers"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK);
    // An unknown path and a too-large upload answer in the same JSON shape.
    let (s, e) = call(
        &c,
        Method::GET,
        &u("/api/v1/no-such-thing"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{e}"
    );
    let r = c
        .post(u("/api/v1/hosts?name=huge.csv"))
        .header("Authorization", format!("Bearer {admin}"))
        .body(vec![b'a'; 65 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let e: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(e["code"], "payload_too_large");
    let (s, e) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?per_page=abc"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("per_page")),
        "{e}"
    );
    let (s, e) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers?decision=urgent"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("decision"))
    );
    let (s, e) = call(
        &c,
        Method::GET,
        &u("/api/v1/cves/not-a-cve"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cve"))
    );
    let (s, e) = call(
        &c,
        Method::GET,
        &u("/api/v1/servers/abc"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("id"))
    );
    // No user was stored by the refused requests.
    let (_, users) = call(&c, Method::GET, &u("/api/v1/users"), Some(&admin), None).await;
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    // A bad inventory upload stores nothing and names the line.
    let (_, before) = call(&c, Method::GET, &u("/api/v1/servers"), Some(&admin), None).await;
    let bad = "name,os\nNEW-01,Windows Server 2022\n,Windows Server 2019\n";
    let r = c
        .post(u("/api/v1/hosts?name=bad.csv"))
        .header("Authorization", format!("Bearer {admin}"))
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(e["message"].as_str().unwrap().contains("bad.csv"), "{e}");
    let (_, after) = call(&c, Method::GET, &u("/api/v1/servers"), Some(&admin), None).await;
    assert_eq!(before["total"], after["total"]);
}

async fn eight_concurrent_writers_lose_nothing_and_the_audit_chain_holds(backend: Backend) {
    let Some(test_db) = estate_db("api-writers", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    let op = user_token(&db, "op", "operator", Some("default"));
    let server = start(&db, &["--http"]);
    let c = client();
    let names: Vec<String> = (0..20).map(|i| format!("W-{i:02}")).collect();
    let base: String = std::iter::once("name,os\n".to_string())
        .chain(
            names
                .iter()
                .map(|n| format!("{n},Windows Server 2022 Datacenter\n")),
        )
        .collect();
    let r = c
        .post(format!("{}/api/v1/hosts?name=base.csv", server.url))
        .header("Authorization", format!("Bearer {op}"))
        .body(base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Each writer sets one fact of the same 20 servers; a lost update would lose a fact.
    let facets: [(&str, &str); 7] = [
        ("owner", "App team"),
        ("environment", "production"),
        ("site", "Berlin"),
        ("ring", "pilot"),
        ("tags", "pci"),
        ("roles", "file"),
        ("backup_policy", "nightly"),
    ];
    let mut writers = Vec::new();
    for (col, value) in facets {
        let csv: String = std::iter::once(format!("name,os,{col}\n"))
            .chain(
                names
                    .iter()
                    .map(|n| format!("{n},Windows Server 2022 Datacenter,{value}\n")),
            )
            .collect();
        let (c, url, op) = (c.clone(), server.url.clone(), op.clone());
        writers.push(tokio::spawn(async move {
            let r = c
                .post(format!("{url}/api/v1/hosts?name={col}.csv"))
                .header("Authorization", format!("Bearer {op}"))
                .body(csv)
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::OK,
                "{col}: {}",
                r.text().await.unwrap()
            );
        }));
    }
    // The eighth writer: the command line importing a capture-like CSV with KBs, and a feed.
    let dbc = db.clone();
    let names_c = names.clone();
    let cli = tokio::task::spawn_blocking(move || {
        let dir = tmpdir("api-writers-files");
        let csv: String = std::iter::once("name,os,kbs\n".to_string())
            .chain(
                names_c
                    .iter()
                    .map(|n| format!("{n},Windows Server 2022 Datacenter,KB5040437\n")),
            )
            .collect();
        let f = dir.join("kbs.csv");
        std::fs::write(&f, csv).unwrap();
        ok(&pw(&dbc, &["import", "hosts", f.to_str().unwrap()]));
        ok(&pw(
            &dbc,
            &[
                "import",
                "feeds",
                fixtures()
                    .join("msrc-cvrf/2024-Aug.xml.zst")
                    .to_str()
                    .unwrap(),
            ],
        ));
    });
    for w in writers {
        w.await.unwrap();
    }
    cli.await.unwrap();
    let (_, page) = call(
        &c,
        Method::GET,
        &format!("{}/api/v1/servers?q=W-&per_page=500", server.url),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(page["total"], 20);
    for item in page["items"].as_array().unwrap() {
        let (_, d) = call(
            &c,
            Method::GET,
            &format!("{}/api/v1/servers/{}", server.url, item["id"]),
            Some(&op),
            None,
        )
        .await;
        let n = d["name"].as_str().unwrap();
        assert_eq!(d["owner"], "App team", "{n}");
        assert_eq!(d["environment"], "production", "{n}");
        assert_eq!(d["site"], "Berlin", "{n}");
        assert_eq!(d["ring"], "pilot", "{n}");
        assert_eq!(d["tags"], json!(["pci"]), "{n}");
        assert_eq!(d["roles"], json!(["file"]), "{n}");
        assert_eq!(d["backup_policy"], "nightly", "{n}");
        assert_eq!(d["installed_kbs"], json!(["KB5040437"]), "{n}");
    }
    // Every write is in the chain, and the chain is intact.
    let out = ok(&pw(&db, &["audit", "verify"]));
    assert!(out.contains("chain intact"), "{out}");
}

async fn changing_or_deleting_an_audit_entry_is_detected_and_named(backend: Backend) {
    let Some(test_db) = estate_db("api-audit", backend) else {
        return;
    };
    let db = test_db.spec.clone();
    user_token(&db, "alice", "admin", None);
    user_token(&db, "bob", "viewer", Some("default"));
    let out = ok(&pw(&db, &["audit", "verify"]));
    let n: usize = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(n >= 6, "{out}");
    // A copy of the log, to put it back after each tampering.
    test_db.exec("CREATE TABLE audit_copy AS SELECT * FROM audit_log");
    let restore = || {
        test_db.exec("DELETE FROM audit_log");
        test_db.exec("INSERT INTO audit_log SELECT * FROM audit_copy");
    };
    let refused = |entry: usize| {
        let o = pw(&db, &["audit", "verify"]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "tampering went unnoticed");
        assert!(err.contains(&format!("entry {entry}")), "{err}");
    };
    // A changed field.
    test_db.exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3");
    refused(3);
    restore();
    // A deleted entry in the middle.
    test_db.exec("DELETE FROM audit_log WHERE seq = 2");
    refused(2);
    restore();
    // The last entry deleted.
    test_db.exec(&format!("DELETE FROM audit_log WHERE seq = {n}"));
    refused(n);
    restore();
    // A rewritten hash breaks its own entry.
    test_db.exec("UPDATE audit_log SET hash = 'abc' WHERE seq = 1");
    refused(1);
    restore();
    assert!(ok(&pw(&db, &["audit", "verify"])).contains("chain intact"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_by_default_with_a_kept_self_signed_certificate() {
    let dir = tmpdir("api-tls");
    let db = dir.join("tls.db");
    let server = start(&db, &[]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let fp = server
        .banner
        .iter()
        .find(|l| l.contains("SHA-256"))
        .cloned()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = c
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Plain HTTP to a TLS port fails.
    let plain = server.url.replace("https://", "http://");
    let answered = client()
        .get(format!("{plain}/healthz"))
        .send()
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false);
    assert!(!answered, "plain HTTP must not be served on the TLS port");
    // An agent pins the printed fingerprint: it enrols; pinned to another, it refuses.
    let printed = fp.split_whitespace().last().unwrap();
    let token = ok(&pw(&db, &["enrol-tokens", "create", "--uses", "2"]));
    let host = || {
        let streams = patchward_agent::simulated::Streams::bundled().unwrap();
        patchward_agent::simulated::SimulatedHost::generate(
            &streams,
            9,
            0,
            jiff::Timestamp::UNIX_EPOCH,
        )
        .unwrap()
    };
    let pinned = patchward_agent::Tls::pinned(printed).unwrap();
    let agent_client = patchward_agent::AgentClient::new(&server.url, &pinned).unwrap();
    let mut agent = patchward_agent::Agent::new(host(), agent_client, None).unwrap();
    assert!(agent.ensure_enrolled(Some(token.trim())).await.unwrap());
    let wrong = patchward_agent::Tls::pinned(&"00".repeat(32)).unwrap();
    let mut impostor = patchward_agent::Agent::new(
        host(),
        patchward_agent::AgentClient::new(&server.url, &wrong).unwrap(),
        None,
    )
    .unwrap();
    let e = impostor
        .ensure_enrolled(Some(token.trim()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("fingerprint"), "{e}");
    drop(server);
    // The certificate is kept: the same fingerprint on the next start.
    let again = start(&db, &[]);
    let fp2 = again
        .banner
        .iter()
        .find(|l| l.contains("SHA-256"))
        .cloned()
        .unwrap();
    assert_eq!(fp, fp2);
}

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let doc = ok(&std::process::Command::new(env!("CARGO_BIN_EXE_patchward"))
        .arg("openapi")
        .output()
        .unwrap());
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == doc,
        "docs/openapi.json is out of date: run `UPDATE_SNAPSHOTS=1 cargo test -p patchward openapi` and review the diff"
    );
    // Valid: every $ref resolves, every operation answers something and has a summary.
    let v: Value = serde_json::from_str(&doc).unwrap();
    let mut refs = Vec::new();
    fn walk(v: &Value, refs: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        refs.push(x.as_str().unwrap().to_string());
                    }
                    walk(x, refs);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, refs)),
            _ => {}
        }
    }
    walk(&v, &mut refs);
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            v["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
    for (_, item) in v["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m}"
            );
            assert!(
                op["summary"].is_string() || op["description"].is_string(),
                "{m} {op}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_its_estate_with_a_one_time_admin_password() {
    let dir = tmpdir("api-demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchward"))
        .current_dir(&dir)
        .env_remove("PATCHWARD_DB")
        .args(["demo", "--as-of", "2026-11-25"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut password, mut token, mut url) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line
            .trim()
            .strip_prefix(
                "open the web UI at the URL below and log in as \"admin\" with the password ",
            )
            .and_then(|r| r.strip_suffix(" (shown once)"))
        {
            password = Some(rest.to_string());
        } else if let Some(rest) = line
            .trim()
            .strip_prefix("API token (Swagger UI: Authorize → bearer): ")
        {
            token = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("patchward: listening on ") {
            url = Some(rest.to_string());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (password, token, url) = (password.unwrap(), token.unwrap(), url.unwrap());
    let c = client();
    let (s, login) = call(
        &c,
        Method::POST,
        &format!("{url}/api/v1/session"),
        None,
        Some(json!({"name": "admin", "password": password})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{login}");
    assert_eq!(login["user"]["role"], "admin");
    let (s, page) = call(
        &c,
        Method::GET,
        &format!("{url}/api/v1/servers?per_page=100"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"DC-01") && names.contains(&"SQL-02"),
        "{names:?}"
    );
    let (_, summary) = call(
        &c,
        Method::GET,
        &format!("{url}/api/v1/exposure"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(summary["servers"].as_u64().unwrap() as usize, names.len());
    // The workflow is there at once: the monthly cycle waiting for approval (which the admin,
    // who did not prepare it, may give), exceptions (one expiring soon), emergency proposals.
    let (_, cycles) = call(
        &c,
        Method::GET,
        &format!("{url}/api/v1/cycles"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(cycles.as_array().unwrap().len(), 2, "{cycles}");
    let monthly = cycles
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().ends_with("Patch Tuesday"))
        .unwrap_or_else(|| panic!("{cycles}"));
    assert_eq!(monthly["state"], "planned");
    let (_, cycle) = call(
        &c,
        Method::GET,
        &format!("{url}/api/v1/cycles/{}", monthly["id"]),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        cycle["can_approve"]["allowed"], true,
        "{}",
        cycle["can_approve"]
    );
    // And a cycle runs live: the lab's simulated agents enrolled with the server over HTTP,
    // their servers are in the inventory, and the pilot ring is patched within seconds.
    let lab = cycles
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["state"] == "running")
        .unwrap_or_else(|| panic!("no running cycle: {cycles}"));
    assert!(
        names.contains(&"LAB-01") && names.contains(&"LAB-10"),
        "{names:?}"
    );
    let jobs_url = format!("{url}/api/v1/cycles/{}/jobs", lab["id"]);
    let mut jobs = Value::Null;
    for _ in 0..60 {
        let (_, j) = call(&c, Method::GET, &jobs_url, Some(&token), None).await;
        jobs = j;
        let pilot_done = jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["ring"] == "lab-pilot" && j["state"] == "succeeded")
            .count();
        if pilot_done == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let all = jobs["jobs"].as_array().unwrap();
    assert_eq!(all.len(), 10, "{jobs}");
    assert!(
        all.iter()
            .filter(|j| j["ring"] == "lab-pilot")
            .all(|j| j["state"] == "succeeded" && j["checks"].as_array().unwrap().len() == 6),
        "the pilot is installed and verified: {jobs}"
    );
    assert!(
        all.iter()
            .filter(|j| j["ring"] == "lab-broad")
            .all(|j| j["state"] == "waiting"),
        "the broad ring waits for its slot: {jobs}"
    );
    let (_, soon) = call(
        &c,
        Method::GET,
        &format!("{url}/api/v1/exceptions?status=expiring"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(soon.as_array().unwrap().len(), 1, "{soon}");
    let (_, all) = call(
        &c,
        Method::GET,
        &format!("{url}/api/v1/exceptions"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, em) = call(
        &c,
        Method::GET,
        &format!("{url}/api/v1/emergencies"),
        Some(&token),
        None,
    )
    .await;
    assert!(
        em.as_array().unwrap().iter().any(|p| p["kev"] == true),
        "{em}"
    );
    // The URL opens on the dashboard (after logging in).
    let r = c.get(format!("{url}/")).send().await.unwrap();
    assert!(r.url().path().starts_with("/login"), "{}", r.url());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_command_line_works_in_the_tenant_it_is_given() {
    let test_db = estate_db("cli-tenant", Backend::Sqlite).unwrap();
    let db = test_db.spec.clone();
    let default = ok(&pw(&db, &["servers"]));
    let contoso = ok(&pw(&db, &["--tenant", "contoso", "servers"]));
    assert!(
        default.contains("DC-01") && !default.contains("SQL-02"),
        "{default}"
    );
    assert!(contoso.contains("SQL-02"), "{contoso}");
    let host = ok(&pw(
        &db,
        &["assess", "--tenant", "contoso", "--host", "SQL-02"],
    ));
    assert!(host.contains("SQL-02"), "{host}");
    let o = pw(&db, &["--tenant", "nope", "servers"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope") && err.contains("contoso"), "{err}");
    // A plan made in one tenant is not listed in another.
    ok(&pw(
        &db,
        &[
            "--tenant",
            "contoso",
            "plan",
            "--cycle",
            "c1",
            "--start",
            "2024-08-13T18:00:00Z",
        ],
    ));
    assert!(ok(&pw(&db, &["--tenant", "contoso", "plan", "--list"])).contains("c1"));
    assert!(!ok(&pw(&db, &["plan", "--list"])).contains("c1"));
}
