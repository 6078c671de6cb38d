//! Inventory (PRODUCT.md C1): servers and everything the planner needs to know about them —
//! services (redundancy groups), dependencies, maintenance windows, blackouts, backup policies,
//! rollback plans and rings. These are plain data; validation lives in [`Estate::validate`].

use crate::build::OsBuild;
use crate::catalog::Kb;
use crate::product::{Installation, ServerRelease};
use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where a server's build revision (UBR) came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildSource {
    /// Reported with its revision (agent, CSV with `10.0.20348.2655`, registry UBR).
    Reported,
    /// Revision inferred from the newest installed cumulative update's fixed build.
    InferredFromKb,
    /// Only `major.minor.build` is known and no installed cumulative update was recognised.
    Unknown,
}

/// Server roles (PRODUCT.md: Server). Unknown role names are kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    DomainController,
    Dns,
    Dhcp,
    File,
    Print,
    SqlServer,
    Rds,
    HyperVHost,
    Web,
    Backup,
    Monitoring,
    Application,
    Exchange,
    CertificateAuthority,
    Other(String),
}

impl Role {
    /// Parse a role as written in CSV / estate files ("domain controller", "SQL", "hyper-v").
    pub fn parse(s: &str) -> Role {
        let n: String = s
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        match n.as_str() {
            "dc" | "domaincontroller" | "ad" | "adds" | "activedirectory" => Role::DomainController,
            "dns" => Role::Dns,
            "dhcp" => Role::Dhcp,
            "file" | "fileserver" | "fs" => Role::File,
            "print" | "printserver" => Role::Print,
            "sql" | "sqlserver" | "mssql" | "database" => Role::SqlServer,
            "rds" | "rdsh" | "remotedesktop" | "terminalserver" | "rdsessionhost" => Role::Rds,
            "hyperv" | "hypervhost" | "hypervisor" => Role::HyperVHost,
            "web" | "iis" | "iisweb" => Role::Web,
            "backup" | "backupserver" => Role::Backup,
            "monitoring" | "monitor" => Role::Monitoring,
            "app" | "application" | "lob" | "lineofbusiness" => Role::Application,
            "exchange" => Role::Exchange,
            "ca" | "adcs" | "certificateauthority" | "pki" => Role::CertificateAuthority,
            _ => Role::Other(s.trim().to_string()),
        }
    }

    /// The role a Windows Server role or feature (its `Get-WindowsFeature` name) stands for,
    /// when it matters for patching; features that carry no role (tools, RSAT, .NET) are `None`.
    pub fn from_windows_feature(name: &str) -> Option<Role> {
        match name.trim().to_ascii_lowercase().as_str() {
            "ad-domain-services" => Some(Role::DomainController),
            "dns" => Some(Role::Dns),
            "dhcp" => Some(Role::Dhcp),
            "fs-fileserver" | "fs-dfs-namespace" | "fs-dfs-replication" => Some(Role::File),
            "print-services" | "print-server" => Some(Role::Print),
            "hyper-v" => Some(Role::HyperVHost),
            "web-server" | "web-webserver" => Some(Role::Web),
            "rds-rd-server" | "rds-connection-broker" | "rds-gateway" | "rds-web-access" => {
                Some(Role::Rds)
            }
            "adcs-cert-authority" => Some(Role::CertificateAuthority),
            _ => None,
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Role::DomainController => "domain controller",
            Role::Dns => "DNS",
            Role::Dhcp => "DHCP",
            Role::File => "file",
            Role::Print => "print",
            Role::SqlServer => "SQL Server",
            Role::Rds => "RDS",
            Role::HyperVHost => "Hyper-V host",
            Role::Web => "IIS/web",
            Role::Backup => "backup",
            Role::Monitoring => "monitoring",
            Role::Application => "application",
            Role::Exchange => "Exchange",
            Role::CertificateAuthority => "certificate authority",
            Role::Other(s) => s,
        }
    }

    /// Roles whose outage takes down much of the estate (used by priorities and rollback rules).
    pub fn is_infrastructure(&self) -> bool {
        matches!(
            self,
            Role::DomainController
                | Role::Dns
                | Role::Dhcp
                | Role::HyperVHost
                | Role::CertificateAuthority
                | Role::Backup
        )
    }
}

/// Business criticality tier: 1 = most critical … 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tier(pub u8);

impl Tier {
    pub fn new(n: u8) -> Option<Tier> {
        (1..=4).contains(&n).then_some(Tier(n))
    }
}

impl Default for Tier {
    fn default() -> Self {
        Tier(3)
    }
}

/// How reachable a server is from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InternetExposure {
    /// Reachable from the internet (web front ends, RD gateways, mail).
    Exposed,
    /// Reachable through a DMZ / partner network or published behind a reverse proxy.
    Limited,
    #[default]
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Owner {
    pub name: String,
    pub email: Option<String>,
}

/// One Windows Server.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Server {
    /// Short host name, unique in the estate (case-insensitive).
    pub name: String,
    pub fqdn: Option<String>,
    /// OS caption as reported ("Windows Server 2022 Datacenter").
    pub os: String,
    pub release: Option<ServerRelease>,
    pub installation: Option<Installation>,
    pub build: Option<OsBuild>,
    pub hotpatch: bool,
    pub roles: Vec<Role>,
    pub owner: Option<Owner>,
    pub tier: Tier,
    pub environment: Option<String>,
    pub site: Option<String>,
    pub exposure: InternetExposure,
    pub tags: Vec<String>,
    pub installed_kbs: BTreeSet<Kb>,
    pub pending_reboot: Vec<String>,
    pub last_boot: Option<Timestamp>,
    pub last_scan: Option<Timestamp>,
    /// Names of maintenance windows this server may be patched in.
    pub windows: Vec<String>,
    /// Ring name (testing group).
    pub ring: Option<String>,
    pub backup_policy: Option<String>,
    pub rollback: Option<RollbackPlan>,
    /// Estimated install + reboot + verification time; `None` = default by role.
    pub estimated_duration: Option<SignedDuration>,
    /// When the agent restarts it after installing.
    #[serde(default)]
    pub reboot: RebootPolicy,
}

impl Server {
    pub fn has_role(&self, r: &Role) -> bool {
        self.roles.contains(r)
    }

    /// This server updated with a newer record of the same host: facts the newer record has
    /// replace ours (a fresh capture is the truth about OS, build and KBs); inventory facts it
    /// lacks (roles, owner, windows, ring, ...) are kept.
    pub fn updated_with(self, newer: Server) -> Server {
        let keep_build = match (self.build, newer.build) {
            (Some(old), Some(new)) => {
                old.ubr.is_some()
                    && new.ubr.is_none()
                    && old.same_release(&new)
                    && newer.installed_kbs.is_empty()
            }
            (_, None) => true,
            _ => false,
        };
        let or_old = |new: Vec<String>, old: Vec<String>| if new.is_empty() { old } else { new };
        // The OS travels with the build: a record without a build (an estate file naming only
        // the OS) does not relabel the build an agent reported as another release.
        let build = if keep_build { self.build } else { newer.build };
        let keep_os = newer.os.is_empty()
            || (keep_build
                && build.is_some()
                && newer.release.is_some()
                && build.and_then(|b| ServerRelease::from_build(&b)) != newer.release
                && self.release.is_some());
        Server {
            name: newer.name,
            fqdn: newer.fqdn.or(self.fqdn),
            os: if keep_os { self.os } else { newer.os },
            release: if keep_os {
                self.release.or(newer.release)
            } else {
                newer.release.or(self.release)
            },
            installation: newer.installation.or(self.installation),
            build,
            hotpatch: newer.hotpatch || self.hotpatch,
            roles: if newer.roles.is_empty() {
                self.roles
            } else {
                newer.roles
            },
            owner: newer.owner.or(self.owner),
            tier: if newer.tier == Tier::default() {
                self.tier
            } else {
                newer.tier
            },
            environment: newer.environment.or(self.environment),
            site: newer.site.or(self.site),
            exposure: if newer.exposure == InternetExposure::default() {
                self.exposure
            } else {
                newer.exposure
            },
            tags: or_old(newer.tags, self.tags),
            installed_kbs: if newer.installed_kbs.is_empty() {
                self.installed_kbs
            } else {
                newer.installed_kbs
            },
            pending_reboot: or_old(newer.pending_reboot, self.pending_reboot),
            last_boot: newer.last_boot.or(self.last_boot),
            last_scan: newer.last_scan.or(self.last_scan),
            windows: or_old(newer.windows, self.windows),
            ring: newer.ring.or(self.ring),
            backup_policy: newer.backup_policy.or(self.backup_policy),
            rollback: newer.rollback.or(self.rollback),
            estimated_duration: newer.estimated_duration.or(self.estimated_duration),
            reboot: if newer.reboot == RebootPolicy::default() {
                self.reboot
            } else {
                newer.reboot
            },
        }
    }

    /// Whether PRODUCT.md requires a rollback plan for this server.
    pub fn requires_rollback_plan(&self) -> bool {
        self.tier.0 == 1
            || self.roles.iter().any(|r| {
                matches!(
                    r,
                    Role::DomainController
                        | Role::SqlServer
                        | Role::Rds
                        | Role::HyperVHost
                        | Role::Backup
                )
            })
            || self
                .tags
                .iter()
                .any(|t| t.eq_ignore_ascii_case("vendor-managed"))
    }
}

/// Disruption budget of a service: how many members may be unavailable at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisruptionBudget {
    MaxUnavailable(u32),
    /// Percentage of members (rounded down, but never below 0).
    MaxUnavailablePercent(u8),
}

impl DisruptionBudget {
    /// Members allowed down at once for a service of `members` servers.
    pub fn allowed(&self, members: usize) -> usize {
        match *self {
            DisruptionBudget::MaxUnavailable(n) => n as usize,
            DisruptionBudget::MaxUnavailablePercent(p) => members * p as usize / 100,
        }
    }
}

/// A redundancy group: servers that together deliver one thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub members: Vec<String>,
    pub budget: DisruptionBudget,
    pub owner: Option<Owner>,
    /// Application health probes, run by the agent on each member after its reboot
    /// (verification fails when one does not pass within `probe_grace`).
    #[serde(default)]
    pub probes: Vec<HealthProbe>,
    /// How long after the reboot a failing probe is retried (applications start after
    /// Windows does); `None` = [`DEFAULT_PROBE_GRACE`].
    #[serde(default)]
    pub probe_grace: Option<SignedDuration>,
}

/// How long a failing probe is retried after the reboot when its service does not say.
pub const DEFAULT_PROBE_GRACE: SignedDuration = SignedDuration::from_secs(120);

/// An application health probe (PRODUCT.md "Verification"). The agent runs it on the server
/// itself, so `localhost` means the member being verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HealthProbe {
    /// `GET url` answers `status`, and its body contains `body_contains` when given.
    Http {
        url: String,
        status: u16,
        #[serde(default)]
        body_contains: Option<String>,
    },
    /// A TCP connection to `host:port` is accepted.
    Tcp { host: String, port: u16 },
    /// The Windows service (its service name, `MSSQLSERVER`) is running.
    WindowsService { name: String },
}

impl std::fmt::Display for HealthProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthProbe::Http {
                url,
                status,
                body_contains,
            } => {
                write!(f, "HTTP {url} answers {status}")?;
                if let Some(b) = body_contains {
                    write!(f, " containing {b:?}")?;
                }
                Ok(())
            }
            HealthProbe::Tcp { host, port } => write!(f, "TCP {host}:{port} accepts"),
            HealthProbe::WindowsService { name } => write!(f, "service {name} running"),
        }
    }
}

/// When the agent restarts the server after installing (PRODUCT.md C7; Windows Update's
/// own choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebootPolicy {
    /// When an update (or something before it) asks for a restart.
    #[default]
    IfRequired,
    /// Never: the owner restarts the server; verification waits for that reboot and fails
    /// naming it.
    Never,
    /// Always, even when nothing asks for it (a clean start proves the server comes back).
    Always,
}

impl RebootPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RebootPolicy::IfRequired => "if_required",
            RebootPolicy::Never => "never",
            RebootPolicy::Always => "always",
        }
    }

    pub fn parse(s: &str) -> Option<RebootPolicy> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "if_required" => Some(RebootPolicy::IfRequired),
            "never" => Some(RebootPolicy::Never),
            "always" => Some(RebootPolicy::Always),
            _ => None,
        }
    }
}

/// What a dependency end names: a server or every member of a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyTarget {
    Server(String),
    Service(String),
}

/// "A depends on B".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dependency {
    pub dependent: DependencyTarget,
    pub depends_on: DependencyTarget,
}

/// A recurring maintenance window: RFC 5545 RRULE evaluated in an IANA time zone, then shifted
/// by `offset_days`, starting at `start` local time for `duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub name: String,
    /// e.g. `FREQ=MONTHLY;BYDAY=2TU` (second Tuesday).
    pub rrule: String,
    pub offset_days: i32,
    pub start: Time,
    pub duration: SignedDuration,
    /// IANA zone name, e.g. `America/Los_Angeles`.
    pub time_zone: String,
    /// Emergency windows are only used by emergency cycles.
    pub emergency: bool,
}

/// What a blackout applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlackoutScope {
    Global,
    Site(String),
    Service(String),
    Server(String),
}

/// A period when nothing in scope may be patched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blackout {
    pub name: String,
    pub scope: BlackoutScope,
    pub start: Timestamp,
    pub end: Timestamp,
    pub reason: Option<String>,
}

/// Where backup evidence comes from, how fresh it must be, and when the backup job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupPolicy {
    pub name: String,
    /// e.g. "Veeam job 'Tier1 nightly'".
    pub source: String,
    /// Maximum age of the last successful backup before patching.
    pub max_age: SignedDuration,
    /// The backup job's own window; never patch during it. Same shape as a maintenance window.
    pub job_window: Option<MaintenanceWindow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackMethod {
    UninstallKb,
    Snapshot,
    RestoreFromBackup,
    VendorProcedure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackPlan {
    pub method: RollbackMethod,
    pub who: Option<String>,
    pub tested_on: Option<Date>,
    pub notes: Option<String>,
    /// Roll back without waiting for an approver when verification fails (uninstall_kb and
    /// snapshot only: the other methods are done by people).
    #[serde(default)]
    pub automatic: bool,
}

impl RollbackMethod {
    /// Whether Patchward carries it out itself: through the agent (uninstall the updates) or
    /// the operator's restore hook (snapshot).
    pub fn is_automated(self) -> bool {
        matches!(self, RollbackMethod::UninstallKb | RollbackMethod::Snapshot)
    }
}

/// A testing ring, in order (pilot first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ring {
    pub name: String,
    pub order: u32,
    /// Time after the ring's last server finished (and verified) before the next ring starts.
    pub soak: SignedDuration,
    /// Shortened soak for emergency cycles.
    pub emergency_soak: Option<SignedDuration>,
}

/// When the operations team is on duty (optional for planning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub windows: Vec<MaintenanceWindow>,
}

/// Capacity limits for concurrent work.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Capacity {
    pub max_in_flight: Option<u32>,
    /// The default limit for every site.
    pub max_in_flight_per_site: Option<u32>,
    /// Per-site overrides of `max_in_flight_per_site` (site name → limit): a head office with
    /// three engineers on call and a branch with one. Names compare like server sites do
    /// (trimmed, case-insensitive).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sites: BTreeMap<String, u32>,
}

impl Capacity {
    /// The in-flight limit of one site: its override, else the default per site.
    pub fn site_limit(&self, site: &str) -> Option<u32> {
        let site = site.trim().to_lowercase();
        self.sites
            .iter()
            .find(|(k, _)| k.trim().to_lowercase() == site)
            .map(|(_, v)| *v)
            .or(self.max_in_flight_per_site)
    }

    /// Whether any site has a limit.
    pub fn limits_sites(&self) -> bool {
        self.max_in_flight_per_site.is_some() || !self.sites.is_empty()
    }
}

/// Everything known about an estate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Estate {
    pub servers: Vec<Server>,
    pub services: Vec<Service>,
    pub dependencies: Vec<Dependency>,
    pub windows: Vec<MaintenanceWindow>,
    pub blackouts: Vec<Blackout>,
    pub backup_policies: Vec<BackupPolicy>,
    pub rings: Vec<Ring>,
    pub coverage: Option<Coverage>,
    pub capacity: Capacity,
}

/// An inconsistency inside an estate (reference to something that does not exist, duplicates).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct EstateError {
    pub what: String,
}

impl Estate {
    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Check references between the parts of the estate. Returns every problem found.
    pub fn validate(&self) -> Vec<EstateError> {
        let mut errs = Vec::new();
        let mut seen = BTreeSet::new();
        let lower = |s: &str| s.to_lowercase();
        for s in &self.servers {
            if !seen.insert(lower(&s.name)) {
                errs.push(EstateError {
                    what: format!("server {:?} is listed twice", s.name),
                });
            }
        }
        let has_server = |n: &str| seen.contains(&lower(n));
        let services: BTreeSet<String> = self.services.iter().map(|s| lower(&s.name)).collect();
        let windows: BTreeSet<String> = self.windows.iter().map(|w| lower(&w.name)).collect();
        let rings: BTreeSet<String> = self.rings.iter().map(|r| lower(&r.name)).collect();
        let policies: BTreeSet<String> = self
            .backup_policies
            .iter()
            .map(|p| lower(&p.name))
            .collect();
        for svc in &self.services {
            for m in &svc.members {
                if !has_server(m) {
                    errs.push(EstateError {
                        what: format!("service {:?} lists unknown server {:?}", svc.name, m),
                    });
                }
            }
        }
        let check_target = |t: &DependencyTarget, errs: &mut Vec<EstateError>| match t {
            DependencyTarget::Server(n) if !has_server(n) => errs.push(EstateError {
                what: format!("dependency names unknown server {n:?}"),
            }),
            DependencyTarget::Service(n) if !services.contains(&lower(n)) => {
                errs.push(EstateError {
                    what: format!("dependency names unknown service {n:?}"),
                })
            }
            _ => {}
        };
        for d in &self.dependencies {
            check_target(&d.dependent, &mut errs);
            check_target(&d.depends_on, &mut errs);
        }
        for s in &self.servers {
            for w in &s.windows {
                if !windows.contains(&lower(w)) {
                    errs.push(EstateError {
                        what: format!(
                            "server {:?} names unknown maintenance window {:?}",
                            s.name, w
                        ),
                    });
                }
            }
            if let Some(r) = &s.ring
                && !rings.contains(&lower(r))
            {
                errs.push(EstateError {
                    what: format!("server {:?} names unknown ring {:?}", s.name, r),
                });
            }
            if let Some(p) = &s.backup_policy
                && !policies.contains(&lower(p))
            {
                errs.push(EstateError {
                    what: format!("server {:?} names unknown backup policy {:?}", s.name, p),
                });
            }
        }
        for b in &self.blackouts {
            if b.end <= b.start {
                errs.push(EstateError {
                    what: format!("blackout {:?} ends before it starts", b.name),
                });
            }
        }
        errs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reported() -> Server {
        Server {
            name: "APP-07".into(),
            os: "Microsoft Windows Server 2016 Datacenter".into(),
            release: Some(ServerRelease::Server2016),
            build: Some("10.0.14393.7000".parse().unwrap()),
            installed_kbs: [Kb(5_040_434)].into(),
            ..Server::default()
        }
    }

    #[test]
    fn an_os_named_without_a_build_does_not_relabel_the_reported_build() {
        // An estate file that says 2022 but gives no build: the agent's 2016 build stays, and
        // so does the OS that goes with it; the file's other facts are taken.
        let declared = Server {
            name: "APP-07".into(),
            os: "Windows Server 2022 Datacenter".into(),
            release: Some(ServerRelease::Server2022),
            ring: Some("pilot".into()),
            ..Server::default()
        };
        let merged = reported().updated_with(declared);
        assert_eq!(merged.release, Some(ServerRelease::Server2016));
        assert_eq!(merged.os, "Microsoft Windows Server 2016 Datacenter");
        assert_eq!(merged.build, reported().build);
        assert_eq!(merged.ring.as_deref(), Some("pilot"));

        // A record with its own build replaces both.
        let upgraded = Server {
            name: "APP-07".into(),
            os: "Windows Server 2022 Datacenter".into(),
            release: Some(ServerRelease::Server2022),
            build: Some("10.0.20348.2582".parse().unwrap()),
            ..Server::default()
        };
        let merged = reported().updated_with(upgraded);
        assert_eq!(merged.release, Some(ServerRelease::Server2022));
        assert_eq!(merged.os, "Windows Server 2022 Datacenter");

        // Without a build on either side, the newer OS is the one there is.
        let mut old = reported();
        old.build = None;
        let merged = old.updated_with(Server {
            name: "APP-07".into(),
            os: "Windows Server 2019 Standard".into(),
            release: Some(ServerRelease::Server2019),
            ..Server::default()
        });
        assert_eq!(merged.release, Some(ServerRelease::Server2019));
    }
}
