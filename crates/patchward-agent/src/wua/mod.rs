//! The Windows Update Agent backend (`cfg(windows)`): what a real Windows Server says about
//! itself, and the installation of updates through the Windows Update Agent API.
//!
//! - Inventory: one PowerShell call (OS caption, build and UBR from the registry, installation
//!   type, roles from `Get-WindowsFeature`, services with their start mode and state, Windows
//!   Server Backup's last success, free space on the system drive, last boot) plus installed
//!   KBs from the Windows Update Agent's installed updates and `Get-HotFix`; cached for ten
//!   minutes, refreshed after every install and reboot.
//! - Pending reboot (`pending.rs`): Component Based Servicing RebootPending, Windows Update
//!   RebootRequired, PendingFileRenameOperations, a pending computer rename, a pending domain
//!   join, UpdateExeVolatile (the registry, read safely through windows-registry).
//! - Install (`com.rs`, the only unsafe code in Patchward): search `IsInstalled=0 and
//!   Type='Software'`, keep the updates whose KB the job names, accept their EULAs, download,
//!   install; one outcome per KB with the HRESULT of a failure.
//! - Reboot: `shutdown.exe /r` with a reason; the agent's process ends with the host and
//!   resumes from its state file after the boot.
//! - Critical events since a time: `Get-WinEvent` on the System and Application logs.

mod com;
mod pending;

use crate::host::Host;
use jiff::{SignedDuration, Timestamp};
use patchward_proto::agent::{
    AGENT_PROTOCOL, BackupEvidence, EventRecord, InventoryReport, ServiceState, UpdateOutcome,
    UpdateRef,
};
use serde::Deserialize;
use std::process::Command;

/// How long an inventory is reused before it is taken again.
const FRESH_FOR: SignedDuration = SignedDuration::from_mins(10);

/// The facts PowerShell gathers in one call.
const INVENTORY_PS: &str = r#"
$ErrorActionPreference = 'SilentlyContinue'
$cv = Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$os = Get-CimInstance Win32_OperatingSystem
$roles = @()
if (Get-Command Get-WindowsFeature) { $roles = @(Get-WindowsFeature | Where-Object Installed | ForEach-Object Name) }
$services = @(Get-CimInstance Win32_Service | ForEach-Object { [pscustomobject]@{ name = $_.Name; start_mode = [string]$_.StartMode; delayed = [bool]$_.DelayedAutoStart; state = [string]$_.State } })
$backup = $null
if (Get-Command Get-WBSummary) { $s = Get-WBSummary; if ($s.LastSuccessfulBackupTime) { $backup = [pscustomobject]@{ last_success = $s.LastSuccessfulBackupTime.ToUniversalTime().ToString('o'); last_result = [string]$s.LastBackupResultHR } } }
$disk = Get-CimInstance Win32_LogicalDisk -Filter "DeviceID='$($env:SystemDrive)'"
$hotfixes = @(Get-HotFix | ForEach-Object HotFixID)
[pscustomobject]@{
  caption = [string]$os.Caption
  major = [int]$cv.CurrentMajorVersionNumber; minor = [int]$cv.CurrentMinorVersionNumber
  build = [string]$cv.CurrentBuildNumber; ubr = [int]$cv.UBR
  installation = [string]$cv.InstallationType
  domain = [string](Get-CimInstance Win32_ComputerSystem).Domain
  last_boot = $os.LastBootUpTime.ToUniversalTime().ToString('o')
  roles = $roles; services = $services; backup = $backup; hotfixes = $hotfixes
  free_mib = [int64]($disk.FreeSpace / 1MB)
} | ConvertTo-Json -Depth 4 -Compress
"#;

#[derive(Debug, Deserialize)]
struct Facts {
    caption: String,
    major: u32,
    minor: u32,
    build: String,
    ubr: u32,
    installation: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    last_boot: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    services: Vec<ServiceFact>,
    #[serde(default)]
    backup: Option<BackupFact>,
    #[serde(default)]
    hotfixes: Vec<String>,
    #[serde(default)]
    free_mib: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct ServiceFact {
    name: String,
    start_mode: String,
    #[serde(default)]
    delayed: bool,
    state: String,
}

#[derive(Debug, Deserialize)]
struct BackupFact {
    last_success: Option<String>,
    last_result: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EventFact {
    id: u32,
    provider_name: String,
    at: String,
    #[serde(default)]
    message: Option<String>,
}

/// Run a PowerShell script and parse its JSON output.
fn powershell<T: serde::de::DeserializeOwned>(script: &str) -> Result<T, String> {
    powershell_with(script, &[])
}

/// The same, with these environment variables: how values reach a script without becoming
/// script text.
fn powershell_with<T: serde::de::DeserializeOwned>(
    script: &str,
    env: &[(&str, &str)],
) -> Result<T, String> {
    let out = Command::new("powershell.exe")
        .envs(env.iter().copied())
        .args([
            "-NoProfile",
            "-NonInteractive",
            "-ExecutionPolicy",
            "Bypass",
            "-Command",
            script,
        ])
        .output()
        .map_err(|e| format!("cannot run powershell.exe: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "powershell.exe exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(300)
                .collect::<String>()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unexpected PowerShell output: {e}"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Removal {
    removed: bool,
    #[serde(default)]
    h_result: Option<String>,
}

/// Remove one update through DISM's PowerShell cmdlets: its packages named by the KB, and the
/// cumulative update's `Package_for_RollupFix` of `expected_build` (a cumulative update
/// combined with its servicing stack is removed by package name; `wusa /uninstall` refuses
/// it).
fn uninstall_one(kb: &str, expected_build: Option<&str>) -> UpdateOutcome {
    let refused = |hresult: &str| UpdateOutcome {
        kb: kb.to_string(),
        installed: true,
        hresult: Some(hresult.to_string()),
    };
    // Only digits reach the script: nothing the server sends is run as PowerShell.
    let Some(number) = kb
        .strip_prefix("KB")
        .or_else(|| kb.strip_prefix("kb"))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    else {
        return refused("0x80070057"); // E_INVALIDARG
    };
    // "10.0.20348.2655" → "20348.2655": the rollup package's version starts with it.
    let rollup = expected_build
        .and_then(|b| {
            let parts: Vec<&str> = b.split('.').collect();
            (parts.len() == 4 && parts.iter().all(|p| p.bytes().all(|c| c.is_ascii_digit())))
                .then(|| format!("{}.{}", parts[2], parts[3]))
        })
        .unwrap_or_default();
    let script = format!(
        "$ErrorActionPreference='Stop'; $r=[ordered]@{{Removed=$false; HResult=$null}}; try {{ \
         $p=@(Get-WindowsPackage -Online | Where-Object {{ $_.PackageState -eq 'Installed' -and \
         ($_.PackageName -match 'KB{number}' -or ('{rollup}' -ne '' -and $_.PackageName -like \
         'Package_for_RollupFix*' -and $_.PackageName -like '*~{rollup}.*')) }}); \
         foreach ($x in $p) {{ Remove-WindowsPackage -Online -PackageName $x.PackageName -NoRestart | Out-Null }}; \
         $r.Removed=$true }} catch {{ $r.HResult=('0x{{0:X8}}' -f $_.Exception.HResult) }}; \
         [pscustomobject]$r | ConvertTo-Json -Compress"
    );
    match powershell::<Removal>(&script) {
        Ok(r) if r.removed => UpdateOutcome {
            kb: kb.to_string(),
            installed: false,
            hresult: None,
        },
        Ok(r) => refused(r.h_result.as_deref().unwrap_or("0x80004005")),
        Err(e) => {
            tracing::error!(error = %e, kb, "cannot remove the update");
            refused("0x80004005") // E_FAIL
        }
    }
}

/// A Windows Server, through PowerShell, the registry and the Windows Update Agent.
pub struct WuaHost {
    name: String,
    cache: Option<(Timestamp, InventoryReport)>,
}

impl WuaHost {
    pub fn new() -> Result<WuaHost, String> {
        com::init()?;
        let name = std::env::var("COMPUTERNAME")
            .map_err(|_| "the COMPUTERNAME environment variable is not set".to_string())?;
        Ok(WuaHost { name, cache: None })
    }

    fn take_inventory(&self) -> Result<InventoryReport, String> {
        let f: Facts = powershell(INVENTORY_PS)?;
        let mut kbs: Vec<String> = f
            .hotfixes
            .iter()
            .map(|k| k.trim().to_ascii_uppercase())
            .filter(|k| k.starts_with("KB"))
            .collect();
        kbs.extend(com::installed_kbs()?);
        kbs.sort();
        kbs.dedup();
        let installation = match f.installation.trim() {
            "Server Core" => Some("core".to_string()),
            "Server" => Some("full".to_string()),
            "Nano Server" => Some("nano".to_string()),
            _ => None,
        };
        let fqdn = (!f.domain.trim().is_empty() && f.domain.contains('.')).then(|| {
            format!(
                "{}.{}",
                self.name.to_ascii_lowercase(),
                f.domain.trim().to_ascii_lowercase()
            )
        });
        Ok(InventoryReport {
            protocol: AGENT_PROTOCOL,
            fqdn,
            os: f.caption,
            build: format!("{}.{}.{}.{}", f.major, f.minor, f.build, f.ubr),
            installation,
            installed_kbs: kbs,
            roles: f.roles,
            pending_reboot: pending::reasons(),
            last_boot: f.last_boot,
            services: f
                .services
                .into_iter()
                .map(|s| ServiceState {
                    name: s.name,
                    start_mode: match (s.start_mode.to_ascii_lowercase().as_str(), s.delayed) {
                        ("auto", true) => "auto_delayed".into(),
                        (m, _) => m.to_string(),
                    },
                    state: s.state.to_ascii_lowercase().replace(' ', "_"),
                })
                .collect(),
            backups: f
                .backup
                .map(|b| BackupEvidence {
                    source: "Windows Server Backup".into(),
                    last_success: b.last_success,
                    last_result: b.last_result.map(|r| {
                        if r == "0" {
                            "success".into()
                        } else {
                            "failed".into()
                        }
                    }),
                })
                .into_iter()
                .collect(),
            system_drive_free_mib: f.free_mib.and_then(|m| u64::try_from(m).ok()),
        })
    }
}

impl Host for WuaHost {
    fn hostname(&self) -> String {
        self.name.clone()
    }

    fn inventory(&mut self, now: Timestamp) -> InventoryReport {
        if let Some((at, r)) = &self.cache
            && now.duration_since(*at) < FRESH_FOR
        {
            return r.clone();
        }
        match self.take_inventory() {
            Ok(r) => {
                self.cache = Some((now, r.clone()));
                r
            }
            Err(e) => {
                tracing::warn!(error = %e, "inventory failed; reporting the last one");
                self.cache.as_ref().map(|c| c.1.clone()).unwrap_or_default()
            }
        }
    }

    fn download(&mut self, _updates: &[String], _now: Timestamp) -> crate::host::Download {
        // The Windows Update Agent downloads within `install` (IUpdateDownloader, then
        // IUpdateInstaller); the agent reports progress while that runs.
        crate::host::Download::Done
    }

    fn scan(&mut self, updates: &[String], _now: Timestamp) -> Result<Vec<UpdateRef>, String> {
        com::scan(updates)
    }

    fn install(
        &mut self,
        updates: &[String],
        found: &[UpdateRef],
        _expected_build: Option<&str>,
        _now: Timestamp,
    ) -> Vec<UpdateOutcome> {
        self.cache = None;
        com::install(updates, found).unwrap_or_else(|e| {
            updates
                .iter()
                .map(|kb| UpdateOutcome {
                    kb: kb.clone(),
                    installed: false,
                    hresult: Some(e.clone()),
                })
                .collect()
        })
    }

    fn uninstall(
        &mut self,
        updates: &[String],
        expected_build: Option<&str>,
        _now: Timestamp,
    ) -> Vec<UpdateOutcome> {
        self.cache = None;
        updates
            .iter()
            .map(|kb| uninstall_one(kb, expected_build))
            .collect()
    }

    fn reboot_pending(&self) -> bool {
        !pending::reasons().is_empty()
    }

    fn reboot(&mut self, _now: Timestamp) -> bool {
        self.cache = None;
        let started = Command::new("shutdown.exe")
            .args([
                "/r",
                "/t",
                "30",
                "/d",
                "p:2:17",
                "/c",
                "Patchward: restarting to complete updates",
            ])
            .status();
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the reboot");
        }
        // The process ends with the host; the agent resumes after the boot.
        false
    }

    fn service_state(&mut self, name: &str) -> Result<Option<String>, String> {
        // The name reaches PowerShell through the environment, never as script text.
        let status: String = powershell_with(
            "$s = Get-Service -Name $env:PATCHWARD_PROBE_SERVICE -ErrorAction SilentlyContinue; \
             ConvertTo-Json -Compress ([string]$(if ($s) { $s.Status } else { '' }))",
            &[("PATCHWARD_PROBE_SERVICE", name)],
        )?;
        // Get-Service says Running, Stopped, StartPending, ...: the inventory's words.
        let status = status.trim();
        if status.is_empty() {
            return Ok(None);
        }
        let mut word = String::new();
        for (i, c) in status.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                word.push('_');
            }
            word.push(c.to_ascii_lowercase());
        }
        Ok(Some(word))
    }

    fn critical_events(&self, since: Timestamp) -> Vec<EventRecord> {
        let ids = patchward_core::execution::CRITICAL_EVENT_IDS
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let script = format!(
            "$ErrorActionPreference='SilentlyContinue'; @(Get-WinEvent -FilterHashtable @{{LogName='System','Application'; Id={ids}; StartTime=[datetime]::Parse('{since}').ToUniversalTime()}} | \
             ForEach-Object {{ [pscustomobject]@{{ Id=$_.Id; ProviderName=$_.ProviderName; At=$_.TimeCreated.ToUniversalTime().ToString('o'); Message=$_.Message }} }}) | ConvertTo-Json -Compress"
        );
        match powershell::<serde_json::Value>(&script) {
            Ok(serde_json::Value::Null) => Vec::new(),
            Ok(v) => {
                let list = match v {
                    serde_json::Value::Array(a) => a,
                    one => vec![one],
                };
                list.into_iter()
                    .filter_map(|e| serde_json::from_value::<EventFact>(e).ok())
                    .map(|e| EventRecord {
                        id: e.id,
                        source: e.provider_name,
                        at: e.at,
                        message: e.message.unwrap_or_default(),
                    })
                    .collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the event logs");
                Vec::new()
            }
        }
    }
}
