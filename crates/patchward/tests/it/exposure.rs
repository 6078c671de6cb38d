//! Exposure and priority rules on real MSRC months.

use crate::{catalog_of, full_catalog};
use jiff::civil::Date;
use patchward_core::build::OsBuild;
use patchward_core::catalog::{Classification, Kb};
use patchward_core::exposure::{Determination, ExposureIndex, ServerExposure};
use patchward_core::inventory::{BuildSource, InternetExposure, Role, Server, Tier};
use patchward_core::priority::{Decision, Exploitation, Policy, assess_server};
use patchward_core::product::{Installation, ServerRelease};

pub fn server(os: &str, build: &str, inst: Installation, kbs: &[u32]) -> Server {
    Server {
        name: "T".into(),
        os: os.into(),
        build: Some(build.parse().unwrap()),
        installation: Some(inst),
        installed_kbs: kbs.iter().map(|k| Kb(*k)).collect(),
        ..Server::default()
    }
}

fn day(s: &str) -> Date {
    s.parse().unwrap()
}

fn open(e: &ServerExposure, cve: &str) -> bool {
    e.open_cves.iter().any(|c| &*c.cve == cve)
}

#[test]
fn july_2024_build_comparison_per_product() {
    let c = catalog_of(&["2024-Jun", "2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2024-08-01");
    for (os, inst, below, fixed) in [
        (
            "Windows Server 2022 Datacenter",
            Installation::Desktop,
            "10.0.20348.2527",
            "10.0.20348.2582",
        ),
        (
            "Windows Server 2022 Standard",
            Installation::ServerCore,
            "10.0.20348.2527",
            "10.0.20348.2582",
        ),
        (
            "Windows Server 2019 Standard",
            Installation::Desktop,
            "10.0.17763.5936",
            "10.0.17763.6054",
        ),
        (
            "Windows Server 2016 Standard",
            Installation::Desktop,
            "10.0.14393.7070",
            "10.0.14393.7159",
        ),
        (
            "Windows Server 2022 Datacenter",
            Installation::ServerCore,
            "10.0.25398.950",
            "10.0.25398.1009",
        ),
    ] {
        let e = ix.assess(&server(os, below, inst, &[]), at);
        assert!(
            open(&e, "CVE-2024-38077"),
            "{os} {inst} at {below} must have CVE-2024-38077 open"
        );
        assert_eq!(e.build_source, BuildSource::Reported);
        let c38077 = e
            .open_cves
            .iter()
            .find(|c| &*c.cve == "CVE-2024-38077")
            .unwrap();
        assert_eq!(c38077.determined_by, Determination::Build);
        let e = ix.assess(&server(os, fixed, inst, &[]), at);
        assert!(!open(&e, "CVE-2024-38077"), "{os} at {fixed} is patched");
        // MSRC later added newer fixes to some July CVEs (e.g. CVE-2024-30098 fixed for 2022
        // only in October 2025): whatever stays open on the OS is fixed only by those later
        // updates. (In-box .NET has its own updates; none is installed here.)
        for c in e.open_cves.iter().filter(|c| !c.product_id.contains('-')) {
            assert!(
                c.fixed_by.iter().all(|k| k.0 > 5041000),
                "{os} at {fixed}: {} open with {:?}",
                c.cve,
                c.fixed_by
            );
            assert_eq!(c.determined_by, Determination::Build);
        }
    }
    // 23H2 Edition is a separate build line: a 25398 build is its product, not Server 2022.
    let e = ix.assess(
        &server(
            "Windows Server 2022 Datacenter",
            "10.0.25398.950",
            Installation::ServerCore,
            &[],
        ),
        at,
    );
    assert_eq!(e.release, Some(ServerRelease::Server2022_23H2));
    assert!(e.product.as_deref().unwrap().contains("23H2"));
    let fix = &e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2024-38077")
        .unwrap()
        .fixed_by;
    assert_eq!(&fix[..], &[Kb(5040438)]);
}

#[test]
fn hyperv_cve_2024_38080_only_on_2022() {
    let c = catalog_of(&["2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2024-08-01");
    let e = ix.assess(
        &server(
            "Windows Server 2022",
            "10.0.20348.2500",
            Installation::Desktop,
            &[],
        ),
        at,
    );
    let h = e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2024-38080")
        .unwrap();
    assert!(h.exploited && h.kev);
    assert_eq!(&h.fixed_by[..], &[Kb(5040437)]);
    // The update to install is the newest Server 2022 cumulative update in the data (the July
    // document was later edited to list October 2025 fixes), which supersedes July's.
    let newest = c
        .fixes
        .iter()
        .filter(|f| {
            f.product_id == "11923" && f.classification == Classification::SecurityCumulativeUpdate
        })
        .filter_map(|f| f.fixed_build.map(|b| (b, f.kb)))
        .max()
        .unwrap();
    assert_eq!(h.install, newest.1);
    let e = ix.assess(
        &server(
            "Windows Server 2019",
            "10.0.17763.5900",
            Installation::Desktop,
            &[],
        ),
        at,
    );
    assert!(!open(&e, "CVE-2024-38080"));
    assert!(open(&e, "CVE-2024-38112"));
}

#[test]
fn one_newer_cumulative_update_satisfies_all_older_ones() {
    let c = full_catalog();
    let ix = ExposureIndex::new(c.clone());
    let at = day("2026-11-25");
    // Server 2022 at the June 2026 LCU build: nothing open from 2024-01 .. 2026-07 in the
    // OS stream, although only the newest KB is installed.
    let e = ix.assess(
        &server(
            "Windows Server 2022",
            "10.0.20348.5256",
            Installation::Desktop,
            &[5094128],
        ),
        at,
    );
    let from_stream: Vec<_> = e
        .open_cves
        .iter()
        .filter(|c| c.determined_by == Determination::Build)
        .map(|c| &c.cve)
        .collect();
    assert!(from_stream.is_empty(), "{from_stream:?}");
    // What stays open are standalone updates the cumulative update does not contain (WinRE /
    // Safe OS packages with their own low builds), decided by KB: e.g. CVE-2024-38163, fixed
    // only by the WinRE update KB5042322 (build 10.0.20348.2201).
    let winre = e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2024-38163")
        .expect("WinRE CVE open until its update is installed");
    assert_eq!(&winre.fixed_by[..], &[Kb(5042322)]);
    assert_ne!(
        winre.install,
        Kb(5094128),
        "the cumulative update does not contain it"
    );
    for kb in [5042322, winre.install.0] {
        let with = ix.assess(
            &server(
                "Windows Server 2022",
                "10.0.20348.5256",
                Installation::Desktop,
                &[5094128, kb],
            ),
            at,
        );
        assert!(
            !open(&with, "CVE-2024-38163"),
            "installing KB{kb} closes it"
        );
    }
    // One month behind: only that month's CVEs (and nothing older) are open, all closed by the
    // one newest cumulative update.
    let e = ix.assess(
        &server(
            "Windows Server 2022",
            "10.0.20348.5139",
            Installation::Desktop,
            &[5087545],
        ),
        at,
    );
    assert!(!e.open_cves.is_empty());
    let stream: Vec<_> = e
        .open_cves
        .iter()
        .filter(|c| c.determined_by == Determination::Build)
        .collect();
    assert!(!stream.is_empty());
    assert!(
        stream.iter().all(|c| c.install == Kb(5094128)),
        "one cumulative update closes the whole stream"
    );
    let lcu = e
        .missing_updates
        .iter()
        .find(|m| m.kb == Kb(5094128))
        .unwrap();
    assert_eq!(lcu.classification, Classification::SecurityCumulativeUpdate);
    assert_eq!(lcu.closes.len(), stream.len());
    // Anything else missing is a standalone update decided by KB, never an older cumulative one.
    assert!(
        e.open_cves
            .iter()
            .filter(|c| c.install != Kb(5094128))
            .all(|c| c.determined_by == Determination::Kb)
    );
}

#[test]
fn every_release_at_its_newest_build_has_no_open_cve_from_the_cumulative_stream() {
    let c = full_catalog();
    let ix = ExposureIndex::new(c.clone());
    let mut checked = 0;
    for p in &c.products {
        let patchward_core::product::ProductKind::Os {
            release,
            installation,
        } = p.kind
        else {
            continue;
        };
        let newest = c
            .fixes
            .iter()
            .filter(|f| {
                f.product_id == p.id
                    && f.classification.is_os_cumulative()
                    && f.classification != Classification::Hotpatch
            })
            .filter_map(|f| f.fixed_build.map(|b| (b, f.kb)))
            .max();
        let Some((b, kb)) = newest else { continue };
        let s = Server {
            name: p.name.clone(),
            os: release.name().into(),
            build: Some(b),
            installation: Some(installation),
            installed_kbs: [kb].into_iter().collect(),
            ..Server::default()
        };
        let e = ix.assess(&s, day("2026-11-25"));
        let from_stream: Vec<_> = e
            .open_cves
            .iter()
            .filter(|c| c.determined_by == Determination::Build)
            .map(|c| &c.cve)
            .collect();
        assert!(from_stream.is_empty(), "{} at {b}: {from_stream:?}", p.name);
        checked += 1;
    }
    assert!(checked >= 10, "checked {checked} products");
}

#[test]
fn unknown_revision_is_inferred_from_the_newest_installed_cumulative_update() {
    let c = catalog_of(&["2024-Jun", "2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2024-08-01");
    let mut s = server(
        "Windows Server 2022 Datacenter",
        "10.0.20348",
        Installation::Desktop,
        &[5039227, 5040437],
    );
    let e = ix.assess(&s, at);
    assert_eq!(e.build_source, BuildSource::InferredFromKb);
    assert_eq!(e.build.unwrap().to_string(), "10.0.20348.2582");
    assert!(!open(&e, "CVE-2024-38077") && !open(&e, "CVE-2024-38080"));
    assert!(
        e.open_cves
            .iter()
            .all(|c| !c.fixed_by.contains(&Kb(5040437)))
    );
    s.installed_kbs = [Kb(5039227)].into_iter().collect();
    let e = ix.assess(&s, at);
    assert_eq!(e.build_source, BuildSource::InferredFromKb);
    assert!(open(&e, "CVE-2024-38077"));
    // Nothing recognisable installed: the revision stays unknown and KBs decide.
    s.installed_kbs = [Kb(1234567)].into_iter().collect();
    let e = ix.assess(&s, at);
    assert_eq!(e.build_source, BuildSource::Unknown);
    assert!(
        e.open_cves
            .iter()
            .all(|c| c.determined_by == Determination::Kb)
    );
    assert!(open(&e, "CVE-2024-38077"));
}

#[test]
fn supersedence_closes_older_fixes_without_a_build() {
    let c = catalog_of(&["2024-Jun", "2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    // No build at all, only the caption and the July LCU: June's CVEs are closed through
    // KB5040437 superseding KB5039227.
    let s = Server {
        name: "X".into(),
        os: "Microsoft Windows Server 2022 Standard".into(),
        installed_kbs: [Kb(5040437)].into_iter().collect(),
        ..Server::default()
    };
    let e = ix.assess(&s, day("2024-08-01"));
    assert_eq!(e.release, Some(ServerRelease::Server2022));
    assert!(
        e.open_cves
            .iter()
            .all(|c| !c.fixed_by.contains(&Kb(5039227)) && !c.fixed_by.contains(&Kb(5040437))),
        "{:?}",
        e.open_cves
            .iter()
            .map(|c| (&c.cve, &c.fixed_by))
            .collect::<Vec<_>>()
    );
}

#[test]
fn hotpatch_fixes_count_only_for_enrolled_servers() {
    let c = catalog_of(&["2025-May", "2025-Jun"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2025-07-01");
    // Between the hotpatch build (3745) and the LCU build (3807).
    let mut s = server(
        "Windows Server 2022 Datacenter: Azure Edition",
        "10.0.20348.3750",
        Installation::Desktop,
        &[],
    );
    let e = ix.assess(&s, at);
    assert!(
        open(&e, "CVE-2025-33053"),
        "not enrolled: only the LCU build counts"
    );
    let f = &e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2025-33053")
        .unwrap()
        .fixed_by;
    assert!(
        !f.contains(&Kb(5060525)),
        "hotpatch KB is not offered to a non-enrolled server"
    );
    s.hotpatch = true;
    let e = ix.assess(&s, at);
    assert!(
        !open(&e, "CVE-2025-33053"),
        "enrolled at the hotpatch build: fixed"
    );
    s.build = Some("10.0.20348.3740".parse().unwrap());
    assert!(open(&ix.assess(&s, at), "CVE-2025-33053"));
}

#[test]
fn kev_overrides_msrc_and_drives_act_with_kev_due_date() {
    let c = full_catalog();
    let ix = ExposureIndex::new(c.clone());
    let mut s = server(
        "Windows Server 2022 Datacenter",
        "10.0.20348.3692",
        Installation::Desktop,
        &[],
    );
    s.tier = Tier(1);
    s.roles = vec![Role::DomainController];
    s.exposure = InternetExposure::Internal;
    let e = assess_server(&ix, &s, &Policy::default(), day("2025-11-01"));
    let c = e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2025-33073")
        .unwrap();
    assert!(!c.exploited, "MSRC says Exploited:No");
    assert!(c.kev);
    let p = c.priority.as_ref().unwrap();
    assert_eq!(p.exploitation, Exploitation::Active);
    assert_eq!(p.decision, Decision::Act);
    assert!(p.reasons(c).iter().any(|r| r.contains("KEV")));
    // Active only through KEV (added 2025-10-20): the Act clock starts then, not at the June
    // 2025 fix, so it is due three days after the KEV listing — before CISA's 2025-11-10.
    assert_eq!(c.kev_added, Some(day("2025-10-20")));
    assert_eq!(p.due, day("2025-10-23"));
    assert!(
        p.reasons(c).iter().any(|r| r.contains("added to KEV")),
        "{:?}",
        p.reasons(c)
    );
    assert!(p.overdue);
    // The same CVE on a tier-4 internal print server: still active exploitation, lower mission.
    s.tier = Tier(4);
    s.roles = vec![Role::Print];
    let e = assess_server(&ix, &s, &Policy::default(), day("2025-11-01"));
    let p = e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2025-33073")
        .unwrap()
        .priority
        .clone()
        .unwrap();
    assert!(p.decision < Decision::Act);
}

#[test]
fn kev_due_date_wins_when_earlier_than_the_sla() {
    let c = full_catalog();
    let ix = ExposureIndex::new(c.clone());
    let mut policy = Policy::default();
    policy.sla_days.act = 365;
    policy.sla_days.attend = 365;
    policy.sla_days.track_star = 365;
    policy.sla_days.track = 365;
    let s = server(
        "Windows Server 2022 Datacenter",
        "10.0.20348.3692",
        Installation::Desktop,
        &[],
    );
    let e = assess_server(&ix, &s, &policy, day("2025-07-01"));
    let c = e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2025-33053")
        .unwrap();
    let p = c.priority.as_ref().unwrap();
    assert_eq!(Some(p.due), c.kev_due);
    assert!(
        p.reasons(c)
            .iter()
            .any(|r| r.contains("KEV due date is earlier"))
    );
}

#[test]
fn support_status_from_the_lifecycle_table() {
    let c = catalog_of(&["2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    let s = server(
        "Windows Server 2012 R2 Standard",
        "6.3.9600.22074",
        Installation::Desktop,
        &[],
    );
    let e = ix.assess(&s, day("2025-01-01"));
    assert_eq!(
        e.support.as_ref().unwrap().phase,
        patchward_core::intel::SupportPhase::Esu
    );
    let e = ix.assess(&s, day("2026-11-25"));
    assert_eq!(
        e.support.as_ref().unwrap().phase,
        patchward_core::intel::SupportPhase::Unsupported
    );
    assert!(e.notes.iter().any(|n| n.contains("unsupported")));
    let s = server(
        "Windows Server 2022 Datacenter",
        "10.0.20348.2582",
        Installation::Desktop,
        &[],
    );
    assert_eq!(
        ix.assess(&s, day("2026-11-01")).support.unwrap().phase,
        patchward_core::intel::SupportPhase::Extended
    );
    assert_eq!(
        ix.assess(&s, day("2025-01-01")).support.unwrap().phase,
        patchward_core::intel::SupportPhase::Mainstream
    );
}

#[test]
fn unrecognised_os_is_a_finding_not_a_crash() {
    let c = catalog_of(&["2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    let s = Server {
        name: "OLD".into(),
        os: "Microsoft(R) Windows(R) Server 2003, Standard Edition".into(),
        ..Server::default()
    };
    let e = ix.assess(&s, day("2026-01-01"));
    assert!(e.open_cves.is_empty());
    assert!(e.notes[0].contains("unrecognised OS"));
    let _: Option<OsBuild> = e.build;
}

#[test]
fn months_without_fixed_builds_are_decided_by_the_cumulative_stream() {
    // MSRC published no FixedBuild before mid-2021. A server on a 2024 cumulative update has
    // every 2020/2021 cumulative fix (and the servicing stack update it required) — these
    // must not show as open just because the old supersedence chain is incomplete.
    let c = catalog_of(&["2020-Jul", "2021-Jan", "2024-Jun", "2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2024-08-01");
    let patched = ix.assess(
        &server(
            "Windows Server 2019 Standard",
            "10.0.17763.6054",
            Installation::Desktop,
            &[5040430],
        ),
        at,
    );
    for cve in ["CVE-2021-1658", "CVE-2020-1346"] {
        assert!(
            !open(&patched, cve),
            "{cve} is fixed by the July 2024 cumulative update"
        );
    }
    // On the July 2020 cumulative update, January 2021's CVEs are open, decided by the stream,
    // and remediated by the newest cumulative update; July 2020's are closed.
    let jul2020 = server(
        "Windows Server 2019 Standard",
        "10.0.17763",
        Installation::Desktop,
        &[4558998, 4558997],
    );
    let e = ix.assess(&jul2020, at);
    let c1658 = e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2021-1658")
        .expect("CVE-2021-1658 open");
    assert_eq!(c1658.determined_by, Determination::Build);
    assert_eq!(&c1658.fixed_by[..], &[Kb(4598230)]);
    assert!(!open(&e, "CVE-2020-1346"));
    // Nothing known at all about the server's updates: KBs decide, and everything is open.
    let blank = server(
        "Windows Server 2019 Standard",
        "10.0.17763",
        Installation::Desktop,
        &[],
    );
    let e = ix.assess(&blank, at);
    let c1658 = e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2021-1658")
        .unwrap();
    assert_eq!(c1658.determined_by, Determination::Kb);
}

#[test]
fn standalone_security_updates_do_not_place_a_server_in_the_stream() {
    // KB5012170 (Secure Boot revocation list) is labelled "Security Update" with a fixed build
    // of 10.0.17763.3284 and re-listed in the 2020-Jul document. It is not a cumulative update:
    // installing it must not move a July 2020 server past later months' fixes.
    let c = catalog_of(&["2020-Jul", "2021-Jan", "2022-May", "2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2024-08-01");
    let base = server(
        "Windows Server 2019 Standard",
        "10.0.17763",
        Installation::Desktop,
        &[4558998],
    );
    let with_dbx = server(
        "Windows Server 2019 Standard",
        "10.0.17763",
        Installation::Desktop,
        &[4558998, 5012170],
    );
    let (a, b) = (ix.assess(&base, at), ix.assess(&with_dbx, at));
    assert_ne!(
        b.build.and_then(|x| x.ubr),
        Some(3284),
        "no build inferred from the revocation list"
    );
    for cve in ["CVE-2021-1678", "CVE-2022-29126"] {
        assert!(
            open(&a, cve) && open(&b, cve),
            "{cve} stays open on a July 2020 server"
        );
    }
    assert!(
        !open(&b, "ADV200011"),
        "the update itself closes what it fixes"
    );
}

#[test]
fn winre_and_safe_os_builds_do_not_close_cumulative_cves() {
    // WinRE / Safe OS packages carry their own low builds; a server above that number has not
    // installed them (CVE-2024-38163 is fixed only by KB5042322, build 10.0.20348.2201).
    let c = full_catalog();
    let ix = ExposureIndex::new(c.clone());
    let s = server(
        "Windows Server 2022 Datacenter",
        "10.0.20348.2227",
        Installation::Desktop,
        &[5034129],
    );
    let e = ix.assess(&s, day("2024-09-01"));
    let w = e
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2024-38163")
        .expect("open");
    assert_eq!(w.determined_by, Determination::Kb);
}

#[test]
fn enrolled_servers_are_offered_the_hotpatch_in_a_hotpatch_month() {
    let c = catalog_of(&["2025-May", "2025-Jun"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2025-07-01");
    let mut s = server(
        "Windows Server 2022 Datacenter: Azure Edition",
        "10.0.20348.3692",
        Installation::Desktop,
        &[],
    );
    let lcu = ix.assess(&s, at);
    let c33053 = lcu
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2025-33053")
        .unwrap();
    assert_eq!(
        c33053.install,
        Kb(5060526),
        "not enrolled: the June cumulative update (reboot)"
    );
    s.hotpatch = true;
    let hot = ix.assess(&s, at);
    let c33053 = hot
        .open_cves
        .iter()
        .find(|c| &*c.cve == "CVE-2025-33053")
        .unwrap();
    assert_eq!(
        c33053.install,
        Kb(5060525),
        "enrolled: the June hotpatch (no reboot)"
    );
    assert!(
        hot.missing_updates
            .iter()
            .any(|m| m.kb == Kb(5060525) && m.classification == Classification::Hotpatch)
    );
}

fn find<'a>(e: &'a ServerExposure, cve: &str) -> &'a patchward_core::exposure::OpenCve {
    e.open_cves
        .iter()
        .find(|c| &*c.cve == cve)
        .unwrap_or_else(|| panic!("{cve} not open on {}: {:?}", e.name, e.notes))
}

fn open_ids(e: &ServerExposure) -> std::collections::BTreeSet<String> {
    e.open_cves.iter().map(|c| c.cve.to_string()).collect()
}

/// No CVE appears twice among the .NET findings of one server (one line per server).
fn no_dotnet_duplicates(e: &ServerExposure) {
    let mut seen = std::collections::BTreeSet::new();
    for c in &e.open_cves {
        if c.fixed_by.is_empty() || !c.product_id.contains('-') {
            continue; // OS findings; components have compound ids ("11676-11923")
        }
        assert!(
            seen.insert((c.cve.to_string(), c.product_id.to_string()))
                && seen.iter().filter(|(id, _)| id.as_str() == &*c.cve).count() == 1,
            "{} twice on {}",
            c.cve,
            e.name
        );
    }
}

#[test]
fn in_box_dotnet_on_2022_is_open_without_a_dotnet_update_and_closed_by_it() {
    let c = catalog_of(&["2024-Jan", "2024-Feb", "2024-Mar"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2024-04-01");
    // March 2024 OS update (KB5035857, 20348.2340), no .NET update installed.
    let bare = ix.assess(
        &server(
            "Windows Server 2022 Standard",
            "10.0.20348.2340",
            Installation::Desktop,
            &[5035857],
        ),
        at,
    );
    let c29059 = find(&bare, "CVE-2024-29059");
    assert!(c29059.kev, "CVE-2024-29059 is in KEV");
    assert!(
        c29059.fixed_by.contains(&Kb(5034272)),
        "{:?}",
        c29059.fixed_by
    );
    assert_eq!(c29059.determined_by, Determination::Kb);
    assert_eq!(c29059.install, Kb(5034272));
    assert!(bare.notes.iter().any(|n| n.contains(".NET Framework 4.8")));
    no_dotnet_duplicates(&bare);
    let dotnet = bare
        .missing_updates
        .iter()
        .find(|u| u.kb == Kb(5034272))
        .unwrap();
    assert_eq!(dotnet.classification, Classification::DotNet);
    assert!(
        dotnet.title.contains(".NET Framework 3.5 AND 4.8"),
        "{}",
        dotnet.title
    );

    // Installing the combined 4.8 / 4.8.1 update closes it and opens nothing.
    let patched = ix.assess(
        &server(
            "Windows Server 2022 Standard",
            "10.0.20348.2340",
            Installation::Desktop,
            &[5035857, 5034272],
        ),
        at,
    );
    assert!(!open(&patched, "CVE-2024-29059"));
    assert!(open_ids(&patched).is_subset(&open_ids(&bare)));
    no_dotnet_duplicates(&patched);

    // An umbrella .NET KB that MSRC does not list is not "nothing installed".
    let umbrella = ix.assess(
        &server(
            "Windows Server 2022 Standard",
            "10.0.20348.2340",
            Installation::Desktop,
            &[5035857, 5041948],
        ),
        at,
    );
    assert_eq!(
        find(&umbrella, "CVE-2024-29059").determined_by,
        Determination::KbUnlisted
    );
    assert!(
        umbrella
            .notes
            .iter()
            .any(|n| n.contains("KB5041948") && n.contains("not listed")),
        "{:?}",
        umbrella.notes
    );
    // OS findings stay decided by the build.
    assert!(
        umbrella
            .open_cves
            .iter()
            .filter(|c| !c.product_id.contains('-'))
            .all(|c| c.determined_by == Determination::Build)
    );
}

#[test]
fn in_box_dotnet_on_2019_is_the_472_line() {
    let c = catalog_of(&["2024-Jan", "2024-Feb", "2024-Mar"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2024-04-01");
    let bare = ix.assess(
        &server(
            "Windows Server 2019 Standard",
            "10.0.17763.5576",
            Installation::Desktop,
            &[],
        ),
        at,
    );
    let c29059 = find(&bare, "CVE-2024-29059");
    assert_eq!(c29059.install, Kb(5034273));
    assert!(
        bare.notes.iter().any(|n| n.contains("4.7.2")),
        "{:?}",
        bare.notes
    );
    no_dotnet_duplicates(&bare);
    let patched = ix.assess(
        &server(
            "Windows Server 2019 Standard",
            "10.0.17763.5576",
            Installation::Desktop,
            &[5034273],
        ),
        at,
    );
    assert!(!open(&patched, "CVE-2024-29059"));
    assert!(open_ids(&patched).is_subset(&open_ids(&bare)));
}

#[test]
fn evidence_of_dotnet_48_on_2016_moves_the_server_to_that_line_across_renames() {
    // 2016 ships 4.6.2, serviced by the OS cumulative update. KB5033910 is an update of
    // "4.8 on Windows Server 2016" only; in April 2024 MSRC lists the line as "3.5 AND 4.8 on
    // Windows Server 2016" under a new product id.
    let c = catalog_of(&["2024-Jan", "2024-Feb", "2024-Mar", "2024-Apr"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2024-05-01");
    let os = "Windows Server 2016 Standard";
    let inbox = ix.assess(
        &server(os, "10.0.14393.6614", Installation::Desktop, &[5034119]),
        at,
    );
    let c21409 = find(&inbox, "CVE-2024-21409");
    assert_eq!(c21409.determined_by, Determination::Build);
    assert!(!open(&inbox, "CVE-2024-29059"), "closed by the January LCU");
    assert!(inbox.notes.iter().any(|n| n.contains("4.6.2")));
    no_dotnet_duplicates(&inbox);

    let on48 = ix.assess(
        &server(
            os,
            "10.0.14393.6614",
            Installation::Desktop,
            &[5034119, 5033910],
        ),
        at,
    );
    assert!(
        on48.notes
            .iter()
            .any(|n| n.contains("4.8 assessed") && n.contains("KB5033910")),
        "{:?}",
        on48.notes
    );
    let c21409 = find(&on48, "CVE-2024-21409");
    assert_eq!(&c21409.fixed_by[..], &[Kb(5036609)]);
    assert!(!open(&on48, "CVE-2024-29059"), "KB5033910 fixes it on 4.8");
    no_dotnet_duplicates(&on48);

    let patched = ix.assess(
        &server(
            os,
            "10.0.14393.6614",
            Installation::Desktop,
            &[5034119, 5033910, 5036609],
        ),
        at,
    );
    assert!(!open(&patched, "CVE-2024-21409"));
    assert!(open_ids(&patched).is_subset(&open_ids(&on48)));
}

#[test]
fn an_out_of_band_update_listed_under_a_component_places_the_server_in_the_stream() {
    // KB4483229 (December 2018, out of band) is listed only under IE 11 on Server 2016 and
    // supersedes that month's OS update KB4471321. CVE-2016-7255 (KEV) was fixed in November
    // 2016, a month without fixed builds.
    let c = catalog_of(&["2016-Nov", "2018-Dec"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2019-01-15");
    let host = |kbs: &[u32]| Server {
        name: "H".into(),
        os: "Microsoft Windows Server 2016 Datacenter".into(),
        build: Some("10.0.14393".parse().unwrap()),
        installation: Some(Installation::Desktop),
        installed_kbs: kbs.iter().map(|k| Kb(*k)).collect(),
        ..Server::default()
    };
    let none = ix.assess(&host(&[]), at);
    assert!(open(&none, "CVE-2016-7255"));
    let dec = ix.assess(&host(&[4471321]), at);
    assert!(!open(&dec, "CVE-2016-7255"));
    let oob = ix.assess(&host(&[4483229]), at);
    assert!(!open(&oob, "CVE-2016-7255"), "{:?}", oob.notes);
    assert_eq!(
        open_ids(&oob),
        open_ids(&dec)
            .intersection(&open_ids(&oob))
            .cloned()
            .collect()
    );
    assert!(
        oob.notes.iter().any(|n| n.contains("KB4471321")),
        "the inferred place names the OS update: {:?}",
        oob.notes
    );
}

#[test]
fn standalone_packages_are_not_called_cumulative_and_os_updates_are_titled_for_the_os() {
    // KB5012170, the Secure Boot revocation list (DBX), is labelled "Security Update" by MSRC.
    let c = catalog_of(&["2020-Jul", "2021-Jan", "2022-May", "2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    let e = ix.assess(
        &server(
            "Windows Server 2019 Standard",
            "10.0.17763",
            Installation::Desktop,
            &[4558998],
        ),
        day("2024-08-01"),
    );
    let dbx = e
        .missing_updates
        .iter()
        .find(|u| u.kb == Kb(5012170))
        .unwrap_or_else(|| {
            panic!(
                "{:?}",
                e.missing_updates.iter().map(|u| u.kb).collect::<Vec<_>>()
            )
        });
    assert_eq!(dbx.classification, Classification::Standalone);
    assert!(!dbx.title.contains("Cumulative"), "{}", dbx.title);

    // KB5066836 is the October 2025 OS cumulative update of Server 2016, even where MSRC
    // lists it as the fix of in-box .NET (CVE-2024-38081's .NET row names KB5040448, the
    // Windows 10 1507 update, with a build on that line).
    let ix = ExposureIndex::new(full_catalog());
    let e = ix.assess(
        &Server {
            name: "MYSERVER".into(),
            os: "Microsoft Windows Server 2016 Datacenter".into(),
            build: Some("10.0.14393".parse().unwrap()),
            installation: Some(Installation::Desktop),
            installed_kbs: [4483229].into_iter().map(Kb).collect(),
            ..Server::default()
        },
        day("2026-07-10"),
    );
    let newest = e
        .missing_updates
        .iter()
        .max_by_key(|u| u.closes.len())
        .unwrap();
    assert_eq!(
        newest.classification,
        Classification::SecurityCumulativeUpdate
    );
    assert!(
        newest
            .title
            .contains("Cumulative Update for Windows Server 2016"),
        "{}",
        newest.title
    );
    // The in-box .NET CVE is fixed by the newest OS cumulative update, not by an older one
    // the newest replaces (KB5066836), and no OS update is titled as a .NET update.
    let c38081 = find(&e, "CVE-2024-38081");
    assert_eq!(c38081.install, newest.kb);
    assert!(
        e.missing_updates.iter().all(|u| u.kb != Kb(5066836)),
        "{:?}",
        e.missing_updates
            .iter()
            .map(|u| (u.kb, &u.title))
            .collect::<Vec<_>>()
    );
    for u in &e.missing_updates {
        assert!(
            !(u.title.contains(".NET") && u.title.contains("Cumulative Update for Windows")),
            "{}",
            u.title
        );
    }
    // One finding per CVE and remedy (IE 11 and EdgeHTML list the same CVEs with one fix).
    let mut seen = std::collections::BTreeSet::new();
    for c in &e.open_cves {
        assert!(
            seen.insert((c.cve.to_string(), c.install)),
            "{} twice",
            c.cve
        );
    }
    // .NET 3.5 alone is an optional feature: nothing installed shows it.
    assert!(
        e.open_cves
            .iter()
            .all(|c| !c.product_id.starts_with("2472-")),
        ".NET 3.5 assessed without evidence"
    );
}

#[test]
fn an_out_of_band_fix_is_not_closed_by_its_months_main_update() {
    // CVE-2018-8653 (KEV, IE 11) is fixed only by the out-of-band KB4483229 (2016) and
    // KB4483235 (2019), released after December 2018's cumulative updates KB4471321 and
    // KB4471332, which they supersede. A server with the December update is still exposed.
    let c = catalog_of(&["2016-Nov", "2018-Dec"]);
    let ix = ExposureIndex::new(c.clone());
    let at = day("2019-01-15");
    let host = |os: &str, build: &str, kbs: &[u32]| Server {
        name: "H".into(),
        os: os.into(),
        build: Some(build.parse().unwrap()),
        installation: Some(Installation::Desktop),
        installed_kbs: kbs.iter().map(|k| Kb(*k)).collect(),
        ..Server::default()
    };
    let s16 = "Microsoft Windows Server 2016 Datacenter";
    let dec = ix.assess(&host(s16, "10.0.14393", &[4471321]), at);
    let c8653 = find(&dec, "CVE-2018-8653");
    assert!(c8653.kev);
    assert_eq!(&c8653.fixed_by[..], &[Kb(4483229)]);
    let with_build = ix.assess(&host(s16, "10.0.14393.2665", &[4471321]), at);
    assert!(open(&with_build, "CVE-2018-8653"));
    let oob = ix.assess(&host(s16, "10.0.14393", &[4483229]), at);
    assert!(!open(&oob, "CVE-2018-8653"));
    let s19 = "Microsoft Windows Server 2019 Datacenter";
    assert!(open(
        &ix.assess(&host(s19, "10.0.17763.194", &[4471332]), at),
        "CVE-2018-8653"
    ));
    assert!(!open(
        &ix.assess(&host(s19, "10.0.17763", &[4483235]), at),
        "CVE-2018-8653"
    ));
}

#[test]
fn a_bare_kb_list_is_assessed_as_the_release_its_cumulative_updates_belong_to() {
    let c = catalog_of(&["2024-Jun", "2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    // Get-HotFix shows no OS: KB5039227 is June 2024's Server 2022 cumulative update.
    let e = ix.assess(
        &Server {
            name: "GHF".into(),
            installed_kbs: [Kb(5039227)].into_iter().collect(),
            ..Server::default()
        },
        day("2024-08-01"),
    );
    assert_eq!(e.release, Some(ServerRelease::Server2022), "{:?}", e.notes);
    assert!(open(&e, "CVE-2024-38077"), "July's fix is missing");
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("inferred from its installed"))
    );
    // KBs of two releases: nothing is guessed.
    let e = ix.assess(
        &Server {
            name: "MIX".into(),
            installed_kbs: [Kb(5039227), Kb(5039217)].into_iter().collect(),
            ..Server::default()
        },
        day("2024-08-01"),
    );
    assert_eq!(e.release, None);
    assert!(e.open_cves.is_empty());
}

#[test]
fn the_kb_only_note_counts_what_kbs_decided() {
    let c = catalog_of(&["2024-Jun", "2024-Jul"]);
    let ix = ExposureIndex::new(c.clone());
    let e = ix.assess(
        &Server {
            name: "K".into(),
            os: "Microsoft Windows Server 2022 Standard".into(),
            build: Some("10.0.20348".parse().unwrap()),
            installation: Some(Installation::Desktop),
            ..Server::default()
        },
        day("2024-08-01"),
    );
    let by_kb = e
        .open_cves
        .iter()
        .filter(|c| c.determined_by != Determination::Build)
        .count();
    let note = e
        .notes
        .iter()
        .find(|n| n.contains("decided by installed KBs only"))
        .unwrap();
    assert!(
        note.contains(&format!("{by_kb} of {} open CVEs", e.open_cves.len())),
        "{note}"
    );
}

#[test]
fn fleet_summary_counts_what_the_full_assessment_finds() {
    use patchward_core::priority::{PriorityCache, summarise_server};
    let ix = ExposureIndex::new(full_catalog());
    let policy = Policy::default();
    let at = day("2026-08-01");
    let mut cache = PriorityCache::default();
    let mut fleet = vec![
        server(
            "Windows Server 2022 Datacenter",
            "10.0.20348.2527",
            Installation::Desktop,
            &[],
        ),
        server(
            "Windows Server 2019 Standard",
            "10.0.17763.5936",
            Installation::ServerCore,
            &[5034273],
        ),
        server(
            "Windows Server 2016 Standard",
            "10.0.14393",
            Installation::Desktop,
            &[4483229, 5041948],
        ),
        server(
            "Windows Server 2025 Datacenter",
            "10.0.26100.4061",
            Installation::Desktop,
            &[],
        ),
    ];
    fleet[0].tier = Tier::new(1).unwrap();
    fleet[0].exposure = InternetExposure::Exposed;
    fleet[1].roles = vec![Role::DomainController];
    fleet[3].hotpatch = true;
    // The fleet functions assess each patch state once: same results, in the input order,
    // for servers that share a state but not a mission.
    let mut twin = fleet[0].clone();
    twin.name = "TWIN".into();
    twin.tier = Tier::new(4).unwrap();
    twin.exposure = InternetExposure::Internal;
    let with_twin: Vec<Server> = [fleet.clone(), vec![twin]].concat();
    let assessed = patchward_core::priority::assess_fleet(&ix, &with_twin, &policy, at, &mut cache);
    let summed =
        patchward_core::priority::summarise_fleet(&ix, &with_twin, &policy, at, &mut cache);
    for ((s, a), sm) in with_twin.iter().zip(&assessed).zip(&summed) {
        let one = assess_server(&ix, s, &policy, at);
        assert_eq!(a.name, s.name);
        assert_eq!(sm.exposure.name, s.name);
        let ids = |e: &ServerExposure| {
            e.open_cves
                .iter()
                .map(|c| (c.cve.to_string(), c.priority.as_ref().unwrap().decision))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(a), ids(&one), "{}", s.name);
        assert_eq!(sm.open, one.open_cves.len());
        assert_eq!(sm.worst, patchward_core::priority::worst(&one));
    }
    assert_ne!(
        patchward_core::priority::worst(&assessed[0]),
        patchward_core::priority::worst(&assessed[4]),
        "same patch state, other mission, other priorities"
    );
    for s in &fleet {
        let full = assess_server(&ix, s, &policy, at);
        let sum = summarise_server(&ix, s, &policy, at, &mut cache);
        assert!(sum.exposure.open_cves.is_empty());
        assert_eq!(sum.exposure.notes, full.notes);
        assert_eq!(sum.open, full.open_cves.len());
        assert!(sum.open > 0, "{}", s.os);
        for d in [
            Decision::Track,
            Decision::TrackStar,
            Decision::Attend,
            Decision::Act,
        ] {
            let n = full
                .open_cves
                .iter()
                .filter(|c| c.priority.as_ref().unwrap().decision == d)
                .count();
            assert_eq!(sum.by_decision[d as usize], n, "{d:?} on {}", s.os);
        }
        assert_eq!(sum.kev, full.open_cves.iter().filter(|c| c.kev).count());
        assert_eq!(
            sum.overdue,
            full.open_cves
                .iter()
                .filter(|c| c.priority.as_ref().unwrap().overdue)
                .count()
        );
        assert_eq!(sum.worst, patchward_core::priority::worst(&full));
    }
}
