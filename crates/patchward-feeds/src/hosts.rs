//! Host captures from real Windows servers: `systeminfo` (list and `/fo csv`), `wmic qfe`
//! tables and PowerShell `Get-HotFix` output (table or list), turned into [`HostCapture`]s and
//! then into inventory [`Server`]s.
//!
//! Labels are localised (a Russian `systeminfo` says `Имя узла:` for `Host Name:`), so fields
//! are found by *position* (systeminfo always prints host name, OS name, OS version, … in the
//! same order) checked by *value shape* (the OS name contains "Windows"; the version looks like
//! `10.0.20348 N/A Build 20348`), never by English labels alone. Hotfix lines are
//! `[01]: KB2919355`; 2003-era entries such as `File 1` or `Q147222` are kept as entries but are
//! not KBs. `systeminfo` has no UBR, so its build has `ubr: None`; it does not say Server Core
//! vs Desktop either, so `installation` stays `None`.

use crate::error::ParseError;
use crate::input::{FeedKind, decode_text, detect};
use crate::util::clip;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;
use patchward_core::OsBuild;
use patchward_core::catalog::Kb;
use patchward_core::inventory::Server;
use patchward_core::product::{Installation, ServerRelease, release_from_caption};
use std::collections::BTreeSet;

/// Which tool produced a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureFormat {
    Systeminfo,
    SysteminfoCsv,
    WmicQfe,
    GetHotFix,
}

/// One listed hotfix, KB or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotfixEntry {
    /// As listed: `KB5005039`, `KB893803v2 - Update`, `File 1`, `Q147222`.
    pub id: String,
    /// The KB, when the entry names one.
    pub kb: Option<Kb>,
    /// `Security Update`, `Update`, `Hotfix` (qfe / Get-HotFix only).
    pub description: Option<String>,
    /// As printed, in the capturing machine's locale (`3/17/2019`).
    pub installed_on: Option<String>,
}

/// What a capture says about one host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostCapture {
    pub format: Option<CaptureFormat>,
    pub name: Option<String>,
    /// OS name as reported ("Microsoft Windows Server 2022 Standard").
    pub os_caption: Option<String>,
    /// OS version line as reported ("10.0.20348 N/A Build 20348").
    pub os_version: Option<String>,
    /// `major.minor.build` (systeminfo has no UBR).
    pub build: Option<OsBuild>,
    pub service_pack: Option<String>,
    pub release: Option<ServerRelease>,
    pub installation: Option<Installation>,
    pub domain: Option<String>,
    pub kbs: BTreeSet<Kb>,
    /// Every listed hotfix entry, in order.
    pub hotfixes: Vec<HotfixEntry>,
    /// The count systeminfo announces ("352 Hotfix(s) Installed."); old versions truncate the list.
    pub declared_hotfixes: Option<u32>,
    /// Boot time in the host's local time, as printed.
    pub last_boot_local: Option<DateTime>,
    /// The host's standard UTC offset from its "Time Zone" line (no DST information).
    pub utc_offset: Option<Offset>,
    /// Things worth telling the operator (truncated lists, non-KB entries).
    pub warnings: Vec<String>,
}

impl HostCapture {
    /// Boot time as an instant, using the time zone line's standard offset (may be an hour
    /// off during daylight saving time). Without an offset, `None`.
    pub fn last_boot(&self) -> Option<Timestamp> {
        let (dt, off) = (self.last_boot_local?, self.utc_offset?);
        off.to_timestamp(dt).ok()
    }

    /// Combine two captures of the same host (e.g. systeminfo + wmic qfe): KBs are united,
    /// missing facts filled from `other`.
    pub fn merge(&mut self, other: HostCapture) {
        self.name = self.name.take().or(other.name);
        self.os_caption = self.os_caption.take().or(other.os_caption);
        self.os_version = self.os_version.take().or(other.os_version);
        self.build = self.build.or(other.build);
        self.service_pack = self.service_pack.take().or(other.service_pack);
        self.release = self.release.or(other.release);
        self.installation = self.installation.or(other.installation);
        self.domain = self.domain.take().or(other.domain);
        self.kbs.extend(other.kbs);
        for h in other.hotfixes {
            if !self.hotfixes.iter().any(|x| x.id == h.id) {
                self.hotfixes.push(h);
            }
        }
        self.declared_hotfixes = self.declared_hotfixes.or(other.declared_hotfixes);
        self.last_boot_local = self.last_boot_local.or(other.last_boot_local);
        self.utc_offset = self.utc_offset.or(other.utc_offset);
        self.warnings.extend(other.warnings);
    }

    /// An inventory server from this capture. The host name is required.
    pub fn to_server(&self, source: &str) -> Result<Server, ParseError> {
        let name = self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ParseError::at(source, None, Some("name"), "the capture names no host")
            })?;
        Ok(Server {
            name: name.to_string(),
            os: self.os_caption.clone().unwrap_or_default(),
            release: self.release,
            installation: self.installation,
            build: self.build,
            installed_kbs: self.kbs.clone(),
            last_boot: self.last_boot(),
            ..Server::default()
        })
    }
}

/// Parse any supported capture (sniffed with [`detect`]); one capture per host found.
pub fn parse_capture(source: &str, bytes: &[u8]) -> Result<Vec<HostCapture>, ParseError> {
    match detect(source, bytes) {
        FeedKind::Systeminfo => Ok(vec![parse_systeminfo(source, bytes)?]),
        FeedKind::SysteminfoCsv => parse_systeminfo_csv(source, bytes),
        FeedKind::WmicQfe => parse_qfe(source, bytes),
        FeedKind::GetHotFix => parse_gethotfix(source, bytes),
        other => Err(ParseError::whole(
            source,
            format!(
                "not a host capture (systeminfo, wmic qfe or Get-HotFix); looks like: {}",
                other.label()
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared value shapes

/// `10.0.20348 N/A Build 20348` / `5.2.3790 Service Pack 2 Build 3790` /
/// `6.3.9600 Н/Д построение 9600`: the build and the middle text (service pack), when the value
/// starts with `major.minor.build` and ends with the same build number.
pub(crate) fn version_shape(v: &str) -> Option<(OsBuild, String)> {
    let mut words = v.split_whitespace();
    let first = words.next()?;
    if first.split('.').count() != 3 {
        return None;
    }
    let b: OsBuild = first.parse().ok()?;
    let rest: Vec<&str> = words.collect();
    let last = rest.last()?;
    if last.parse::<u32>().ok()? != b.build {
        return None;
    }
    let middle = if rest.len() >= 2 {
        rest[..rest.len() - 2].join(" ")
    } else {
        String::new()
    };
    Some((b, middle))
}

/// A hotfix list entry → KB, if it names one with at least 6 digits (`KB893803v2 - Update`,
/// `KB2803821-v2`). Shorter numbers come from truncated output (`KB2862`).
fn entry_kb(id: &str) -> Option<Kb> {
    let first = id.split_whitespace().next()?;
    let digits = first
        .strip_prefix("KB")
        .or_else(|| first.strip_prefix("kb"))
        .or_else(|| first.strip_prefix("Kb"))?;
    let n: String = digits.chars().take_while(char::is_ascii_digit).collect();
    if n.len() < 6 {
        return None;
    }
    n.parse().ok()
}

fn hotfix(id: &str) -> HotfixEntry {
    HotfixEntry {
        id: id.trim().to_string(),
        kb: entry_kb(id.trim()),
        description: None,
        installed_on: None,
    }
}

/// `10/22/2021, 8:36:55 AM`, `23.04.2020, 7:15:57`, `2021-10-22, 08:36:55`.
pub(crate) fn parse_local_datetime(v: &str) -> Option<DateTime> {
    let v = v.trim();
    let (d, t) = match v.split_once(',') {
        Some((d, t)) => (d.trim(), t.trim()),
        None => v.split_once(' ').map(|(d, t)| (d.trim(), t.trim()))?,
    };
    let nums = |s: &str, sep: char| -> Option<Vec<i64>> {
        let parts: Vec<&str> = s.split(sep).collect();
        if parts.len() != 3 {
            return None;
        }
        parts
            .iter()
            .map(|p| {
                let p = p.trim();
                if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    p.parse().ok()
                }
            })
            .collect()
    };
    let (y, m, day) = if let Some(n) = nums(d, '/') {
        // US order unless the first number cannot be a month.
        if n[0] > 12 {
            (n[2], n[1], n[0])
        } else {
            (n[2], n[0], n[1])
        }
    } else if let Some(n) = nums(d, '.') {
        (n[2], n[1], n[0])
    } else if let Some(n) = nums(d, '-') {
        (n[0], n[1], n[2])
    } else {
        return None;
    };
    let upper = t.to_ascii_uppercase();
    let pm = upper.ends_with("PM");
    let am = upper.ends_with("AM");
    let clock = upper.trim_end_matches("AM").trim_end_matches("PM").trim();
    let tp: Vec<i64> = clock
        .split(':')
        .map(|p| p.trim().parse::<i64>().ok())
        .collect::<Option<_>>()?;
    if !(2..=3).contains(&tp.len()) {
        return None;
    }
    let mut h = tp[0];
    if pm && h < 12 {
        h += 12;
    }
    if am && h == 12 {
        h = 0;
    }
    let s = tp.get(2).copied().unwrap_or(0);
    let conv = |x: i64| i8::try_from(x).ok();
    DateTime::new(
        i16::try_from(y).ok()?,
        conv(m)?,
        conv(day)?,
        conv(h)?,
        conv(tp[1])?,
        conv(s)?,
        0,
    )
    .ok()
}

/// `(UTC-08:00) Pacific Time (US & Canada)`, `(GMT+01:00) Amsterdam…`, `(UTC) Coordinated…`.
fn parse_tz_offset(v: &str) -> Option<Offset> {
    let v = v.trim();
    let inner = v.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    let rest = inner
        .strip_prefix("UTC")
        .or_else(|| inner.strip_prefix("GMT"))?;
    if rest.is_empty() {
        return Some(Offset::UTC);
    }
    let sign = match rest.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = rest[1..].split_once(':')?;
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    if h > 14 || m > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

fn first_number(s: &str) -> Option<u32> {
    let mut cur = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            cur.push(c);
        } else if !cur.is_empty() {
            break;
        }
    }
    cur.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// systeminfo (list)

struct Field {
    label: String,
    value: String,
    children: Vec<String>,
}

fn split_fields(text: &str) -> Vec<Field> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    // The value column: the most common position where a value starts after "Label:   ".
    let mut counts: std::collections::BTreeMap<usize, usize> = Default::default();
    for l in &lines {
        if l.is_empty() || l.starts_with(char::is_whitespace) {
            continue;
        }
        let chars: Vec<char> = l.chars().collect();
        if let Some(c) = chars.iter().position(|&c| c == ':') {
            let after = chars[c + 1..].iter().take_while(|&&c| c == ' ').count();
            if after >= 1 && c + 1 + after < chars.len() {
                *counts.entry(c + 1 + after).or_default() += 1;
            }
        }
    }
    // Prefer the column most lines agree on (ties: the leftmost).
    let col = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(&c, _)| c);
    let mut fields: Vec<Field> = Vec::new();
    for l in lines {
        if l.trim().is_empty() {
            continue;
        }
        if l.starts_with(char::is_whitespace) {
            if let Some(f) = fields.last_mut() {
                f.children.push(l.trim().to_string());
            }
            continue;
        }
        let chars: Vec<char> = l.chars().collect();
        let aligned = col.filter(|&c| {
            chars.len() >= c
                && chars[..c].contains(&':')
                && (chars.len() == c || chars[c - 1] == ' ' || chars[c - 1] == ':')
        });
        let (label, value) = match aligned {
            Some(c) => (
                chars[..c].iter().collect::<String>(),
                chars[c..].iter().collect::<String>(),
            ),
            None => match l.split_once(':') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (l.to_string(), String::new()),
            },
        };
        fields.push(Field {
            label: label.trim().trim_end_matches(':').trim().to_string(),
            value: value.trim().to_string(),
            children: Vec::new(),
        });
    }
    fields
}

fn is_hotfix_label(label: &str) -> bool {
    let l = label.to_lowercase();
    l.contains("hotfix") || l.contains("исправлен") || l.contains("correctif")
}

/// `[01]: KB2919355` → `KB2919355`.
fn bracket_item(s: &str) -> Option<&str> {
    let rest = s.trim().strip_prefix('[')?;
    let (n, tail) = rest.split_once(']')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(tail.trim_start_matches(':').trim())
}

fn looks_like_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn is_os_name(v: &str) -> bool {
    v.contains("Windows") && !v.contains('\\') && !v.contains(';')
}

/// Fill a capture from systeminfo fields (list or CSV form share the positional layout).
fn from_fields(
    source: &str,
    format: CaptureFormat,
    fields: &[Field],
) -> Result<HostCapture, ParseError> {
    let mut cap = HostCapture {
        format: Some(format),
        ..HostCapture::default()
    };
    let at = |i: usize| fields.get(i);
    // Host name: position 0, else an English label.
    cap.name = at(0)
        .map(|f| f.value.as_str())
        .filter(|v| looks_like_host_name(v))
        .or_else(|| {
            fields
                .iter()
                .find(|f| f.label.eq_ignore_ascii_case("Host Name"))
                .map(|f| f.value.as_str())
        })
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    cap.os_caption = at(1)
        .filter(|f| is_os_name(&f.value))
        .or_else(|| {
            fields
                .iter()
                .find(|f| f.label.eq_ignore_ascii_case("OS Name"))
        })
        .or_else(|| {
            fields
                .iter()
                .take(6)
                .find(|f| is_os_name(&f.value) && f.value.contains("Server"))
        })
        .map(|f| f.value.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|v| !v.is_empty());
    let version = at(2)
        .filter(|f| version_shape(&f.value).is_some())
        .or_else(|| fields.iter().find(|f| version_shape(&f.value).is_some()));
    if let Some(f) = version {
        cap.os_version = Some(f.value.clone());
        if let Some((b, middle)) = version_shape(&f.value) {
            cap.build = Some(b);
            if middle.chars().any(|c| c.is_ascii_digit()) {
                cap.service_pack = Some(middle);
            }
        }
    }
    if cap.name.is_none() && cap.os_caption.is_none() && cap.build.is_none() {
        return Err(ParseError::whole(
            source,
            "not a systeminfo capture: no host name, OS name or OS version found",
        ));
    }
    cap.release = cap.build.as_ref().and_then(ServerRelease::from_build);
    if cap.release.is_none()
        && let Some(r) = cap.os_caption.as_deref().and_then(release_from_caption)
    {
        let (maj, min, _) = r.release_build();
        match cap.build {
            Some(b) if (b.major, b.minor) != (maj, min) => cap
                .warnings
                .push(format!("OS name says {} but the version is {b}", r.name())),
            _ => cap.release = Some(r),
        }
    }
    cap.last_boot_local = at(10)
        .and_then(|f| parse_local_datetime(&f.value))
        .or_else(|| {
            fields
                .iter()
                .find(|f| f.label.to_ascii_lowercase().contains("boot time"))
                .and_then(|f| parse_local_datetime(&f.value))
        });
    cap.utc_offset = fields.iter().find_map(|f| parse_tz_offset(&f.value));
    cap.domain = fields
        .iter()
        .find(|f| f.label.eq_ignore_ascii_case("Domain"))
        .map(|f| f.value.clone())
        .filter(|v| !v.is_empty());
    let has_kb_child = |f: &&Field| {
        f.children
            .iter()
            .filter_map(|c| bracket_item(c))
            .any(|x| entry_kb(x).is_some())
    };
    let hot = fields
        .iter()
        .find(|f| is_hotfix_label(&f.label))
        .or_else(|| fields.iter().find(has_kb_child));
    if let Some(f) = hot {
        cap.declared_hotfixes = first_number(&f.value);
        for c in &f.children {
            if let Some(item) = bracket_item(c) {
                let h = hotfix(item);
                if let Some(kb) = h.kb {
                    cap.kbs.insert(kb);
                }
                cap.hotfixes.push(h);
            }
        }
    }
    let not_kb: Vec<&str> = cap
        .hotfixes
        .iter()
        .filter(|h| h.kb.is_none())
        .map(|h| h.id.as_str())
        .collect();
    if !not_kb.is_empty() {
        let mut uniq: Vec<&str> = not_kb.clone();
        uniq.sort_unstable();
        uniq.dedup();
        cap.warnings.push(format!(
            "{} hotfix entries are not KB numbers ({}); use wmic qfe for this host",
            not_kb.len(),
            clip(&uniq.join(", "), 80)
        ));
    }
    if let Some(n) = cap.declared_hotfixes
        && (cap.hotfixes.len() as u64) < n as u64
    {
        cap.warnings.push(format!(
            "systeminfo announces {n} hotfixes but lists {} (truncated output)",
            cap.hotfixes.len()
        ));
    }
    Ok(cap)
}

/// Parse `systeminfo` list output (any language; CRLF; UTF-8 or UTF-16).
pub fn parse_systeminfo(source: &str, bytes: &[u8]) -> Result<HostCapture, ParseError> {
    let text = decode_text(bytes);
    let fields = split_fields(&text);
    if fields.is_empty() {
        return Err(ParseError::whole(source, "empty systeminfo capture"));
    }
    from_fields(source, CaptureFormat::Systeminfo, &fields)
}

/// Parse `systeminfo /fo csv` (header row, then one row per host).
pub fn parse_systeminfo_csv(source: &str, bytes: &[u8]) -> Result<Vec<HostCapture>, ParseError> {
    let text = decode_text(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| ParseError::at_line(source, 1, format!("malformed CSV header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            ParseError::at(
                source,
                (line > 0).then_some(line),
                None,
                format!("malformed CSV: {e}"),
            )
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        let fields: Vec<Field> = rec
            .iter()
            .enumerate()
            .map(|(i, v)| {
                // Multi-valued cells: "3 Hotfix(s) Installed.,[01]: KB5004330,[02]: …".
                let mut parts = v.split(',');
                let head = parts.next().unwrap_or("").trim().to_string();
                let children: Vec<String> = if v.contains("[01]") {
                    parts.map(|p| p.trim().to_string()).collect()
                } else {
                    Vec::new()
                };
                Field {
                    label: headers.get(i).cloned().unwrap_or_default(),
                    value: if children.is_empty() {
                        v.trim().to_string()
                    } else {
                        head
                    },
                    children,
                }
            })
            .collect();
        out.push(
            from_fields(source, CaptureFormat::SysteminfoCsv, &fields).map_err(|e| e.line(line))?,
        );
    }
    if out.is_empty() {
        return Err(ParseError::whole(
            source,
            "the systeminfo CSV has no host rows",
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Fixed-width tables (wmic qfe, Get-HotFix)

/// Column starts (in chars) from a header line of single-word names.
fn header_columns(header: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut prev_space = true;
    for (i, c) in header.chars().enumerate() {
        if !c.is_whitespace() && prev_space {
            out.push((i, String::new()));
        }
        if !c.is_whitespace()
            && let Some(last) = out.last_mut()
        {
            last.1.push(c);
        }
        prev_space = c.is_whitespace();
    }
    out
}

/// Column starts from a PowerShell dash line (`------  -----------`).
fn dash_columns(dashes: &str, header: &str) -> Option<Vec<(usize, String)>> {
    let d: Vec<char> = dashes.chars().collect();
    if d.is_empty() || !d.iter().all(|&c| c == '-' || c == ' ') || !d.contains(&'-') {
        return None;
    }
    let h: Vec<char> = header.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < d.len() {
        if d[i] == '-' {
            let start = i;
            while i < d.len() && d[i] == '-' {
                i += 1;
            }
            let name: String = h
                .get(start..i.min(h.len()))
                .map(|s| s.iter().collect::<String>())
                .unwrap_or_default();
            out.push((start, name.trim().to_string()));
        } else {
            i += 1;
        }
    }
    Some(out)
}

/// Split a table row into cells separated by runs of two or more spaces (or tabs), each with
/// its start column (in chars). Values such as "Security Update" keep their single spaces.
fn cells(line: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' || chars[i] == '\t' {
            i += 1;
            continue;
        }
        let start = i;
        let mut cell = String::new();
        while i < chars.len() {
            let gap = chars[i] == '\t'
                || (chars[i] == ' '
                    && (i + 1 >= chars.len() || chars[i + 1] == ' ' || chars[i + 1] == '\t'));
            if gap {
                break;
            }
            cell.push(chars[i]);
            i += 1;
        }
        out.push((start, cell.trim().to_string()));
    }
    out
}

/// Map a row's cells onto the header's columns: each cell goes to the not-yet-used column
/// (to the right of the previous one) whose start is nearest. Exact for aligned rows; also
/// right when a wide non-ASCII value shifted the rest of the row (the Russian qfe sample).
fn slice_columns(line: &str, cols: &[(usize, String)]) -> Vec<String> {
    let mut out = vec![String::new(); cols.len()];
    let mut next = 0;
    for (pos, cell) in cells(line) {
        if next >= cols.len() {
            // More cells than columns: append to the last column.
            if let Some(last) = out.last_mut() {
                if !last.is_empty() {
                    last.push(' ');
                }
                last.push_str(&cell);
            }
            continue;
        }
        let best = (next..cols.len())
            .min_by_key(|&c| cols[c].0.abs_diff(pos))
            .unwrap_or(next);
        out[best] = cell;
        next = best + 1;
    }
    out
}

struct Row {
    host: Option<String>,
    entry: HotfixEntry,
}

/// Group rows by host (case-insensitive), preserving first-seen order.
fn group(format: CaptureFormat, rows: Vec<Row>) -> Vec<HostCapture> {
    let mut out: Vec<HostCapture> = Vec::new();
    for r in rows {
        let key = r.host.as_deref().map(str::to_lowercase);
        let pos = out
            .iter()
            .position(|c| c.name.as_deref().map(str::to_lowercase) == key);
        let cap = match pos {
            Some(i) => &mut out[i],
            None => {
                out.push(HostCapture {
                    format: Some(format),
                    name: r.host.clone(),
                    ..HostCapture::default()
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        if let Some(kb) = r.entry.kb {
            cap.kbs.insert(kb);
        }
        cap.hotfixes.push(r.entry);
    }
    for c in &mut out {
        let n = c.hotfixes.iter().filter(|h| h.kb.is_none()).count();
        if n > 0 {
            c.warnings
                .push(format!("{n} hotfix entries are not KB numbers"));
        }
    }
    out
}

fn table_rows(
    source: &str,
    lines: &[(u64, &str)],
    cols: &[(usize, String)],
    host_col: &str,
) -> Result<Vec<Row>, ParseError> {
    let find = |name: &str| cols.iter().position(|(_, n)| n.eq_ignore_ascii_case(name));
    let id_i = find("HotFixID").ok_or_else(|| {
        ParseError::at(
            source,
            lines.first().map(|l| l.0),
            Some("HotFixID"),
            "missing column",
        )
    })?;
    let host_i = find(host_col);
    let desc_i = find("Description");
    let on_i = find("InstalledOn");
    let mut rows = Vec::new();
    for &(n, l) in lines {
        if l.trim().is_empty() || l.trim().chars().all(|c| c == '-' || c == ' ') {
            continue;
        }
        let v = slice_columns(l, cols);
        let mut id = v.get(id_i).cloned().unwrap_or_default();
        // Misaligned line (e.g. a wide value pushed the columns): find the KB token instead.
        if entry_kb(&id).is_none()
            && let Some(tok) = l.split_whitespace().find(|t| entry_kb(t).is_some())
        {
            id = tok.to_string();
        }
        if id.is_empty() {
            return Err(ParseError::at(
                source,
                Some(n),
                Some("HotFixID"),
                format!("no hotfix id in {:?}", clip(l.trim(), 60)),
            ));
        }
        let opt = |i: Option<usize>| i.and_then(|i| v.get(i)).filter(|s| !s.is_empty()).cloned();
        let mut entry = hotfix(&id);
        entry.description = opt(desc_i);
        entry.installed_on = opt(on_i);
        rows.push(Row {
            host: opt(host_i),
            entry,
        });
    }
    Ok(rows)
}

fn numbered(text: &str) -> Vec<(u64, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.trim_end_matches('\r')))
        .collect()
}

/// Parse `wmic qfe` output (UTF-16 or UTF-8; noise before the header is skipped). One capture
/// per `CSName`.
pub fn parse_qfe(source: &str, bytes: &[u8]) -> Result<Vec<HostCapture>, ParseError> {
    let text = decode_text(bytes);
    let lines = numbered(&text);
    let h = lines
        .iter()
        .position(|(_, l)| {
            l.split_whitespace()
                .any(|w| w.eq_ignore_ascii_case("HotFixID"))
        })
        .ok_or_else(|| {
            ParseError::whole(source, "not a wmic qfe table: no header with \"HotFixID\"")
        })?;
    let cols = header_columns(lines[h].1);
    let rows = table_rows(source, &lines[h + 1..], &cols, "CSName")?;
    if rows.is_empty() {
        return Err(ParseError::at_line(
            source,
            lines[h].0,
            "the wmic qfe table has no rows",
        ));
    }
    Ok(group(CaptureFormat::WmicQfe, rows))
}

/// Parse PowerShell `Get-HotFix` output: the default table (`Source Description HotFixID
/// InstalledBy InstalledOn` with a dash line) or `Format-List` blocks (`HotFixID : KB…`).
pub fn parse_gethotfix(source: &str, bytes: &[u8]) -> Result<Vec<HostCapture>, ParseError> {
    let text = decode_text(bytes);
    let lines = numbered(&text);
    let header = lines.iter().position(|(_, l)| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.iter().any(|x| x.eq_ignore_ascii_case("HotFixID")) && !l.contains(':')
    });
    let rows = if let Some(h) = header {
        let dash = lines
            .get(h + 1)
            .and_then(|(_, d)| dash_columns(d, lines[h].1));
        let (cols, body) = match dash {
            Some(c) => (c, h + 2),
            None => (header_columns(lines[h].1), h + 1),
        };
        table_rows(source, &lines[body.min(lines.len())..], &cols, "Source")?
    } else {
        list_rows(source, &lines)?
    };
    if rows.is_empty() {
        return Err(ParseError::whole(
            source,
            "not Get-HotFix output: no HotFixID table or list entries",
        ));
    }
    Ok(group(CaptureFormat::GetHotFix, rows))
}

fn list_rows(source: &str, lines: &[(u64, &str)]) -> Result<Vec<Row>, ParseError> {
    let mut rows = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    let mut start = 0;
    let mut flush = |cur: &mut Vec<(String, String)>, start: u64| -> Result<(), ParseError> {
        if cur.is_empty() {
            return Ok(());
        }
        let get = |k: &str| {
            cur.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let id = get("HotFixID").ok_or_else(|| {
            ParseError::at(
                source,
                Some(start),
                Some("HotFixID"),
                "missing in this entry",
            )
        })?;
        let mut entry = hotfix(&id);
        entry.description = get("Description");
        entry.installed_on = get("InstalledOn");
        rows.push(Row {
            host: get("Source")
                .or_else(|| get("PSComputerName"))
                .or_else(|| get("CSName")),
            entry,
        });
        cur.clear();
        Ok(())
    };
    for &(n, l) in lines {
        if l.trim().is_empty() {
            flush(&mut cur, start)?;
            continue;
        }
        if let Some((k, v)) = l.split_once(" : ").or_else(|| l.split_once(':')) {
            if cur.is_empty() {
                start = n;
            }
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    flush(&mut cur, start)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_shapes() {
        let v = version_shape("10.0.20348 N/A Build 20348");
        assert_eq!(
            v.map(|(b, m)| (b.to_string(), m)),
            Some(("10.0.20348".into(), "N/A".into()))
        );
        let v = version_shape("5.2.3790 Service Pack 2 Build 3790");
        assert_eq!(v.map(|(_, m)| m).as_deref(), Some("Service Pack 2"));
        assert!(version_shape("6.3.9600 Н/Д построение 9600").is_some());
        assert!(
            version_shape("Microsoft Corporation Hyper-V UEFI Release v4.0, 12/17/2019").is_none()
        );
        assert!(version_shape("10.0.20348.1 Build 20348").is_none());
    }

    #[test]
    fn kb_entries() {
        assert_eq!(entry_kb("KB893803v2 - Update"), Some(Kb(893803)));
        assert_eq!(entry_kb("KB2803821-v2 - Update"), Some(Kb(2803821)));
        assert_eq!(entry_kb("KB2862"), None);
        assert_eq!(entry_kb("File 1"), None);
        assert_eq!(entry_kb("Q147222"), None);
    }

    #[test]
    fn dates_and_offsets() {
        let d = |s: &str| parse_local_datetime(s).map(|d| d.to_string());
        assert_eq!(
            d("10/22/2021, 8:36:55 AM").as_deref(),
            Some("2021-10-22T08:36:55")
        );
        assert_eq!(
            d("3/20/2019, 9:58:25 PM").as_deref(),
            Some("2019-03-20T21:58:25")
        );
        assert_eq!(
            d("23.04.2020, 7:15:57").as_deref(),
            Some("2020-04-23T07:15:57")
        );
        assert_eq!(d("0 Days, 0 Hours, 1 Minutes, 27 Seconds"), None);
        assert_eq!(
            parse_tz_offset("(UTC-08:00) Pacific Time (US & Canada)").map(|o| o.seconds()),
            Some(-8 * 3600)
        );
        assert_eq!(
            parse_tz_offset("(UTC) Coordinated Universal Time"),
            Some(Offset::UTC)
        );
        assert_eq!(parse_tz_offset("garbage"), None);
    }
}
