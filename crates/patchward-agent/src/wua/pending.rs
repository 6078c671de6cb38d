//! Why a reboot is pending, from the usual registry sources (read through windows-registry,
//! without unsafe code). The Configuration Manager client's own flag needs WMI and is not read.

use windows_registry::LOCAL_MACHINE;

fn key_exists(path: &str) -> bool {
    LOCAL_MACHINE.open(path).is_ok()
}

/// Every reason found, in words; empty when no reboot is pending.
pub fn reasons() -> Vec<String> {
    let mut out = Vec::new();
    if key_exists(
        r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending",
    ) {
        out.push("CBS RebootPending".to_string());
    }
    if key_exists(
        r"SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired",
    ) {
        out.push("WindowsUpdate RebootRequired".to_string());
    }
    if let Ok(k) = LOCAL_MACHINE.open(r"SYSTEM\CurrentControlSet\Control\Session Manager")
        && k.get_multi_string("PendingFileRenameOperations")
            .is_ok_and(|v| !v.is_empty())
    {
        out.push("PendingFileRenameOperations".to_string());
    }
    let name = |path: &str| {
        LOCAL_MACHINE
            .open(path)
            .and_then(|k| k.get_string("ComputerName"))
            .ok()
    };
    if let (Some(active), Some(next)) = (
        name(r"SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName"),
        name(r"SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName"),
    ) && !active.eq_ignore_ascii_case(&next)
    {
        out.push(format!("pending computer rename ({active} → {next})"));
    }
    if let Ok(k) = LOCAL_MACHINE.open(r"SYSTEM\CurrentControlSet\Services\Netlogon")
        && (k.open("JoinDomain").is_ok() || k.open("AvoidSpnSet").is_ok())
    {
        out.push("pending domain join".to_string());
    }
    if let Ok(k) = LOCAL_MACHINE.open(r"SOFTWARE\Microsoft\Updates")
        && k.get_u32("UpdateExeVolatile").is_ok_and(|v| v != 0)
    {
        out.push("UpdateExeVolatile".to_string());
    }
    out
}
