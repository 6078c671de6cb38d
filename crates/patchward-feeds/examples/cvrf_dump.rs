//! Print what the CVRF reader extracts for some CVEs: `cvrf_dump FILE CVE...`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let raw = std::fs::read(&args[1]).unwrap();
    let bytes = if raw.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        zstd::decode_all(&raw[..]).unwrap()
    } else {
        raw
    };
    let t = std::time::Instant::now();
    let doc = patchward_feeds::cvrf::parse(&args[1], &bytes).unwrap();
    eprintln!(
        "{} rev {:?} {} vulns ({} total), {} fixes, {} affected, {} products in {:?}",
        doc.id,
        doc.revision,
        doc.vulnerabilities.len(),
        doc.total_vulnerabilities,
        doc.fixes.len(),
        doc.affected.len(),
        doc.products.len(),
        t.elapsed()
    );
    for cve in &args[2..] {
        for v in doc.vulnerabilities.iter().filter(|v| &v.cve == cve) {
            println!("{v:?}");
        }
        for f in doc.fixes.iter().filter(|f| &f.cve == cve) {
            println!(
                "  {} {} {} {:?} {:?} sup={:?}",
                f.product_id,
                f.kb,
                f.subtype,
                f.classification,
                f.fixed_build.map(|b| b.to_string()),
                f.supersedes
            );
        }
        for a in doc.affected.iter().filter(|f| &f.cve == cve) {
            println!(
                "  A {} {:?} {:?} {:?} {:?}",
                a.product_id, a.severity, a.impact, a.cvss_base, a.cvss_vector
            );
        }
    }
}
