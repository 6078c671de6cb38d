//! The command line end to end against a real SQLite file.

use crate::{fixtures, ok, pw, tmpdir};

use std::path::Path;
use std::process::Command;

fn f(p: &str) -> String {
    fixtures().join(p).display().to_string()
}

#[test]
fn import_assess_json_and_idempotent_reimport() {
    let d = tmpdir("assess");
    let db = d.join("p.db");
    let feeds = [
        f("msrc-cvrf/2024-Jun.xml.zst"),
        f("msrc-cvrf/2024-Jul.xml.zst"),
        f("kev"),
        f("epss"),
        f("lifecycle"),
    ];
    let mut args = vec!["import", "feeds"];
    args.extend(feeds.iter().map(String::as_str));
    let first = pw(&db, &args);
    ok(&first);
    let again = pw(&db, &args);
    ok(&again);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("feeds: 0 stored, 7 unchanged, 1 older than stored"),
        "{err}"
    );

    let csv = d.join("hosts.csv");
    std::fs::write(
        &csv,
        "name,os,build,installation,kbs\n\
         WEB-01,Windows Server 2022 Datacenter,10.0.20348.2527,Desktop Experience,KB5039227\n\
         WEB-02,Windows Server 2022 Datacenter,10.0.20348.2582,Server Core,KB5040437\n\
         APP-01,Windows Server 2019 Standard,10.0.17763,Desktop Experience,KB5039217 KB5041160\n",
    )
    .unwrap();
    ok(&pw(&db, &["import", "hosts", csv.to_str().unwrap()]));
    let out = ok(&pw(
        &db,
        &["assess", "--as-of", "2024-08-01", "--format", "json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let servers = v["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    let by = |n: &str| servers.iter().find(|s| s["name"] == n).unwrap().clone();
    let web1 = by("WEB-01");
    for k in [
        "name",
        "product",
        "installation",
        "build",
        "build_source",
        "support",
        "missing_updates",
        "open_cves",
    ] {
        assert!(web1.get(k).is_some(), "missing key {k}");
    }
    assert_eq!(web1["build_source"], "reported");
    // One cumulative update closes everything on the OS: the newest Server 2022 LCU in the data
    // (the July document was later edited to list newer KBs), at or above July's build. The
    // in-box .NET Framework 4.8 has its own updates, and none is installed.
    let missing = web1["missing_updates"].as_array().unwrap();
    let (os, dotnet): (Vec<_>, Vec<_>) = missing
        .iter()
        .partition(|m| m["classification"] != "dot_net");
    assert_eq!(os.len(), 1, "{missing:?}");
    assert!(
        dotnet.iter().all(|m| m["title"]
            .as_str()
            .unwrap()
            .contains(".NET Framework 3.5 AND 4.8 on")),
        "{dotnet:?}"
    );
    let m = os[0];
    assert_eq!(m["classification"], "security_cumulative_update");
    assert!(
        m["title"]
            .as_str()
            .unwrap()
            .contains(m["kb"].as_str().unwrap())
    );
    let fb: patchward_core::build::OsBuild = m["fixed_build"].as_str().unwrap().parse().unwrap();
    assert!(fb >= "10.0.20348.2582".parse().unwrap());
    let c = web1["open_cves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cve"] == "CVE-2024-38080")
        .unwrap()
        .clone();
    for k in [
        "cve",
        "severity",
        "cvss",
        "kev",
        "exploited",
        "epss",
        "fixed_by",
        "decision",
        "due",
        "reasons",
    ] {
        assert!(c.get(k).is_some(), "missing key {k} in open CVE");
    }
    assert_eq!(c["kev"], true);
    assert_eq!(c["fixed_by"][0], "KB5040437");
    assert!(!c["reasons"].as_array().unwrap().is_empty());
    // WEB-02 runs the July build: only CVEs MSRC later gave newer fixes remain open.
    for c in by("WEB-02")["open_cves"].as_array().unwrap() {
        assert!(
            c["fixed_by"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k.as_str().unwrap() > "KB5041000"),
            "{c}"
        );
    }
    assert!(
        by("WEB-02")["open_cves"].as_array().unwrap().len()
            < web1["open_cves"].as_array().unwrap().len()
    );
    assert_eq!(by("WEB-02")["installation"], "Server Core");
    assert_eq!(by("APP-01")["build_source"], "inferred_from_kb");

    let table = ok(&pw(&db, &["assess", "--as-of", "2024-08-01"]));
    assert!(table.contains("WEB-01") && table.contains("Most urgent"));
    let csv_out = ok(&pw(
        &db,
        &[
            "assess",
            "--as-of",
            "2024-08-01",
            "--format",
            "csv",
            "--kev-only",
        ],
    ));
    assert!(csv_out.starts_with("server,product,build,build_source"));
    let all = ok(&pw(
        &db,
        &["assess", "--as-of", "2024-08-01", "--format", "csv"],
    ));
    assert!(
        all.lines()
            .any(|l| l.starts_with("APP-01,") && l.contains(",inferred_from_kb,")),
        "{all}"
    );
    assert!(
        csv_out.lines().skip(1).all(|l| l.contains(",true,")),
        "{csv_out}"
    );
    let listed = ok(&pw(
        &db,
        &["cves", "--kev", "--product", "2022", "--format", "json"],
    ));
    let l: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert!(l.as_array().unwrap().iter().all(|c| c["kev"] == true));
    assert!(
        l.as_array()
            .unwrap()
            .iter()
            .any(|c| c["cve"] == "CVE-2024-38080")
    );
    let st = ok(&pw(&db, &["feeds", "status", "--as-of", "2024-08-01"]));
    assert!(st.contains("msrc-cvrf") && st.contains("kev"), "{st}");
}

#[test]
fn bad_inputs_name_file_line_field_and_store_nothing() {
    let d = tmpdir("bad");
    let db = d.join("p.db");
    ok(&pw(
        &db,
        &["import", "feeds", &f("msrc-cvrf/2024-Jul.xml.zst")],
    ));
    let good = d.join("good.csv");
    std::fs::write(&good, "name,os,build,installation,kbs\nA,Windows Server 2022,10.0.20348.2582,Server Core,KB5040437\n").unwrap();
    ok(&pw(&db, &["import", "hosts", good.to_str().unwrap()]));

    // A bad build on line 3 of a second file: nothing from either file is stored.
    let bad = d.join("bad.csv");
    std::fs::write(&bad, "name,os,build,installation,kbs\nB,Windows Server 2022,10.0.20348.1,Desktop Experience,\nC,Windows Server 2022,10.0.x,Desktop Experience,\n").unwrap();
    let o = pw(
        &db,
        &[
            "import",
            "hosts",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.csv") && err.contains(":3") && err.contains("build"),
        "{err}"
    );
    let servers = ok(&pw(&db, &["servers", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&servers).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "nothing partial stored");

    // A missing required column.
    let nocol = d.join("nocol.csv");
    std::fs::write(&nocol, "name,build\nX,10.0.20348.1\n").unwrap();
    let o = pw(&db, &["import", "hosts", nocol.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nocol.csv") && err.contains("\"os\""), "{err}");

    // A truncated CVRF document: an error naming the file; the stored month is untouched.
    let full =
        patchward_feeds::input::read_input(&fixtures().join("msrc-cvrf/2024-Jun.xml.zst")).unwrap();
    let cut = d.join("2024-Jun.xml");
    std::fs::write(&cut, &full[..full.len() / 3]).unwrap();
    let before = ok(&pw(&db, &["cves", "--format", "json"]));
    let o = pw(&db, &["import", "feeds", cut.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("2024-Jun.xml"));
    assert_eq!(before, ok(&pw(&db, &["cves", "--format", "json"])));

    // Wrong types and unknown values on the command line are clear errors.
    let o = pw(&db, &["assess", "--as-of", "25/11/2026"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--as-of"));
    let o = pw(&db, &["assess", "--host", "NOPE"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("NOPE"));
}

#[test]
fn demo_runs_on_a_fresh_file() {
    let d = tmpdir("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_patchward"))
        .current_dir(&d)
        .env_remove("PATCHWARD_DB")
        .args(["demo", "--no-serve", "--as-of", "2026-11-25"])
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(
        text.contains("DC-01") && text.contains("Most urgent findings"),
        "{text}"
    );
    // The fully patched DC and Hyper-V host show nothing open.
    let dc = text.lines().find(|l| l.starts_with("DC-01 ")).unwrap();
    assert!(dc.split_whitespace().any(|w| w == "0"), "{dc}");
    assert!(d.join("patchward-demo.db").exists());
}

#[test]
fn demo_honours_db_and_env_and_never_wipes_a_named_file_unasked() {
    let d = tmpdir("demo-db");
    let db = d.join("mine.db");
    let demo = |args: &[&str], env: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_patchward"));
        c.current_dir(&d).env_remove("PATCHWARD_DB");
        if let Some(e) = env {
            c.env("PATCHWARD_DB", e);
        }
        c.args(args).output().unwrap()
    };
    let db_arg = db.to_str().unwrap();
    ok(&demo(
        &[
            "--db",
            db_arg,
            "demo",
            "--no-serve",
            "--as-of",
            "2026-11-25",
        ],
        None,
    ));
    assert!(db.exists());
    assert!(!d.join("patchward-demo.db").exists(), "--db was ignored");
    let servers = ok(&pw(&db, &["servers"]));
    assert!(servers.contains("SQL-02"), "{servers}");

    // A named file that exists is not replaced without --replace, and is left intact.
    let o = demo(&["--db", db_arg, "demo"], None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("mine.db") && err.contains("--replace"),
        "{err}"
    );
    assert!(ok(&pw(&db, &["servers"])).contains("SQL-02"));

    // PATCHWARD_DB names the file too.
    ok(&demo(
        &["demo", "--no-serve", "--replace", "--as-of", "2026-11-25"],
        Some(&db),
    ));
    assert!(
        !d.join("patchward-demo.db").exists(),
        "PATCHWARD_DB was ignored"
    );
    assert!(ok(&pw(&db, &["servers"])).contains("SQL-02"));
}

#[test]
fn feeds_sync_without_network_fails_clearly_and_stores_nothing() {
    // A closed port on loopback stands in for "no network": the message must say so.
    let d = tmpdir("sync");
    let db = d.join("p.db");
    let o = pw(
        &db,
        &[
            "feeds",
            "sync",
            "--dir",
            d.join("feeds").to_str().unwrap(),
            "--msrc-url",
            "http://127.0.0.1:9/cvrf/v3.0",
            "--timeout",
            "5",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot reach 127.0.0.1:9") && err.contains("import feeds"),
        "{err}"
    );
}

#[test]
fn import_feeds_named_junk_fails_and_stores_nothing_but_folder_junk_is_skipped() {
    let d = tmpdir("junk");
    let db = d.join("p.db");
    let lifecycle = f("lifecycle/endoflife-date_windows-server.md");
    let random = d.join("junk.json");
    std::fs::write(&random, [0x13u8, 0xF7, 0x00, 0x42, 0x99, 0x01, 0xFE, 0x7F]).unwrap();
    let no_feed = d.join("other.json");
    std::fs::write(&no_feed, r#"{"hello": ["world"]}"#).unwrap();
    for junk in [&random, &no_feed] {
        // Named next to a good feed: non-zero, the file named, and the good feed not stored.
        let o = pw(
            &db,
            &["import", "feeds", &lifecycle, junk.to_str().unwrap()],
        );
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        let base = junk.file_name().unwrap().to_str().unwrap();
        assert!(
            err.contains(base) && err.contains("nothing from this import was stored"),
            "{err}"
        );
        let status = ok(&pw(&db, &["feeds", "status", "--format", "json"]));
        assert!(!status.contains("lifecycle"), "{status}");
    }

    // Inside a walked folder the same file is skipped with a message.
    let folder = d.join("feeds");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(&random, folder.join("junk.json")).unwrap();
    std::fs::copy(
        fixtures().join("lifecycle/endoflife-date_windows-server.md"),
        folder.join("lifecycle.md"),
    )
    .unwrap();
    let o = pw(&db, &["import", "feeds", folder.to_str().unwrap()]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("skipped:") && err.contains("junk.json"),
        "{err}"
    );
    let status = ok(&pw(&db, &["feeds", "status", "--format", "json"]));
    assert!(status.contains("lifecycle"), "{status}");
}

#[test]
fn import_hosts_rejects_self_dependency_and_reads_late_servers() {
    let d = tmpdir("selfdep");
    let db = d.join("p.db");
    // Windows and services first; the servers start after line 500.
    let mut toml = String::new();
    for k in 0..75 {
        toml.push_str(&format!(
            "[[windows]]\nname = \"w{k}\"\nrrule = \"DTSTART;TZID=Europe/Berlin:20261107T220000\\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SA\"\nstart = \"22:00\"\nduration = \"4h\"\ntime_zone = \"Europe/Berlin\"\n\n"
        ));
    }
    for n in ["A", "B"] {
        toml.push_str(&format!(
            "[[servers]]\nname = \"{n}\"\nos = \"Windows Server 2022 Datacenter\"\nwindows = [\"w1\"]\n\n"
        ));
    }
    assert!(toml.lines().position(|l| l == "[[servers]]").unwrap() > 500);
    let good = d.join("estate.toml");
    std::fs::write(
        &good,
        format!("{toml}[[dependencies]]\ndependent = \"A\"\ndepends_on = \"B\"\n"),
    )
    .unwrap();
    let bad = d.join("selfdep.toml");
    let bad_text = format!("{toml}[[dependencies]]\ndependent = \"B\"\ndepends_on = \"B\"\n");
    let line = bad_text.lines().count();
    std::fs::write(&bad, bad_text).unwrap();

    let o = pw(&db, &["import", "hosts", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("selfdep.toml:{line}")) && err.contains("\"B\" depends on itself"),
        "{err}"
    );
    let servers = ok(&pw(&db, &["servers", "--format", "json"]));
    assert_eq!(servers.trim(), "[]", "nothing stored");

    ok(&pw(&db, &["import", "hosts", good.to_str().unwrap()]));
    let servers = ok(&pw(&db, &["servers", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&servers).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{servers}");
}

#[cfg(unix)]
#[test]
fn serve_checks_its_hooks_at_start_and_says_which_run() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    use std::process::Stdio;
    let d = tmpdir("serve-hooks");
    let db = d.join("p.db");
    let hook = d.join("checkpoint.sh");
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--http", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        pw(&db, &args)
    };
    let missing = serve(&["--checkpoint-hook", "no/such/hook"]);
    assert!(!missing.status.success());
    let e = String::from_utf8_lossy(&missing.stderr);
    assert!(
        e.contains("--checkpoint-hook no/such/hook: no such file"),
        "{e}"
    );
    let dir = serve(&["--restore-hook", d.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&dir.stderr);
    assert!(e.contains("not a file (a directory?)"), "{e}");
    let h = hook.to_str().unwrap();
    let plain = serve(&["--checkpoint-hook", h]);
    let e = String::from_utf8_lossy(&plain.stderr);
    assert!(e.contains("not executable (chmod +x)"), "{e}");
    let slow = serve(&["--hook-timeout-minutes", "0"]);
    let e = String::from_utf8_lossy(&slow.stderr);
    assert!(
        e.contains("--hook-timeout-minutes (hook_timeout_minutes) 0: 1 to 1440"),
        "{e}"
    );

    // Executable: it starts, naming the hook (absolute) and the one it does not have.
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchward"))
        .arg("--db")
        .arg(&db)
        .current_dir(&d)
        .args(["serve", "--http", "--listen", "127.0.0.1:0"])
        .args([
            "--checkpoint-hook",
            "checkpoint.sh",
            "--hook-timeout-minutes",
            "7",
        ])
        .env("PATCHWARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let last = line.starts_with("restore hook:");
        said.push(line);
        if last {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let abs = std::fs::canonicalize(&hook).unwrap();
    assert!(
        said.contains(&format!(
            "checkpoint hook: {} (killed after 7 min)",
            abs.display()
        )),
        "{said:?}"
    );
    assert!(
        said.iter().any(|l| l.starts_with("restore hook: none")),
        "{said:?}"
    );
}
