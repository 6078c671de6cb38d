//! Properties over the real catalog: installing a newer cumulative update — of the OS or of a
//! component line such as .NET Framework 4.8 — never opens a CVE.

use crate::full_catalog;
use patchward_core::build::OsBuild;
use patchward_core::catalog::{Classification, Kb};
use patchward_core::exposure::{DotNetFamily, ExposureIndex};
use patchward_core::inventory::Server;
use patchward_core::product::{Installation, ProductKind, ServerRelease};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// One OS product's cumulative stream: release, installation, (build, KB) ascending.
type Stream = (ServerRelease, Installation, Vec<(OsBuild, Kb)>);

/// One .NET Framework line (OS + family, across MSRC's renames): its updates by release,
/// the newest OS cumulative update of that OS (the server's build), and an update only this
/// line lists (evidence that puts a server on it), unless it is the in-box line.
type Line = (
    ServerRelease,
    Installation,
    DotNetFamily,
    OsBuild,
    Vec<Kb>,
    Option<Kb>,
);

struct World {
    index: ExposureIndex,
    /// Per OS product: its cumulative updates, ascending by build.
    streams: Vec<Stream>,
    lines: Vec<Line>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let c = full_catalog();
        let mut streams = Vec::new();
        for p in &c.products {
            let ProductKind::Os {
                release,
                installation,
            } = p.kind
            else {
                continue;
            };
            let mut l: Vec<(OsBuild, Kb)> = c
                .fixes
                .iter()
                .filter(|f| {
                    f.product_id == p.id
                        && matches!(
                            f.classification,
                            Classification::SecurityCumulativeUpdate
                                | Classification::MonthlyRollup
                        )
                })
                .filter_map(|f| f.fixed_build.map(|b| (b, f.kb)))
                .collect();
            l.sort();
            l.dedup();
            if l.len() >= 2 {
                streams.push((release, installation, l));
            }
        }
        // .NET updates per line, ordered by the month in which each fixes the most CVEs.
        let released: std::collections::HashMap<&str, _> = c
            .vulnerabilities
            .iter()
            .map(|v| (v.cve.as_str(), v.released))
            .collect();
        let mut rows: std::collections::BTreeMap<
            _,
            std::collections::BTreeMap<Kb, std::collections::BTreeMap<_, usize>>,
        > = Default::default();
        for f in &c.fixes {
            let Some(p) = c.products.iter().find(|p| p.id == f.product_id) else {
                continue;
            };
            let ProductKind::Component {
                component,
                release,
                installation,
            } = &p.kind
            else {
                continue;
            };
            let Some(family) = DotNetFamily::of_component(component) else {
                continue;
            };
            if f.classification != Classification::DotNet {
                continue;
            }
            *rows
                .entry((*release, *installation, family))
                .or_default()
                .entry(f.kb)
                .or_default()
                .entry(released.get(f.cve.as_str()).copied().flatten())
                .or_default() += 1;
        }
        // Which 4.x lines list each KB, and which KBs are OS updates (not evidence).
        let mut families_of: std::collections::HashMap<
            (ServerRelease, Installation, Kb),
            BTreeSet<DotNetFamily>,
        > = Default::default();
        for ((release, installation, family), kbs) in &rows {
            for kb in kbs.keys() {
                families_of
                    .entry((*release, *installation, *kb))
                    .or_default()
                    .insert(*family);
            }
        }
        let os_kbs: BTreeSet<(ServerRelease, Installation, Kb)> = c
            .fixes
            .iter()
            .filter_map(|f| {
                let p = c.products.iter().find(|p| p.id == f.product_id)?;
                match p.kind {
                    ProductKind::Os {
                        release,
                        installation,
                    } => Some((release, installation, f.kb)),
                    ProductKind::Component { .. } => None,
                }
            })
            .collect();
        let mut lines = Vec::new();
        for ((release, installation, family), kbs) in rows {
            let Some((_, _, l)) = streams
                .iter()
                .find(|(r, i, _)| *r == release && *i == installation)
            else {
                continue;
            };
            let mut by_month: Vec<(_, Kb)> = kbs
                .into_iter()
                .filter_map(|(kb, months)| {
                    months
                        .into_iter()
                        .max_by_key(|(m, n)| (*n, *m))
                        .map(|(m, _)| (m, kb))
                })
                .collect();
            by_month.sort();
            let kbs: Vec<Kb> = by_month.into_iter().map(|(_, k)| k).collect();
            let evidence = kbs.iter().copied().find(|k| {
                !os_kbs.contains(&(release, installation, *k))
                    && families_of[&(release, installation, *k)]
                        .iter()
                        .all(|f| *f == family || !f.is_4x())
            });
            let inbox = DotNetFamily::inbox(release) == Some(family);
            if kbs.len() >= 2 && family.is_4x() && (inbox || evidence.is_some()) {
                let newest = l[l.len() - 1].0;
                lines.push((
                    release,
                    installation,
                    family,
                    newest,
                    kbs,
                    evidence.filter(|_| !inbox),
                ));
            }
        }
        World {
            index: ExposureIndex::new(c.clone()),
            streams,
            lines,
        }
    })
}

fn open_set(s: &Server) -> BTreeSet<String> {
    world()
        .index
        .assess(s, "2026-11-25".parse().unwrap())
        .open_cves
        .into_iter()
        .map(|c| c.cve.to_string())
        .collect()
}

fn srv(release: ServerRelease, inst: Installation, build: Option<OsBuild>, kbs: &[Kb]) -> Server {
    Server {
        name: "P".into(),
        os: release.name().into(),
        build,
        installation: Some(inst),
        installed_kbs: kbs.iter().copied().collect(),
        ..Server::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn newer_cumulative_update_never_adds_an_open_cve(p in 0usize..64, a in 0usize..1000, b in 0usize..1000, extra in 0usize..1000) {
        let w = world();
        let (release, inst, l) = &w.streams[p % w.streams.len()];
        let (i, j) = { let (x, y) = (a % l.len(), b % l.len()); (x.min(y), x.max(y)) };
        let other = l[extra % l.len()].1;
        let older = srv(*release, *inst, Some(l[i].0), &[l[i].1, other]);
        // Installing the newer update: what was installed stays (a WinRE or Safe OS package
        // that MSRC labels "Security Update" with a build is not replaced by the LCU).
        let newer = srv(*release, *inst, Some(l[j].0), &[l[i].1, l[j].1, other]);
        let (o, n) = (open_set(&older), open_set(&newer));
        prop_assert!(n.is_subset(&o), "{release} {inst}: {} -> {} opened {:?}", l[i].0, l[j].0, n.difference(&o).collect::<Vec<_>>());
    }

    #[test]
    fn with_unknown_revision_adding_a_newer_kb_never_adds_an_open_cve(p in 0usize..64, a in 0usize..1000, b in 0usize..1000) {
        let w = world();
        let (release, inst, l) = &w.streams[p % w.streams.len()];
        let (i, j) = { let (x, y) = (a % l.len(), b % l.len()); (x.min(y), x.max(y)) };
        let base = OsBuild { ubr: None, ..l[i].0 };
        let before = srv(*release, *inst, Some(base), &[l[i].1]);
        let after = srv(*release, *inst, Some(base), &[l[i].1, l[j].1]);
        let (o, n) = (open_set(&before), open_set(&after));
        prop_assert!(n.is_subset(&o));
    }

    #[test]
    fn newer_component_update_never_adds_an_open_cve(p in 0usize..256, a in 0usize..1000, b in 0usize..1000) {
        let w = world();
        prop_assert!(!w.lines.is_empty());
        let (release, inst, family, build, l, evidence) = &w.lines[p % w.lines.len()];
        let (i, j) = { let (x, y) = (a % l.len(), b % l.len()); (x.min(y), x.max(y)) };
        // Sometimes from nothing: installing the first update of the in-box line must not
        // add CVEs either (the bug that in-box .NET once had). A later line is entered by
        // installing its update, which is evidence, not a newer update of the same version.
        let base: Vec<Kb> = match evidence {
            // A later line than the in-box one: its own update puts the server on it.
            Some(e) => vec![*e, l[i]],
            None if a % 4 == 0 => Vec::new(),
            None => vec![l[i]],
        };
        let _ = family;
        let older = srv(*release, *inst, Some(*build), &base);
        let newer = srv(*release, *inst, Some(*build), &[base.clone(), vec![l[j]]].concat());
        let (o, n) = (open_set(&older), open_set(&newer));
        prop_assert!(n.is_subset(&o), "{release} {inst}: {} -> {} opened {:?}", l[i], l[j], n.difference(&o).collect::<Vec<_>>());
    }

    #[test]
    fn assessing_arbitrary_servers_never_panics(build in "[0-9]{1,3}\\.[0-9]{1,2}\\.[0-9]{1,6}(\\.[0-9]{1,6})?", kbs in proptest::collection::vec(0u32..9_999_999, 0..8), os in ".{0,40}", hot: bool) {
        let s = Server {
            name: "R".into(),
            os,
            build: build.parse().ok(),
            hotpatch: hot,
            installed_kbs: kbs.into_iter().map(Kb).collect(),
            ..Server::default()
        };
        let e = world().index.assess(&s, "2026-11-25".parse().unwrap());
        prop_assert_eq!(e.name, "R");
    }
}
