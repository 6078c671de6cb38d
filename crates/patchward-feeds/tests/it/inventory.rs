//! Inventory CSV import against the hand-written fixture.

use crate::fixture;
use patchward_core::inventory::{InternetExposure, Role};
use patchward_core::product::{Installation, ServerRelease};
use patchward_feeds::inventory_csv;

#[test]
fn servers_csv() {
    let r = inventory_csv::parse("servers.csv", &fixture("inventory/servers.csv")).unwrap();
    assert_eq!(r.servers.len(), 5);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("cost_center"));
    let dc = &r.servers[0];
    assert_eq!(dc.release, Some(ServerRelease::Server2022));
    assert_eq!(dc.build.unwrap().to_string(), "10.0.20348.2582");
    assert_eq!(dc.roles, vec![Role::DomainController, Role::Dns]);
    assert_eq!(
        dc.owner.as_ref().unwrap().email.as_deref(),
        Some("identity@example.com")
    );
    assert_eq!(dc.tier.0, 1);
    assert_eq!(dc.estimated_duration.unwrap().as_secs(), 5400);
    assert_eq!(dc.last_boot.unwrap().to_string(), "2026-11-01T03:00:00Z");
    let dc2 = &r.servers[1];
    assert_eq!(dc2.installation, Some(Installation::ServerCore));
    assert_eq!(
        dc2.roles,
        vec![Role::DomainController, Role::Dns, Role::Dhcp]
    );
    let sql = &r.servers[2];
    assert_eq!(sql.tags, vec!["pci", "sox"]);
    assert_eq!(sql.pending_reboot, vec!["Windows Update"]);
    assert_eq!(sql.exposure, InternetExposure::Limited);
    let web = &r.servers[3];
    assert_eq!(web.release, Some(ServerRelease::Server2025));
    assert!(web.hotpatch);
    assert_eq!(web.exposure, InternetExposure::Exposed);
    let old = &r.servers[4];
    assert_eq!(old.release, Some(ServerRelease::Server2012R2));
    assert_eq!(old.pending_reboot, vec!["pending"]);
    assert_eq!(old.tier.0, 4);
}

#[test]
fn all_or_nothing_with_many_errors() {
    let text = String::from_utf8(fixture("inventory/servers.csv")).unwrap();
    let bad = text
        .replace("10.0.20348.2582", "10.0.x")
        .replace(",4,test,", ",9,test,")
        .replace(
            "identity@example.com,1,production,Seattle",
            "identity-at-example,1,production,Seattle",
        );
    let e = inventory_csv::parse("servers.csv", bad.as_bytes()).unwrap_err();
    let got: Vec<(Option<u64>, Option<&str>)> = e
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(2), Some("build")),
            (Some(2), Some("owner_email")),
            (Some(6), Some("tier"))
        ]
    );
    let dup = format!("{text}dc-01,,Windows Server 2022 Standard,,,,,,,,,,,,,,,,,,,,\n");
    let e = inventory_csv::parse("servers.csv", dup.as_bytes()).unwrap_err();
    assert_eq!(
        e.errors[0].to_string(),
        "servers.csv:7: field \"name\": server \"dc-01\" is already listed on line 2"
    );
}

#[test]
fn export_round_trip() {
    let a = inventory_csv::parse("servers.csv", &fixture("inventory/servers.csv")).unwrap();
    let csv = inventory_csv::to_csv(&a.servers);
    let b = inventory_csv::parse("out.csv", csv.as_bytes()).unwrap();
    assert_eq!(a.servers, b.servers);
    assert!(b.warnings.is_empty());
}
