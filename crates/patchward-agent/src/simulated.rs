//! A simulated Windows Server: deterministic from a seed, fed by Microsoft's real KB → fixed
//! build table (`fixtures/builds`, from every MSRC month 2016–2026), so the control plane
//! assesses it exactly as it would a real host. Each host starts on a real cumulative update
//! of its release, some months behind the newest, with realistic roles, services and backups.

use crate::host::Host;
use jiff::{SignedDuration, Timestamp};
use patchward_core::OsBuild;
use patchward_core::catalog::{Classification, Kb};
use patchward_core::product::{Installation, ProductKind, ServerRelease};
use patchward_proto::agent::{
    AGENT_PROTOCOL, BackupEvidence, EventRecord, InventoryReport, ServiceState, UpdateOutcome,
    UpdateRef,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The KB → fixed build table compiled into the binary (35 KB compressed).
const BUILDS: &[u8] = include_bytes!(
    "../../../fixtures/builds/windows-server-kb-fixedbuild_from-msrc-cvrf_2016-2026.csv.zst"
);

/// SplitMix64: a tiny, well-distributed generator; enough for reproducible simulations.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One cumulative update of a release's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamUpdate {
    pub kb: Kb,
    pub build: OsBuild,
}

/// Per release, its monthly cumulative updates in build order (the OS servicing stream).
#[derive(Debug, Clone, Default)]
pub struct Streams {
    pub by_release: BTreeMap<ServerRelease, Vec<StreamUpdate>>,
}

impl Streams {
    /// The streams of the bundled table.
    pub fn bundled() -> Result<Streams, String> {
        let bytes = zstd::decode_all(BUILDS).map_err(|e| format!("bundled KB table: {e}"))?;
        let table = patchward_feeds::kbbuilds::parse("bundled KB table", &bytes)
            .map_err(|e| e.to_string())?;
        let mut by_release: BTreeMap<ServerRelease, BTreeMap<OsBuild, Kb>> = BTreeMap::new();
        for u in table.merged() {
            let Some(product) = table.product(&u.product_id) else {
                continue;
            };
            let ProductKind::Os { release, .. } = product.kind else {
                continue;
            };
            let cumulative = matches!(
                u.classification,
                Classification::SecurityCumulativeUpdate | Classification::MonthlyRollup
            );
            if let (true, Some(build)) = (cumulative, u.fixed_build)
                && ServerRelease::from_build(&build) == Some(release)
            {
                by_release.entry(release).or_default().insert(build, u.kb);
            }
        }
        Ok(Streams {
            by_release: by_release
                .into_iter()
                .map(|(r, m)| {
                    let v = m.into_iter().map(|(build, kb)| StreamUpdate { kb, build });
                    (r, v.collect())
                })
                .collect(),
        })
    }
}

/// Releases a simulated estate is drawn from, with weights (percent) like a typical estate.
const RELEASES: [(ServerRelease, u64); 5] = [
    (ServerRelease::Server2016, 20),
    (ServerRelease::Server2019, 35),
    (ServerRelease::Server2022, 30),
    (ServerRelease::Server2025, 10),
    (ServerRelease::Server2012R2, 5),
];

/// Roles as Windows names them (`Get-WindowsFeature`), and the services each brings.
const ROLE_SETS: [(&[&str], &[&str]); 6] = [
    (&["Web-Server"], &["W3SVC", "WAS"]),
    (&["FS-FileServer"], &["LanmanServer"]),
    (
        &["AD-Domain-Services", "DNS"],
        &["NTDS", "DNS", "Netlogon", "KDC", "DFSR"],
    ),
    (&["Hyper-V"], &["vmms", "vmcompute"]),
    (&["Print-Services"], &["Spooler"]),
    (&[], &[]),
];

/// Services every Windows Server runs automatically.
const BASE_SERVICES: [&str; 8] = [
    "EventLog",
    "W32Time",
    "WinRM",
    "Dnscache",
    "LanmanWorkstation",
    "RpcSs",
    "Schedule",
    "wuauserv",
];

/// What can go wrong on a simulated host (PRODUCT.md C7's injectable faults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Installing fails with this HRESULT (`0x800F0922`: CBS could not apply it;
    /// `0x80070002`: a file is missing).
    InstallFailure(String),
    /// The update installs, then Windows rolls it back at boot ("We couldn't complete the
    /// updates. Undoing changes"), logging event 20.
    RolledBackAtBoot,
    /// The reboot never comes back.
    RebootNeverReturns,
    /// A service that ran before does not start after the reboot (event 7000).
    ServiceDoesNotStart,
    /// The last successful backup is days old.
    StaleBackup,
    /// Uninstalling fails with 0x800F0825 (CBS_E_CANNOT_UNINSTALL: a cumulative update
    /// combined with its servicing stack cannot be removed).
    UninstallFailure,
    /// Downloading takes this long (real time: a slow link or a busy WSUS); the agent
    /// reports progress meanwhile.
    SlowDownload(std::time::Duration),
}

impl Fault {
    /// The faults a profile assigns, by host: `none`, or `mixed` (about one host in five has
    /// one fault, drawn from the seed; one in ten downloads slowly).
    pub fn profile(name: &str) -> Result<fn(u64) -> Option<Fault>, String> {
        match name {
            "none" => Ok(|_| None),
            "mixed" => Ok(|r| match r % 20 {
                0 => Some(Fault::InstallFailure("0x800F0922".into())),
                1 => Some(Fault::InstallFailure("0x80070002".into())),
                2 => Some(Fault::RolledBackAtBoot),
                3 => Some(Fault::ServiceDoesNotStart),
                _ if r % 50 == 4 => Some(Fault::RebootNeverReturns),
                _ if r % 50 == 5 => Some(Fault::StaleBackup),
                // Not a failure: one host in ten downloads slowly (and succeeds).
                _ if r % 10 == 9 => Some(Fault::SlowDownload(std::time::Duration::from_secs(20))),
                _ => None,
            }),
            other => Err(format!("fault profile {other:?}: expected none or mixed")),
        }
    }
}

/// A simulated host.
#[derive(Debug, Clone)]
pub struct SimulatedHost {
    pub name: String,
    pub release: ServerRelease,
    pub installation: Installation,
    pub build: OsBuild,
    pub kbs: BTreeSet<Kb>,
    pub roles: Vec<String>,
    pub services: Vec<ServiceState>,
    pub last_boot: Timestamp,
    pub last_backup: Timestamp,
    pub pending_reboot: Vec<String>,
    pub free_mib: u64,
    /// The release's stream, shared by every host of a simulation.
    pub stream: Arc<Vec<StreamUpdate>>,
    pub fault: Option<Fault>,
    /// Build and KBs before the last install (what a rollback at boot returns to).
    pub before_install: Option<(OsBuild, BTreeSet<Kb>)>,
    pub events: Vec<EventRecord>,
    /// The reboot never returned: the host is gone.
    pub down: bool,
    /// When the current download began (real time), for a slow download.
    pub downloading_since: Option<std::time::Instant>,
}

impl SimulatedHost {
    /// Host number `index` of simulation `seed`, as of `now`: the same inputs always give
    /// the same host.
    pub fn generate(
        streams: &Streams,
        seed: u64,
        index: u32,
        now: Timestamp,
    ) -> Option<SimulatedHost> {
        let mut rng = seed ^ (u64::from(index).wrapping_mul(0xA24B_AED4_963E_E407));
        let _ = splitmix(&mut rng);
        let mut pick = splitmix(&mut rng) % 100;
        let mut release = RELEASES[0].0;
        for (r, w) in RELEASES {
            if pick < w {
                release = r;
                break;
            }
            pick -= w;
        }
        let stream = streams
            .by_release
            .get(&release)
            .or_else(|| streams.by_release.values().next())?;
        let latest = stream.len().checked_sub(1)?;
        // Most hosts are 0–3 months behind; one in ten is a year or more behind.
        let behind = if splitmix(&mut rng).is_multiple_of(10) {
            12 + (splitmix(&mut rng) % 12) as usize
        } else {
            (splitmix(&mut rng) % 4) as usize
        };
        let at = stream[latest.saturating_sub(behind)].clone();
        let installation =
            if release == ServerRelease::Server2012R2 || !splitmix(&mut rng).is_multiple_of(3) {
                Installation::Desktop
            } else {
                Installation::ServerCore
            };
        let (roles, role_services) =
            ROLE_SETS[(splitmix(&mut rng) % ROLE_SETS.len() as u64) as usize];
        let services = BASE_SERVICES
            .iter()
            .chain(role_services)
            .map(|s| ServiceState {
                name: (*s).to_string(),
                start_mode: "auto".into(),
                state: "running".into(),
            })
            .collect();
        let uptime_hours = 1 + (splitmix(&mut rng) % (24 * 40)) as i64;
        let backup_age_hours = 1 + (splitmix(&mut rng) % 20) as i64;
        Some(SimulatedHost {
            name: format!("sim{:02}-{index:05}", seed % 100),
            release,
            installation,
            build: at.build,
            kbs: BTreeSet::from([at.kb]),
            roles: roles.iter().map(|s| (*s).to_string()).collect(),
            services,
            last_boot: now - SignedDuration::from_hours(uptime_hours),
            last_backup: now - SignedDuration::from_hours(backup_age_hours),
            pending_reboot: Vec::new(),
            free_mib: 12_000 + splitmix(&mut rng) % 60_000,
            stream: Arc::new(stream.clone()),
            fault: None,
            before_install: None,
            events: Vec::new(),
            down: false,
            downloading_since: None,
        })
    }

    /// This host with a fault.
    pub fn with_fault(mut self, fault: Option<Fault>, now: Timestamp) -> Self {
        if fault == Some(Fault::StaleBackup) {
            self.last_backup = now - SignedDuration::from_hours(24 * 5);
        }
        self.fault = fault;
        self
    }

    fn event(&mut self, id: u32, source: &str, at: Timestamp, message: &str) {
        self.events.push(EventRecord {
            id,
            source: source.into(),
            at: at.to_string(),
            message: message.into(),
        });
    }

    /// The UpdateID this host's Windows Update gives a KB (deterministic per release and KB,
    /// as Microsoft's are per update).
    pub fn update_id(&self, kb: Kb) -> String {
        let mut st = u64::from(kb.0) ^ ((self.release as u64) << 40);
        let (a, b) = (splitmix(&mut st), splitmix(&mut st));
        format!(
            "{:08x}-{:04x}-5{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// The OS caption Windows reports.
    pub fn caption(&self) -> String {
        format!(
            "Microsoft Windows Server {} Datacenter",
            self.release.name().trim_start_matches("Windows Server ")
        )
    }
}

impl Host for SimulatedHost {
    fn hostname(&self) -> String {
        self.name.clone()
    }

    fn download(&mut self, _updates: &[String], _now: Timestamp) -> crate::host::Download {
        let Some(Fault::SlowDownload(takes)) = self.fault else {
            return crate::host::Download::Done;
        };
        let since = *self
            .downloading_since
            .get_or_insert_with(std::time::Instant::now);
        let elapsed = since.elapsed();
        if elapsed >= takes {
            self.downloading_since = None;
            return crate::host::Download::Done;
        }
        let percent = (elapsed.as_millis() * 100 / takes.as_millis().max(1)).min(99) as u8;
        crate::host::Download::InProgress {
            percent,
            poll: (takes / 5).min(takes - elapsed),
        }
    }

    fn scan(&mut self, updates: &[String], _now: Timestamp) -> Result<Vec<UpdateRef>, String> {
        Ok(updates
            .iter()
            .filter_map(|kb| kb.parse::<Kb>().ok().map(|k| (kb, k)))
            .filter(|(_, k)| !self.kbs.contains(k))
            .map(|(kb, k)| UpdateRef {
                kb: kb.clone(),
                update_id: self.update_id(k),
                revision: 1,
                title: format!("Update for {} ({k})", self.release.name()),
            })
            .collect())
    }

    fn install(
        &mut self,
        updates: &[String],
        found: &[UpdateRef],
        expected_build: Option<&str>,
        now: Timestamp,
    ) -> Vec<UpdateOutcome> {
        // Asked for by identity: an update this host's Windows Update does not know as that
        // (UpdateID, revision) is not found.
        let unknown: Vec<&UpdateRef> = found
            .iter()
            .filter(|f| {
                f.kb.parse::<Kb>().map_or(true, |k| {
                    f.update_id != self.update_id(k) || f.revision != 1
                })
            })
            .collect();
        if !unknown.is_empty() {
            return updates
                .iter()
                .map(|kb| UpdateOutcome {
                    kb: kb.clone(),
                    installed: false,
                    hresult: unknown
                        .iter()
                        .any(|f| f.kb == *kb)
                        .then(|| "0x80240024".to_string()), // WU_E_NO_UPDATE
                })
                .filter(|o| o.hresult.is_some())
                .collect();
        }
        if let Some(Fault::InstallFailure(hresult)) = &self.fault {
            let hresult = hresult.clone();
            self.event(
                20,
                "Microsoft-Windows-WindowsUpdateClient",
                now,
                "installation failure",
            );
            return updates
                .iter()
                .map(|kb| UpdateOutcome {
                    kb: kb.clone(),
                    installed: false,
                    hresult: Some(hresult.clone()),
                })
                .collect();
        }
        self.before_install = Some((self.build, self.kbs.clone()));
        let mut out = Vec::with_capacity(updates.len());
        for kb in updates {
            let Ok(k) = kb.parse::<Kb>() else {
                out.push(UpdateOutcome {
                    kb: kb.clone(),
                    installed: false,
                    hresult: Some("0x80240024".into()), // WU_E_NO_UPDATE: not found
                });
                continue;
            };
            // A cumulative update of the stream sets the build and replaces the ones it
            // supersedes; anything else is simply added.
            if let Some(u) = self.stream.iter().find(|u| u.kb == k)
                && u.build > self.build
            {
                let older: Vec<Kb> = self
                    .stream
                    .iter()
                    .filter(|o| o.build < u.build)
                    .map(|o| o.kb)
                    .collect();
                // What this job installs stays (a standalone update of the stream that comes
                // with the cumulative one is installed too, not replaced by it).
                self.kbs
                    .retain(|x| !older.contains(x) || updates.iter().any(|w| *w == x.to_string()));
                self.build = u.build;
            }
            // A cumulative update newer than the bundled table: Windows Update knows what it
            // brings; the control plane told us.
            let known = self.stream.iter().any(|u| u.kb == k);
            if !known
                && let Some(b) = expected_build.and_then(|b| b.parse::<OsBuild>().ok())
                && b.same_release(&self.build)
                && b > self.build
            {
                self.kbs.retain(|x| {
                    !self.stream.iter().any(|u| u.kb == *x)
                        || updates.iter().any(|w| *w == x.to_string())
                });
                self.build = b;
            }
            self.kbs.insert(k);
            out.push(UpdateOutcome {
                kb: kb.clone(),
                installed: true,
                hresult: None,
            });
        }
        self.pending_reboot = vec![
            "CBS RebootPending".into(),
            "WindowsUpdate RebootRequired".into(),
        ];
        out
    }

    fn uninstall(
        &mut self,
        updates: &[String],
        _expected_build: Option<&str>,
        now: Timestamp,
    ) -> Vec<UpdateOutcome> {
        let mut out = Vec::with_capacity(updates.len());
        let mut removed = false;
        for kb in updates {
            let Some(k) = kb.parse::<Kb>().ok().filter(|k| self.kbs.contains(k)) else {
                out.push(UpdateOutcome {
                    kb: kb.clone(),
                    installed: false,
                    hresult: None,
                });
                continue;
            };
            if self.fault == Some(Fault::UninstallFailure) {
                out.push(UpdateOutcome {
                    kb: kb.clone(),
                    installed: true,
                    hresult: Some("0x800F0825".into()),
                });
                continue;
            }
            self.kbs.remove(&k);
            removed = true;
            // Removing the cumulative update that set the build returns the host to what it
            // was before the install: the build and the updates it had superseded.
            let sets_build = self
                .stream
                .iter()
                .any(|u| u.kb == k && u.build == self.build)
                || self
                    .before_install
                    .as_ref()
                    .is_some_and(|(b, kbs)| *b != self.build && !kbs.contains(&k));
            if sets_build && let Some((build, kbs)) = &self.before_install {
                self.build = *build;
                let others: Vec<Kb> = kbs
                    .iter()
                    .filter(|x| !updates.iter().any(|w| *w == x.to_string()))
                    .copied()
                    .collect();
                self.kbs.extend(others);
            }
            out.push(UpdateOutcome {
                kb: kb.clone(),
                installed: false,
                hresult: None,
            });
        }
        if removed {
            // What the update broke goes with it.
            if matches!(
                self.fault,
                Some(Fault::ServiceDoesNotStart | Fault::RolledBackAtBoot)
            ) {
                self.fault = None;
            }
            self.pending_reboot = vec!["CBS RebootPending".into()];
            self.event(
                2,
                "Microsoft-Windows-Servicing",
                now,
                "Package was successfully changed to the Uninstalled state",
            );
        }
        out
    }

    fn reboot_pending(&self) -> bool {
        !self.pending_reboot.is_empty()
    }

    fn reboot(&mut self, now: Timestamp) -> bool {
        if self.fault == Some(Fault::RebootNeverReturns) {
            self.down = true;
            return false;
        }
        self.last_boot = now;
        self.pending_reboot.clear();
        match self.fault {
            Some(Fault::RolledBackAtBoot) => {
                if let Some((build, kbs)) = self.before_install.take() {
                    self.build = build;
                    self.kbs = kbs;
                }
                self.event(
                    20,
                    "Microsoft-Windows-WindowsUpdateClient",
                    now,
                    "We couldn't complete the updates. Undoing changes.",
                );
            }
            Some(Fault::ServiceDoesNotStart) => {
                if let Some(s) = self
                    .services
                    .iter_mut()
                    .rev()
                    .find(|s| s.start_mode == "auto")
                {
                    s.state = "stopped".into();
                    let name = s.name.clone();
                    self.event(
                        7000,
                        "Service Control Manager",
                        now,
                        &format!("The {name} service failed to start"),
                    );
                }
            }
            // A clean boot starts every automatic service.
            _ => {
                for s in self.services.iter_mut().filter(|s| s.start_mode == "auto") {
                    s.state = "running".into();
                }
            }
        }
        true
    }

    fn critical_events(&self, since: Timestamp) -> Vec<EventRecord> {
        self.events
            .iter()
            .filter(|e| e.at.parse::<Timestamp>().is_ok_and(|t| t >= since))
            .cloned()
            .collect()
    }

    fn service_state(&mut self, name: &str) -> Result<Option<String>, String> {
        Ok(self
            .services
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .map(|s| s.state.clone()))
    }

    fn inventory(&mut self, _now: Timestamp) -> InventoryReport {
        InventoryReport {
            protocol: AGENT_PROTOCOL,
            fqdn: Some(format!("{}.sim.example", self.name.to_ascii_lowercase())),
            os: self.caption(),
            build: self.build.to_string(),
            installation: Some(
                match self.installation {
                    Installation::Desktop => "full",
                    Installation::ServerCore => "core",
                }
                .into(),
            ),
            installed_kbs: self.kbs.iter().map(|k| k.to_string()).collect(),
            roles: self.roles.clone(),
            pending_reboot: self.pending_reboot.clone(),
            last_boot: Some(self.last_boot.to_string()),
            services: self.services.clone(),
            backups: vec![BackupEvidence {
                source: "Windows Server Backup".into(),
                last_success: Some(self.last_backup.to_string()),
                last_result: Some("success".into()),
            }],
            system_drive_free_mib: Some(self.free_mib),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-20T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn streams_hold_real_cumulative_updates_in_build_order() {
        let s = Streams::bundled().unwrap();
        let y2022 = &s.by_release[&ServerRelease::Server2022];
        // Golden fact from the May 2022 CVRF: KB5013944 fixes Server 2022 at 10.0.20348.707.
        let may = y2022.iter().find(|u| u.kb.to_string() == "KB5013944");
        assert_eq!(
            may.map(|u| u.build.to_string()).as_deref(),
            Some("10.0.20348.707")
        );
        assert!(y2022.windows(2).all(|w| w[0].build < w[1].build));
        for (r, stream) in &s.by_release {
            assert!(
                stream
                    .iter()
                    .all(|u| ServerRelease::from_build(&u.build) == Some(*r))
            );
        }
    }

    #[test]
    fn a_scan_finds_updates_by_identity_and_the_install_asks_for_exactly_those() {
        let s = Streams::bundled().unwrap();
        let mut h = SimulatedHost::generate(&s, 8, 1, now()).unwrap();
        let st = h.stream.clone();
        h.build = st[st.len() - 3].build;
        h.kbs = [st[st.len() - 3].kb].into();
        let new = st[st.len() - 1].kb.to_string();
        let installed = st[st.len() - 3].kb.to_string();
        let found = h.scan(&[new.clone(), installed], now()).unwrap();
        assert_eq!(found.len(), 1, "an installed KB is not offered: {found:?}");
        assert!(patchward_proto::agent::is_guid(&found[0].update_id));
        // The same host always gives a KB the same identity; another release another one.
        assert_eq!(
            h.clone().scan(std::slice::from_ref(&new), now()).unwrap(),
            found
        );
        // A revision Windows Update does not have (re-released since the scan) is not found.
        let mut stale = found.clone();
        stale[0].revision = 2;
        let r = h
            .clone()
            .install(std::slice::from_ref(&new), &stale, None, now());
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].installed, r[0].hresult.as_deref()),
            (false, Some("0x80240024"))
        );
        let r = h.install(&[new], &found, None, now());
        assert!(r.iter().all(|u| u.installed), "{r:?}");
        assert_eq!(h.build, st[st.len() - 1].build);
    }

    #[test]
    fn a_job_installing_a_standalone_update_and_a_cumulative_one_keeps_both() {
        let s = Streams::bundled().unwrap();
        let mut h = SimulatedHost::generate(&s, 8, 1, now()).unwrap();
        let st = h.stream.clone();
        let old = &st[st.len() - 6];
        let mid = &st[st.len() - 3];
        let new = &st[st.len() - 1];
        h.build = old.build;
        h.kbs = [old.kb].into();
        let kbs = vec![mid.kb.to_string(), new.kb.to_string()];
        let r = h.install(&kbs, &[], None, now());
        assert!(r.iter().all(|u| u.installed));
        let inv = h.inventory(now());
        assert!(inv.installed_kbs.contains(&mid.kb.to_string()), "{inv:?}");
        assert!(inv.installed_kbs.contains(&new.kb.to_string()));
        assert!(
            !inv.installed_kbs.contains(&old.kb.to_string()),
            "superseded"
        );
        assert_eq!(inv.build, new.build.to_string());
    }

    #[test]
    fn the_same_seed_gives_the_same_hosts_and_another_seed_others() {
        let s = Streams::bundled().unwrap();
        let a: Vec<_> = (0..20)
            .filter_map(|i| SimulatedHost::generate(&s, 7, i, now()))
            .map(|h| (h.name, h.build, h.kbs))
            .collect();
        let b: Vec<_> = (0..20)
            .filter_map(|i| SimulatedHost::generate(&s, 7, i, now()))
            .map(|h| (h.name, h.build, h.kbs))
            .collect();
        let c: Vec<_> = (0..20)
            .filter_map(|i| SimulatedHost::generate(&s, 8, i, now()))
            .map(|h| (h.build, h.kbs))
            .collect();
        assert_eq!(a.len(), 20);
        assert_eq!(a, b);
        assert_ne!(a.iter().map(|x| (x.1, x.2.clone())).collect::<Vec<_>>(), c);
    }

    #[test]
    fn a_host_reports_a_build_its_release_and_its_installed_kb_agree_on() {
        let s = Streams::bundled().unwrap();
        for i in 0..50 {
            let Some(mut h) = SimulatedHost::generate(&s, 3, i, now()) else {
                panic!("host {i} not generated");
            };
            let r = h.inventory(now());
            let build: OsBuild = r.build.parse().unwrap();
            assert_eq!(ServerRelease::from_build(&build), Some(h.release), "{r:?}");
            let kb = &r.installed_kbs[0];
            assert!(
                h.stream
                    .iter()
                    .any(|u| u.kb.to_string() == *kb && u.build == build),
                "{kb} {build}"
            );
            assert_eq!(
                patchward_core::product::release_from_caption(&r.os),
                Some(h.release),
                "{}",
                r.os
            );
        }
    }
}
