//! Properties over the real catalog: installing a newer cumulative update never opens a CVE.

use crate::full_catalog;
use patchward_core::build::OsBuild;
use patchward_core::catalog::{Classification, Kb};
use patchward_core::exposure::ExposureIndex;
use patchward_core::inventory::Server;
use patchward_core::product::{Installation, ProductKind, ServerRelease};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// One OS product's cumulative stream: release, installation, (build, KB) ascending.
type Stream = (ServerRelease, Installation, Vec<(OsBuild, Kb)>);

struct World {
    index: ExposureIndex<'static>,
    /// Per OS product: its cumulative updates, ascending by build.
    streams: Vec<Stream>,
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
        World {
            index: ExposureIndex::new(c),
            streams,
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
