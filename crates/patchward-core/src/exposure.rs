//! Exposure (PRODUCT.md C3): for every server, the updates it is missing and the CVEs they
//! leave open.
//!
//! The rules, from Microsoft's data:
//! - A CVE is open on a server when MSRC lists a Vendor Fix for the server's exact product
//!   (release + installation) and none of the fixes applies: no fix KB (or a KB that supersedes
//!   it, transitively) is installed, and the server's place in the OS cumulative stream is
//!   before the fix. One newer cumulative update therefore satisfies all older ones.
//! - The stream is each month's cumulative update (the LCU / monthly rollup with the most CVE
//!   rows for the product in that document), later cumulative updates that supersede into it,
//!   and out-of-band ones whose build fits its chronology. Other packages MSRC labels
//!   "Security Update" (Secure Boot revocation lists, WinRE / Safe OS updates with their own low
//!   builds) are standalone: decided by KB, never used to place a server in the stream.
//! - A server's place: its build against fixed builds; for months MSRC published without fixed
//!   builds (before mid-2021), the release of its newest stream update against the fix's.
//!   Servicing stack updates are satisfied by the stream (later LCUs require or contain them);
//!   previews by the next month's update. Setup / Safe OS dynamic updates are not for servers.
//! - Hotpatch fixes (their own, lower build train) count only for hotpatch-enrolled servers.
//! - Where a fix has no usable fixed build, or the server's revision is unknown, the decision
//!   falls back to KBs and the CVE says so (`determined_by: kb`).
//! - Where the revision is unknown it is inferred from the newest installed stream update.
//! - Components: in-box ones serviced by the OS cumulative update (IE 11, EdgeHTML, .NET on
//!   2016) are always assessed; others (.NET with its own updates) only when an installed update
//!   shows them, and then their own newest installed update closes every older one.

use crate::build::OsBuild;
use crate::catalog::{Affected, Classification, Fix, Kb, Product, Update, Vulnerability};
use crate::intel::{EpssScore, KevEntry, LifecycleEntry, NvdRecord, SupportStatus};
use crate::inventory::{BuildSource, Server};
use crate::product::{Installation, ProductKind, ServerRelease, release_from_caption};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Everything the exposure and priority engines read: MSRC facts plus KEV, EPSS, NVD and the
/// lifecycle table. Built by the store from its tables.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub products: Vec<Product>,
    pub vulnerabilities: Vec<Vulnerability>,
    pub affected: Vec<Affected>,
    pub fixes: Vec<Fix>,
    /// Extra update facts (e.g. the KB → build table); merged with what fixes say.
    pub updates: Vec<Update>,
    pub kev: Vec<KevEntry>,
    pub epss: Vec<EpssScore>,
    pub nvd: Vec<NvdRecord>,
    pub lifecycle: Vec<LifecycleEntry>,
}

impl Catalog {
    /// MSRC lists some CVEs in more than one month. Keep one vulnerability per CVE (the
    /// earliest release, and "exploited" / "publicly disclosed" if any month says so) and one
    /// per-product record per (CVE, product) (the highest severity and score). Fixes stay per
    /// month: the exposure index unions them.
    pub fn merge_duplicates(&mut self) {
        let mut at: HashMap<String, usize> = HashMap::default();
        let mut vulns: Vec<Vulnerability> = Vec::with_capacity(self.vulnerabilities.len());
        let key = |v: &Vulnerability| (v.released.is_none(), v.released, v.document.clone());
        for v in std::mem::take(&mut self.vulnerabilities) {
            match at.get(&v.cve) {
                None => {
                    at.insert(v.cve.clone(), vulns.len());
                    vulns.push(v);
                }
                Some(&i) => {
                    let (exploited, disclosed) = (
                        vulns[i].exploited || v.exploited,
                        vulns[i].publicly_disclosed || v.publicly_disclosed,
                    );
                    if key(&v) < key(&vulns[i]) {
                        vulns[i] = v;
                    }
                    vulns[i].exploited = exploited;
                    vulns[i].publicly_disclosed = disclosed;
                }
            }
        }
        self.vulnerabilities = vulns;

        let mut at: HashMap<(String, String), usize> = HashMap::default();
        let mut affected: Vec<Affected> = Vec::with_capacity(self.affected.len());
        for a in std::mem::take(&mut self.affected) {
            match at.get(&(a.cve.clone(), a.product_id.clone())) {
                None => {
                    at.insert((a.cve.clone(), a.product_id.clone()), affected.len());
                    affected.push(a);
                }
                Some(&i) => {
                    let e = &mut affected[i];
                    e.severity = e.severity.max(a.severity);
                    e.impact = e.impact.take().or(a.impact);
                    if a.cvss_base > e.cvss_base {
                        e.cvss_base = a.cvss_base;
                        e.cvss_vector = a.cvss_vector.or(e.cvss_vector.take());
                    }
                }
            }
        }
        self.affected = affected;
    }
}

/// How an open/closed decision was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Determination {
    /// The server's place in the OS cumulative stream: its build against the update's fixed
    /// build, or — for months MSRC published without fixed builds — the release of its newest
    /// cumulative update against the fix's.
    Build,
    /// Installed KBs and supersedence chains (no usable fixed build, or revision unknown).
    Kb,
}

/// One fix alternative, resolved for fast checks.
#[derive(Debug, Clone)]
struct FixRef {
    kb: Kb,
    class: Classification,
    build: Option<OsBuild>,
    /// Release of the update (its month); orders the cumulative stream where MSRC gives no
    /// fixed build (documents before mid-2021).
    released: Option<Timestamp>,
    /// The update is a month's cumulative update of the OS (or an out-of-band one at or above
    /// that build): its build and release place servers in the stream. Standalone updates
    /// labelled "Security Update" (Secure Boot revocations, WinRE / Safe OS packages with
    /// their own low builds) are not, and are decided by KB.
    stream: bool,
    /// Preview or plain "Update" packages: contained in the *next* month's cumulative update.
    next_month: bool,
}

/// A multiply-rotate hasher (FxHash style). Keys here are KB numbers, indexes and strings from
/// our own catalog, never attacker-chosen, so SipHash's flooding resistance buys nothing and
/// costs most of an assessment's time.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;
pub type HashSet<K> = std::collections::HashSet<K, BuildHasherDefault<FastHasher>>;

/// Monthly cumulative OS updates: each contains every earlier one of the same product.
fn is_cumulative_stream(c: Classification) -> bool {
    matches!(
        c,
        Classification::SecurityCumulativeUpdate | Classification::MonthlyRollup
    )
}

#[derive(Debug, Clone)]
struct CveFixes {
    vuln: usize,
    affected: Option<usize>,
    fixes: Vec<FixRef>,
    /// Built once per index and shared by every server that has the CVE open.
    facts: Option<Arc<CveFacts>>,
    /// The remedy for servers not enrolled in hotpatch, and for enrolled ones.
    plain: Option<Remedy>,
    hot: Option<Remedy>,
}

/// The stream thresholds of one CVE on one product for one train, laid out flat so the
/// per-server scan runs over a compact array instead of chasing each CVE's fix list.
#[derive(Debug, Clone, Copy)]
struct Check {
    /// Some fix applies on this train at all.
    any: bool,
    /// Lowest fixed-build revision (UBR) among fixes with a build; `u32::MAX` if none.
    min_ubr: u32,
    /// Earliest release (epoch ms) among build-less fixes the cumulative stream satisfies;
    /// `i64::MAX` if none.
    min_release: i64,
    /// Earliest release among fixes that a *later* stream update contains (previews, plain
    /// "Update" packages; on components: every update of the component's own stream).
    min_release_after: i64,
}

impl Check {
    const NONE: Check = Check {
        any: false,
        min_ubr: u32::MAX,
        min_release: i64::MAX,
        min_release_after: i64::MAX,
    };
}

/// How an open CVE is fixed, for one train (hotpatch or not).
#[derive(Debug, Clone)]
struct Remedy {
    fixed_by: Arc<[Kb]>,
    install: Kb,
    fix_released: Option<Timestamp>,
}

/// What every open finding of one CVE on one product says; shared, not copied, so a fleet of
/// servers at the same build costs one set of strings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CveFacts {
    pub cve: Arc<str>,
    pub title: Arc<str>,
    pub product_id: Arc<str>,
    pub severity: Option<&'static str>,
    pub impact: Option<Arc<str>>,
    pub cvss: Option<f32>,
    pub cvss_vector: Option<Arc<str>>,
    pub kev: bool,
    pub kev_due: Option<Date>,
    /// When CISA added it to KEV.
    pub kev_added: Option<Date>,
    pub kev_ransomware: bool,
    pub exploited: bool,
    pub publicly_disclosed: bool,
    pub epss: Option<f64>,
    pub epss_percentile: Option<f64>,
    pub released: Option<Timestamp>,
    pub document: Arc<str>,
    /// Position of the CVE id in sorted order: compares like `cve`, without touching strings.
    #[serde(skip)]
    pub order: u32,
}

/// Aggregated facts about one update on one product.
#[derive(Debug, Clone)]
pub struct UpdateInfo {
    pub kb: Kb,
    pub product: usize,
    pub classification: Classification,
    pub subtype: String,
    pub fixed_build: Option<OsBuild>,
    pub restart_required: Option<String>,
    pub document: String,
    pub released: Option<Timestamp>,
}

/// Indexes over a [`Catalog`] for assessing many servers quickly.
pub struct ExposureIndex<'c> {
    pub catalog: &'c Catalog,
    os_products: HashMap<(ServerRelease, Installation), usize>,
    component_products: HashMap<(ServerRelease, Installation), Vec<usize>>,
    /// Per product index: CVEs with their fix alternatives.
    per_product: Vec<Vec<CveFixes>>,
    /// Parallel to `per_product`: [not hotpatch, hotpatch] thresholds per CVE.
    checks: Vec<Vec<[Check; 2]>>,
    /// (product, kb) → update facts.
    updates: HashMap<(usize, Kb), UpdateInfo>,
    /// Per product: KBs of its updates.
    product_kbs: Vec<HashSet<Kb>>,
    /// kb → KBs it directly supersedes (union over products and documents).
    supersedes: HashMap<Kb, Vec<Kb>>,
    /// kb → KBs that directly supersede it.
    superseded_by: HashMap<Kb, Vec<Kb>>,
    /// Per product: cumulative updates with a fixed build, ascending by build (stream members
    /// and, for the hotpatch train, hotpatches).
    cumulative: Vec<Vec<(OsBuild, Kb, Classification)>>,
    /// (product, KB) of the OS cumulative stream (see [`FixRef::stream`]).
    in_stream: HashSet<(usize, Kb)>,
    /// Per product: a component serviced by its OS's cumulative updates.
    inbox: Vec<bool>,
    /// Per component product (e.g. .NET on an OS): its newest cumulative update, by release.
    latest_component: Vec<Option<(Option<Timestamp>, Kb)>>,
    kev: HashMap<&'c str, &'c KevEntry>,
    epss: HashMap<&'c str, &'c EpssScore>,
    lifecycle: HashMap<ServerRelease, &'c LifecycleEntry>,
    nvd: HashMap<&'c str, &'c NvdRecord>,
}

/// A CVE left open on a server. Field access reaches the shared [`CveFacts`] (`c.cve`).
#[derive(Debug, Clone, Serialize)]
pub struct OpenCve {
    #[serde(flatten)]
    pub facts: Arc<CveFacts>,
    /// MSRC's fixing KBs for this product (applicable alternatives).
    pub fixed_by: Arc<[Kb]>,
    /// The update to install that closes it (newest in its chain).
    pub install: Kb,
    pub determined_by: Determination,
    /// When the first applicable fix was released for this product (MSRC adds fixes to old
    /// months years later); the SLA clock starts at the later of this and `released`.
    pub fix_released: Option<Timestamp>,
    /// Filled by [`crate::priority::assess_server`].
    #[serde(flatten)]
    pub priority: Option<crate::priority::Priority>,
}

impl std::ops::Deref for OpenCve {
    type Target = CveFacts;
    fn deref(&self) -> &CveFacts {
        &self.facts
    }
}

/// An update the server should install, with the CVEs it closes.
#[derive(Debug, Clone, Serialize)]
pub struct MissingUpdate {
    pub kb: Kb,
    pub title: String,
    pub classification: Classification,
    pub classification_label: String,
    pub product_id: String,
    pub fixed_build: Option<OsBuild>,
    pub restart_required: Option<String>,
    pub released: Option<Timestamp>,
    pub closes: Vec<Arc<str>>,
}

/// Exposure of one server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerExposure {
    pub name: String,
    pub product: Option<String>,
    pub release: Option<ServerRelease>,
    pub installation: Installation,
    pub build: Option<OsBuild>,
    pub build_source: BuildSource,
    pub hotpatch: bool,
    pub support: Option<SupportStatus>,
    pub missing_updates: Vec<MissingUpdate>,
    pub open_cves: Vec<OpenCve>,
    /// Server-level findings and remarks in words (unsupported OS, unknown product, inference).
    pub notes: Vec<String>,
}

impl<'c> ExposureIndex<'c> {
    pub fn new(catalog: &'c Catalog) -> ExposureIndex<'c> {
        let mut pidx: HashMap<&str, usize> = HashMap::default();
        let mut os_products = HashMap::default();
        let mut component_products: HashMap<(ServerRelease, Installation), Vec<usize>> =
            HashMap::default();
        for (i, p) in catalog.products.iter().enumerate() {
            pidx.insert(p.id.as_str(), i);
            match &p.kind {
                ProductKind::Os {
                    release,
                    installation,
                } => {
                    os_products.entry((*release, *installation)).or_insert(i);
                }
                ProductKind::Component {
                    release,
                    installation,
                    ..
                } => {
                    component_products
                        .entry((*release, *installation))
                        .or_default()
                        .push(i);
                }
            }
        }
        let vidx: HashMap<&str, usize> = catalog
            .vulnerabilities
            .iter()
            .enumerate()
            .map(|(i, v)| (v.cve.as_str(), i))
            .collect();
        let aidx: HashMap<(&str, &str), usize> = catalog
            .affected
            .iter()
            .enumerate()
            .map(|(i, a)| ((a.cve.as_str(), a.product_id.as_str()), i))
            .collect();

        // Updates: facts from the KB table first, then from fixes (fixes fill gaps). The
        // release month of an update is the document in which it fixes the most CVEs (old
        // months are re-edited to list much newer KBs).
        let mut updates: HashMap<(usize, Kb), UpdateInfo> = HashMap::default();
        // (product, kb) → document → (CVE rows, release).
        type DocCounts<'a> = HashMap<(usize, Kb), HashMap<&'a str, (usize, Option<Timestamp>)>>;
        let mut doc_counts: DocCounts = HashMap::default();
        let mut supersedes: HashMap<Kb, BTreeSet<Kb>> = HashMap::default();
        for u in &catalog.updates {
            let Some(&p) = pidx.get(u.product_id.as_str()) else {
                continue;
            };
            supersedes
                .entry(u.kb)
                .or_default()
                .extend(u.supersedes.iter().copied());
            let e = updates.entry((p, u.kb)).or_insert_with(|| UpdateInfo {
                kb: u.kb,
                product: p,
                classification: u.classification,
                subtype: u.subtype.clone(),
                fixed_build: None,
                restart_required: u.restart_required.clone(),
                document: u.document.clone(),
                released: u.released,
            });
            e.fixed_build = e.fixed_build.or(u.fixed_build);
        }
        for f in &catalog.fixes {
            let Some(&p) = pidx.get(f.product_id.as_str()) else {
                continue;
            };
            supersedes
                .entry(f.kb)
                .or_default()
                .extend(f.supersedes.iter().copied());
            let released = vidx
                .get(f.cve.as_str())
                .and_then(|&v| catalog.vulnerabilities[v].released);
            let c = doc_counts
                .entry((p, f.kb))
                .or_default()
                .entry(f.document.as_str())
                .or_insert((0, released));
            c.0 += 1;
            let e = updates.entry((p, f.kb)).or_insert_with(|| UpdateInfo {
                kb: f.kb,
                product: p,
                classification: f.classification,
                subtype: f.subtype.clone(),
                fixed_build: None,
                restart_required: f.restart_required.clone(),
                document: f.document.clone(),
                released,
            });
            e.fixed_build = e.fixed_build.or(f.fixed_build);
            if e.restart_required.is_none() {
                e.restart_required = f.restart_required.clone();
            }
        }
        for (key, docs) in &doc_counts {
            if let Some(u) = updates.get_mut(key)
                && let Some((doc, (_, rel))) = docs
                    .iter()
                    .max_by(|a, b| a.1.0.cmp(&b.1.0).then(a.1.1.cmp(&b.1.1)).then(b.0.cmp(a.0)))
            {
                u.document = (*doc).to_string();
                u.released = *rel;
            }
        }
        // The OS cumulative stream. A month's cumulative update is the LCU / rollup with the
        // most CVE rows for that product in that document; an out-of-band update joins it when
        // its build is at least the newest such build released before it. Everything else
        // MSRC labels "Security Update" (Secure Boot revocations, WinRE / Safe OS packages) is a
        // standalone update.
        let mut main_of_doc: HashMap<(usize, &str), (usize, Kb)> = HashMap::default();
        for ((p, kb), docs) in &doc_counts {
            if !updates
                .get(&(*p, *kb))
                .is_some_and(|u| is_cumulative_stream(u.classification))
            {
                continue;
            }
            for (doc, (n, _)) in docs {
                let e = main_of_doc.entry((*p, *doc)).or_insert((0, Kb(0)));
                if (*n, *kb) > *e {
                    *e = (*n, *kb);
                }
            }
        }
        let mut in_stream: HashSet<(usize, Kb)> = main_of_doc
            .iter()
            .map(|((p, _), (_, kb))| (*p, *kb))
            .collect();
        // A later month's cumulative update listed in an older document (MSRC edits months for
        // years) is not the main update there; it still supersedes, month by month, a main one.
        let reaches_stream = |p: usize, kb: Kb, in_stream: &HashSet<(usize, Kb)>| {
            let mut seen: HashSet<Kb> = HashSet::default();
            let mut queue: VecDeque<Kb> =
                supersedes.get(&kb).into_iter().flatten().copied().collect();
            while let Some(k) = queue.pop_front() {
                if in_stream.contains(&(p, k)) {
                    return true;
                }
                if seen.insert(k) && seen.len() < 400 {
                    queue.extend(supersedes.get(&k).into_iter().flatten().copied());
                }
            }
            false
        };
        let chained: Vec<(usize, Kb)> = updates
            .iter()
            .filter(|((p, kb), u)| {
                is_cumulative_stream(u.classification)
                    && !in_stream.contains(&(*p, *kb))
                    && reaches_stream(*p, *kb, &in_stream)
            })
            .map(|(k, _)| *k)
            .collect();
        in_stream.extend(chained);
        // Builds of the months' cumulative updates, by release.
        let mut main_builds: Vec<Vec<(Option<Timestamp>, OsBuild)>> =
            vec![Vec::new(); catalog.products.len()];
        for (p, kb) in &in_stream {
            if let Some(u) = updates.get(&(*p, *kb))
                && let Some(b) = u.fixed_build
            {
                main_builds[*p].push((u.released, b));
            }
        }
        // Out-of-band and late-listed cumulative updates: at or above the newest main build
        // before them. WinRE / Safe OS packages carry builds far below it.
        let oob: Vec<(usize, Kb)> = updates
            .iter()
            .filter(|((p, kb), u)| {
                is_cumulative_stream(u.classification)
                    && !in_stream.contains(&(*p, *kb))
                    && u.fixed_build.is_some_and(|b| {
                        // Never below the cumulative update of its own release month
                        // (the August 2022 Secure Boot update vs. that month's LCU),
                        // nor below the newest main build released before it.
                        let same_doc = [u.document.as_str()].into_iter().any(|doc| {
                            main_of_doc
                                .get(&(*p, doc))
                                .and_then(|(_, main)| updates.get(&(*p, *main)))
                                .and_then(|m| m.fixed_build)
                                .is_some_and(|mb| mb > b)
                        });
                        let floor = main_builds[*p]
                            .iter()
                            .filter(|(r, _)| *r <= u.released)
                            .map(|(_, mb)| *mb)
                            .max();
                        // A package that replaces a known standalone update (the previous
                        // revocation list, WinRE or Safe OS package) is one of those too.
                        let replaces_standalone =
                            supersedes.get(kb).into_iter().flatten().any(|old| {
                                updates.contains_key(&(*p, *old))
                                    && !in_stream.contains(&(*p, *old))
                            });
                        // Its build must also fit the month it is listed in: above a cumulative
                        // update released later, it is a later package re-listed in an old
                        // month, and without a supersedence link to the stream it cannot be
                        // told from a standalone one.
                        let ceiling = main_builds[*p]
                            .iter()
                            .filter(|(r, _)| *r > u.released)
                            .map(|(_, mb)| *mb)
                            .min();
                        !same_doc
                            && !replaces_standalone
                            && floor.is_none_or(|f| b >= f)
                            && ceiling.is_none_or(|c| b <= c)
                    })
            })
            .map(|(k, _)| *k)
            .collect();
        in_stream.extend(oob);

        let mut product_kbs = vec![HashSet::default(); catalog.products.len()];
        let mut cumulative = vec![Vec::new(); catalog.products.len()];
        let mut latest_component: Vec<Option<(Option<Timestamp>, Kb)>> =
            vec![None; catalog.products.len()];
        for ((p, kb), u) in &updates {
            product_kbs[*p].insert(*kb);
            if let Some(b) = u.fixed_build
                && (in_stream.contains(&(*p, *kb)) || u.classification == Classification::Hotpatch)
            {
                cumulative[*p].push((b, *kb, u.classification));
            }
            if matches!(catalog.products[*p].kind, ProductKind::Component { .. })
                && u.classification != Classification::SecurityOnly
                && !u.subtype.eq_ignore_ascii_case("Security Only")
            {
                let cand = (u.released, *kb);
                if latest_component[*p].is_none_or(|cur| cand > cur) {
                    latest_component[*p] = Some(cand);
                }
            }
        }
        for c in &mut cumulative {
            c.sort();
            c.dedup();
        }

        let os_of = |p: usize| {
            let k = &catalog.products[p].kind;
            os_products.get(&(k.release(), k.installation())).copied()
        };
        // A component is in-box when the OS cumulative update is how it is serviced: most of
        // its fix rows name an OS stream update (2016's .NET). A component with its own
        // updates (.NET 4.8 on 2019) needs evidence on the server.
        let mut rows = vec![(0usize, 0usize); catalog.products.len()];
        for f in &catalog.fixes {
            let Some(&p) = pidx.get(f.product_id.as_str()) else {
                continue;
            };
            if let (ProductKind::Component { .. }, Some(o)) = (&catalog.products[p].kind, os_of(p))
            {
                rows[p].1 += 1;
                if in_stream.contains(&(o, f.kb)) {
                    rows[p].0 += 1;
                }
            }
        }
        let inbox: Vec<bool> = rows
            .iter()
            .map(|(os_rows, all)| *all > 0 && os_rows * 2 > *all)
            .collect();
        let mut per_product_map: Vec<BTreeMap<usize, CveFixes>> =
            vec![BTreeMap::new(); catalog.products.len()];
        for f in &catalog.fixes {
            let (Some(&p), Some(&v)) = (pidx.get(f.product_id.as_str()), vidx.get(f.cve.as_str()))
            else {
                continue;
            };
            // A cumulative fix without a usable build borrows the update's build from other rows.
            // Setup / Safe OS dynamic updates refresh installation media, not running servers.
            if f.classification == Classification::DynamicUpdate {
                continue;
            }
            let build = f.fixed_build.or_else(|| {
                f.classification
                    .is_os_cumulative()
                    .then(|| updates.get(&(p, f.kb)).and_then(|u| u.fixed_build))
                    .flatten()
            });
            let entry = per_product_map[p].entry(v).or_insert_with(|| CveFixes {
                vuln: v,
                affected: aidx.get(&(f.cve.as_str(), f.product_id.as_str())).copied(),
                fixes: Vec::new(),
                facts: None,
                plain: None,
                hot: None,
            });
            if !entry.fixes.iter().any(|x| x.kb == f.kb) {
                let os = os_of(p);
                entry.fixes.push(FixRef {
                    kb: f.kb,
                    class: f.classification,
                    build,
                    released: updates.get(&(p, f.kb)).and_then(|u| u.released),
                    stream: in_stream.contains(&(p, f.kb))
                        || os.is_some_and(|o| in_stream.contains(&(o, f.kb))),
                    next_month: f.classification == Classification::Preview
                        || f.subtype.eq_ignore_ascii_case("Update"),
                });
            }
        }
        let per_product = per_product_map
            .into_iter()
            .map(|m| m.into_values().collect())
            .collect();

        let mut superseded_by: HashMap<Kb, Vec<Kb>> = HashMap::default();
        let supersedes: HashMap<Kb, Vec<Kb>> = supersedes
            .into_iter()
            .map(|(k, v)| {
                for old in &v {
                    superseded_by.entry(*old).or_default().push(k);
                }
                (k, v.into_iter().collect())
            })
            .collect();
        for v in superseded_by.values_mut() {
            v.sort();
            v.dedup();
        }

        let kev = catalog.kev.iter().map(|k| (k.cve.as_str(), k)).collect();
        let mut epss: HashMap<&str, &EpssScore> = HashMap::default();
        for e in &catalog.epss {
            let slot = epss.entry(e.cve.as_str()).or_insert(e);
            if e.score_date > slot.score_date {
                *slot = e;
            }
        }
        let nvd = catalog.nvd.iter().map(|n| (n.cve.as_str(), n)).collect();
        let lifecycle = catalog
            .lifecycle
            .iter()
            .filter_map(|l| l.release.map(|r| (r, l)))
            .collect();
        let mut index = ExposureIndex {
            catalog,
            os_products,
            component_products,
            checks: Vec::new(),
            inbox,
            in_stream,
            latest_component,
            per_product,
            updates,
            product_kbs,
            supersedes,
            superseded_by,
            cumulative,
            kev,
            epss,
            lifecycle,
            nvd,
        };
        index.prepare();
        index
    }

    /// Build the shared facts and both remedies of every (product, CVE) once.
    fn prepare(&mut self) {
        let mut memo: HashMap<(usize, usize, Kb), Kb> = HashMap::default();
        let mut ids: Vec<&str> = self
            .catalog
            .vulnerabilities
            .iter()
            .map(|v| v.cve.as_str())
            .collect();
        ids.sort_unstable();
        let order: HashMap<&str, u32> = ids
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u32))
            .collect();
        let mut prepared = Vec::with_capacity(self.per_product.len());
        for (p, list) in self.per_product.iter().enumerate() {
            let kind = &self.catalog.products[p].kind;
            let os = self
                .os_products
                .get(&(kind.release(), kind.installation()))
                .copied()
                .unwrap_or(p);
            let product_id: Arc<str> = Arc::from(self.catalog.products[p].id.as_str());
            let mut out = Vec::with_capacity(list.len());
            for cf in list {
                let v = &self.catalog.vulnerabilities[cf.vuln];
                let a = cf.affected.map(|i| &self.catalog.affected[i]);
                let kev = self.kev(&v.cve);
                let epss = self.epss(&v.cve);
                let nvd_metric = self.nvd(&v.cve).and_then(|n| n.best_metric());
                let facts = Arc::new(CveFacts {
                    cve: Arc::from(v.cve.as_str()),
                    title: Arc::from(v.title.as_str()),
                    product_id: product_id.clone(),
                    severity: a.and_then(|a| a.severity).map(|s| s.label()),
                    impact: a.and_then(|a| a.impact.as_deref()).map(Arc::from),
                    // MSRC's per-product score first; NVD's (v4 over v3.1) where MSRC has none.
                    cvss: a
                        .and_then(|a| a.cvss_base)
                        .or_else(|| nvd_metric.map(|m| m.base_score)),
                    cvss_vector: a
                        .and_then(|a| a.cvss_vector.as_deref())
                        .or_else(|| nvd_metric.map(|m| m.vector.as_str()))
                        .map(Arc::from),
                    kev: kev.is_some(),
                    kev_due: kev.map(|k| k.due),
                    kev_added: kev.map(|k| k.date_added),
                    kev_ransomware: kev.is_some_and(|k| k.known_ransomware),
                    exploited: v.exploited,
                    publicly_disclosed: v.publicly_disclosed,
                    epss: epss.map(|e| e.epss),
                    epss_percentile: epss.map(|e| e.percentile),
                    released: v.released,
                    document: Arc::from(v.document.as_str()),
                    order: *order.get(v.cve.as_str()).unwrap_or(&u32::MAX),
                });
                let remedy = |hotpatch: bool, memo: &mut HashMap<(usize, usize, Kb), Kb>| {
                    let applicable: Vec<&FixRef> = cf
                        .fixes
                        .iter()
                        .filter(|f| hotpatch || f.class != Classification::Hotpatch)
                        .collect();
                    if applicable.is_empty() {
                        return None;
                    }
                    let mut fixed_by: Vec<Kb> = applicable.iter().map(|f| f.kb).collect();
                    fixed_by.sort();
                    fixed_by.dedup();
                    Some(Remedy {
                        fixed_by: fixed_by.into(),
                        install: self.remediation(os, p, &applicable, hotpatch, memo),
                        fix_released: applicable.iter().filter_map(|f| f.released).min(),
                    })
                };
                let plain = remedy(false, &mut memo);
                let hot = remedy(true, &mut memo);
                out.push((facts, plain, hot));
            }
            prepared.push(out);
        }
        self.checks = self
            .per_product
            .iter()
            .enumerate()
            .map(|(p, list)| {
                let is_os = matches!(self.catalog.products[p].kind, ProductKind::Os { .. });
                list.iter()
                    .map(|cf| {
                        let mut out = [Check::NONE; 2];
                        for (train, check) in out.iter_mut().enumerate() {
                            let hotpatch = train == 1;
                            for f in cf
                                .fixes
                                .iter()
                                .filter(|f| hotpatch || f.class != Classification::Hotpatch)
                            {
                                check.any = true;
                                // A validated fixed build is an OS build of this release
                                // (components bundled in the OS cumulative update carry one
                                // too); security-only updates are not cumulative, so their
                                // build proves nothing about other months.
                                let released =
                                    f.released.map(|r| r.as_millisecond()).unwrap_or(i64::MAX);
                                if f.class != Classification::SecurityOnly
                                    && (f.stream || f.class == Classification::Hotpatch)
                                    && let Some(fb) = f.build
                                {
                                    check.min_ubr = check.min_ubr.min(fb.ubr.unwrap_or(u32::MAX));
                                } else if f.stream
                                    // Build-less monthly cumulative updates (also when they
                                    // service an in-box component such as IE 11), and
                                    // servicing stack updates, which every later cumulative
                                    // update requires (2012 R2, 2016) or contains (2019+).
                                    || (is_os && f.class == Classification::ServicingStack)
                                {
                                    check.min_release = check.min_release.min(released);
                                } else if (is_os && f.next_month)
                                    || (!is_os && f.class != Classification::Hotpatch)
                                {
                                    check.min_release_after = check.min_release_after.min(released);
                                }
                            }
                        }
                        out
                    })
                    .collect()
            })
            .collect();
        for (list, prepared) in self.per_product.iter_mut().zip(prepared) {
            for (cf, (facts, plain, hot)) in list.iter_mut().zip(prepared) {
                cf.facts = Some(facts);
                cf.plain = plain;
                cf.hot = hot;
            }
        }
    }

    pub fn kev(&self, cve: &str) -> Option<&'c KevEntry> {
        self.kev.get(cve).copied()
    }

    pub fn epss(&self, cve: &str) -> Option<&'c EpssScore> {
        self.epss.get(cve).copied()
    }

    pub fn nvd(&self, cve: &str) -> Option<&'c NvdRecord> {
        self.nvd.get(cve).copied()
    }

    /// The OS release of a server: from its build, else from its OS caption.
    pub fn release_of(server: &Server) -> Option<ServerRelease> {
        server
            .build
            .as_ref()
            .and_then(ServerRelease::from_build)
            .or(server.release)
            .or_else(|| release_from_caption(&server.os))
    }

    /// Newest (non-hotpatch) cumulative update of a product. Hotpatch servers take it too:
    /// it is their quarterly baseline and it supersedes every hotpatch before it.
    /// Newest hotpatch of a product (enrolled servers between baselines).
    fn latest_hotpatch(&self, product: usize) -> Option<(OsBuild, Kb)> {
        self.cumulative[product]
            .iter()
            .filter(|(_, _, c)| *c == Classification::Hotpatch)
            .max_by_key(|(b, k, _)| {
                (
                    self.updates.get(&(product, *k)).and_then(|u| u.released),
                    *b,
                )
            })
            .map(|(b, k, _)| (*b, *k))
    }

    fn latest_cumulative(&self, product: usize) -> Option<(OsBuild, Kb)> {
        self.cumulative[product]
            .iter()
            .rfind(|(_, _, c)| *c != Classification::Hotpatch)
            .map(|(b, k, _)| (*b, *k))
    }

    /// All KBs covered by an installed set: the KBs themselves and everything they supersede.
    fn closure(&self, installed: impl IntoIterator<Item = Kb>) -> HashSet<Kb> {
        let mut seen: HashSet<Kb> = HashSet::default();
        let mut queue: VecDeque<Kb> = VecDeque::new();
        for k in installed {
            if seen.insert(k) {
                queue.push_back(k);
            }
        }
        while let Some(k) = queue.pop_front() {
            if let Some(olds) = self.supersedes.get(&k) {
                for o in olds {
                    if seen.insert(*o) {
                        queue.push_back(*o);
                    }
                }
            }
        }
        seen
    }

    /// The newest update (of one of `products`) that transitively supersedes `kb`, or `kb`.
    fn chain_head(&self, products: &[usize], kb: Kb) -> Kb {
        let info = |k: Kb| products.iter().find_map(|p| self.updates.get(&(*p, k)));
        let mut best = kb;
        let mut best_key = info(kb).map(|u| (u.released, u.kb));
        let mut seen: HashSet<Kb> = [kb].into_iter().collect();
        let mut queue = VecDeque::from([kb]);
        while let Some(k) = queue.pop_front() {
            for n in self.superseded_by.get(&k).into_iter().flatten() {
                if !seen.insert(*n) {
                    continue;
                }
                queue.push_back(*n);
                if let Some(u) = info(*n) {
                    let key = Some((u.released, u.kb));
                    if key > best_key {
                        best_key = key;
                        best = *n;
                    }
                }
            }
        }
        best
    }

    /// Assess one server.
    pub fn assess(&self, server: &Server, as_of: Date) -> ServerExposure {
        let release = Self::release_of(server);
        let installation = server.installation.unwrap_or(Installation::Desktop);
        let mut notes = Vec::new();
        let mut out = ServerExposure {
            name: server.name.clone(),
            product: None,
            release,
            installation,
            build: server.build,
            build_source: if server.build.is_some_and(|b| b.ubr.is_some()) {
                BuildSource::Reported
            } else {
                BuildSource::Unknown
            },
            hotpatch: server.hotpatch,
            support: None,
            missing_updates: Vec::new(),
            open_cves: Vec::new(),
            notes: Vec::new(),
        };
        let Some(release) = release else {
            notes.push(format!(
                "unrecognised OS {:?}: not a Windows Server release Patchward can assess",
                server.os
            ));
            out.notes = notes;
            return out;
        };
        if server.hotpatch && !release.supports_hotpatch() {
            notes.push(format!(
                "hotpatch is not offered for {release}; hotpatch enrolment ignored"
            ));
        }
        let hotpatch = server.hotpatch && release.supports_hotpatch();
        out.support = self.lifecycle.get(&release).map(|l| l.status(as_of));
        if let Some(s) = &out.support {
            if s.phase == crate::intel::SupportPhase::Unsupported {
                notes.push(format!(
                    "{release} is {}: no security updates are published for it",
                    s.detail
                ));
            } else if s.phase == crate::intel::SupportPhase::Esu {
                notes.push(format!(
                    "{release} receives updates only under paid Extended Security Updates ({})",
                    s.detail
                ));
            }
        }
        let Some(&os) = self.os_products.get(&(release, installation)) else {
            notes.push(format!(
                "no MSRC data for {release} ({installation}) in the imported feeds"
            ));
            out.notes = notes;
            return out;
        };
        out.product = Some(self.catalog.products[os].name.clone());

        // Build: reported, or inferred from the newest installed cumulative update.
        let mut build = server.build.filter(|b| b.ubr.is_some());
        if build.is_none() {
            let inferred = self.cumulative[os]
                .iter()
                .filter(|(_, k, c)| {
                    server.installed_kbs.contains(k) && (hotpatch || *c != Classification::Hotpatch)
                })
                .max();
            if let Some((b, k, _)) = inferred {
                build = Some(*b);
                out.build = Some(*b);
                out.build_source = BuildSource::InferredFromKb;
                notes.push(format!(
                    "build revision inferred from installed {k} (fixed build {b})"
                ));
            } else {
                notes.push("build revision unknown and no installed cumulative update recognised: CVEs decided by KBs only".into());
            }
        }
        let build = build.filter(|b| ServerRelease::from_build(b) == Some(release));

        // Effective installed set: what is installed, plus the cumulative update the build
        // implies (a server at a build has, in effect, every older cumulative update).
        let mut effective: Vec<Kb> = server.installed_kbs.iter().copied().collect();
        if let Some(b) = build
            && let Some((_, k, _)) = self.cumulative[os]
                .iter()
                .filter(|(fb, _, c)| *fb <= b && (hotpatch || *c != Classification::Hotpatch))
                .max()
        {
            effective.push(*k);
        }
        // The server's place in the cumulative stream by release: the newest monthly
        // cumulative update it has (installed, or implied by its build). It satisfies every
        // older cumulative fix, including those from months MSRC published without builds.
        let stream_release: Option<Timestamp> = effective
            .iter()
            .filter(|k| self.in_stream.contains(&(os, **k)))
            .filter_map(|k| self.updates.get(&(os, *k)))
            .filter_map(|u| u.released)
            .max();
        let covered = self.closure(effective);

        let mut products = vec![os];
        for &c in self
            .component_products
            .get(&(release, installation))
            .into_iter()
            .flatten()
        {
            // Evidence of a component is an installed update of that component which is not
            // also an OS update (on 2016+ the LCU services in-box .NET too, and installing a
            // newer LCU must never make a component appear).
            // A component serviced by the OS cumulative update (in-box .NET on 2016) is there
            // on every server of the release.
            if self.inbox[c]
                || server
                    .installed_kbs
                    .iter()
                    .any(|k| self.product_kbs[c].contains(k) && !self.product_kbs[os].contains(k))
            {
                products.push(c);
            }
        }

        let mut missing: BTreeMap<Kb, (usize, Vec<Arc<str>>)> = BTreeMap::new();
        let ubr = build.and_then(|b| b.ubr);
        let stream_ms = stream_release.map(|t| t.as_millisecond());
        let train = usize::from(hotpatch);
        for &p in &products {
            // Components have their own stream: the newest of their updates installed.
            let after_ms = if p == os {
                stream_ms
            } else {
                server
                    .installed_kbs
                    .iter()
                    .filter_map(|k| self.updates.get(&(p, *k)))
                    .filter(|u| {
                        u.classification != Classification::SecurityOnly
                            && !u.subtype.eq_ignore_ascii_case("Security Only")
                    })
                    .filter_map(|u| u.released)
                    .max()
                    .map(|t| t.as_millisecond())
            };
            for (cf, checks) in self.per_product[p].iter().zip(&self.checks[p]) {
                // Decide from the flat thresholds first: most CVEs are closed by the server's
                // place in the cumulative stream; KBs are consulted only if not.
                let c = checks[train];
                if !c.any {
                    continue;
                }
                let has_build = c.min_ubr != u32::MAX
                    || (c.min_release != i64::MAX && stream_ms.is_some())
                    || (p == os && c.min_release_after != i64::MAX && stream_ms.is_some());
                let build_ok = ubr.is_some_and(|u| c.min_ubr <= u)
                    || stream_ms.is_some_and(|r| c.min_release <= r)
                    || after_ms.is_some_and(|r| c.min_release_after < r);
                let by_stream = has_build && (ubr.is_some() || stream_ms.is_some());
                let closed = (by_stream && build_ok)
                    || after_ms.is_some_and(|r| c.min_release_after < r)
                    || cf.fixes.iter().any(|f| {
                        (hotpatch || f.class != Classification::Hotpatch) && covered.contains(&f.kb)
                    });
                let determined_by = if by_stream {
                    Determination::Build
                } else {
                    Determination::Kb
                };
                if closed {
                    continue;
                }
                let remedy = if hotpatch {
                    cf.hot.as_ref()
                } else {
                    cf.plain.as_ref()
                };
                let (Some(facts), Some(r)) = (cf.facts.as_ref(), remedy) else {
                    continue;
                };
                out.open_cves.push(OpenCve {
                    facts: facts.clone(),
                    fixed_by: r.fixed_by.clone(),
                    install: r.install,
                    determined_by,
                    fix_released: r.fix_released,
                    priority: None,
                });
                missing
                    .entry(r.install)
                    .or_insert_with(|| (p, Vec::new()))
                    .1
                    .push(facts.cve.clone());
            }
        }
        for (kb, (p, mut closes)) in missing {
            closes.sort();
            closes.dedup();
            let product = &self.catalog.products[p];
            let u = self.updates.get(&(p, kb));
            let update = Update {
                kb,
                product_id: product.id.clone(),
                classification: u.map(|u| u.classification).unwrap_or(Classification::Other),
                subtype: u.map(|u| u.subtype.clone()).unwrap_or_default(),
                fixed_build: u.and_then(|u| u.fixed_build),
                supersedes: Vec::new(),
                restart_required: u.and_then(|u| u.restart_required.clone()),
                document: u.map(|u| u.document.clone()).unwrap_or_default(),
                released: u.and_then(|u| u.released),
            };
            out.missing_updates.push(MissingUpdate {
                kb,
                title: update.title(&product.name),
                classification: update.classification,
                classification_label: update.classification.label().to_string(),
                product_id: product.id.clone(),
                fixed_build: update.fixed_build,
                restart_required: update.restart_required,
                released: update.released,
                closes,
            });
        }
        out.missing_updates
            .sort_by(|a, b| b.closes.len().cmp(&a.closes.len()).then(a.kb.cmp(&b.kb)));
        out.open_cves.sort_by(|a, b| a.cve.cmp(&b.cve));
        out.notes = notes;
        out
    }

    /// Which update to install for a CVE: the newest OS cumulative update when the fix is in
    /// the OS build stream (it satisfies all older ones), else the newest update that
    /// supersedes the fix, on this product or the OS.
    fn remediation(
        &self,
        os: usize,
        product: usize,
        applicable: &[&FixRef],
        hotpatch: bool,
        memo: &mut HashMap<(usize, usize, Kb), Kb>,
    ) -> Kb {
        let rank = |f: &FixRef| match f.class {
            _ if f.stream => 0,
            Classification::Hotpatch => 1,
            Classification::SecurityOnly => 4,
            Classification::SecurityCumulativeUpdate | Classification::MonthlyRollup => 2,
            _ => 3,
        };
        let Some(best) = applicable
            .iter()
            .min_by_key(|f| (rank(f), f.build.is_none(), f.kb))
        else {
            return Kb(0);
        };
        // In the OS stream (by build or by release), the newest cumulative update closes it;
        // an enrolled server takes the newest hotpatch when it is as new as the newest
        // cumulative update (a hotpatch month; in a baseline month only the LCU is new).
        let in_os_stream = (best.stream && best.class != Classification::SecurityOnly)
            || (product == os && (best.next_month || best.class == Classification::ServicingStack))
            || best.class == Classification::Hotpatch;
        if in_os_stream && let Some((b, k)) = self.latest_cumulative(os) {
            let newest = |kb: Kb| self.updates.get(&(os, kb)).and_then(|u| u.released);
            if hotpatch
                && let Some((hb, hk)) = self.latest_hotpatch(os)
                && newest(hk) >= newest(k)
                // the hotpatch train closes it: some alternative's build is within the hotpatch
                && applicable.iter().any(|f| f.build.is_some_and(|fb| fb <= hb))
            {
                return hk;
            }
            if best.build.is_none_or(|fb| fb <= b) {
                return k;
            }
        }
        // A component (.NET on an OS) has its own cumulative stream.
        if product != os
            && let Some((r, k)) = self.latest_component[product]
            && r >= best.released
        {
            return k;
        }
        *memo
            .entry((product, os, best.kb))
            .or_insert_with(|| self.chain_head(&[product, os], best.kb))
    }
}
