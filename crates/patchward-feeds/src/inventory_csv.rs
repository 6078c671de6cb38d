//! Server inventory CSV import (and export, for round trips).
//!
//! Required columns: `name`, `os`. Optional (any order, case-insensitive, spaces or dashes
//! allowed in names): `build, installation, kbs, fqdn, roles, owner, owner_email, tier,
//! environment, site, exposure, tags, hotpatch, windows, ring, backup_policy,
//! estimated_duration, last_boot, last_scan, pending_reboot` (a boolean, or the reasons a
//! reboot is pending). Lists inside a field are separated by `;` or `,` (KBs also by spaces).
//! Unknown columns are ignored with a warning.
//!
//! The whole file is validated before anything is returned: up to [`ParseErrors::LIMIT`]
//! errors are reported, each naming the file, line and field. Duplicate names are errors.

use crate::error::{ParseError, ParseErrors};
use crate::input::decode_text;
use crate::util::{clip, format_duration, parse_bool, parse_duration, parse_instant, split_list};
use patchward_core::OsBuild;
use patchward_core::catalog::Kb;
use patchward_core::inventory::{InternetExposure, Owner, Role, Server, Tier};
use patchward_core::product::{Installation, ServerRelease, release_from_caption};
use std::collections::{BTreeMap, BTreeSet};

/// A validated import.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InventoryImport {
    pub servers: Vec<Server>,
    /// Ignored columns and other non-fatal remarks.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Col {
    Name,
    Os,
    Build,
    Installation,
    Kbs,
    Fqdn,
    Roles,
    Owner,
    OwnerEmail,
    Tier,
    Environment,
    Site,
    Exposure,
    Tags,
    Hotpatch,
    Windows,
    Ring,
    BackupPolicy,
    EstimatedDuration,
    LastBoot,
    LastScan,
    PendingReboot,
}

impl Col {
    fn from_header(h: &str) -> Option<Col> {
        let n: String = h
            .trim()
            .trim_start_matches('\u{feff}')
            .to_lowercase()
            .chars()
            .map(|c| if c == ' ' || c == '-' { '_' } else { c })
            .collect();
        Some(match n.as_str() {
            "name" | "hostname" | "host" | "server" | "computer_name" => Col::Name,
            "os" | "operating_system" | "operatingsystem" | "os_name" => Col::Os,
            "build" | "os_build" | "os_version" | "version" => Col::Build,
            "installation" | "installation_type" | "install_type" => Col::Installation,
            "kbs" | "installed_kbs" | "hotfixes" | "kb" => Col::Kbs,
            "fqdn" | "dns_name" => Col::Fqdn,
            "roles" | "role" => Col::Roles,
            "owner" | "owner_name" | "application_owner" => Col::Owner,
            "owner_email" | "email" => Col::OwnerEmail,
            "tier" | "criticality" => Col::Tier,
            "environment" | "env" => Col::Environment,
            "site" | "location" => Col::Site,
            "exposure" | "internet_exposure" => Col::Exposure,
            "tags" | "tag" => Col::Tags,
            "hotpatch" => Col::Hotpatch,
            "windows" | "maintenance_windows" | "window" => Col::Windows,
            "ring" => Col::Ring,
            "backup_policy" | "backup" => Col::BackupPolicy,
            "estimated_duration" | "duration" => Col::EstimatedDuration,
            "last_boot" => Col::LastBoot,
            "last_scan" => Col::LastScan,
            "pending_reboot" => Col::PendingReboot,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Col::Name => "name",
            Col::Os => "os",
            Col::Build => "build",
            Col::Installation => "installation",
            Col::Kbs => "kbs",
            Col::Fqdn => "fqdn",
            Col::Roles => "roles",
            Col::Owner => "owner",
            Col::OwnerEmail => "owner_email",
            Col::Tier => "tier",
            Col::Environment => "environment",
            Col::Site => "site",
            Col::Exposure => "exposure",
            Col::Tags => "tags",
            Col::Hotpatch => "hotpatch",
            Col::Windows => "windows",
            Col::Ring => "ring",
            Col::BackupPolicy => "backup_policy",
            Col::EstimatedDuration => "estimated_duration",
            Col::LastBoot => "last_boot",
            Col::LastScan => "last_scan",
            Col::PendingReboot => "pending_reboot",
        }
    }
}

/// Host names: letters, digits, `-`, `_`, `.`.
pub fn valid_server_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Parse an exposure value.
pub fn parse_exposure(s: &str) -> Result<InternetExposure, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "internal" | "private" | "none" => Ok(InternetExposure::Internal),
        "exposed" | "internet" | "public" | "external" => Ok(InternetExposure::Exposed),
        "limited" | "dmz" | "partner" => Ok(InternetExposure::Limited),
        _ => Err(format!(
            "unknown exposure {:?} (expected exposed, limited or internal)",
            clip(s, 40)
        )),
    }
}

pub fn exposure_name(e: InternetExposure) -> &'static str {
    match e {
        InternetExposure::Exposed => "exposed",
        InternetExposure::Limited => "limited",
        InternetExposure::Internal => "internal",
    }
}

/// Parse a tier: `1`..`4`, also `tier 1` / `T1`.
pub fn parse_tier(s: &str) -> Result<Option<Tier>, String> {
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Ok(None);
    }
    let digits = t.trim_start_matches("tier").trim_start_matches('t').trim();
    digits
        .parse::<u8>()
        .ok()
        .and_then(Tier::new)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "not a tier: {:?} (expected 1 (most critical) to 4)",
                clip(s, 20)
            )
        })
}

/// KBs separated by spaces, `;` or `,`.
pub fn parse_kb_list(s: &str) -> Result<BTreeSet<Kb>, String> {
    s.split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<Kb>()
                .map_err(|_| format!("not a KB number: {:?}", clip(t, 30)))
        })
        .collect()
}

/// Release from an OS caption and an optional build; errors when they disagree.
pub fn release_of(os: &str, build: Option<&OsBuild>) -> Result<Option<ServerRelease>, String> {
    let by_caption = release_from_caption(os);
    let by_build = build.and_then(ServerRelease::from_build);
    match (by_caption, by_build) {
        (Some(c), Some(b)) if c != b => Err(format!(
            "the build belongs to {} but the OS is {}",
            b.name(),
            c.name()
        )),
        (c, b) => Ok(b.or(c)),
    }
}

/// Parse a server inventory CSV.
pub fn parse(source: &str, bytes: &[u8]) -> Result<InventoryImport, ParseErrors> {
    let text = decode_text(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| ParseError::at_line(source, 1, format!("cannot read the header: {e}")))?
        .clone();
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(ParseError::whole(source, "empty file: no header line").into());
    }
    let mut warnings = Vec::new();
    let mut cols: BTreeMap<Col, usize> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        match Col::from_header(h) {
            Some(c) => {
                if cols.insert(c, i).is_some() {
                    return Err(ParseError::at(
                        source,
                        Some(1),
                        Some(c.name()),
                        "column appears twice",
                    )
                    .into());
                }
            }
            None if h.trim().is_empty() => {}
            None => warnings.push(format!(
                "{source}: ignoring unknown column {:?}",
                clip(h, 40)
            )),
        }
    }
    for req in [Col::Name, Col::Os] {
        if !cols.contains_key(&req) {
            return Err(ParseError::at(source, Some(1), Some(req.name()), "missing column").into());
        }
    }
    let width = headers.len();
    let mut errs = ParseErrors::new();
    let mut servers = Vec::new();
    let mut names: BTreeMap<String, u64> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                if !errs.push(ParseError::at(
                    source,
                    line,
                    None,
                    format!("malformed CSV: {e}"),
                )) {
                    break;
                }
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rec.len() != width {
            errs.push(ParseError::at_line(
                source,
                line,
                format!("expected {width} fields, found {}", rec.len()),
            ));
            continue;
        }
        let mut row = RowCtx {
            source,
            line,
            errs: &mut errs,
        };
        let get = |c: Col| cols.get(&c).and_then(|&i| rec.get(i)).unwrap_or("");
        if let Some(s) = row_server(&mut row, &get, &mut warnings) {
            let key = s.name.to_lowercase();
            if let Some(prev) = names.insert(key, line) {
                errs.push(ParseError::at(
                    source,
                    Some(line),
                    Some("name"),
                    format!("server {:?} is already listed on line {prev}", s.name),
                ));
            } else {
                servers.push(s);
            }
        }
        if errs.truncated {
            break;
        }
    }
    if servers.is_empty() && errs.is_empty() {
        errs.push(ParseError::whole(source, "no servers in the file"));
    }
    errs.into_result(InventoryImport { servers, warnings })
}

struct RowCtx<'a> {
    source: &'a str,
    line: u64,
    errs: &'a mut ParseErrors,
}

impl RowCtx<'_> {
    fn fail(&mut self, c: Col, msg: String) {
        self.errs.push(ParseError::at(
            self.source,
            Some(self.line),
            Some(c.name()),
            msg,
        ));
    }
    fn check<T>(&mut self, c: Col, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.fail(c, m);
                None
            }
        }
    }
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn row_server<'r>(
    row: &mut RowCtx<'_>,
    get: &dyn Fn(Col) -> &'r str,
    warnings: &mut Vec<String>,
) -> Option<Server> {
    let before = row.errs.len() + usize::from(row.errs.truncated);
    let name = get(Col::Name).trim().to_string();
    if name.is_empty() {
        row.fail(Col::Name, "empty".into());
    } else if !valid_server_name(&name) {
        row.fail(
            Col::Name,
            format!(
                "not a host name: {:?} (letters, digits, '-', '_', '.')",
                clip(&name, 40)
            ),
        );
    }
    let os = get(Col::Os)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if os.is_empty() {
        row.fail(Col::Os, "empty".into());
    } else if !os.to_lowercase().contains("windows") {
        row.fail(
            Col::Os,
            format!(
                "not a Windows OS: {:?} (e.g. \"Windows Server 2022 Datacenter\")",
                clip(&os, 40)
            ),
        );
    }
    let build = match get(Col::Build).trim() {
        "" => None,
        b => row.check(Col::Build, b.parse::<OsBuild>().map_err(|e| e.to_string())),
    };
    let release = row
        .check(Col::Build, release_of(&os, build.as_ref()))
        .flatten();
    let installation = match get(Col::Installation).trim() {
        "" => None,
        s => row.check(
            Col::Installation,
            Installation::parse(s).ok_or_else(|| {
                format!(
                    "unknown installation {:?} (expected \"Desktop Experience\" or \"Server Core\")",
                    clip(s, 40)
                )
            }),
        ),
    };
    let installed_kbs = row
        .check(Col::Kbs, parse_kb_list(get(Col::Kbs)))
        .unwrap_or_default();
    let tier = row
        .check(Col::Tier, parse_tier(get(Col::Tier)))
        .flatten()
        .unwrap_or_default();
    let exposure = row
        .check(Col::Exposure, parse_exposure(get(Col::Exposure)))
        .unwrap_or_default();
    let hotpatch = row
        .check(Col::Hotpatch, parse_bool(get(Col::Hotpatch)))
        .flatten()
        .unwrap_or(false);
    if hotpatch && release.is_some_and(|r| !r.supports_hotpatch()) {
        warnings.push(format!(
            "{}:{}: {name}: hotpatch is set but {} has no hotpatch updates",
            row.source,
            row.line,
            release.map(|r| r.name()).unwrap_or_default()
        ));
    }
    let estimated_duration = match get(Col::EstimatedDuration).trim() {
        "" => None,
        s => row.check(
            Col::EstimatedDuration,
            parse_duration(s).and_then(|d| {
                if d.is_positive() {
                    Ok(d)
                } else {
                    Err(format!("must be positive: {:?}", clip(s, 20)))
                }
            }),
        ),
    };
    let instant = |row: &mut RowCtx<'_>, c: Col| match get(c).trim() {
        "" => None,
        s => row.check(c, parse_instant(s)),
    };
    let last_boot = instant(row, Col::LastBoot);
    let last_scan = instant(row, Col::LastScan);
    let pending_reboot = match parse_bool(get(Col::PendingReboot)) {
        Ok(Some(true)) => vec!["pending".to_string()],
        Ok(Some(false) | None) => Vec::new(),
        Err(_) => split_list(get(Col::PendingReboot)),
    };
    let owner_name = opt(get(Col::Owner));
    let owner_email = opt(get(Col::OwnerEmail));
    if let Some(e) = &owner_email
        && (!e.contains('@') || e.contains(char::is_whitespace))
    {
        row.fail(
            Col::OwnerEmail,
            format!("not an email address: {:?}", clip(e, 40)),
        );
    }
    let owner = match (owner_name, owner_email) {
        (None, None) => None,
        (Some(name), email) => Some(Owner { name, email }),
        (None, Some(email)) => Some(Owner {
            name: email.clone(),
            email: Some(email),
        }),
    };
    let after = row.errs.len() + usize::from(row.errs.truncated);
    if after > before {
        return None;
    }
    Some(Server {
        name,
        fqdn: opt(get(Col::Fqdn)),
        os,
        release,
        installation,
        build,
        hotpatch,
        roles: split_list(get(Col::Roles))
            .iter()
            .map(|r| Role::parse(r))
            .collect(),
        owner,
        tier,
        environment: opt(get(Col::Environment)),
        site: opt(get(Col::Site)),
        exposure,
        tags: split_list(get(Col::Tags)),
        installed_kbs,
        pending_reboot,
        last_boot,
        last_scan,
        windows: split_list(get(Col::Windows)),
        ring: opt(get(Col::Ring)),
        backup_policy: opt(get(Col::BackupPolicy)),
        rollback: None,
        estimated_duration,
        // Like rollback plans, the reboot policy is set in the estate file.
        reboot: Default::default(),
    })
}

/// Write servers as inventory CSV (every column; lists joined with `;`). Rollback plans and
/// reboot policies are not representable in CSV and are dropped (use the estate file for them).
pub fn to_csv(servers: &[Server]) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let header = [
        "name",
        "fqdn",
        "os",
        "build",
        "installation",
        "hotpatch",
        "roles",
        "owner",
        "owner_email",
        "tier",
        "environment",
        "site",
        "exposure",
        "tags",
        "kbs",
        "windows",
        "ring",
        "backup_policy",
        "estimated_duration",
        "pending_reboot",
        "last_boot",
        "last_scan",
    ];
    // Writing into a Vec cannot fail; errors are ignored rather than unwrapped.
    let _ = w.write_record(header);
    for s in servers {
        let kbs: Vec<String> = s.installed_kbs.iter().map(Kb::to_string).collect();
        let roles: Vec<&str> = s.roles.iter().map(Role::label).collect();
        let rec = [
            s.name.clone(),
            s.fqdn.clone().unwrap_or_default(),
            s.os.clone(),
            s.build.map(|b| b.to_string()).unwrap_or_default(),
            s.installation
                .map(|i| i.name().to_string())
                .unwrap_or_default(),
            s.hotpatch.to_string(),
            roles.join(";"),
            s.owner.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
            s.owner
                .as_ref()
                .and_then(|o| o.email.clone())
                .unwrap_or_default(),
            s.tier.0.to_string(),
            s.environment.clone().unwrap_or_default(),
            s.site.clone().unwrap_or_default(),
            exposure_name(s.exposure).to_string(),
            s.tags.join(";"),
            kbs.join(" "),
            s.windows.join(";"),
            s.ring.clone().unwrap_or_default(),
            s.backup_policy.clone().unwrap_or_default(),
            s.estimated_duration
                .map(format_duration)
                .unwrap_or_default(),
            s.pending_reboot.join(";"),
            s.last_boot.map(|t| t.to_string()).unwrap_or_default(),
            s.last_scan.map(|t| t.to_string()).unwrap_or_default(),
        ];
        let _ = w.write_record(rec);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_and_optional_columns() {
        let csv = "Name,OS,Build,Installation,KBs,Roles,Tier,Hotpatch,Estimated Duration,Color\n\
                   APP-01,Windows Server 2022 Datacenter,10.0.20348.2655,Server Core,KB5041160 KB5041590,dc;sql,1,yes,90m,blue\n\
                   app-02,Windows Server 2019 Standard,10.0.17763,Desktop Experience,,,,,,\n";
        let r = parse("s.csv", csv.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(r.servers.len(), 2);
        let s = &r.servers[0];
        assert_eq!(s.release, Some(ServerRelease::Server2022));
        assert_eq!(s.installation, Some(Installation::ServerCore));
        assert_eq!(s.installed_kbs.len(), 2);
        assert_eq!(s.roles, vec![Role::DomainController, Role::SqlServer]);
        assert!(s.hotpatch);
        assert_eq!(s.estimated_duration.map(|d| d.as_secs()), Some(5400));
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert_eq!(r.servers[1].build.and_then(|b| b.ubr), None);
    }

    #[test]
    fn errors_name_line_and_field() {
        let csv = "name,os,build\nA,Windows Server 2022,10.0.x\nB,Windows Server 2019,10.0.20348.1\nA,Windows Server 2022,\n";
        let e = parse("hosts.csv", csv.as_bytes()).err().unwrap_or_default();
        let msgs: Vec<String> = e.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs[0],
            "hosts.csv:2: field \"build\": not an OS build: \"10.0.x\" (expected major.minor.build[.revision], e.g. 10.0.20348.2582)"
        );
        assert!(
            msgs[1].starts_with(
                "hosts.csv:3: field \"build\": the build belongs to Windows Server 2022"
            )
        );
        assert_eq!(
            msgs.len(),
            2,
            "A on line 4 is not a duplicate since line 2 failed: {msgs:?}"
        );
        let e = parse("hosts.csv", b"name,build\nA,10.0.20348\n")
            .err()
            .unwrap_or_default();
        assert_eq!(
            e.errors[0].to_string(),
            "hosts.csv:1: field \"os\": missing column"
        );
        let dup = "name,os\nA,Windows Server 2022\na,Windows Server 2022\n";
        let e = parse("hosts.csv", dup.as_bytes()).err().unwrap_or_default();
        assert_eq!(e.errors[0].line, Some(3));
    }

    #[test]
    fn round_trip() {
        let csv = "name,os,build,installation,kbs,fqdn,roles,owner,owner_email,tier,environment,site,exposure,tags,hotpatch,windows,ring,backup_policy,estimated_duration,last_boot,last_scan,pending_reboot\n\
                   DC-01,Windows Server 2022 Datacenter,10.0.20348.2582,Desktop Experience,KB5040437,dc-01.corp.example.com,\"domain controller; dns\",Identity team,identity@example.com,1,production,Seattle,internal,pci,false,patch-tuesday+4,pilot,nightly,1h 30m,2026-11-01T03:00:00Z,2026-11-02T03:00:00Z,\n";
        let a = parse("a.csv", csv.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        let out = to_csv(&a.servers);
        let b = parse("b.csv", out.as_bytes()).unwrap_or_else(|e| unreachable!("{e}\n{out}"));
        assert_eq!(a.servers, b.servers);
    }
}
