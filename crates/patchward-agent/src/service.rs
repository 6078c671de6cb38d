//! The agent as a Windows service: `PatchwardAgent`, started automatically, running as
//! LocalSystem (what the Windows Update Agent, DISM and a reboot need), its state in
//! `%ProgramData%\Patchward\agent` (readable by SYSTEM and administrators only, as ProgramData
//! subfolders created by SYSTEM are), restarted by the service manager a minute after a crash.
//!
//! `install` enrols first, in the foreground, so a bad token or an unreachable server is said
//! at once and the token never sits in the service's configuration; the service is then
//! started with only the server's address (and fingerprint).

// The dispatcher macro of windows-service expands to an unsafe block (it parses the arguments
// the service manager passes as raw pointers); nothing else here is unsafe.
#![allow(unsafe_code)]

use crate::{Agent, AgentClient, Tls};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

pub const SERVICE_NAME: &str = "PatchwardAgent";

/// `%ProgramData%\Patchward\agent`.
pub fn state_dir() -> PathBuf {
    let base = std::env::var_os("ProgramData").unwrap_or_else(|| OsString::from(r"C:\ProgramData"));
    PathBuf::from(base).join("Patchward").join("agent")
}

/// Register the service to run this executable with `service --server URL [--server-fingerprint
/// FP]`, set it to restart after a failure, and start it.
pub fn install(server: &str, fingerprint: Option<&str>) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(|e| format!("cannot open the service manager (run as an administrator): {e}"))?;
    let mut args = vec![
        OsString::from("service"),
        OsString::from("--server"),
        OsString::from(server),
    ];
    if let Some(fp) = fingerprint {
        args.push(OsString::from("--server-fingerprint"));
        args.push(OsString::from(fp));
    }
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from("Patchward agent"),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: args,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = manager
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::START | ServiceAccess::QUERY_STATUS,
        )
        .map_err(|e| format!("cannot create the {SERVICE_NAME} service: {e}"))?;
    service
        .set_description(
            "Reports this server's inventory to Patchward and runs the patch jobs approved for it.",
        )
        .map_err(|e| format!("cannot describe the service: {e}"))?;
    let restart = ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(60),
    };
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart.clone(), restart.clone(), restart]),
        })
        .map_err(|e| format!("cannot set the service's recovery: {e}"))?;
    service
        .start(&[] as &[&OsStr])
        .map_err(|e| format!("cannot start the service: {e}"))?;
    Ok(())
}

/// Stop the service (waiting up to 30 s) and delete it. The state folder is kept: a later
/// install with the same server resumes as the same agent.
pub fn uninstall() -> Result<(), String> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| format!("cannot open the service manager (run as an administrator): {e}"))?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| format!("cannot open the {SERVICE_NAME} service: {e}"))?;
    let status = service
        .query_status()
        .map_err(|e| format!("cannot query the service: {e}"))?;
    if status.current_state != ServiceState::Stopped {
        service
            .stop()
            .map_err(|e| format!("cannot stop the service: {e}"))?;
        for _ in 0..30 {
            std::thread::sleep(Duration::from_secs(1));
            if service
                .query_status()
                .is_ok_and(|s| s.current_state == ServiceState::Stopped)
            {
                break;
            }
        }
    }
    service
        .delete()
        .map_err(|e| format!("cannot delete the service: {e}"))?;
    Ok(())
}

/// How the service reaches the server (from its command line).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub server: String,
    pub fingerprint: Option<String>,
}

static CONFIG: std::sync::OnceLock<ServiceConfig> = std::sync::OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Hand this process to the service manager (the `service` command): returns when the service
/// stops.
pub fn dispatch(config: ServiceConfig) -> Result<(), String> {
    let _ = CONFIG.set(config);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main)
        .map_err(|e| format!("not started by the service manager ({e}): use `install`"))
}

fn service_main(_arguments: Vec<OsString>) {
    if let Err(e) = run_service() {
        log(&format!("the service stopped: {e}"));
    }
}

fn run_service() -> Result<(), String> {
    let config = CONFIG
        .get()
        .cloned()
        .ok_or("the service started without its configuration")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let _ = stop_tx.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = service_control_handler::register(SERVICE_NAME, handler)
        .map_err(|e| format!("cannot register with the service manager: {e}"))?;
    let report = |state: ServiceState, code: u32| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: ServiceExitCode::Win32(code),
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        });
    };
    report(ServiceState::Running, 0);
    let outcome = run_agent(&config, stop_rx);
    if let Err(e) = &outcome {
        log(e);
    }
    // ERROR_SERVICE_SPECIFIC_ERROR-like: a non-zero exit makes the manager's recovery restart it.
    report(ServiceState::Stopped, if outcome.is_ok() { 0 } else { 1 });
    outcome
}

fn run_agent(
    config: &ServiceConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let tls = match &config.fingerprint {
            Some(fp) => Tls::pinned(fp)?,
            None => Tls::Platform,
        };
        let client = AgentClient::new(&config.server, &tls).map_err(|e| e.to_string())?;
        let host = crate::wua::WuaHost::new()?;
        let mut agent = Agent::new(host, client, Some(state_dir()))
            .map_err(|e| e.to_string())?
            .with_long_poll();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        agent
            .run(false, stopped, &mut |m: &str| log(m))
            .await
            .map_err(|e| e.to_string())
    })
}

/// A line in `agent.log` beside the state (a service has no console); the last 1 MiB kept.
pub fn log(message: &str) {
    use std::io::Write;
    let dir = state_dir();
    let path = dir.join("agent.log");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > 1024 * 1024) {
        let _ = std::fs::rename(&path, dir.join("agent.log.1"));
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(f, "{} {message}", jiff::Timestamp::now());
    }
}
