//! Every real host capture (wesng validation set) and the hand-written Get-HotFix / systeminfo
//! CSV samples: exact host names, products, builds and KB counts (checked by eye against the
//! files).

use crate::{fixture, fixtures};
use jiff::civil::date;
use patchward_core::catalog::Kb;
use patchward_core::product::ServerRelease;
use patchward_feeds::hosts::{self, CaptureFormat, HostCapture};
use patchward_feeds::{FeedKind, detect};

const DIR: &str = "hosts/wesng-validation";

fn si(file: &str) -> HostCapture {
    let rel = format!("{DIR}/{file}");
    let bytes = fixture(&rel);
    assert_eq!(detect(file, &bytes), FeedKind::Systeminfo, "{file}");
    hosts::parse_systeminfo(file, &bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// (file, host, OS caption, build, service pack, release, hotfix entries, distinct KBs)
#[allow(clippy::type_complexity)]
const SYSTEMINFO: &[(
    &str,
    &str,
    &str,
    &str,
    Option<&str>,
    Option<ServerRelease>,
    usize,
    usize,
)] = &[
    (
        "srv_2003_rtm_x86_standard_en-us_systeminfo.txt",
        "WINSRV2K3SP0X86",
        "Microsoft(R) Windows(R) Server 2003, Standard Edition",
        "5.2.3790",
        None,
        None,
        3,
        1,
    ),
    (
        "srv_2003_sp1_x64_standard_en-us_systeminfo.txt",
        "WINSRV2K3SP1X64",
        "Microsoft(R) Windows(R) Server 2003 Standard x64 Edition",
        "5.2.3790",
        Some("Service Pack 1"),
        None,
        1,
        0,
    ),
    (
        "srv_2003r2_sp2_rtm_x64_standard_en-us_systeminfo.txt",
        "SRV2K3R2SP2X64",
        "Microsoft(R) Windows(R) Server 2003 Standard x64 Edition",
        "5.2.3790",
        Some("Service Pack 2"),
        None,
        1,
        0,
    ),
    (
        "srv_2003r2_sp2_x86_standard_en-us_systeminfo.txt",
        "SRV2K3R2SP2X86",
        "Microsoft(R) Windows(R) Server 2003, Standard Edition",
        "5.2.3790",
        Some("Service Pack 2"),
        None,
        240,
        67,
    ),
    (
        "srv_2008_rtm_x64_standard_en-us_systeminfo.txt",
        "SRV2K8SP0X64",
        "Microsoftr Windows Serverr 2008 Standard",
        "6.0.6001",
        Some("Service Pack 1"),
        Some(ServerRelease::Server2008),
        1,
        1,
    ),
    (
        "srv_2008_rtm_x86_standard_en-us_systeminfo.txt",
        "SRV2K8SP0X86",
        "Microsoftr Windows Serverr 2008 Standard",
        "6.0.6001",
        Some("Service Pack 1"),
        Some(ServerRelease::Server2008),
        1,
        1,
    ),
    (
        "srv_2008r2_sp1_x64_standard_en-us_systeminfo.txt",
        "SRV2K8R2SP1X64",
        "Microsoft Windows Server 2008 R2 Standard",
        "6.1.7601",
        Some("Service Pack 1"),
        Some(ServerRelease::Server2008R2),
        2,
        2,
    ),
    (
        "srv_2012r2_u1_systeminfo.txt",
        "SRV12R2U1X64",
        "Microsoft Windows Server 2012 R2 Standard",
        "6.3.9600",
        None,
        Some(ServerRelease::Server2012R2),
        154,
        154,
    ),
    (
        "srv_2012r2_u1_systeminfo2.txt",
        "SRV12R2U1X64",
        "Microsoft Windows Server 2012 R2 Standard",
        "6.3.9600",
        None,
        Some(ServerRelease::Server2012R2),
        156,
        156,
    ),
    (
        "srv_2012r2_x64_standard_ru_systeminfo.txt",
        "DC",
        "Майкрософт Ознакомительная версия Windows Server 2012 R2 Standard",
        "6.3.9600",
        None,
        Some(ServerRelease::Server2012R2),
        7,
        7,
    ),
    (
        "srv_2016_1607_datacenter_en-us_systeminfo.txt",
        "MYSERVER",
        "Microsoft Windows Server 2016 Datacenter",
        "10.0.14393",
        None,
        Some(ServerRelease::Server2016),
        5,
        5,
    ),
    (
        "srv_2019_rtm_datacenter_en-us_systeminfo.txt",
        "WIN-O863JARO7CM",
        "Microsoft Windows Server 2019 Datacenter",
        "10.0.17763",
        None,
        Some(ServerRelease::Server2019),
        5,
        5,
    ),
    (
        "srv_2022_systeminfo.txt",
        "WIN-RIBN7SM07BK",
        "Microsoft Windows Server 2022 Standard",
        "10.0.20348",
        None,
        Some(ServerRelease::Server2022),
        3,
        3,
    ),
];

#[test]
fn every_systeminfo_capture() {
    for &(file, host, caption, build, sp, release, entries, kbs) in SYSTEMINFO {
        let c = si(file);
        assert_eq!(c.format, Some(CaptureFormat::Systeminfo));
        assert_eq!(c.name.as_deref(), Some(host), "{file}");
        assert_eq!(c.os_caption.as_deref(), Some(caption), "{file}");
        let b = c.build.unwrap_or_else(|| panic!("{file}: no build"));
        assert_eq!(b.to_string(), build, "{file}");
        assert_eq!(b.ubr, None, "{file}: systeminfo has no UBR");
        assert_eq!(c.service_pack.as_deref(), sp, "{file}");
        assert_eq!(c.release, release, "{file}");
        assert_eq!(c.installation, None, "{file}");
        assert_eq!(c.hotfixes.len(), entries, "{file}");
        assert_eq!(c.kbs.len(), kbs, "{file}");
        let s = c.to_server(file).unwrap();
        assert_eq!((s.name.as_str(), s.installed_kbs.len()), (host, kbs));
    }
}

#[test]
fn systeminfo_details() {
    let c = si("srv_2022_systeminfo.txt");
    assert_eq!(
        c.kbs.iter().copied().collect::<Vec<_>>(),
        vec![Kb(5004330), Kb(5005039), Kb(5005552)]
    );
    assert_eq!(c.declared_hotfixes, Some(3));
    assert_eq!(
        c.last_boot_local.unwrap().to_string(),
        "2021-10-22T08:36:55"
    );
    assert_eq!(c.last_boot().unwrap().to_string(), "2021-10-22T16:36:55Z");
    assert_eq!(c.domain.as_deref(), Some("WORKGROUP"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    // Russian labels: found by position and shape.
    let ru = si("srv_2012r2_x64_standard_ru_systeminfo.txt");
    assert_eq!(ru.declared_hotfixes, Some(7));
    assert!(ru.kbs.contains(&Kb(2919355)) && ru.kbs.contains(&Kb(2999226)));
    assert_eq!(
        ru.last_boot_local.unwrap().to_string(),
        "2020-04-23T07:15:57"
    );
    assert_eq!(ru.utc_offset.map(|o| o.seconds()), Some(4 * 3600));

    // 2003: "File 1" / "Q147222" are entries, not KBs; the list is truncated (352 announced).
    let old = si("srv_2003r2_sp2_x86_standard_en-us_systeminfo.txt");
    assert_eq!(old.declared_hotfixes, Some(352));
    assert_eq!(
        old.hotfixes.iter().filter(|h| h.id == "File 1").count(),
        170
    );
    assert!(old.kbs.contains(&Kb(2862152)));
    assert!(!old.kbs.contains(&Kb(2862)), "truncated KB2862 is not a KB");
    assert!(
        old.warnings.iter().any(|w| w.contains("truncated")),
        "{:?}",
        old.warnings
    );
    assert_eq!(
        old.last_boot_local, None,
        "2003 prints an up time, not a boot time"
    );
    let rtm = si("srv_2003_rtm_x86_standard_en-us_systeminfo.txt");
    assert_eq!(
        rtm.kbs.iter().copied().collect::<Vec<_>>(),
        vec![Kb(893803)]
    );
}

#[test]
fn wmic_qfe_captures() {
    let rel = format!("{DIR}/srv_2012r2_u1_qfe.txt");
    let bytes = fixture(&rel);
    assert_eq!(&bytes[..2], &[0xFF, 0xFE], "UTF-16LE with BOM");
    assert_eq!(detect("srv_2012r2_u1_qfe.txt", &bytes), FeedKind::WmicQfe);
    let caps = hosts::parse_qfe("srv_2012r2_u1_qfe.txt", &bytes).unwrap();
    assert_eq!(caps.len(), 1);
    let c = &caps[0];
    assert_eq!(c.name.as_deref(), Some("SRV12R2U1X64"));
    assert_eq!(c.kbs.len(), 154);
    assert_eq!(c.hotfixes.len(), 154);
    assert_eq!(c.hotfixes[0].id, "KB2894852");
    assert_eq!(
        c.hotfixes[0].description.as_deref(),
        Some("Security Update")
    );
    assert_eq!(c.hotfixes[0].installed_on.as_deref(), Some("3/17/2019"));
    assert_eq!(c.build, None);

    // Same host's systeminfo lists the same 154 KBs; merging adds the build.
    let mut s = si("srv_2012r2_u1_systeminfo.txt");
    assert_eq!(s.kbs, c.kbs);
    s.merge(c.clone());
    assert_eq!(s.kbs.len(), 154);
    assert_eq!(s.release, Some(ServerRelease::Server2012R2));

    let rel = format!("{DIR}/srv_2012r2_x64_standard_ru_qfe.txt");
    let bytes = fixture(&rel);
    assert_eq!(
        detect("ru_qfe.txt", &bytes),
        FeedKind::WmicQfe,
        "despite the stray 'cat q' line"
    );
    let caps = hosts::parse_qfe("ru_qfe.txt", &bytes).unwrap();
    assert_eq!(caps.len(), 1);
    assert_eq!(caps[0].name.as_deref(), Some("DC"));
    assert_eq!(caps[0].kbs.len(), 7);
    assert_eq!(caps[0].hotfixes[5].description.as_deref(), Some("Hotfix"));
    assert_eq!(
        caps[0].hotfixes[6].installed_on.as_deref(),
        Some("4/17/2020")
    );
    // The Russian systeminfo of the same host agrees.
    assert_eq!(
        si("srv_2012r2_x64_standard_ru_systeminfo.txt").kbs,
        caps[0].kbs
    );
}

#[test]
fn non_capture_is_a_clean_error() {
    let rel = format!("{DIR}/srv_2012r2_u1_updates_optional.txt");
    let e = hosts::parse_capture("srv_2012r2_u1_updates_optional.txt", &fixture(&rel)).unwrap_err();
    assert!(e.message.contains("not a host capture"), "{e}");
}

#[test]
fn every_file_through_parse_capture_without_panic() {
    let files =
        patchward_feeds::walk(&[fixtures().join(DIR), fixtures().join("hosts/handwritten")])
            .unwrap();
    assert_eq!(files.len(), 17 + 3);
    let mut hosts_found = 0;
    for p in files {
        let n = p.display().to_string();
        let bytes = patchward_feeds::read_input(&p).unwrap();
        if let Ok(caps) = hosts::parse_capture(&n, &bytes) {
            hosts_found += caps.len();
            for c in caps {
                c.to_server(&n).unwrap();
            }
        }
    }
    // 13 systeminfo + 2 qfe + 1 Get-HotFix table + 2 hosts in the Get-HotFix list + 1 CSV.
    assert_eq!(hosts_found, 19);
}

#[test]
fn get_hotfix_table_utf16() {
    // Hand-written sample (no licensed real capture exists): PowerShell 5.1 `Get-HotFix > f`.
    let rel = "hosts/handwritten/gethotfix_table_utf16.txt";
    let bytes = fixture(rel);
    assert_eq!(detect(rel, &bytes), FeedKind::GetHotFix);
    let caps = hosts::parse_gethotfix(rel, &bytes).unwrap();
    assert_eq!(caps.len(), 1);
    let c = &caps[0];
    assert_eq!(c.format, Some(CaptureFormat::GetHotFix));
    assert_eq!(c.name.as_deref(), Some("SRV-APP01"));
    assert_eq!(c.kbs.len(), 5);
    assert_eq!(
        c.hotfixes[1].description.as_deref(),
        Some("Security Update")
    );
    assert_eq!(
        c.hotfixes[3].installed_on.as_deref(),
        Some("6/12/2024 12:00:00 AM")
    );
    let s = c.to_server(rel).unwrap();
    assert_eq!((s.release, s.build), (None, None));
}

#[test]
fn get_hotfix_list_two_hosts() {
    let rel = "hosts/handwritten/gethotfix_list.txt";
    let bytes = fixture(rel);
    assert_eq!(detect(rel, &bytes), FeedKind::GetHotFix);
    let caps = hosts::parse_gethotfix(rel, &bytes).unwrap();
    let names: Vec<_> = caps.iter().map(|c| c.name.clone().unwrap()).collect();
    assert_eq!(names, vec!["SRV-SQL01", "SRV-SQL02"]);
    assert_eq!(caps[0].kbs.len(), 2);
    assert_eq!(
        caps[1].kbs.iter().copied().collect::<Vec<_>>(),
        vec![Kb(5040430)]
    );
}

#[test]
fn systeminfo_csv() {
    let rel = "hosts/handwritten/systeminfo_fo_csv.csv";
    let bytes = fixture(rel);
    assert_eq!(detect(rel, &bytes), FeedKind::SysteminfoCsv);
    let caps = hosts::parse_systeminfo_csv(rel, &bytes).unwrap();
    assert_eq!(caps.len(), 1);
    let c = &caps[0];
    assert_eq!(c.name.as_deref(), Some("SRV-WEB01"));
    assert_eq!(
        c.os_caption.as_deref(),
        Some("Microsoft Windows Server 2022 Datacenter")
    );
    assert_eq!(
        c.build.map(|b| b.to_string()).as_deref(),
        Some("10.0.20348")
    );
    assert_eq!(c.release, Some(ServerRelease::Server2022));
    assert_eq!(c.kbs.len(), 4);
    assert_eq!(c.declared_hotfixes, Some(4));
    assert_eq!(c.domain.as_deref(), Some("corp.example.com"));
    assert_eq!(c.last_boot_local.map(|d| d.date()), Some(date(2024, 8, 15)));
}
