//! Reading, decompression, walking and sniffing over the whole fixture tree.

use crate::fixtures;
use patchward_feeds::{FeedKind, detect, read_input, walk};

#[test]
fn walk_is_sorted_and_recursive() {
    let files = walk(&[fixtures()]).unwrap();
    assert!(files.len() > 60);
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    assert!(files.iter().all(|p| p.is_file()));
    assert!(walk(&[fixtures().join("does-not-exist")]).is_err());
}

#[test]
fn compressed_fixtures_are_decompressed_by_magic() {
    let p = fixtures().join("kev/known_exploited_vulnerabilities_2025-08-25_cisagov.json.zst");
    let raw = std::fs::read(&p).unwrap();
    assert_eq!(&raw[..4], &[0x28, 0xB5, 0x2F, 0xFD]);
    let bytes = read_input(&p).unwrap();
    assert_eq!(bytes.len(), 1_257_565);
    assert_eq!(bytes[0], b'{');
    // Sniffing works on the compressed bytes too.
    assert_eq!(detect("x", &raw), FeedKind::Kev);
}

#[test]
fn sniffs_every_fixture_kind() {
    let expect = |rel: &str, kind: FeedKind| {
        let p = fixtures().join(rel);
        let bytes = read_input(&p).unwrap();
        assert_eq!(detect(rel, &bytes), kind, "{rel}");
    };
    expect(
        "kev/known_exploited_vulnerabilities_2026-08-07.json.zst",
        FeedKind::Kev,
    );
    expect("nvd/CVE-2024-30040.json", FeedKind::Nvd);
    expect("epss/epss_scores-2026-09-29_subset.csv", FeedKind::Epss);
    expect(
        "epss/timeseries/CVE-2025-33053.epss",
        FeedKind::EpssTimeSeries,
    );
    expect(
        "lifecycle/endoflife-date_windows-server.md",
        FeedKind::Lifecycle,
    );
    expect(
        "lifecycle/LICENSE-MIT-endoflife.date.txt",
        FeedKind::Unknown,
    );
    expect(
        "builds/windows-server-kb-fixedbuild_from-msrc-cvrf_2016-2026.csv.zst",
        FeedKind::KbBuilds,
    );
    expect(
        "hosts/wesng-validation/srv_2022_systeminfo.txt",
        FeedKind::Systeminfo,
    );
    expect(
        "hosts/wesng-validation/srv_2012r2_u1_qfe.txt",
        FeedKind::WmicQfe,
    );
    expect(
        "hosts/wesng-validation/srv_2012r2_u1_updates_optional.txt",
        FeedKind::Unknown,
    );
    expect(
        "hosts/wesng-validation/LICENSE-BSD3-wesng.txt",
        FeedKind::Unknown,
    );
    expect("inventory/servers.csv", FeedKind::InventoryCsv);
    expect("inventory/estate.toml", FeedKind::Estate);
    expect("PROVENANCE.md", FeedKind::Unknown);
    if let Some(first) = walk(&[fixtures().join("msrc-cvrf")])
        .unwrap()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".xml.zst"))
    {
        assert_eq!(detect("m", &read_input(&first).unwrap()), FeedKind::CvrfXml);
    }
    // A wesng definitions header.
    let wesng = "\"DatePosted\",\"CVE\",\"BulletinKB\",\"Title\",\"AffectedProduct\"\n";
    assert_eq!(detect("w.csv", wesng.as_bytes()), FeedKind::Wesng);
}
