//! Every real host capture in fixtures/hosts: parsed into a server and assessed without panic,
//! with the product and decision basis Microsoft's data implies.

use crate::{fixtures, full_catalog};
use patchward_core::exposure::{Determination, ExposureIndex};
use patchward_core::inventory::BuildSource;
use patchward_core::product::ServerRelease;
use patchward_feeds::hosts::parse_capture;
use patchward_feeds::input::read_input;

#[test]
fn every_capture_parses_and_assesses() {
    let ix = ExposureIndex::new(full_catalog());
    let dir = fixtures().join("hosts/wesng-validation");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("srv_") {
            continue;
        }
        let bytes = read_input(&path).unwrap();
        let Ok(caps) = parse_capture(&name, &bytes) else {
            // The WUA optional-updates list is not an inventory capture; it must say so.
            assert!(name.contains("updates_optional"), "{name} should parse");
            continue;
        };
        for cap in caps {
            let Ok(server) = cap.to_server(&name) else {
                continue;
            };
            let e = ix.assess(&server, "2026-11-25".parse().unwrap());
            seen += 1;
            let expect = if name.starts_with("srv_2022") {
                Some(ServerRelease::Server2022)
            } else if name.starts_with("srv_2019") {
                Some(ServerRelease::Server2019)
            } else if name.starts_with("srv_2016") {
                Some(ServerRelease::Server2016)
            } else if name.starts_with("srv_2012r2") {
                Some(ServerRelease::Server2012R2)
            } else if name.starts_with("srv_2008r2") {
                Some(ServerRelease::Server2008R2)
            } else if name.starts_with("srv_2008") {
                Some(ServerRelease::Server2008)
            } else {
                None
            };
            if name.contains("qfe") {
                // wmic qfe names the host and KBs only.
                assert!(!server.installed_kbs.is_empty(), "{name}");
                continue;
            }
            assert_eq!(e.release, expect, "{name}");
            if expect.is_none() {
                assert!(
                    e.notes.iter().any(|n| n.contains("unrecognised")),
                    "{name}: {:?}",
                    e.notes
                );
                continue;
            }
            // systeminfo never shows the UBR; these old captures have no cumulative update
            // with a fixed build in the bundled months, so the revision stays unknown and KBs
            // decide, except where an installed update places the server in the cumulative
            // stream by month (the 2016 capture's KB4483229 supersedes December 2018's
            // KB4471321, a month without fixed builds).
            assert_ne!(e.build_source, BuildSource::Reported, "{name}");
            let placed = e
                .notes
                .iter()
                .any(|n| n.contains("place in the cumulative stream from"));
            assert_eq!(
                placed,
                name.starts_with("srv_2016"),
                "{name}: {:?}",
                e.notes
            );
            if matches!(
                expect,
                Some(
                    ServerRelease::Server2016
                        | ServerRelease::Server2019
                        | ServerRelease::Server2022
                )
            ) {
                assert!(
                    !e.open_cves.is_empty(),
                    "{name}: years-old server must have open CVEs"
                );
                assert!(
                    e.open_cves
                        .iter()
                        .all(|c| c.determined_by != Determination::Build || placed),
                    "{name}"
                );
            }
        }
    }
    assert!(seen >= 14, "assessed {seen} captures");
}

#[test]
fn server_2022_capture_facts() {
    let p = fixtures().join("hosts/wesng-validation/srv_2022_systeminfo.txt");
    let caps = parse_capture("srv_2022_systeminfo.txt", &read_input(&p).unwrap()).unwrap();
    let s = caps[0].to_server("srv_2022_systeminfo.txt").unwrap();
    assert_eq!(s.build.unwrap().to_string(), "10.0.20348");
    assert_eq!(s.installed_kbs.len(), 3);
    let e = ExposureIndex::new(full_catalog()).assess(&s, "2026-11-25".parse().unwrap());
    assert_eq!(e.product.as_deref(), Some("Windows Server 2022"));
    // Every missing update it is told to install is the newest 2022 LCU or a component update.
    assert!(
        e.missing_updates.iter().any(|m| m.kb.0 == 5094128),
        "{:?}",
        e.missing_updates.iter().map(|m| m.kb).collect::<Vec<_>>()
    );
}
