//! The Store contract: one story run against every implementation (SQLite in memory and in a
//! file now; PostgreSQL when it arrives).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jiff::Timestamp;
use patchward_core::catalog::{
    Affected, Classification, Fix, Kb, Product, Severity, Vulnerability,
};
use patchward_core::intel::{EpssScore, KevEntry};
use patchward_core::inventory::{
    Capacity, Dependency, DependencyTarget, DisruptionBudget, Estate, Ring, Server, Service,
};
use patchward_core::product::{Installation, ProductKind, ServerRelease};
use patchward_store::{DocumentImport, ImportOutcome, SqliteStore, Store, TenantId};

const T: TenantId = TenantId::DEFAULT;

fn t(s: &str) -> Timestamp {
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

async fn contract(store: &impl Store) {
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
    store.import_estate(T, &estate, now).await.unwrap();
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

#[tokio::test]
async fn sqlite_in_memory() {
    contract(&SqliteStore::memory().await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_file_survives_reopen() {
    let dir = std::env::temp_dir().join(format!("patchward-store-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("contract.db");
    contract(&SqliteStore::open(&path).await.unwrap()).await;
    // Reopening applies no migration twice and keeps everything.
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(again.counts(T).await.unwrap().servers, 2);
    assert_eq!(again.catalog().await.unwrap().fixes.len(), 1);
    assert_eq!(again.catalog().await.unwrap().vulnerabilities.len(), 2);
}

#[tokio::test]
async fn a_corrupt_estate_record_is_named_when_the_estate_is_loaded() {
    let dir = std::env::temp_dir().join(format!("patchward-store-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("corrupt.db");
    let store = SqliteStore::open(&path).await.unwrap();
    contract(&store).await;
    let good = store.estate(T).await.unwrap();
    assert!(!good.dependencies.is_empty() && !good.servers.is_empty());
    // Damage one dependency record behind the store's back (valid JSON, wrong shape).
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE estate_objects SET record = '{\"oops\": 1}' WHERE kind = 'dependency' AND rowid = (SELECT min(rowid) FROM estate_objects WHERE kind = 'dependency')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let err = store.estate(T).await.unwrap_err().to_string();
    assert!(err.contains("dependency"), "{err}");
    // Servers still load in bulk, and in name order.
    let servers = store.servers(T).await.unwrap();
    assert_eq!(
        servers.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        good.servers
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    );
}
