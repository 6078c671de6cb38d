//! Reading inputs: files (transparently zstd- or gzip-decompressed, detected by magic bytes,
//! never by extension), directory walks, text decoding (UTF-8 / UTF-16 with or without BOM) and
//! content sniffing ([`detect`]) so an import command can take a folder of mixed feeds.

use crate::error::ParseError;
use std::io::Read;
use std::path::{Path, PathBuf};

/// zstd frame magic.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// gzip magic.
pub const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];
/// Refuse to inflate beyond this (a decompression bomb, or the wrong file).
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

/// Read a file, decompressing zstd or gzip by magic bytes.
pub fn read_input(path: &Path) -> Result<Vec<u8>, ParseError> {
    let name = path.display().to_string();
    let raw = std::fs::read(path)
        .map_err(|e| ParseError::whole(name.as_str(), format!("cannot read file: {e}")))?;
    decompress(&name, raw)
}

/// Decompress `bytes` if they start with a zstd or gzip magic; otherwise return them unchanged.
pub fn decompress(source: &str, bytes: Vec<u8>) -> Result<Vec<u8>, ParseError> {
    let inflate = |r: &mut dyn Read, what: &str| -> Result<Vec<u8>, ParseError> {
        let mut out = Vec::new();
        r.take(MAX_DECOMPRESSED + 1)
            .read_to_end(&mut out)
            .map_err(|e| ParseError::whole(source, format!("corrupt {what} data: {e}")))?;
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err(ParseError::whole(
                source,
                format!("{what} data inflates beyond {MAX_DECOMPRESSED} bytes"),
            ));
        }
        Ok(out)
    };
    if bytes.starts_with(&ZSTD_MAGIC) {
        let mut d = zstd::stream::read::Decoder::new(&bytes[..])
            .map_err(|e| ParseError::whole(source, format!("corrupt zstd data: {e}")))?;
        inflate(&mut d, "zstd")
    } else if bytes.starts_with(&GZIP_MAGIC) {
        let mut d = flate2::read::MultiGzDecoder::new(&bytes[..]);
        inflate(&mut d, "gzip")
    } else {
        Ok(bytes)
    }
}

/// Every regular file under `paths` (files are taken as given, directories walked
/// recursively), in sorted order, without duplicates. Symbolic links to directories are not
/// followed (no loops). Callers detect each file's kind with [`detect`].
pub fn walk(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ParseError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| ParseError::whole(p.display().to_string(), format!("cannot read: {e}")))?;
        if meta.is_dir() {
            walk_dir(p, &mut out)?;
        } else if meta.is_file() {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ParseError> {
    let err = |e: std::io::Error| {
        ParseError::whole(
            dir.display().to_string(),
            format!("cannot list directory: {e}"),
        )
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    entries.sort();
    for p in entries {
        let lmeta = std::fs::symlink_metadata(&p).map_err(err)?;
        if lmeta.is_dir() {
            walk_dir(&p, out)?;
        } else if lmeta.is_file() {
            out.push(p);
        } else if lmeta.file_type().is_symlink() {
            // A link to a file is fine; links to directories are skipped.
            if std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
                out.push(p);
            }
        }
    }
    Ok(())
}

/// Decode text: UTF-8 (BOM stripped), UTF-16LE/BE with BOM, UTF-16 without BOM when many NUL
/// bytes sit at odd (LE) or even (BE) positions; otherwise UTF-8 with invalid sequences
/// replaced. Never fails.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    if bytes.len() >= 4 {
        let sample = &bytes[..bytes.len().min(4096)];
        let pairs = sample.len() / 2;
        let odd_nul = sample
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count();
        let even_nul = sample.iter().step_by(2).filter(|&&b| b == 0).count();
        // ASCII-heavy UTF-16 text has a NUL in almost every other byte.
        if odd_nul * 10 >= pairs * 6 && even_nul * 10 < pairs {
            return utf16(bytes, true);
        }
        if even_nul * 10 >= pairs * 6 && odd_nul * 10 < pairs {
            return utf16(bytes, false);
        }
    }
    String::from_utf8_lossy(bytes).into_owned()
}

fn utf16(bytes: &[u8], little: bool) -> String {
    let units = bytes.chunks_exact(2).map(|c| {
        if little {
            u16::from_le_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], c[1]])
        }
    });
    let mut s: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if bytes.len() % 2 == 1 {
        s.push(char::REPLACEMENT_CHARACTER);
    }
    s
}

/// What a file contains, as sniffed from its content (and, for EPSS time series, its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeedKind {
    /// MSRC CVRF v1.1 XML document.
    CvrfXml,
    /// MSRC CVRF document in JSON form.
    CvrfJson,
    /// MSRC `/updates` index (`{"value":[{"ID","CvrfUrl",…}]}`).
    MsrcUpdatesIndex,
    /// CISA KEV catalog.
    Kev,
    /// NVD CVE API 2.0 record(s): a single `cve` object or the API envelope.
    Nvd,
    /// FIRST EPSS daily CSV.
    Epss,
    /// EPSS time series of one CVE (`date,model,epss,percentile`).
    EpssTimeSeries,
    /// endoflife.date markdown with YAML front matter.
    Lifecycle,
    /// The derived KB → fixed build table.
    KbBuilds,
    /// wesng definitions CSV (recognised, not imported).
    Wesng,
    /// `systeminfo` text (list form).
    Systeminfo,
    /// `systeminfo /fo csv`.
    SysteminfoCsv,
    /// `wmic qfe` table.
    WmicQfe,
    /// PowerShell `Get-HotFix` output (table or list).
    GetHotFix,
    /// Server inventory CSV.
    InventoryCsv,
    /// Estate TOML file.
    Estate,
    Unknown,
}

impl FeedKind {
    pub fn label(self) -> &'static str {
        match self {
            FeedKind::CvrfXml => "MSRC CVRF (XML)",
            FeedKind::CvrfJson => "MSRC CVRF (JSON)",
            FeedKind::MsrcUpdatesIndex => "MSRC updates index",
            FeedKind::Kev => "CISA KEV",
            FeedKind::Nvd => "NVD CVE API 2.0",
            FeedKind::Epss => "FIRST EPSS",
            FeedKind::EpssTimeSeries => "EPSS time series",
            FeedKind::Lifecycle => "lifecycle (endoflife.date)",
            FeedKind::KbBuilds => "KB build table",
            FeedKind::Wesng => "wesng definitions (unsupported)",
            FeedKind::Systeminfo => "systeminfo",
            FeedKind::SysteminfoCsv => "systeminfo CSV",
            FeedKind::WmicQfe => "wmic qfe",
            FeedKind::GetHotFix => "Get-HotFix",
            FeedKind::InventoryCsv => "server inventory CSV",
            FeedKind::Estate => "estate (TOML)",
            FeedKind::Unknown => "unknown",
        }
    }
}

/// How much of a file sniffing looks at.
const SNIFF: usize = 64 * 1024;

/// Sniff what `bytes` (named `name`, a file name or path) contain. Compressed input is
/// decompressed first. Never fails: unrecognised content is [`FeedKind::Unknown`].
pub fn detect(name: &str, bytes: &[u8]) -> FeedKind {
    if bytes.starts_with(&ZSTD_MAGIC) || bytes.starts_with(&GZIP_MAGIC) {
        // Only the head is needed; decode at most a bounded prefix.
        let mut head = Vec::new();
        let ok = if bytes.starts_with(&ZSTD_MAGIC) {
            zstd::stream::read::Decoder::new(bytes)
                .and_then(|d| d.take(SNIFF as u64).read_to_end(&mut head))
                .is_ok()
        } else {
            flate2::read::MultiGzDecoder::new(bytes)
                .take(SNIFF as u64)
                .read_to_end(&mut head)
                .is_ok()
        };
        if !ok && head.is_empty() {
            return FeedKind::Unknown;
        }
        return detect_plain(name, &head);
    }
    detect_plain(name, &bytes[..bytes.len().min(SNIFF)])
}

fn detect_plain(name: &str, head: &[u8]) -> FeedKind {
    let text = decode_text(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    let base = Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();

    if t.starts_with('<') {
        let start: String = t.chars().take(4096).collect();
        if start.contains("<cvrf:cvrfdoc") || start.contains("<cvrfdoc") {
            return FeedKind::CvrfXml;
        }
        return FeedKind::Unknown;
    }
    // `[[servers]]` on the first line is TOML, not a JSON array of arrays.
    let json_array = t.starts_with('[')
        && !t.lines().next().is_some_and(is_estate_header)
        && t[1..]
            .trim_start()
            .starts_with(|c: char| matches!(c, '{' | '[' | '"' | ']') || c.is_ascii_digit());
    if t.starts_with('{') || json_array {
        return detect_json(t);
    }

    let lines: Vec<&str> = t.lines().take(200).collect();
    let first = lines.first().map(|l| l.trim()).unwrap_or("");
    let first_lc = first.to_ascii_lowercase();

    if first_lc.starts_with("#model_version") || first_lc.starts_with("cve,epss,percentile") {
        return FeedKind::Epss;
    }
    if first_lc.starts_with("date,model,epss,percentile") {
        return FeedKind::EpssTimeSeries;
    }
    if first.starts_with("---") && t.contains("releases:") && t.contains("releaseCycle") {
        return FeedKind::Lifecycle;
    }
    if first_lc.starts_with("cvrf_id,product_id") {
        return FeedKind::KbBuilds;
    }
    if first.contains("DatePosted") && first.contains("CVE") {
        return FeedKind::Wesng;
    }
    // Any estate section header in the head (servers often come last, after windows and
    // services); `import hosts` also recognises an estate by parsing when the head shows none.
    if t.lines().any(is_estate_header) {
        return FeedKind::Estate;
    }
    // Host captures: the wmic/Get-HotFix header may follow a few lines of noise.
    for l in lines.iter().take(10) {
        let lc = l.to_ascii_lowercase();
        if lc.contains("hotfixid") {
            let words: Vec<&str> = lc.split_whitespace().collect();
            if words.contains(&"csname") || words.contains(&"servicepackineffect") {
                return FeedKind::WmicQfe;
            }
            if words.contains(&"source") || lc.starts_with("source") {
                return FeedKind::GetHotFix;
            }
            if words.len() >= 3 {
                return FeedKind::WmicQfe;
            }
        }
        if lc.trim_start().starts_with("source") && lc.contains(':') {
            // Get-HotFix | Format-List: "Source      : SRV01"
            if lines
                .iter()
                .any(|x| x.trim_start().to_ascii_lowercase().starts_with("hotfixid"))
            {
                return FeedKind::GetHotFix;
            }
        }
    }
    if first.starts_with('"') && first.matches("\",\"").count() >= 10 {
        let data = lines.get(1).copied().unwrap_or("");
        if data.contains("Windows") {
            return FeedKind::SysteminfoCsv;
        }
    }
    if looks_like_systeminfo(&lines) {
        return FeedKind::Systeminfo;
    }
    if is_inventory_header(first) {
        return FeedKind::InventoryCsv;
    }
    if base.to_ascii_lowercase().ends_with(".epss") && first_lc.starts_with("date,") {
        return FeedKind::EpssTimeSeries;
    }
    FeedKind::Unknown
}

fn detect_json(t: &str) -> FeedKind {
    let has = |k: &str| t.contains(&format!("\"{k}\""));
    if has("catalogVersion") && has("vulnerabilities") {
        return FeedKind::Kev;
    }
    if has("CvrfUrl") && has("value") {
        return FeedKind::MsrcUpdatesIndex;
    }
    if has("DocumentTracking") || (has("Vulnerability") && has("DocumentTitle")) {
        return FeedKind::CvrfJson;
    }
    if has("vulnerabilities") && has("cve") && (has("resultsPerPage") || has("NVD_CVE")) {
        return FeedKind::Nvd;
    }
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("\"id\":\"CVE-")
        && (has("metrics") || has("sourceIdentifier") || has("vulnStatus"))
    {
        return FeedKind::Nvd;
    }
    if compact.contains("\"vulnerabilities\":[{\"cve\":") {
        return FeedKind::Nvd;
    }
    FeedKind::Unknown
}

/// `systeminfo` list output: many unindented `Label:   value` lines, a Windows OS name and a
/// version line shaped like `10.0.20348 N/A Build 20348` (labels are localised, so only the
/// shape is used).
fn looks_like_systeminfo(lines: &[&str]) -> bool {
    let mut labelled = 0;
    let mut windows = false;
    let mut version = false;
    for l in lines.iter().take(40) {
        if l.starts_with(char::is_whitespace) {
            continue;
        }
        if let Some(i) = l.find(':') {
            let after = &l[i + 1..];
            if after.starts_with("  ") || after.trim().is_empty() {
                labelled += 1;
            }
            let v = after.trim();
            if v.contains("Windows") {
                windows = true;
            }
            if crate::hosts::version_shape(v).is_some() {
                version = true;
            }
        }
    }
    labelled >= 8 && windows && version
}

/// `[[servers]]`, `[capacity]`, `[capacity.sites]`, … at the start of a line.
fn is_estate_header(line: &str) -> bool {
    let l = line.trim();
    let inner = l
        .strip_prefix("[[")
        .and_then(|r| r.split_once("]]"))
        .or_else(|| l.strip_prefix('[').and_then(|r| r.split_once(']')))
        .map(|(name, _)| name.trim());
    inner.is_some_and(|name| {
        let top = name.split('.').next().unwrap_or("").trim();
        crate::estate::SECTIONS.contains(&top)
    })
}

fn is_inventory_header(first: &str) -> bool {
    let cols: Vec<String> = first
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    cols.iter()
        .any(|c| c == "name" || c == "hostname" || c == "host")
        && cols
            .iter()
            .any(|c| c == "os" || c == "operating_system" || c == "operatingsystem")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_boms_and_utf16() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFabc"), "abc");
        assert_eq!(decode_text(b"\xFF\xFEa\x00b\x00"), "ab");
        assert_eq!(decode_text(b"\xFE\xFF\x00a\x00b"), "ab");
        assert_eq!(decode_text(b"a\x00b\x00c\x00d\x00"), "abcd");
        assert_eq!(decode_text(b"\x00a\x00b\x00c\x00d"), "abcd");
        assert_eq!(decode_text(b"plain"), "plain");
        assert_eq!(decode_text(b"\xFF\xFEa"), "\u{FFFD}");
        assert_eq!(decode_text(b"bad\xFF"), "bad\u{FFFD}");
    }

    #[test]
    fn decompresses_by_magic() {
        let z = zstd::encode_all(&b"hello"[..], 3).unwrap_or_default();
        assert_eq!(decompress("x", z).ok(), Some(b"hello".to_vec()));
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut g, b"hello").ok();
        let g = g.finish().unwrap_or_default();
        assert_eq!(decompress("x", g).ok(), Some(b"hello".to_vec()));
        assert_eq!(
            decompress("x", b"plain".to_vec()).ok(),
            Some(b"plain".to_vec())
        );
        assert!(decompress("x", vec![0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3]).is_err());
        assert!(decompress("x", vec![0x1F, 0x8B, 1, 2, 3]).is_err());
    }

    #[test]
    fn sniffs_small_samples() {
        let d = |n: &str, s: &str| detect(n, s.as_bytes());
        assert_eq!(
            d(
                "a.csv",
                "#model_version:v1,score_date:2026-01-01T00:00:00Z\ncve,epss,percentile\n"
            ),
            FeedKind::Epss
        );
        assert_eq!(
            d("CVE-2025-1.epss", "date,model,epss,percentile\n"),
            FeedKind::EpssTimeSeries
        );
        assert_eq!(
            d("x", "cvrf_id,product_id,product_name\n"),
            FeedKind::KbBuilds
        );
        assert_eq!(
            d("x", "name,os,build\nA,Windows Server 2022,10.0.20348\n"),
            FeedKind::InventoryCsv
        );
        assert_eq!(
            d("x", "[capacity]\n\n[[servers]]\nname = \"A\"\n"),
            FeedKind::Estate
        );
        assert_eq!(d("x", "[[windows]]\nname = \"w\"\n"), FeedKind::Estate);
        assert_eq!(d("x", "[capacity.sites]\nHQ = 3\n"), FeedKind::Estate);
        assert_eq!(d("x", "[[window]]\nname = \"w\"\n"), FeedKind::Unknown);
        assert_eq!(
            d("x", "{\"catalogVersion\":\"1\",\"vulnerabilities\":[]}"),
            FeedKind::Kev
        );
        assert_eq!(
            d("x", "{\"id\": \"CVE-2024-1234\", \"metrics\": {}}"),
            FeedKind::Nvd
        );
        assert_eq!(
            d(
                "x",
                "{\"resultsPerPage\":1,\"vulnerabilities\":[{\"cve\":{}}]}"
            ),
            FeedKind::Nvd
        );
        assert_eq!(
            d("x", "{\"value\":[{\"ID\":\"2024-May\",\"CvrfUrl\":\"u\"}]}"),
            FeedKind::MsrcUpdatesIndex
        );
        assert_eq!(
            d(
                "x",
                "{\"DocumentTitle\":{\"Value\":\"t\"},\"DocumentTracking\":{}}"
            ),
            FeedKind::CvrfJson
        );
        assert_eq!(d("x", "<cvrf:cvrfdoc xmlns:cvrf=\"x\">"), FeedKind::CvrfXml);
        assert_eq!(d("x", "hello"), FeedKind::Unknown);
        assert_eq!(d("x", ""), FeedKind::Unknown);
    }
}
