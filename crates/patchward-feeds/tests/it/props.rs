//! Property tests: no parser panics on arbitrary bytes or on damaged real fixtures, and the
//! inventory CSV / estate writers round-trip.

use crate::fixture;
use jiff::{SignedDuration, Timestamp};
use patchward_core::OsBuild;
use patchward_core::calendar::Recurrence;
use patchward_core::catalog::Kb;
use patchward_core::inventory::{InternetExposure, Owner, Role, Server, Tier};
use patchward_core::product::{Installation, ServerRelease};
use patchward_feeds::{
    decode_text, detect, epss, estate, hosts, inventory_csv, kbbuilds, kev, lifecycle, nvd,
};
use proptest::prelude::*;

/// Run every parser on `b`; only panics matter here.
fn all_parsers(b: &[u8]) {
    let _ = decode_text(b);
    let _ = detect("x", b);
    let _ = detect("CVE-2025-1234.epss", b);
    let _ = kev::parse("x", b);
    let _ = epss::parse_daily("epss_scores-2026-01-01.csv", b);
    let _ = epss::parse_timeseries("CVE-2025-1234.epss", b);
    let _ = nvd::parse("x", b);
    let _ = lifecycle::parse("x", b);
    let _ = kbbuilds::parse("x", b);
    let _ = hosts::parse_systeminfo("x", b);
    let _ = hosts::parse_systeminfo_csv("x", b);
    let _ = hosts::parse_qfe("x", b);
    let _ = hosts::parse_gethotfix("x", b);
    let _ = hosts::parse_capture("x", b);
    let _ = inventory_csv::parse("x", b);
    let _ = estate::parse("x", b);
    let _ = patchward_feeds::inventory::parse("x", b);
    let _ = patchward_feeds::inventory::parse("x.toml", b);
    let _ = patchward_feeds::inventory::parse("x.csv", b);
    let text = decode_text(b);
    let _ = Recurrence::parse(&text);
    let _ = Recurrence::for_window(&text, "America/Los_Angeles");
    let _ = estate::check_rrule(&text, "Europe/Berlin");
    let _ = patchward_feeds::input::decompress("x", b.to_vec());
    let _ = patchward_feeds::cvrf::parse("x", b);
    let _ = patchward_feeds::cvrf::parse_xml("x", b);
    let _ = patchward_feeds::cvrf::parse_json("x", b);
}

const SAMPLES: &[&str] = &[
    "kev/known_exploited_vulnerabilities_2025-08-25_cisagov.json.zst",
    "epss/epss_scores-2026-09-29_subset.csv",
    "epss/timeseries/CVE-2025-33053.epss",
    "nvd/CVE-2024-30040.json",
    "lifecycle/endoflife-date_windows-server.md",
    "hosts/wesng-validation/srv_2022_systeminfo.txt",
    "hosts/wesng-validation/srv_2012r2_x64_standard_ru_systeminfo.txt",
    "hosts/wesng-validation/srv_2012r2_x64_standard_ru_qfe.txt",
    "hosts/wesng-validation/srv_2012r2_u1_qfe.txt",
    "hosts/handwritten/gethotfix_table_utf16.txt",
    "hosts/handwritten/gethotfix_list.txt",
    "hosts/handwritten/systeminfo_fo_csv.csv",
    "inventory/servers.csv",
    "inventory/estate.toml",
    "msrc-cvrf-json/2024-Jul-CVE-2024-38077.json",
    "msrc-cvrf/2022-May.xml.zst",
];

fn samples() -> &'static Vec<Vec<u8>> {
    static S: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        SAMPLES
            .iter()
            .map(|r| {
                let b = fixture(r);
                // Keep the big KEV file's head only: the point is damaged structure.
                if b.len() > 40_000 {
                    b[..40_000].to_vec()
                } else {
                    b
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_panic_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        all_parsers(&b);
    }

    #[test]
    fn no_panic_on_arbitrary_text(s in "[ -~\\r\\n\\t\u{410}-\u{44f}:\\[\\],\"{}#=.]{0,400}") {
        all_parsers(s.as_bytes());
    }

    /// Real fixtures with a slice cut out, a byte replaced and/or truncated.
    #[test]
    fn no_panic_on_damaged_fixtures(
        which in 0..SAMPLES.len(),
        cut_at in any::<prop::sample::Index>(),
        cut_len in 0usize..200,
        poke_at in any::<prop::sample::Index>(),
        poke in any::<u8>(),
        trunc in any::<prop::sample::Index>(),
    ) {
        let mut b = samples()[which].clone();
        if !b.is_empty() {
            let i = cut_at.index(b.len());
            let end = (i + cut_len).min(b.len());
            b.drain(i..end);
        }
        if !b.is_empty() {
            let i = poke_at.index(b.len());
            b[i] = poke;
        }
        all_parsers(&b);
        if !b.is_empty() {
            let t = trunc.index(b.len());
            all_parsers(&b[..t]);
        }
    }
}

// ---- inventory CSV round trip ---------------------------------------------------------------

const OSES: &[(&str, Option<ServerRelease>, Option<&str>)] = &[
    (
        "Windows Server 2022 Datacenter",
        Some(ServerRelease::Server2022),
        Some("10.0.20348"),
    ),
    (
        "Windows Server 2019 Standard",
        Some(ServerRelease::Server2019),
        Some("10.0.17763"),
    ),
    (
        "Windows Server 2025 Datacenter: Azure Edition",
        Some(ServerRelease::Server2025),
        Some("10.0.26100"),
    ),
    (
        "Windows Server 2012 R2 Standard",
        Some(ServerRelease::Server2012R2),
        Some("6.3.9600"),
    ),
    (
        "Microsoft Windows Server 2016 Datacenter",
        Some(ServerRelease::Server2016),
        None,
    ),
    (
        "Microsoft(R) Windows(R) Server 2003, Standard Edition",
        None,
        None,
    ),
];

fn word() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9 ._'\"-]{0,12}[A-Za-z0-9]".prop_map(|s| s)
}

fn server() -> impl Strategy<Value = Server> {
    (
        (
            "[A-Za-z][A-Za-z0-9-]{0,14}",
            0..OSES.len(),
            proptest::option::of(0u32..40_000),
            any::<bool>(),
        ),
        (
            proptest::option::of(prop_oneof![
                Just(Installation::Desktop),
                Just(Installation::ServerCore)
            ]),
            proptest::collection::btree_set((1_000_000u32..6_000_000).prop_map(Kb), 0..5),
            proptest::collection::vec(
                prop_oneof![
                    Just(Role::DomainController),
                    Just(Role::SqlServer),
                    Just(Role::Web),
                    Just(Role::HyperVHost),
                    Just(Role::Other("Legacy ERP".into()))
                ],
                0..3,
            ),
            1u8..=4,
        ),
        (
            proptest::option::of((word(), proptest::option::of("[a-z]{1,8}@[a-z]{1,8}\\.com"))),
            proptest::option::of(word()),
            proptest::option::of(word()),
            prop_oneof![
                Just(InternetExposure::Exposed),
                Just(InternetExposure::Limited),
                Just(InternetExposure::Internal)
            ],
            proptest::collection::vec("[a-z][a-z0-9-]{0,8}", 0..3),
        ),
        (
            proptest::collection::vec("[a-z][a-z0-9+-]{0,10}", 0..3),
            proptest::option::of(word()),
            proptest::option::of(word()),
            proptest::option::of(1i64..10_000),
            proptest::option::of(0i64..2_000_000_000),
            // A lone reason that reads as a boolean ("No", "Yes") is read as one: the
            // column takes either, so such reasons cannot round-trip and are not drawn.
            proptest::collection::vec(
                "[A-Z][a-z]{1,10}".prop_filter("reads as a boolean", |r| {
                    patchward_feeds::util::parse_bool(r).is_err()
                }),
                0..2,
            ),
        ),
    )
        .prop_map(
            |(
                (name, os_i, ubr, hotpatch),
                (installation, kbs, roles, tier),
                (owner, environment, site, exposure, tags),
                (windows, ring, backup, minutes, boot, pending),
            )| {
                let (os, release, build) = OSES[os_i];
                let build = build.map(|b| {
                    let b: OsBuild = b.parse().unwrap();
                    match ubr {
                        Some(u) => b.with_ubr(u),
                        None => b,
                    }
                });
                Server {
                    name,
                    os: os.split_whitespace().collect::<Vec<_>>().join(" "),
                    release,
                    build,
                    installation,
                    hotpatch,
                    installed_kbs: kbs,
                    roles,
                    tier: Tier::new(tier).unwrap(),
                    owner: owner.map(|(name, email)| Owner {
                        name: name.trim().into(),
                        email,
                    }),
                    environment: environment.map(|s| s.trim().to_string()),
                    site: site.map(|s| s.trim().to_string()),
                    exposure,
                    tags,
                    windows,
                    ring: ring.map(|s| s.trim().to_string()),
                    backup_policy: backup.map(|s| s.trim().to_string()),
                    estimated_duration: minutes.map(SignedDuration::from_mins),
                    last_boot: boot.map(|s| Timestamp::from_second(s).unwrap()),
                    pending_reboot: pending,
                    ..Server::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn inventory_csv_round_trip(mut servers in proptest::collection::vec(server(), 1..6)) {
        // Names are unique (case-insensitive) in a valid import.
        let mut seen = std::collections::BTreeSet::new();
        servers.retain(|s| seen.insert(s.name.to_lowercase()));
        let csv = inventory_csv::to_csv(&servers);
        let back = inventory_csv::parse("p.csv", csv.as_bytes());
        prop_assert!(back.is_ok(), "{}\n{csv}", back.err().map(|e| e.to_string()).unwrap_or_default());
        let back = back.unwrap();
        prop_assert_eq!(&back.servers, &servers, "{}", csv);
    }

    /// Servers written into an estate file come back unchanged (rollback plans excepted).
    #[test]
    fn estate_round_trip(mut servers in proptest::collection::vec(server(), 1..5)) {
        let mut seen = std::collections::BTreeSet::new();
        servers.retain(|s| seen.insert(s.name.to_lowercase()));
        for s in &mut servers {
            // Windows, rings and policies must exist in an estate; keep them out of this property.
            s.windows.clear();
            s.ring = None;
            s.backup_policy = None;
        }
        let e = patchward_core::inventory::Estate { servers, ..Default::default() };
        let text = estate::to_toml(&e);
        let back = estate::parse("p.toml", text.as_bytes());
        prop_assert!(back.is_ok(), "{}\n{text}", back.err().map(|e| e.to_string()).unwrap_or_default());
        prop_assert_eq!(back.unwrap(), e, "{}", text);
    }
}

// ---- window rules: RFC 5545 forms ------------------------------------------------------------

fn rule_part() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FREQ=MONTHLY;BYDAY=2TU".to_string()),
        Just("FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,SU".to_string()),
        Just("FREQ=DAILY;COUNT=5".to_string()),
        Just("FREQ=MONTHLY;BYMONTHDAY=-1;INTERVAL=3".to_string()),
        Just("FREQ=YEARLY".to_string()),
    ]
}

fn dtstart_line() -> impl Strategy<Value = String> {
    (2020i32..2030, 1i32..13, 1i32..29, 0i32..24, 0usize..4).prop_map(|(y, m, d, h, form)| {
        let date = format!("{y:04}{m:02}{d:02}");
        match form {
            0 => format!("DTSTART:{date}T{h:02}0000"),
            1 => format!("DTSTART;TZID=Europe/Berlin:{date}T{h:02}3000"),
            2 => format!("DTSTART;VALUE=DATE:{date}"),
            _ => format!("DTSTART:{date}T{h:02}0000Z"),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// DTSTART before or after the rule, with or without the `RRULE:` prefix, is the same rule;
    /// a TZID is accepted only in the window's zone.
    #[test]
    fn dtstart_position_and_prefix_do_not_matter(
        rule in rule_part(),
        dt in dtstart_line(),
        prefix in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let r = if prefix { format!("RRULE:{rule}") } else { rule.clone() };
        let nl = if crlf { "\r\n" } else { "\n" };
        let before = format!("{dt}{nl}{r}");
        let after = format!("{r}{nl}{dt}");
        let a = Recurrence::for_window(&before, "Europe/Berlin");
        let b = Recurrence::for_window(&after, "Europe/Berlin");
        prop_assert!(a.is_ok(), "{before}: {a:?}");
        prop_assert_eq!(a.clone().ok(), b.ok());
        prop_assert!(a.ok().and_then(|x| x.dtstart).is_some());
        let elsewhere = Recurrence::for_window(&before, "Asia/Tokyo");
        prop_assert_eq!(elsewhere.is_err(), dt.contains("TZID"));
    }
}
