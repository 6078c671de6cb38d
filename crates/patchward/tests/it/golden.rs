//! Golden facts read from Microsoft's own CVRF XML (see ENGINEERING.md and the issue).

use crate::month;
use patchward_core::catalog::{Classification, Kb};

fn fix<'a>(
    d: &'a patchward_feeds::cvrf::CvrfDocument,
    cve: &str,
    product: &str,
) -> Vec<&'a patchward_core::catalog::Fix> {
    d.fixes
        .iter()
        .filter(|f| f.cve == cve && f.product_id == product)
        .collect()
}

#[test]
fn may_2022_cve_2022_29126() {
    let d = month("2022-May");
    assert_eq!(d.id, "2022-May");
    // Server 2019 (11571) and its Server Core twin (11572): KB5013941, 10.0.17763.2928,
    // supersedes KB5012647. The "Known Issue" remediation with the same KB is not a fix.
    for pid in ["11571", "11572"] {
        let f = fix(&d, "CVE-2022-29126", pid);
        assert_eq!(f.len(), 1, "{pid}: exactly one Vendor Fix");
        assert_eq!(f[0].kb, Kb(5013941));
        assert_eq!(f[0].fixed_build.unwrap().to_string(), "10.0.17763.2928");
        assert_eq!(f[0].supersedes, vec![Kb(5012647)]);
        assert_eq!(
            f[0].classification,
            Classification::SecurityCumulativeUpdate
        );
    }
    let f = fix(&d, "CVE-2022-29126", "11923");
    assert_eq!(
        (f[0].kb, f[0].fixed_build.unwrap().to_string()),
        (Kb(5013944), "10.0.20348.707".to_string())
    );
    let f = fix(&d, "CVE-2022-29126", "10816");
    assert_eq!(
        (f[0].kb, f[0].fixed_build.unwrap().to_string()),
        (Kb(5013952), "10.0.14393.5125".to_string())
    );
    // The product names keep MSRC's double space but classify the same.
    let p = d.products.iter().find(|p| p.id == "11572").unwrap();
    assert!(p.name.contains("Server Core"));
}

#[test]
fn july_2024_madlicense_hyperv_mshtml() {
    let d = month("2024-Jul");
    assert_eq!(d.revision.as_deref(), Some("642"));
    assert_eq!(d.total_vulnerabilities, 454);
    let v = |cve: &str| d.vulnerabilities.iter().find(|v| v.cve == cve).unwrap();

    // CVE-2024-38077 "MadLicense": RDL RCE, CVSS 9.8, not exploited.
    let madlicense = v("CVE-2024-38077");
    assert!(!madlicense.exploited);
    let a = d
        .affected
        .iter()
        .find(|a| a.cve == "CVE-2024-38077" && a.product_id == "11923")
        .unwrap();
    assert_eq!(a.cvss_base, Some(9.8));
    assert_eq!(a.severity.map(|s| s.label()), Some("Critical"));
    for (pid, kb, build) in [
        ("11923", 5040437, "10.0.20348.2582"),
        ("11924", 5040437, "10.0.20348.2582"),
        ("11571", 5040430, "10.0.17763.6054"),
        ("10816", 5040434, "10.0.14393.7159"),
        ("12244", 5040438, "10.0.25398.1009"),
    ] {
        let f = fix(&d, "CVE-2024-38077", pid);
        assert_eq!(f.len(), 1, "{pid}");
        assert_eq!(f[0].kb, Kb(kb), "{pid}");
        assert_eq!(f[0].fixed_build.unwrap().to_string(), build, "{pid}");
    }
    assert_eq!(
        fix(&d, "CVE-2024-38077", "11923")[0].supersedes,
        vec![Kb(5039227)]
    );

    // CVE-2024-38080 Hyper-V EoP: exploited, only Server 2022 and 23H2 among servers.
    assert!(v("CVE-2024-38080").exploited);
    assert!(!v("CVE-2024-38080").publicly_disclosed);
    assert_eq!(fix(&d, "CVE-2024-38080", "11923")[0].kb, Kb(5040437));
    assert!(fix(&d, "CVE-2024-38080", "11571").is_empty());
    assert!(fix(&d, "CVE-2024-38080", "10816").is_empty());

    // CVE-2024-38112 MSHTML spoofing: exploited; 2012 R2 has a monthly rollup with a build
    // and an IE cumulative update without one (junk "1.000" rejected).
    assert!(v("CVE-2024-38112").exploited);
    assert_eq!(fix(&d, "CVE-2024-38112", "10816")[0].kb, Kb(5040434));
    assert_eq!(fix(&d, "CVE-2024-38112", "11571")[0].kb, Kb(5040430));
    let r2: Vec<_> = fix(&d, "CVE-2024-38112", "10483");
    let rollup = r2.iter().find(|f| f.kb == Kb(5040456)).unwrap();
    assert_eq!(rollup.classification, Classification::MonthlyRollup);
    assert_eq!(rollup.fixed_build.unwrap().to_string(), "6.3.9600.22074");
    let ie = r2.iter().find(|f| f.kb == Kb(5040426)).unwrap();
    assert_eq!(ie.classification, Classification::InternetExplorer);
    assert_eq!(ie.fixed_build, None);
}

#[test]
fn june_2025_hotpatch_is_its_own_train() {
    let d = month("2025-Jun");
    let f = fix(&d, "CVE-2025-33053", "11923");
    let lcu = f
        .iter()
        .find(|f| f.classification == Classification::SecurityCumulativeUpdate)
        .unwrap();
    let hp = f
        .iter()
        .find(|f| f.classification == Classification::Hotpatch)
        .unwrap();
    assert_eq!(
        (lcu.kb, lcu.fixed_build.unwrap().to_string()),
        (Kb(5060526), "10.0.20348.3807".into())
    );
    assert_eq!(
        (hp.kb, hp.fixed_build.unwrap().to_string()),
        (Kb(5060525), "10.0.20348.3745".into())
    );
    assert!(
        d.vulnerabilities
            .iter()
            .find(|v| v.cve == "CVE-2025-33053")
            .unwrap()
            .exploited
    );
    // MSRC never flagged CVE-2025-33073 exploited (CISA added it to KEV later).
    assert!(
        !d.vulnerabilities
            .iter()
            .find(|v| v.cve == "CVE-2025-33073")
            .unwrap()
            .exploited
    );
}

#[test]
fn typo_fixed_builds_are_rejected_not_trusted() {
    // MSRC's 2025-Jul document gives KB5060842 as 10.0.26200.4349 for Server 2025 (26100).
    let d = month("2025-Jul");
    let bad: Vec<_> = d.fixes.iter().filter(|f| f.kb == Kb(5060842)).collect();
    assert!(!bad.is_empty());
    assert!(
        bad.iter()
            .all(|f| f.fixed_build.is_none_or(|b| b.build == 26100))
    );
}

#[test]
fn empty_and_truncated_documents_are_errors() {
    let bytes =
        patchward_feeds::input::read_input(&crate::fixtures().join("msrc-cvrf/2024-Jul.xml.zst"))
            .unwrap();
    let cut = &bytes[..bytes.len() / 2];
    let e = patchward_feeds::cvrf::parse("2024-Jul.xml", cut).unwrap_err();
    assert!(e.to_string().contains("2024-Jul.xml"), "{e}");
    let empty = b"<cvrf:cvrfdoc xmlns:cvrf=\"http://www.icasi.org/CVRF/schema/cvrf/1.1\"><cvrf:DocumentTracking><cvrf:Identification><cvrf:ID>2024-Jul</cvrf:ID></cvrf:Identification></cvrf:DocumentTracking></cvrf:cvrfdoc>";
    let e = patchward_feeds::cvrf::parse("empty.xml", empty).unwrap_err();
    assert!(e.to_string().contains("no Vulnerability"), "{e}");
    assert!(patchward_feeds::cvrf::parse("x.xml", b"").is_err());
    // The same shape with products listed is the API's broken response: an error too.
    let with_products = b"<cvrf:cvrfdoc xmlns:cvrf=\"c\" xmlns:prod=\"p\"><cvrf:DocumentTracking><cvrf:Identification><cvrf:ID>2024-Jul</cvrf:ID></cvrf:Identification></cvrf:DocumentTracking><prod:ProductTree><prod:FullProductName ProductID=\"11923\">Windows Server 2022</prod:FullProductName></prod:ProductTree></cvrf:cvrfdoc>";
    assert!(patchward_feeds::cvrf::parse("p.xml", with_products).is_err());
    // A real announcement-only document (no products, no vulnerabilities) is not an error.
    let real = patchward_feeds::input::read_input(
        &crate::fixtures().join("msrc-cvrf-empty/2017-May-B.xml.zst"),
    )
    .unwrap();
    let d = patchward_feeds::cvrf::parse("2017-May-B", &real).unwrap();
    assert!(d.is_announcement_only() && d.products.is_empty());
    assert!(patchward_feeds::cvrf::parse("x.json", b"{}").is_err());
}

#[test]
fn json_form_matches_xml_form() {
    // The JSON form is mapped from the same model: a document hand-converted from the XML
    // of CVE-2024-38077 (Server 2022 rows) must give the same records.
    let json = std::fs::read(crate::fixtures().join("msrc-cvrf-json/2024-Jul-CVE-2024-38077.json"))
        .unwrap();
    let j = patchward_feeds::cvrf::parse("2024-Jul.json", &json).unwrap();
    let x = month("2024-Jul");
    assert_eq!(j.id, "2024-Jul");
    let jv = j
        .vulnerabilities
        .iter()
        .find(|v| v.cve == "CVE-2024-38077")
        .unwrap();
    let xv = x
        .vulnerabilities
        .iter()
        .find(|v| v.cve == "CVE-2024-38077")
        .unwrap();
    assert_eq!(jv.title, xv.title);
    assert_eq!(jv.exploited, xv.exploited);
    for pid in ["11923", "11924"] {
        let jf = j
            .fixes
            .iter()
            .find(|f| f.cve == "CVE-2024-38077" && f.product_id == pid)
            .unwrap();
        let xf = x
            .fixes
            .iter()
            .find(|f| f.cve == "CVE-2024-38077" && f.product_id == pid)
            .unwrap();
        assert_eq!(jf, xf);
        let ja = j
            .affected
            .iter()
            .find(|a| a.cve == "CVE-2024-38077" && a.product_id == pid)
            .unwrap();
        let xa = x
            .affected
            .iter()
            .find(|a| a.cve == "CVE-2024-38077" && a.product_id == pid)
            .unwrap();
        assert_eq!(ja, xa);
    }
    // Known Issue (type 5 here) and Release Notes remediations are not fixes.
    assert_eq!(
        j.fixes.iter().filter(|f| f.product_id == "11923").count(),
        1
    );
}
