//! The `patchward-agent` executable's command line (and, as a package integration test, it
//! makes `cargo test --workspace` build the executable the binary's tests run against a
//! server).

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn the_executable_lists_its_commands_and_refuses_the_service_off_windows() {
    let exe = env!("CARGO_BIN_EXE_patchward-agent");
    let help = Command::new(exe).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{text}");
    for command in ["install", "uninstall", "run"] {
        assert!(text.contains(command), "{command} in {text}");
    }
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("service ")),
        "the service entry point is hidden: {text}"
    );
    let run = Command::new(exe).args(["run", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("--enrol-token") && text.contains("--state-dir"),
        "{text}"
    );
    if !cfg!(windows) {
        let out = Command::new(exe)
            .args([
                "install",
                "--server",
                "http://127.0.0.1:9",
                "--enrol-token",
                "pwe_x",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("service on Windows only"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
