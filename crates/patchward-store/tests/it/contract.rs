//! The Store contract: stories every implementation must pass, shared by the SQLite tests
//! (`patchward-store`) and the PostgreSQL tests (`patchward-store-postgres`, which includes this
//! file by path). Each backend's test main defines a runner — an async function that makes a
//! fresh, empty store, hands it to the story and cleans up — and expands [`contract_tests!`]
//! with it, so every story runs on every backend.

use jiff::Timestamp;
use patchward_core::catalog::{
    Affected, Classification, Fix, Kb, Product, Severity, Vulnerability,
};
use patchward_core::intel::{EpssScore, KevEntry};
use patchward_core::inventory::{
    Capacity, Dependency, DependencyTarget, DisruptionBudget, Estate, Ring, Server, Service,
};
use patchward_core::product::{Installation, ProductKind, ServerRelease};
use patchward_store::{
    AccessStore, AgentStore, AuditEntry, AuditQuery, AuditStore, DocumentImport, ImportOutcome,
    JobStore, LeaseChange, NewAgent, NewAuditEntry, NewEnrolToken, NewJob, NewToken, NewUser,
    SessionRecord, Store, StoreError, TenantId, TokenRefusal, WorkflowStore,
};

pub const T: TenantId = TenantId::DEFAULT;

pub fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn product() -> Product {
    Product {
        id: "11923".into(),
        name: "Windows Server 2022".into(),
        kind: ProductKind::Os {
            release: ServerRelease::Server2022,
            installation: Installation::Desktop,
        },
    }
}

fn vuln(cve: &str, doc: &str) -> Vulnerability {
    Vulnerability {
        cve: cve.into(),
        title: format!("{cve} title"),
        tag: Some("Windows Kernel".into()),
        cwe: None,
        exploited: cve.ends_with('1'),
        publicly_disclosed: false,
        exploit_status: None,
        document: doc.into(),
        released: Some(t("2024-07-09T07:00:00Z")),
    }
}

fn fix(cve: &str, kb: u32, doc: &str) -> Fix {
    Fix {
        cve: cve.into(),
        product_id: "11923".into(),
        kb: Kb(kb),
        subtype: "Security Update".into(),
        classification: Classification::SecurityCumulativeUpdate,
        fixed_build: Some("10.0.20348.2582".parse().unwrap()),
        supersedes: vec![Kb(5039227)],
        restart_required: Some("Yes".into()),
        document: doc.into(),
    }
}

fn affected(cve: &str) -> Affected {
    Affected {
        cve: cve.into(),
        product_id: "11923".into(),
        severity: Some(Severity::Critical),
        impact: Some("Remote Code Execution".into()),
        cvss_base: Some(9.8),
        cvss_vector: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into()),
    }
}

/// The catalog, feeds, estate and plans story (the first contract, on the default tenant).
pub async fn story(store: &impl Store) {
    let now = t("2026-11-25T12:00:00Z");
    let products = [product()];
    let v = [
        vuln("CVE-2024-0001", "2024-Jul"),
        vuln("CVE-2024-0002", "2024-Jul"),
    ];
    let a = [affected("CVE-2024-0001"), affected("CVE-2024-0002")];
    let f = [
        fix("CVE-2024-0001", 5040437, "2024-Jul"),
        fix("CVE-2024-0002", 5040437, "2024-Jul"),
    ];
    let doc = DocumentImport {
        id: "2024-Jul",
        title: "July 2024 Security Updates",
        revision: Some("641"),
        initial_release: Some(t("2024-07-09T07:00:00Z")),
        current_release: Some(t("2026-06-01T00:00:00Z")),
        source: "2024-Jul.xml",
        products: &products,
        vulnerabilities: &v,
        affected: &a,
        fixes: &f,
    };
    assert_eq!(
        store.import_document(&doc, now).await.unwrap(),
        ImportOutcome::Stored
    );
    assert_eq!(
        store.import_document(&doc, now).await.unwrap(),
        ImportOutcome::Unchanged
    );
    let c = store.catalog().await.unwrap();
    assert_eq!(
        (
            c.vulnerabilities.len(),
            c.fixes.len(),
            c.affected.len(),
            c.products.len()
        ),
        (2, 2, 2, 1)
    );
    let f0 = c.fixes.iter().find(|x| x.cve == "CVE-2024-0001").unwrap();
    assert_eq!(f0, &f[0], "fix round-trips exactly");
    assert_eq!(
        c.affected
            .iter()
            .find(|x| x.cve == "CVE-2024-0002")
            .unwrap(),
        &a[1]
    );
    assert_eq!(
        c.vulnerabilities
            .iter()
            .find(|x| x.cve == "CVE-2024-0001")
            .unwrap(),
        &v[0]
    );

    // A newer revision replaces the document's facts: a CVE it no longer lists disappears.
    let v2 = [vuln("CVE-2024-0001", "2024-Jul")];
    let doc2 = DocumentImport {
        revision: Some("642"),
        current_release: Some(t("2026-06-28T02:02:05Z")),
        vulnerabilities: &v2,
        affected: &a[..1],
        fixes: &f[..1],
        ..doc.clone()
    };
    assert_eq!(
        store.import_document(&doc2, now).await.unwrap(),
        ImportOutcome::Stored
    );
    assert_eq!(store.catalog().await.unwrap().vulnerabilities.len(), 1);
    // An older revision never replaces a newer one.
    assert_eq!(
        store.import_document(&doc, now).await.unwrap(),
        ImportOutcome::Older
    );
    assert_eq!(store.catalog().await.unwrap().vulnerabilities.len(), 1);

    // A CVE MSRC lists in two months survives a re-import of one of them without it.
    let v_aug = [vuln("CVE-2024-0001", "2024-Aug")];
    let f_aug = [fix("CVE-2024-0001", 5041578, "2024-Aug")];
    let aug = DocumentImport {
        id: "2024-Aug",
        revision: Some("1"),
        vulnerabilities: &v_aug,
        affected: &a[..1],
        fixes: &f_aug,
        ..doc2.clone()
    };
    assert_eq!(
        store.import_document(&aug, now).await.unwrap(),
        ImportOutcome::Stored
    );
    let v_jul_empty = [vuln("CVE-2024-0003", "2024-Jul")];
    let jul3 = DocumentImport {
        revision: Some("643"),
        current_release: Some(t("2026-06-29T00:00:00Z")),
        vulnerabilities: &v_jul_empty,
        affected: &[],
        fixes: &[],
        ..doc2.clone()
    };
    assert_eq!(
        store.import_document(&jul3, now).await.unwrap(),
        ImportOutcome::Stored
    );
    let c = store.catalog().await.unwrap();
    assert!(
        c.vulnerabilities.iter().any(|v| v.cve == "CVE-2024-0001"),
        "August still lists it"
    );
    assert_eq!(
        c.fixes.iter().filter(|f| f.cve == "CVE-2024-0001").count(),
        1
    );
    assert_eq!(
        c.vulnerabilities
            .iter()
            .filter(|v| v.cve == "CVE-2024-0001")
            .count(),
        1,
        "merged"
    );

    // KEV: replaced by a newer catalog, an older one is ignored.
    let kev = |cve: &str| KevEntry {
        cve: cve.into(),
        vendor: "Microsoft".into(),
        product: "Windows".into(),
        name: "x".into(),
        date_added: "2024-07-09".parse().unwrap(),
        due: "2024-07-30".parse().unwrap(),
        known_ransomware: false,
        required_action: "Apply updates".into(),
    };
    let new = [kev("CVE-2024-0001"), kev("CVE-2024-0002")];
    assert_eq!(
        store
            .import_kev(
                "kev.json",
                "2026.08.07",
                Some(t("2026-08-07T00:00:00Z")),
                &new,
                now
            )
            .await
            .unwrap(),
        ImportOutcome::Stored
    );
    assert_eq!(
        store
            .import_kev(
                "old.json",
                "2025.08.25",
                Some(t("2025-08-25T00:00:00Z")),
                &new[..1],
                now
            )
            .await
            .unwrap(),
        ImportOutcome::Older
    );
    assert_eq!(store.catalog().await.unwrap().kev.len(), 2);

    // EPSS: a newer score replaces, an older one does not; the same data is unchanged.
    let score = |e: f64, d: &str| EpssScore {
        cve: "CVE-2024-0001".into(),
        epss: e,
        percentile: 0.5,
        model_version: "v2026.06.15".into(),
        score_date: d.parse().unwrap(),
    };
    assert_eq!(
        store
            .import_epss("e1", &[score(0.2, "2026-09-29")], now)
            .await
            .unwrap(),
        ImportOutcome::Stored
    );
    assert_eq!(
        store
            .import_epss("e1", &[score(0.2, "2026-09-29")], now)
            .await
            .unwrap(),
        ImportOutcome::Unchanged
    );
    assert_eq!(
        store
            .import_epss("e0", &[score(0.9, "2025-01-01")], now)
            .await
            .unwrap(),
        ImportOutcome::Unchanged
    );
    assert_eq!(store.catalog().await.unwrap().epss[0].epss, 0.2);

    // Servers and the estate round-trip; a capture update keeps inventory facts.
    let dc = Server {
        name: "DC-01".into(),
        os: "Windows Server 2022 Datacenter".into(),
        build: Some("10.0.20348.2582".parse().unwrap()),
        installed_kbs: [Kb(5040437)].into_iter().collect(),
        ring: Some("pilot".into()),
        ..Server::default()
    };
    let estate = Estate {
        servers: vec![
            dc.clone(),
            Server {
                name: "DC-02".into(),
                ..dc.clone()
            },
        ],
        services: vec![Service {
            probes: Vec::new(),
            probe_grace: None,
            name: "domain controllers".into(),
            members: vec!["DC-01".into(), "DC-02".into()],
            budget: DisruptionBudget::MaxUnavailable(1),
            owner: None,
        }],
        dependencies: vec![Dependency {
            dependent: DependencyTarget::Server("DC-02".into()),
            depends_on: DependencyTarget::Server("DC-01".into()),
        }],
        rings: vec![Ring {
            name: "pilot".into(),
            order: 1,
            soak: jiff::SignedDuration::from_hours(24),
            emergency_soak: None,
        }],
        capacity: Capacity {
            max_in_flight: Some(3),
            max_in_flight_per_site: None,
            // Per-site overrides are stored too.
            sites: [("Seattle".to_string(), 2)].into_iter().collect(),
        },
        ..Estate::default()
    };
    let rev = store.estate_revision(T).await.unwrap();
    store.import_estate(T, &estate, now).await.unwrap();
    assert!(
        store.estate_revision(T).await.unwrap() > rev,
        "a write bumps the revision"
    );
    let back = store.estate(T).await.unwrap();
    assert_eq!(back.servers.len(), 2);
    assert_eq!(back.services, estate.services);
    assert_eq!(back.dependencies, estate.dependencies);
    assert_eq!(back.rings, estate.rings);
    assert_eq!(back.capacity, estate.capacity);
    assert_eq!(
        store.server(T, "dc-01").await.unwrap().unwrap(),
        dc,
        "names are case-insensitive"
    );
    // Only the named servers are read: case-insensitive, unknown names left out, more names
    // than one SQL statement takes.
    let mut names: Vec<String> = (0..1000).map(|i| format!("nope-{i}")).collect();
    names.push("dc-02".into());
    let found = store.servers_named(T, &names).await.unwrap();
    assert_eq!(
        found.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["DC-02"]
    );
    assert!(store.servers_named(T, &[]).await.unwrap().is_empty());

    // Plans are stored by cycle and listed newest first.
    store
        .save_plan(T, "2026-11 Patch Tuesday", "{\"waves\":[]}", now)
        .await
        .unwrap();
    store
        .save_plan(
            T,
            "CVE emergency",
            "{\"waves\":[1]}",
            t("2026-11-26T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.plan(T, "CVE emergency").await.unwrap().as_deref(),
        Some("{\"waves\":[1]}")
    );
    assert_eq!(store.plans(T).await.unwrap()[0].0, "CVE emergency");
    assert!(store.plan(T, "nope").await.unwrap().is_none());

    let status = store.feed_status().await.unwrap();
    let msrc = status
        .iter()
        .find(|s| s.feed == "msrc-cvrf" && s.key == "2024-Jul")
        .unwrap();
    assert_eq!(msrc.revision.as_deref(), Some("643"));
    let counts = store.counts(T).await.unwrap();
    assert_eq!((counts.documents, counts.servers, counts.kev), (2, 2, 2));
}

fn server(name: &str, kbs: &[u32]) -> Server {
    Server {
        name: name.into(),
        os: "Windows Server 2022 Datacenter".into(),
        installed_kbs: kbs.iter().map(|k| Kb(*k)).collect(),
        ..Server::default()
    }
}

fn names(servers: &[Server]) -> Vec<String> {
    servers.iter().map(|s| s.name.clone()).collect()
}

/// Tenants: the default one exists; `ensure_tenant` is idempotent and case-insensitive.
pub async fn tenants(store: &impl AccessStore) {
    let now = t("2026-11-25T12:00:00Z");
    let default = store.tenant(TenantId::DEFAULT).await.unwrap().unwrap();
    assert_eq!(default.name, "default");
    let acme = store.ensure_tenant("Acme", now).await.unwrap();
    assert_ne!(acme.id, TenantId::DEFAULT);
    assert_eq!(acme.name, "Acme");
    assert_eq!(acme.created_at, now);
    let again = store
        .ensure_tenant("ACME", t("2026-11-26T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(again, acme, "same tenant, name and creation time kept");
    assert_eq!(
        store.tenant_by_name("acme").await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(store.tenant(acme.id).await.unwrap(), Some(acme.clone()));
    assert!(store.tenant_by_name("globex").await.unwrap().is_none());
    assert!(store.tenant(TenantId(987_654)).await.unwrap().is_none());
    let globex = store.ensure_tenant("Globex", now).await.unwrap();
    let all = store.tenants().await.unwrap();
    assert_eq!(
        all.iter().map(|t| t.id).collect::<Vec<_>>(),
        [TenantId::DEFAULT, acme.id, globex.id],
        "by id"
    );
}

/// A tenant's reads never show another tenant's servers, estate objects or plans; writes to
/// one tenant leave the other's revision alone.
pub async fn tenant_isolation(store: &(impl Store + AccessStore)) {
    let now = t("2026-11-25T12:00:00Z");
    let a = store.ensure_tenant("a", now).await.unwrap().id;
    let b = store.ensure_tenant("b", now).await.unwrap().id;
    store
        .upsert_servers(a, &[server("WEB-01", &[1])], now)
        .await
        .unwrap();
    let rev_a = store.estate_revision(a).await.unwrap();
    let rev_b = store.estate_revision(b).await.unwrap();
    store
        .upsert_servers(b, &[server("web-01", &[2]), server("DB-01", &[3])], now)
        .await
        .unwrap();
    assert_eq!(store.estate_revision(a).await.unwrap(), rev_a);
    assert!(store.estate_revision(b).await.unwrap() > rev_b);

    assert_eq!(names(&store.servers(a).await.unwrap()), ["WEB-01"]);
    assert_eq!(names(&store.servers(b).await.unwrap()), ["DB-01", "web-01"]);
    assert!(store.servers(T).await.unwrap().is_empty());
    assert_eq!(
        store
            .server(a, "web-01")
            .await
            .unwrap()
            .unwrap()
            .installed_kbs,
        [Kb(1)].into_iter().collect()
    );
    assert!(store.server(a, "DB-01").await.unwrap().is_none());
    assert!(
        store
            .servers_named(a, &["db-01".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let a_ids = store.stored_servers(a).await.unwrap();
    let b_ids = store.stored_servers(b).await.unwrap();
    assert_eq!(a_ids.len(), 1);
    assert_eq!(b_ids.len(), 2);
    let web_a = a_ids[0].id;
    assert_eq!(
        store
            .server_by_id(a, web_a)
            .await
            .unwrap()
            .unwrap()
            .server
            .name,
        "WEB-01"
    );
    assert!(store.server_by_id(b, web_a).await.unwrap().is_none());
    for s in &b_ids {
        assert!(store.server_by_id(a, s.id).await.unwrap().is_none());
    }
    assert_eq!(store.counts(a).await.unwrap().servers, 1);
    assert_eq!(store.counts(b).await.unwrap().servers, 2);

    // Estate objects and plans belong to their tenant too.
    let estate = Estate {
        servers: vec![server("WEB-01", &[4])],
        services: vec![Service {
            probes: Vec::new(),
            probe_grace: None,
            name: "web".into(),
            members: vec!["WEB-01".into()],
            budget: DisruptionBudget::MaxUnavailable(1),
            owner: None,
        }],
        ..Estate::default()
    };
    store.import_estate(a, &estate, now).await.unwrap();
    assert_eq!(store.estate(a).await.unwrap().services, estate.services);
    assert!(store.estate(b).await.unwrap().services.is_empty());
    store.save_plan(a, "cycle", "{}", now).await.unwrap();
    assert!(store.plan(b, "cycle").await.unwrap().is_none());
    assert!(store.plans(b).await.unwrap().is_empty());
    assert_eq!(store.plans(a).await.unwrap().len(), 1);

    // No tenant, no write.
    let err = store
        .upsert_servers(TenantId(987_654), &[server("X", &[])], now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

/// Users: unique names (case-insensitive), tenant listing, login bookkeeping, disabling ends
/// sessions.
pub async fn users(store: &impl AccessStore) {
    let now = t("2026-11-25T12:00:00Z");
    let acme = store.ensure_tenant("Acme", now).await.unwrap().id;
    let alice = store
        .create_user(
            &NewUser {
                tenant: None,
                name: "Alice",
                role: "admin",
                password_hash: Some("$argon2id$x"),
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (alice.name.as_str(), alice.role.as_str(), alice.tenant),
        ("Alice", "admin", None)
    );
    assert_eq!(alice.password_hash.as_deref(), Some("$argon2id$x"));
    assert!(!alice.disabled);
    assert_eq!((alice.failed_logins, alice.locked_until), (0, None));
    assert_eq!(alice.created_at, now);
    let dup = store
        .create_user(
            &NewUser {
                tenant: Some(acme),
                name: "ALICE",
                role: "viewer",
                password_hash: None,
            },
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup}");
    let bob = store
        .create_user(
            &NewUser {
                tenant: Some(acme),
                name: "bob",
                role: "operator",
                password_hash: None,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        store.user_by_name("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user(bob.id).await.unwrap(), Some(bob.clone()));
    assert!(store.user(987_654).await.unwrap().is_none());
    assert!(store.user_by_name("carol").await.unwrap().is_none());
    assert_eq!(
        store.users(Some(acme)).await.unwrap(),
        std::slice::from_ref(&bob)
    );
    assert_eq!(
        store
            .users(None)
            .await
            .unwrap()
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["Alice", "bob"],
        "by name, case-insensitively"
    );

    // Failed logins count and lock; a success resets both.
    let until = t("2026-11-25T12:15:00Z");
    assert_eq!(
        store.record_login(bob.id, false, 2, until).await.unwrap(),
        1
    );
    let b = store.user(bob.id).await.unwrap().unwrap();
    assert_eq!(
        (b.failed_logins, b.locked_until),
        (1, None),
        "below the limit: not locked"
    );
    assert_eq!(
        store.record_login(bob.id, false, 2, until).await.unwrap(),
        2
    );
    let b = store.user(bob.id).await.unwrap().unwrap();
    assert_eq!((b.failed_logins, b.locked_until), (2, Some(until)));
    assert_eq!(store.record_login(bob.id, true, 2, until).await.unwrap(), 0);
    let b = store.user(bob.id).await.unwrap().unwrap();
    assert_eq!((b.failed_logins, b.locked_until), (0, None));

    // Disabling ends the user's sessions and revokes their tokens at once; enabling brings
    // neither back.
    let tok = store
        .create_token(
            &NewToken {
                user_id: bob.id,
                hash: "h-bob-disable",
                label: "t",
                expires_at: None,
            },
            now,
        )
        .await
        .unwrap();
    let session = SessionRecord {
        hash: "s-bob".into(),
        user_id: bob.id,
        csrf: "csrf".into(),
        created_at: now,
        expires_at: until,
    };
    store.create_session(&session).await.unwrap();
    assert!(store.session("s-bob").await.unwrap().is_some());
    assert!(store.set_user_disabled(bob.id, true, now).await.unwrap());
    assert!(store.session("s-bob").await.unwrap().is_none());
    assert_eq!(
        store.token(tok.id).await.unwrap().unwrap().revoked_at,
        Some(now)
    );
    assert!(store.user(bob.id).await.unwrap().unwrap().disabled);
    assert!(store.set_user_disabled(bob.id, false, now).await.unwrap());
    assert!(
        store
            .token(tok.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(!store.user(bob.id).await.unwrap().unwrap().disabled);
    assert!(store.session("s-bob").await.unwrap().is_none());
    assert!(!store.set_user_disabled(987_654, true, now).await.unwrap());
}

/// API tokens: stored by hash, listed newest first, revoked once.
pub async fn tokens(store: &impl AccessStore) {
    let now = t("2026-11-25T12:00:00Z");
    let u = store
        .create_user(
            &NewUser {
                tenant: None,
                name: "robot",
                role: "operator",
                password_hash: None,
            },
            now,
        )
        .await
        .unwrap();
    let expires = t("2027-01-01T00:00:00Z");
    let first = store
        .create_token(
            &NewToken {
                user_id: u.id,
                hash: "h1",
                label: "ci",
                expires_at: Some(expires),
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (first.user_id, first.label.as_str(), first.created_at),
        (u.id, "ci", now)
    );
    assert_eq!((first.expires_at, first.revoked_at), (Some(expires), None));
    let second = store
        .create_token(
            &NewToken {
                user_id: u.id,
                hash: "h2",
                label: "backup",
                expires_at: None,
            },
            now + jiff::SignedDuration::from_secs(1),
        )
        .await
        .unwrap();
    let dup = store
        .create_token(
            &NewToken {
                user_id: u.id,
                hash: "h1",
                label: "again",
                expires_at: None,
            },
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup}");
    let (tok, user) = store.token_by_hash("h1").await.unwrap().unwrap();
    assert_eq!((tok, user), (first.clone(), u.clone()));
    assert!(store.token_by_hash("nope").await.unwrap().is_none());
    assert_eq!(store.token(second.id).await.unwrap(), Some(second.clone()));
    assert_eq!(
        store.tokens(Some(u.id)).await.unwrap(),
        [second.clone(), first.clone()],
        "newest first"
    );
    assert_eq!(store.tokens(None).await.unwrap().len(), 2);
    assert!(store.tokens(Some(987_654)).await.unwrap().is_empty());

    let later = t("2026-11-26T00:00:00Z");
    assert!(store.revoke_token(first.id, later).await.unwrap());
    assert!(!store.revoke_token(first.id, now).await.unwrap(), "twice");
    assert!(!store.revoke_token(987_654, now).await.unwrap());
    assert_eq!(
        store.token(first.id).await.unwrap().unwrap().revoked_at,
        Some(later),
        "the first revocation's time is kept"
    );
    // A revoked token is still found by hash: the caller decides.
    let (tok, _) = store.token_by_hash("h1").await.unwrap().unwrap();
    assert_eq!(tok.revoked_at, Some(later));
}

/// Sessions: stored by hash with their user, deleted by hash.
pub async fn sessions(store: &impl AccessStore) {
    let now = t("2026-11-25T12:00:00Z");
    let u = store
        .create_user(
            &NewUser {
                tenant: None,
                name: "carol",
                role: "viewer",
                password_hash: Some("p"),
            },
            now,
        )
        .await
        .unwrap();
    let s = SessionRecord {
        hash: "cookie-hash".into(),
        user_id: u.id,
        csrf: "token".into(),
        created_at: now,
        expires_at: t("2026-11-25T20:00:00Z"),
    };
    store.create_session(&s).await.unwrap();
    let (back, user) = store.session("cookie-hash").await.unwrap().unwrap();
    assert_eq!((back, user), (s.clone(), u));
    assert!(store.session("other").await.unwrap().is_none());
    store.delete_session("cookie-hash").await.unwrap();
    assert!(store.session("cookie-hash").await.unwrap().is_none());
    store.delete_session("cookie-hash").await.unwrap();
}

/// A deterministic stand-in for the application's SHA-256 chain.
fn chain(e: &AuditEntry) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (
        e.seq,
        e.at,
        e.tenant,
        &e.actor,
        &e.action,
        &e.target,
        &e.detail,
        &e.prev_hash,
    )
        .hash(&mut h);
    format!("{:016x}", h.finish())
}

fn entry(tenant: Option<TenantId>, actor: &str, action: &str, at: Timestamp) -> NewAuditEntry {
    NewAuditEntry {
        at,
        tenant,
        actor: actor.into(),
        action: action.into(),
        target: "server WEB-01".into(),
        detail: "{\"before\":null}".into(),
    }
}

/// Each entry links to the one before it; no entry is missing.
fn assert_chain(log: &[AuditEntry]) {
    let mut prev = String::new();
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "seq without gaps");
        assert_eq!(e.prev_hash, prev, "entry {} links to {}", e.seq, i);
        assert_eq!(e.hash, chain(e), "entry {} hashed as stored", e.seq);
        prev = e.hash.clone();
    }
}

/// The audit log numbers entries 1..n, chains them and keeps a head; queries filter.
pub async fn audit(store: &(impl AuditStore + AccessStore)) {
    assert!(store.audit_head().await.unwrap().is_none());
    assert!(
        store
            .audit(&AuditQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    let acme = store
        .ensure_tenant("Acme", t("2026-11-25T00:00:00Z"))
        .await
        .unwrap()
        .id;
    let first = store
        .append_audit(
            entry(None, "cli", "user.create", t("2026-11-25T12:00:00Z")),
            chain,
        )
        .await
        .unwrap();
    assert_eq!((first.seq, first.prev_hash.as_str()), (1, ""));
    assert_eq!(first.hash, chain(&first));
    let second = store
        .append_audit(
            entry(
                Some(acme),
                "alice",
                "hosts.import",
                t("2026-11-25T13:00:00Z"),
            ),
            chain,
        )
        .await
        .unwrap();
    assert_eq!((second.seq, &second.prev_hash), (2, &first.hash));
    let third = store
        .append_audit(
            entry(Some(acme), "bob", "plan.save", t("2026-11-25T14:00:00Z")),
            chain,
        )
        .await
        .unwrap();
    assert_eq!(
        store.audit_head().await.unwrap(),
        Some((3, third.hash.clone()))
    );
    let all = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(all, [first.clone(), second.clone(), third.clone()]);
    assert_chain(&all);

    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    let seqs = |v: Vec<AuditEntry>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(
            store
                .audit(&AuditQuery {
                    tenant: Some(acme),
                    ..AuditQuery::default()
                })
                .await
                .unwrap()
        ),
        [2, 3],
        "a tenant's entries leave out provider-wide ones"
    );
    assert_eq!(
        seqs(
            store
                .audit(&q(|q| q.actor = Some("bob".into())))
                .await
                .unwrap()
        ),
        [3]
    );
    assert_eq!(
        seqs(
            store
                .audit(&q(|q| q.action = Some("user.create".into())))
                .await
                .unwrap()
        ),
        [1]
    );
    assert_eq!(
        seqs(
            store
                .audit(&q(|q| q.since = Some(t("2026-11-25T13:00:00Z"))))
                .await
                .unwrap()
        ),
        [2, 3]
    );
    assert_eq!(
        seqs(
            store
                .audit(&q(|q| {
                    q.after_seq = Some(1);
                    q.limit = Some(1);
                }))
                .await
                .unwrap()
        ),
        [2]
    );
}

/// Appends from many tasks at once are serialised: one chain, numbered 1..n without gaps.
pub async fn audit_concurrent<S: AuditStore + Clone + Send + Sync + 'static>(store: S) {
    const TASKS: usize = 8;
    const EACH: usize = 10;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let at = t("2026-11-25T12:00:00Z");
                store
                    .append_audit(
                        entry(None, &format!("task-{task}"), &format!("a{i}"), at),
                        chain,
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let log = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(log.len(), TASKS * EACH);
    assert_chain(&log);
    let last = log.last().unwrap();
    assert_eq!(
        store.audit_head().await.unwrap(),
        Some((last.seq, last.hash.clone()))
    );
    for task in 0..TASKS {
        let mine = log
            .iter()
            .filter(|e| e.actor == format!("task-{task}"))
            .count();
        assert_eq!(mine, EACH, "every append of task {task} is in the log");
    }
}

/// The merge the contract uses: the union of installed KBs (what a capture adds).
fn union(mut old: Server, new: Server) -> Server {
    old.installed_kbs.extend(new.installed_kbs);
    old.name = new.name;
    old
}

/// Concurrent `merge_servers` calls on disjoint and overlapping servers lose nothing: the
/// final state is the sum of every change.
pub async fn merge_concurrent<S: Store + AccessStore + Clone + Send + Sync + 'static>(store: S) {
    const TASKS: u32 = 8;
    const ROUNDS: u32 = 3;
    const SHARED: u32 = 4;
    let now = t("2026-11-25T12:00:00Z");
    let tenant = store.ensure_tenant("merge", now).await.unwrap().id;
    // A server stored before, which every writer extends.
    store
        .upsert_servers(tenant, &[server("SHARED-0", &[1])], now)
        .await
        .unwrap();
    let rev = store.estate_revision(tenant).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let kb = 1000 * (task + 1) + round;
                let mut batch = vec![server(&format!("only-{task}-{round}"), &[kb])];
                for k in 0..SHARED {
                    // Writers name the shared servers in different cases.
                    let name = if task % 2 == 0 {
                        format!("SHARED-{k}")
                    } else {
                        format!("shared-{k}")
                    };
                    batch.push(server(&name, &[kb]));
                }
                let n = store
                    .merge_servers(tenant, batch, None, union, now)
                    .await
                    .unwrap();
                assert_eq!(n, 1 + SHARED as usize);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = store.servers(tenant).await.unwrap();
    assert_eq!(
        all.len(),
        (TASKS * ROUNDS + SHARED) as usize,
        "{:?}",
        names(&all)
    );
    let every_kb: std::collections::BTreeSet<Kb> = (0..TASKS)
        .flat_map(|task| (0..ROUNDS).map(move |round| Kb(1000 * (task + 1) + round)))
        .collect();
    for k in 0..SHARED {
        let s = store
            .server(tenant, &format!("Shared-{k}"))
            .await
            .unwrap()
            .unwrap();
        let mut want = every_kb.clone();
        if k == 0 {
            want.insert(Kb(1));
        }
        assert_eq!(s.installed_kbs, want, "shared-{k} has every writer's KBs");
    }
    for task in 0..TASKS {
        for round in 0..ROUNDS {
            let s = store
                .server(tenant, &format!("ONLY-{task}-{round}"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                s.installed_kbs,
                [Kb(1000 * (task + 1) + round)].into_iter().collect()
            );
        }
    }
    assert!(
        store.estate_revision(tenant).await.unwrap() >= rev + i64::from(TASKS * ROUNDS),
        "every merge bumps the revision"
    );
}

/// Names fold ASCII letters only (SQLite's NOCASE) and sort by the folded name, by code point.
pub async fn names_fold_ascii_only(store: &impl Store) {
    let now = t("2026-11-25T12:00:00Z");
    store
        .upsert_servers(
            T,
            &[
                server("ÄPFEL-01", &[]),
                server("b-01", &[]),
                server("A-02", &[]),
            ],
            now,
        )
        .await
        .unwrap();
    assert!(store.server(T, "Äpfel-01").await.unwrap().is_some());
    assert!(store.server(T, "äpfel-01").await.unwrap().is_none());
    assert_eq!(
        names(&store.servers(T).await.unwrap()),
        ["A-02", "b-01", "ÄPFEL-01"]
    );
}

/// Cycles: names unique per tenant (case-insensitive), another tenant's id is not found,
/// versioned writes refuse a stale version and store the plan with the cycle; exceptions and
/// rules per tenant, revocation once, each exception write changes the estate revision.
pub async fn workflow(store: &(impl Store + AccessStore + WorkflowStore)) {
    let now = t("2026-12-04T10:00:00Z");
    let other = store.ensure_tenant("other", now).await.unwrap().id;
    let c = store
        .create_cycle(T, "2026-12 Patch Tuesday", "draft", "{}", now)
        .await
        .unwrap();
    assert_eq!((c.version, c.state.as_str(), c.tenant), (1, "draft", T));
    let dup = store
        .create_cycle(T, "2026-12 patch tuesday", "draft", "{}", now)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    // The same name in another tenant is another cycle.
    let o = store
        .create_cycle(other, "2026-12 Patch Tuesday", "draft", "{\"o\":1}", now)
        .await
        .unwrap();
    assert!(store.cycle(other, c.id).await.unwrap().is_none());
    assert!(store.cycle(T, o.id).await.unwrap().is_none());
    assert_eq!(store.cycles(T).await.unwrap().len(), 1);
    // Versioned writes.
    let later = t("2026-12-04T11:00:00Z");
    let v2 = store
        .update_cycle(
            T,
            c.id,
            1,
            "planned",
            "{\"v\":2}",
            Some("{\"plan\":1}"),
            later,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (v2.version, v2.state.as_str(), v2.body.as_str()),
        (2, "planned", "{\"v\":2}")
    );
    assert_eq!(v2.updated_at, later);
    assert_eq!(
        store
            .plan(T, "2026-12 Patch Tuesday")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"plan\":1}")
    );
    assert!(
        store
            .plan(other, "2026-12 Patch Tuesday")
            .await
            .unwrap()
            .is_none()
    );
    let stale = store
        .update_cycle(T, c.id, 1, "approved", "{}", Some("{\"plan\":2}"), later)
        .await
        .unwrap();
    assert!(stale.is_none(), "a stale version writes nothing");
    assert_eq!(
        store
            .plan(T, "2026-12 Patch Tuesday")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"plan\":1}"),
        "nor the plan"
    );
    assert!(
        store
            .update_cycle(other, c.id, 2, "x", "{}", None, later)
            .await
            .unwrap()
            .is_none()
    );
    let newer = store
        .create_cycle(T, "CVE-2024-38063 emergency", "draft", "{}", later)
        .await
        .unwrap();
    let names: Vec<String> = store
        .cycles(T)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        ["CVE-2024-38063 emergency", "2026-12 Patch Tuesday"],
        "newest first"
    );
    assert_ne!(newer.id, c.id);

    // Exceptions.
    let rev = store.estate_revision(T).await.unwrap();
    let e = store
        .create_exception(T, "WEB01", "{\"e\":1}", now)
        .await
        .unwrap();
    assert!(store.estate_revision(T).await.unwrap() > rev);
    assert_eq!((e.server.as_str(), e.revoked_at), ("WEB01", None));
    assert!(store.exception(other, e.id).await.unwrap().is_none());
    assert!(store.exceptions(other).await.unwrap().is_empty());
    let rev = store.estate_revision(T).await.unwrap();
    assert!(
        store
            .revoke_exception(T, e.id, "{\"e\":2}", later)
            .await
            .unwrap()
    );
    assert!(store.estate_revision(T).await.unwrap() > rev);
    assert!(
        !store.revoke_exception(T, e.id, "{}", later).await.unwrap(),
        "once"
    );
    assert!(
        !store
            .revoke_exception(other, e.id, "{}", later)
            .await
            .unwrap()
    );
    let got = store.exception(T, e.id).await.unwrap().unwrap();
    assert_eq!(
        (got.revoked_at, got.body.as_str()),
        (Some(later), "{\"e\":2}")
    );
    assert_eq!(store.exceptions(T).await.unwrap().len(), 1);

    // Rules.
    assert!(store.workflow_rules(T).await.unwrap().is_none());
    store.set_workflow_rules(T, "{\"a\":1}", now).await.unwrap();
    store
        .set_workflow_rules(T, "{\"a\":2}", later)
        .await
        .unwrap();
    assert_eq!(
        store.workflow_rules(T).await.unwrap().as_deref(),
        Some("{\"a\":2}")
    );
    assert!(store.workflow_rules(other).await.unwrap().is_none());
}

/// Eight writers race on one cycle's version: exactly one write per version wins, and a loser
/// that re-reads and retries loses nothing (the body ends with every writer's mark).
pub async fn cycle_versions_concurrent<S: WorkflowStore + Clone + Send + Sync + 'static>(store: S) {
    const TASKS: usize = 8;
    let now = t("2026-12-04T10:00:00Z");
    let c = store
        .create_cycle(T, "race", "planned", "", now)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut lost = 0;
            loop {
                let cur = store.cycle(T, c.id).await.unwrap().unwrap();
                let body = format!("{}[{task}]", cur.body);
                match store
                    .update_cycle(T, c.id, cur.version, "planned", &body, None, now)
                    .await
                    .unwrap()
                {
                    Some(_) => return lost,
                    None => lost += 1,
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let end = store.cycle(T, c.id).await.unwrap().unwrap();
    assert_eq!(end.version, 1 + TASKS as i64);
    for task in 0..TASKS {
        assert!(end.body.contains(&format!("[{task}]")), "{}", end.body);
    }
}

fn new_agent<'a>(server: &'a str, cred: &'a str) -> NewAgent<'a> {
    NewAgent {
        server,
        credential_hash: cred,
        agent_version: "0.1.0",
        protocol: 1,
    }
}

/// One agent enrolled with one token use: the batch of one every agent sends.
trait EnrolOne: AgentStore + Sync {
    fn enrol_agent(
        &self,
        token_hash: &str,
        agent: &NewAgent<'_>,
        now: Timestamp,
    ) -> impl std::future::Future<
        Output = patchward_store::Result<Result<patchward_store::Enrolment, TokenRefusal>>,
    > + Send {
        async move {
            Ok(self
                .enrol_agents(token_hash, std::slice::from_ref(agent), now)
                .await?
                .map(|mut v| v.remove(0)))
        }
    }
}
impl<S: AgentStore + Sync> EnrolOne for S {}

/// Enrolment tokens and agents: uses, expiry, revocation, re-enrolment, tenants, check-ins.
pub async fn agents(store: &(impl AccessStore + AgentStore + Sync)) {
    let now = t("2026-12-04T10:00:00Z");
    let other = store.ensure_tenant("other", now).await.unwrap().id;
    let tok = store
        .create_enrol_token(
            &NewEnrolToken {
                tenant: T,
                hash: "h-two",
                label: "two",
                uses: 2,
                created_by: "alice",
                expires_at: t("2026-12-05T10:00:00Z"),
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!((tok.uses_left, tok.tenant), (2, T));
    let a = store
        .enrol_agent("h-two", &new_agent("web01", "c1"), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.agent.server.as_str(), a.agent.tenant, a.token),
        ("web01", T, tok.id)
    );
    assert!(a.replaced.is_empty());
    // Enrolling WEB01 again (a reinstalled host) revokes the first agent.
    let b = store
        .enrol_agent("h-two", &new_agent("WEB01", "c2"), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.replaced, vec![a.agent.id]);
    let first = store.agent_by_credential("c1").await.unwrap().unwrap();
    assert_eq!(first.revoked_at, Some(now));
    // Used up; unknown; nothing changed by a refusal.
    let used = store
        .enrol_agent("h-two", &new_agent("web02", "c3"), now)
        .await
        .unwrap();
    assert_eq!(used.err(), Some(TokenRefusal::UsedUp));
    let unknown = store
        .enrol_agent("nope", &new_agent("web02", "c3"), now)
        .await
        .unwrap();
    assert_eq!(unknown.err(), Some(TokenRefusal::Unknown));
    assert!(store.agent_by_credential("c3").await.unwrap().is_none());
    assert_eq!(store.agents(T).await.unwrap().len(), 2);
    // Expiry and revocation.
    let short = store
        .create_enrol_token(
            &NewEnrolToken {
                tenant: other,
                hash: "h-short",
                label: "short",
                uses: 5,
                created_by: "bob",
                expires_at: t("2026-12-04T11:00:00Z"),
            },
            now,
        )
        .await
        .unwrap();
    let late = store
        .enrol_agent(
            "h-short",
            &new_agent("db01", "c4"),
            t("2026-12-04T11:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(late.err(), Some(TokenRefusal::Expired));
    assert!(
        !store.revoke_enrol_token(T, short.id, now).await.unwrap(),
        "another tenant's"
    );
    assert!(
        store
            .revoke_enrol_token(other, short.id, now)
            .await
            .unwrap()
    );
    let revoked = store
        .enrol_agent("h-short", &new_agent("db01", "c4"), now)
        .await
        .unwrap();
    assert_eq!(revoked.err(), Some(TokenRefusal::Revoked));
    assert_eq!(
        store.enrol_tokens(other).await.unwrap()[0].revoked_at,
        Some(now)
    );
    // Tenants: the token's tenant owns the agent; another tenant's id is not found.
    assert!(store.agent(other, b.agent.id).await.unwrap().is_none());
    assert!(store.agents(other).await.unwrap().is_empty());
    assert!(!store.revoke_agent(other, b.agent.id, now).await.unwrap());
    // Check-ins: many at once; an older time never moves last_seen back.
    let later = t("2026-12-04T10:05:00Z");
    store
        .touch_agents(&[(b.agent.id, later), (a.agent.id, later)])
        .await
        .unwrap();
    store.touch_agents(&[(b.agent.id, now)]).await.unwrap();
    let seen = store.agent(T, b.agent.id).await.unwrap().unwrap();
    assert_eq!(seen.last_seen, later);
    store
        .record_agent_report(b.agent.id, "d1", "{\"os\":\"x\"}", "0.2.0", 1, later)
        .await
        .unwrap();
    let r = store.agent(T, b.agent.id).await.unwrap().unwrap();
    assert_eq!(
        (
            r.inventory_digest.as_deref(),
            r.reported_at,
            r.agent_version.as_str()
        ),
        (Some("d1"), Some(later), "0.2.0")
    );
    assert_eq!(
        store.agent_report(T, b.agent.id).await.unwrap().as_deref(),
        Some("{\"os\":\"x\"}")
    );
    assert!(
        store
            .agent_report(other, b.agent.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.revoke_agent(T, b.agent.id, later).await.unwrap());
    assert!(
        !store.revoke_agent(T, b.agent.id, later).await.unwrap(),
        "twice"
    );

    // A batch takes one use of the token, whatever its size, and is all or nothing.
    store
        .create_enrol_token(
            &NewEnrolToken {
                tenant: other,
                hash: "h-batch",
                label: "fleet",
                uses: 1,
                created_by: "bob",
                expires_at: t("2026-12-05T10:00:00Z"),
            },
            now,
        )
        .await
        .unwrap();
    let batch = [
        new_agent("sql01", "b1"),
        new_agent("sql02", "b2"),
        new_agent("sql03", "b3"),
    ];
    let fleet = store
        .enrol_agents("h-batch", &batch, now)
        .await
        .unwrap()
        .unwrap();
    let names: Vec<_> = fleet.iter().map(|e| e.agent.server.as_str()).collect();
    assert_eq!(names, ["sql01", "sql02", "sql03"]);
    assert!(fleet.iter().all(|e| e.agent.tenant == other));
    let again = store
        .enrol_agents("h-batch", &[new_agent("sql04", "b4")], now)
        .await
        .unwrap();
    assert_eq!(again.err(), Some(TokenRefusal::UsedUp));
    assert!(store.agent_by_credential("b4").await.unwrap().is_none());
}

/// Many enrolments at once with a token of three uses: exactly three agents.
pub async fn enrol_concurrent<S: AgentStore + Clone + Send + Sync + 'static>(store: S) {
    let now = t("2026-12-04T10:00:00Z");
    store
        .create_enrol_token(
            &NewEnrolToken {
                tenant: T,
                hash: "h-three",
                label: "three",
                uses: 3,
                created_by: "alice",
                expires_at: t("2026-12-05T10:00:00Z"),
            },
            now,
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("host{i}");
            let cred = format!("cred{i}");
            s.enrol_agent("h-three", &new_agent(&name, &cred), now)
                .await
                .unwrap()
                .is_ok()
        }));
    }
    let mut enrolled = 0;
    for t in tasks {
        enrolled += usize::from(t.await.unwrap());
    }
    assert_eq!(enrolled, 3);
    assert_eq!(store.agents(T).await.unwrap().len(), 3);
    assert_eq!(store.enrol_tokens(T).await.unwrap()[0].uses_left, 0);
}

fn nj(server: &str, ring: &str) -> NewJob {
    NewJob {
        server: server.into(),
        ring: Some(ring.into()),
        state: "waiting".into(),
        body: format!("{{\"server\":\"{server}\"}}"),
    }
}

/// Jobs: created once per server, read per cycle and per server (running cycles only),
/// versioned writes, leases with a growing fencing token, lapsed leases, tenants.
pub async fn jobs(store: &(impl AccessStore + WorkflowStore + JobStore)) {
    let now = t("2026-12-08T21:00:00Z");
    let other = store.ensure_tenant("other", now).await.unwrap().id;
    let c = store
        .create_cycle(T, "2026-12 Patch Tuesday", "running", "{}", now)
        .await
        .unwrap();
    let d = store
        .create_cycle(T, "draft one", "draft", "{}", now)
        .await
        .unwrap();
    let made = store
        .create_jobs(T, c.id, &[nj("web01", "pilot"), nj("sql01", "broad")], now)
        .await
        .unwrap();
    assert_eq!(made, 2);
    // Starting again creates only what is missing.
    let again = store
        .create_jobs(T, c.id, &[nj("WEB01", "pilot"), nj("app01", "broad")], now)
        .await
        .unwrap();
    assert_eq!(again, 1);
    store
        .create_jobs(T, d.id, &[nj("web01", "pilot")], now)
        .await
        .unwrap();
    let all = store.jobs(T, c.id).await.unwrap();
    assert_eq!(
        all.iter().map(|j| j.server.as_str()).collect::<Vec<_>>(),
        vec!["app01", "sql01", "web01"]
    );
    assert!(store.jobs(other, c.id).await.unwrap().is_empty());
    // The same rows without their bodies.
    let light = store.job_summaries(T, c.id).await.unwrap();
    assert_eq!(
        light
            .iter()
            .map(|j| (
                j.id,
                j.server.as_str(),
                j.ring.as_deref(),
                j.state.as_str(),
                j.version,
                j.updated_at
            ))
            .collect::<Vec<_>>(),
        all.iter()
            .map(|j| (
                j.id,
                j.server.as_str(),
                j.ring.as_deref(),
                j.state.as_str(),
                j.version,
                j.updated_at
            ))
            .collect::<Vec<_>>()
    );
    assert!(store.job_summaries(other, c.id).await.unwrap().is_empty());
    // Only jobs of running cycles are open work.
    let open = store.open_jobs_for_server(T, "WEB01").await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].cycle, c.id);
    assert!(
        store
            .open_jobs_for_server(other, "web01")
            .await
            .unwrap()
            .is_empty()
    );
    let w = &open[0];
    assert_eq!((w.version, w.lease_token, w.lease_agent), (1, 0, None));
    // A lease: the token grows; a stale version writes nothing.
    let until = t("2026-12-08T21:10:00Z");
    let leased = store
        .update_job(
            T,
            w.id,
            1,
            "running",
            "{\"v\":2}",
            LeaseChange::Grant { agent: 7, until },
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            leased.version,
            leased.lease_token,
            leased.lease_agent,
            leased.lease_until
        ),
        (2, 1, Some(7), Some(until))
    );
    let stale = store
        .update_job(
            T,
            w.id,
            1,
            "running",
            "{}",
            LeaseChange::Grant { agent: 8, until },
            now,
        )
        .await
        .unwrap();
    assert!(stale.is_none());
    assert!(
        store
            .update_job(other, w.id, 2, "failed", "{}", LeaseChange::Release, now)
            .await
            .unwrap()
            .is_none()
    );
    let later = t("2026-12-08T21:20:00Z");
    let extended = store
        .update_job(
            T,
            w.id,
            2,
            "running",
            "{\"v\":3}",
            LeaseChange::Extend { until: later },
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (extended.lease_token, extended.lease_until),
        (1, Some(later))
    );
    // Lapsed leases, every tenant.
    assert!(store.lapsed_jobs(later).await.unwrap().is_empty());
    let lapsed = store.lapsed_jobs(t("2026-12-08T21:30:00Z")).await.unwrap();
    assert_eq!(lapsed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![w.id]);
    let regranted = store
        .update_job(
            T,
            w.id,
            3,
            "running",
            "{}",
            LeaseChange::Grant {
                agent: 7,
                until: later,
            },
            later,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(regranted.lease_token, 2);
    let done = store
        .update_job(
            T,
            w.id,
            4,
            "succeeded",
            "{\"done\":1}",
            LeaseChange::Release,
            later,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.state.as_str(), done.lease_agent, done.lease_until),
        ("succeeded", None, None)
    );
    assert_eq!(
        done.lease_token, 2,
        "the token survives the release (fencing)"
    );
    assert!(
        store
            .open_jobs_for_server(T, "web01")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.job(T, w.id).await.unwrap().unwrap().body,
        "{\"done\":1}"
    );
    assert!(store.job(other, w.id).await.unwrap().is_none());
}

/// Replicas leasing the same job at once: exactly one lease is granted.
pub async fn job_lease_concurrent<
    S: AccessStore + WorkflowStore + JobStore + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let now = t("2026-12-08T21:00:00Z");
    let c = store
        .create_cycle(T, "c", "running", "{}", now)
        .await
        .unwrap();
    store
        .create_jobs(T, c.id, &[nj("web01", "pilot")], now)
        .await
        .unwrap();
    let job = store.jobs(T, c.id).await.unwrap().remove(0);
    let mut tasks = Vec::new();
    for agent in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.update_job(
                T,
                job.id,
                job.version,
                "running",
                "{}",
                LeaseChange::Grant {
                    agent,
                    until: t("2026-12-08T21:10:00Z"),
                },
                now,
            )
            .await
            .unwrap()
            .is_some()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(store.job(T, job.id).await.unwrap().unwrap().lease_token, 1);
}

/// Every contract above as one test each, run by `$run` (an async fn taking a closure that
/// gets a fresh store).
macro_rules! contract_tests {
    ($run:path) => {
        #[tokio::test]
        async fn contract_jobs() {
            $run(|s| async move { $crate::contract::jobs(&s).await }).await
        }
        #[tokio::test]
        async fn contract_job_lease_concurrent() {
            $run(|s| async move { $crate::contract::job_lease_concurrent(s).await }).await
        }
        #[tokio::test]
        async fn contract_agents() {
            $run(|s| async move { $crate::contract::agents(&s).await }).await
        }
        #[tokio::test]
        async fn contract_enrol_concurrent() {
            $run(|s| async move { $crate::contract::enrol_concurrent(s).await }).await
        }
        #[tokio::test]
        async fn contract_workflow() {
            $run(|s| async move { $crate::contract::workflow(&s).await }).await
        }
        #[tokio::test]
        async fn contract_cycle_versions_concurrent() {
            $run(|s| async move { $crate::contract::cycle_versions_concurrent(s).await }).await
        }
        #[tokio::test]
        async fn contract_story() {
            $run(|s| async move { $crate::contract::story(&s).await }).await
        }
        #[tokio::test]
        async fn contract_tenants() {
            $run(|s| async move { $crate::contract::tenants(&s).await }).await
        }
        #[tokio::test]
        async fn contract_tenant_isolation() {
            $run(|s| async move { $crate::contract::tenant_isolation(&s).await }).await
        }
        #[tokio::test]
        async fn contract_names_fold_ascii_only() {
            $run(|s| async move { $crate::contract::names_fold_ascii_only(&s).await }).await
        }
        #[tokio::test]
        async fn contract_users() {
            $run(|s| async move { $crate::contract::users(&s).await }).await
        }
        #[tokio::test]
        async fn contract_tokens() {
            $run(|s| async move { $crate::contract::tokens(&s).await }).await
        }
        #[tokio::test]
        async fn contract_sessions() {
            $run(|s| async move { $crate::contract::sessions(&s).await }).await
        }
        #[tokio::test]
        async fn contract_audit() {
            $run(|s| async move { $crate::contract::audit(&s).await }).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn contract_audit_concurrent_appends_never_fork() {
            $run(|s| async move { $crate::contract::audit_concurrent(s).await }).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn contract_concurrent_merges_lose_nothing() {
            $run(|s| async move { $crate::contract::merge_concurrent(s).await }).await
        }
    };
}
pub(crate) use contract_tests;
