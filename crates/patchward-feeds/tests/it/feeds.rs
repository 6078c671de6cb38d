//! KEV, EPSS, NVD, lifecycle and the KB build table against the real fixtures.

use crate::{fixture, name};
use jiff::civil::date;
use patchward_core::catalog::{Classification, Kb};
use patchward_core::product::{Installation, ProductKind, ServerRelease};
use patchward_feeds::{epss, kbbuilds, kev, lifecycle, nvd};

const KEV_NEW: &str = "kev/known_exploited_vulnerabilities_2026-08-07.json.zst";
const KEV_OLD: &str = "kev/known_exploited_vulnerabilities_2025-08-25_cisagov.json.zst";

#[test]
fn kev_catalogs() {
    let new = kev::parse(&name(KEV_NEW), &fixture(KEV_NEW)).unwrap();
    let old = kev::parse(&name(KEV_OLD), &fixture(KEV_OLD)).unwrap();
    assert_eq!(new.entries.len(), 1662);
    assert_eq!(old.entries.len(), 1404);
    assert_eq!(new.version, "2026.08.07");
    assert_eq!(old.version, "2025.08.25");
    assert_eq!(
        new.released.map(|t| t.to_string()).as_deref(),
        Some("2026-08-07T16:45:47.0648Z")
    );
    let smb = new.get("CVE-2025-33073").unwrap();
    assert_eq!(smb.date_added, date(2025, 10, 20));
    assert_eq!(smb.due, date(2025, 11, 10));
    assert_eq!(smb.vendor, "Microsoft");
    assert!(!smb.known_ransomware);
    assert!(old.get("CVE-2025-33073").is_none());
    // The diff between the two catalogs: 258 added, none removed.
    let newer = new.by_cve();
    let older = old.by_cve();
    assert_eq!(
        newer.keys().filter(|k| !older.contains_key(*k)).count(),
        258
    );
    assert_eq!(older.keys().filter(|k| !newer.contains_key(*k)).count(), 0);
    assert_eq!(
        new.entries.iter().filter(|e| e.known_ransomware).count(),
        338
    );
    // Added years after disclosure.
    assert_eq!(
        new.get("CVE-2023-21529").unwrap().date_added,
        date(2026, 4, 13)
    );
}

#[test]
fn kev_truncated_or_edited_is_an_error() {
    let bytes = fixture(KEV_OLD);
    let e = kev::parse("kev.json", &bytes[..bytes.len() / 3]).unwrap_err();
    assert!(e.message.starts_with("truncated JSON"), "{e}");
    assert!(e.line.is_some());
    let text = String::from_utf8(bytes).unwrap();
    let edited = text.replacen("\"dueDate\": \"", "\"dueDate\": \"20", 1);
    let e = kev::parse("kev.json", edited.as_bytes()).unwrap_err();
    let field = e.field.unwrap();
    assert!(field.starts_with("vulnerabilities[0] (CVE-"), "{field}");
    assert!(field.ends_with(").dueDate"), "{field}");
}

#[test]
fn epss_daily_subset() {
    let rel = "epss/epss_scores-2026-09-29_subset.csv";
    let f = epss::parse_daily(&name(rel), &fixture(rel)).unwrap();
    assert_eq!(f.model_version, "v2026.06.15");
    assert_eq!(f.score_date, date(2026, 9, 29));
    assert_eq!(f.scores.len(), 32);
    let s = f.get("CVE-2023-21529").unwrap();
    assert_eq!((s.epss, s.percentile), (0.59294, 0.99091));
    assert_eq!(f.get("CVE-2024-38080").unwrap().epss, 0.07115);
    // The subset has no scientific notation; the full daily file does (FORMATS.md §4).
    let mut text = String::from_utf8(fixture(rel)).unwrap();
    text.push_str("CVE-2023-20914,0.0006,6e-05\n");
    let f = epss::parse_daily(&name(rel), text.as_bytes()).unwrap();
    assert_eq!(f.get("CVE-2023-20914").unwrap().percentile, 0.00006);
    // Values out of range name the line.
    let bad = text.replace("0.59294", "1.59294");
    let e = epss::parse_daily(&name(rel), bad.as_bytes()).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("epss")));
}

#[test]
fn epss_time_series() {
    for (cve, newest) in [("CVE-2025-33053", 0.25355), ("CVE-2025-33073", 0.00341)] {
        let rel = format!("epss/timeseries/{cve}.epss");
        let s = epss::parse_timeseries(&rel, &fixture(&rel)).unwrap();
        assert_eq!(s.len(), 64, "{cve}");
        assert!(s.iter().all(|x| x.cve == cve && x.model_version == "v4"));
        let n = epss::newest(s);
        assert_eq!(n[cve].score_date, date(2025, 8, 15));
        assert_eq!(n[cve].epss, newest);
    }
}

#[test]
fn nvd_records() {
    let rel = "nvd/CVE-2024-30040.json";
    let r = nvd::parse(&name(rel), &fixture(rel)).unwrap();
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r.cve, "CVE-2024-30040");
    let v31: Vec<_> = r.metrics.iter().filter(|m| m.version == "3.1").collect();
    assert_eq!(v31.len(), 2);
    assert_eq!(v31[0].source, "secure@microsoft.com");
    assert_eq!(v31[1].source, "134c704f-9b21-4f2e-91b3-4a467353bcc0");
    assert!(v31.iter().all(|m| !m.primary && m.base_score == 8.8));
    assert_eq!(
        v31[0].vector,
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"
    );
    assert_eq!(r.kev_added, Some(date(2024, 5, 14)));
    assert_eq!(r.kev_due, Some(date(2024, 6, 4)));
    assert_eq!(
        r.published.map(|t| t.to_string()).as_deref(),
        Some("2024-05-14T17:17:12.41Z")
    );
    assert_eq!(r.status.as_deref(), Some("Analyzed"));
    assert_eq!(r.cwes, vec!["CWE-20".to_string()]);

    // Every fixture parses; the stale CVE-2023-21529 copy has no KEV fields.
    let dir = crate::fixtures().join("nvd");
    let files = patchward_feeds::walk(&[dir]).unwrap();
    assert_eq!(files.len(), 10);
    for p in files {
        let recs = nvd::parse(
            &p.display().to_string(),
            &patchward_feeds::read_input(&p).unwrap(),
        )
        .unwrap();
        assert_eq!(recs.len(), 1);
        assert!(recs[0].best_metric().is_some(), "{}", recs[0].cve);
        assert!(recs[0].description.is_some());
    }
    let old = nvd::parse("x", &fixture("nvd/CVE-2023-21529.json")).unwrap();
    assert_eq!((old[0].kev_added, old[0].metrics[0].primary), (None, true));

    // The same record inside the API envelope.
    let inner = String::from_utf8(fixture(rel)).unwrap();
    let env = format!(
        "{{\"resultsPerPage\":1,\"startIndex\":0,\"totalResults\":1,\"format\":\"NVD_CVE\",\"version\":\"2.0\",\"timestamp\":\"2026-01-01T00:00:00.000\",\"vulnerabilities\":[{{\"cve\":{inner}}}]}}"
    );
    let r2 = nvd::parse("page.json", env.as_bytes()).unwrap();
    assert_eq!(r2[0], *r);
}

#[test]
fn lifecycle_table() {
    let rel = "lifecycle/endoflife-date_windows-server.md";
    let l = lifecycle::parse(&name(rel), &fixture(rel)).unwrap();
    assert_eq!(l.len(), 20);
    let get = |r: ServerRelease| l.iter().find(|e| e.release == Some(r)).unwrap();
    assert_eq!(
        get(ServerRelease::Server2012R2).esu_end,
        Some(date(2026, 10, 13))
    );
    assert_eq!(
        get(ServerRelease::Server2012R2).extended_end,
        Some(date(2023, 10, 10))
    );
    assert_eq!(
        get(ServerRelease::Server2022).mainstream_end,
        Some(date(2026, 10, 13))
    );
    assert_eq!(
        get(ServerRelease::Server2022).extended_end,
        Some(date(2031, 10, 14))
    );
    assert_eq!(
        get(ServerRelease::Server2016).esu_end,
        Some(date(2030, 1, 12))
    );
    assert_eq!(
        get(ServerRelease::Server2025).extended_end,
        Some(date(2034, 11, 14))
    );
    assert_eq!(
        get(ServerRelease::Server2022_23H2).extended_end,
        Some(date(2026, 5, 12))
    );
    assert_eq!(get(ServerRelease::Server2008R2).cycle, "2008-r2-sp1");
    assert_eq!(get(ServerRelease::Server2008).cycle, "2008-sp2");
    assert_eq!(
        get(ServerRelease::Server2022).label.as_deref(),
        Some("Windows Server 2022")
    );
    assert_eq!(
        get(ServerRelease::Server2012R2).label.as_deref(),
        Some("Windows Server 2012 R2")
    );
    // Every release line has exactly one row; SAC and pre-2008 have none.
    for r in ServerRelease::ALL {
        assert_eq!(l.iter().filter(|e| e.release == Some(r)).count(), 1, "{r}");
    }
    let sac = l.iter().find(|e| e.cycle == "20h2-sac").unwrap();
    assert_eq!(sac.release, None);
    assert_eq!(l.iter().find(|e| e.cycle == "2003").unwrap().release, None);
    // Phases on the fixture's dates.
    use patchward_core::intel::SupportPhase;
    let ph = |r, d| get(r).status(d).phase;
    assert_eq!(
        ph(ServerRelease::Server2012R2, date(2026, 1, 1)),
        SupportPhase::Esu
    );
    assert_eq!(
        ph(ServerRelease::Server2012R2, date(2026, 10, 13)),
        SupportPhase::Unsupported
    );
    assert_eq!(
        ph(ServerRelease::Server2022, date(2026, 11, 25)),
        SupportPhase::Extended
    );
}

#[test]
fn lifecycle_errors_name_the_line() {
    let rel = "lifecycle/endoflife-date_windows-server.md";
    let text = String::from_utf8(fixture(rel)).unwrap();
    let bad = text.replacen("eol: 2031-10-14", "eol: 2031-10-41", 1);
    let e = lifecycle::parse("ws.md", bad.as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ws.md:36: field \"eol\": not a date (YYYY-MM-DD): \"2031-10-41\""
    );
    let cut = &text[..text.find("releases:").unwrap()];
    assert!(lifecycle::parse("ws.md", cut.as_bytes()).is_err());
}

#[test]
fn kb_build_table() {
    let rel = "builds/windows-server-kb-fixedbuild_from-msrc-cvrf_2016-2026.csv.zst";
    let t = kbbuilds::parse(&name(rel), &fixture(rel)).unwrap();
    // 5,775 rows: 361 Itanium and 205 Semi-Annual Channel rows are not Windows Server lines.
    assert_eq!(t.rows.len(), 5209);
    assert_eq!(t.skipped_rows, 566);
    // Golden facts (ENGINEERING.md): May 2022 on Server 2019, 2022 and 2016.
    let find = |doc: &str, kb: u32, release: ServerRelease, inst: Installation| {
        t.rows
            .iter()
            .find(|r| {
                r.update.document == doc
                    && r.update.kb == Kb(kb)
                    && t.product(&r.update.product_id).map(|p| &p.kind)
                        == Some(&ProductKind::Os {
                            release,
                            installation: inst,
                        })
            })
            .unwrap_or_else(|| panic!("{doc} KB{kb} {release}"))
    };
    let r = find(
        "2022-May",
        5013941,
        ServerRelease::Server2019,
        Installation::Desktop,
    );
    assert_eq!(r.update.fixed_build.unwrap().to_string(), "10.0.17763.2928");
    assert_eq!(r.update.supersedes, vec![Kb(5012647)]);
    assert_eq!(
        r.update.classification,
        Classification::SecurityCumulativeUpdate
    );
    assert_eq!(r.update.product_id, "11571");
    let core = find(
        "2022-May",
        5013941,
        ServerRelease::Server2019,
        Installation::ServerCore,
    );
    assert_eq!(core.update.product_id, "11572");
    assert_eq!(
        t.product("11572").unwrap().name,
        "Windows Server 2019 (Server Core installation)"
    );
    let r = find(
        "2022-May",
        5013944,
        ServerRelease::Server2022,
        Installation::Desktop,
    );
    assert_eq!(r.update.fixed_build.unwrap().to_string(), "10.0.20348.707");
    let r = find(
        "2022-May",
        5013952,
        ServerRelease::Server2016,
        Installation::Desktop,
    );
    assert_eq!(r.update.fixed_build.unwrap().to_string(), "10.0.14393.5125");
    // The 26200 typo for Server 2025 (2025-Jul, KB5060842) is rejected, not trusted.
    let typo = t
        .rows
        .iter()
        .find(|r| {
            r.update.kb == Kb(5060842) && r.rejected_build.as_deref() == Some("10.0.26200.4349")
        })
        .unwrap();
    assert_eq!(typo.update.fixed_build, None);
    // Junk builds never survive; accepted builds always belong to the product's release.
    for r in &t.rows {
        if let Some(b) = r.update.fixed_build {
            let rel = t.product(&r.update.product_id).unwrap().kind.release();
            assert_eq!(ServerRelease::from_build(&b), Some(rel), "line {}", r.line);
            assert!(b.ubr.is_some());
        }
    }
    assert!(
        t.rows
            .iter()
            .any(|r| r.update.classification == Classification::Hotpatch)
    );
    let merged = t.merged();
    assert!(merged.len() < t.rows.len());
    let mut keys: Vec<_> = merged
        .iter()
        .map(|u| (u.kb, u.product_id.clone()))
        .collect();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n);
}
