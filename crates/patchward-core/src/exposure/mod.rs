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
//! - Components: those serviced by the OS cumulative update (IE 11, EdgeHTML) are always
//!   assessed and closed by the server's place in the stream (a month's out-of-band update only
//!   by a later month, or by its KB). .NET Framework: the 4.x line that ships with the release
//!   (see [`dotnet`]) is always assessed, a later line when an installed update that only later
//!   lines list proves it, 3.5 alone only when an update of 3.5 alone shows it; a line's own
//!   newest installed update closes every older fix of it. One CVE with one remedy listed under
//!   the OS and a component is one finding.
//! - Installed KBs that Microsoft's data does not list (umbrella .NET updates) leave .NET
//!   findings that a later update may close marked `kb_unlisted`, with a note.
//! - A server that reports no OS (a bare Get-HotFix list) is assessed as the one release whose
//!   cumulative updates its KBs are, when there is exactly one.

use crate::build::OsBuild;
use crate::catalog::{Affected, Classification, Fix, Kb, Product, Update, Vulnerability};
use crate::intel::{EpssScore, KevEntry, LifecycleEntry, NvdRecord, SupportStatus};
use crate::inventory::{BuildSource, Server};
use crate::product::{Installation, ProductKind, ServerRelease, release_from_caption};
pub use dotnet::DotNetFamily;
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
    /// Decided by KBs, but the server has installed KBs that Microsoft's data does not list
    /// (e.g. the umbrella KB of a .NET cumulative update, whose parts MSRC lists) numbered
    /// after the fix: one of them may contain it. Open as far as the data shows; verify.
    KbUnlisted,
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
    /// The main cumulative update of its own month (not an out-of-band one after it).
    month_main: bool,
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
    /// Built once per index and shared by every server that has the CVE open: the facts with
    /// the remedy for servers not enrolled in hotpatch, and for enrolled ones.
    plain: Option<Arc<CveFacts>>,
    hot: Option<Arc<CveFacts>>,
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
    /// MSRC's fixing KBs for this product (the alternatives that apply on this train).
    pub fixed_by: Arc<[Kb]>,
    /// The update to install that closes it (newest in its chain).
    pub install: Kb,
    /// When the first applicable fix was released for this product (MSRC adds fixes to old
    /// months years later); the SLA clock starts at the later of this and `released`.
    pub fix_released: Option<Timestamp>,
    /// Position of the CVE id in sorted order: compares like `cve`, without touching strings.
    #[serde(skip)]
    pub order: u32,
    /// Dense id of these facts in the index (per product, CVE and train), for O(1) caches.
    #[serde(skip)]
    pub slot: u32,
    /// Product index of the update to install (the OS for OS updates).
    #[serde(skip)]
    owner: u32,
}

/// A missing update as people see it: shared by every server that misses it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateFacts {
    pub kb: Kb,
    pub title: String,
    pub classification: Classification,
    pub classification_label: &'static str,
    pub product_id: String,
    pub fixed_build: Option<OsBuild>,
    pub restart_required: Option<String>,
    pub released: Option<Timestamp>,
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
pub struct ExposureIndex {
    /// Owned (shared): one index serves every request until the feeds change.
    pub catalog: Arc<Catalog>,
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
    /// Per product: a component serviced by its OS's cumulative updates (IE 11, EdgeHTML,
    /// .NET on 2016): most of its fix rows name an OS stream update.
    os_serviced: Vec<bool>,
    /// Per product: the .NET Framework line it belongs to (all renamed products of one line
    /// share the index of the newest; see [`dotnet`]).
    dotnet: Vec<Option<DotNetFamily>>,
    /// Every KB the catalog knows (any product, the KB → build table): an installed KB outside
    /// it is one Microsoft's data does not list.
    known_kbs: HashSet<Kb>,
    /// (product owning the update, KB) → how a missing update is shown.
    update_facts: HashMap<(usize, Kb), Arc<UpdateFacts>>,
    /// Number of distinct [`CveFacts`] (their `slot`s run 0..slots).
    slots: usize,
    /// Per OS product: a bit per CVE `order` that its components list too.
    also_on_components: Vec<Vec<u64>>,
    /// Per component product (e.g. .NET on an OS): its newest cumulative update, by release.
    latest_component: Vec<Option<(Option<Timestamp>, Kb)>>,
    /// CVE → position in `catalog.kev` (and likewise below).
    kev: HashMap<Box<str>, usize>,
    epss: HashMap<Box<str>, usize>,
    lifecycle: HashMap<ServerRelease, usize>,
    nvd: HashMap<Box<str>, usize>,
}

/// A CVE left open on a server: shared facts, how it was decided and its priority. Small
/// (three words) because a fleet has millions; field access reaches the facts (`c.cve`).
#[derive(Debug, Clone)]
pub struct OpenCve {
    pub facts: Arc<CveFacts>,
    pub determined_by: Determination,
    /// Filled by [`crate::priority::assess_server`]; shared by servers of the same mission.
    pub priority: Option<Arc<crate::priority::Priority>>,
}

impl OpenCve {
    /// The priority's reasons in words (empty before prioritisation).
    pub fn reasons(&self) -> Vec<String> {
        self.priority
            .as_ref()
            .map(|p| p.reasons(&self.facts))
            .unwrap_or_default()
    }
}

/// Serialised flat: the facts, `determined_by`, the priority and its reasons in words.
impl Serialize for OpenCve {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            #[serde(flatten)]
            facts: &'a CveFacts,
            determined_by: Determination,
            #[serde(flatten)]
            priority: Option<&'a crate::priority::Priority>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reasons: Option<Vec<String>>,
        }
        View {
            facts: &self.facts,
            determined_by: self.determined_by,
            priority: self.priority.as_deref(),
            reasons: self.priority.as_ref().map(|p| p.reasons(&self.facts)),
        }
        .serialize(s)
    }
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
    #[serde(flatten)]
    pub update: Arc<UpdateFacts>,
    #[serde(serialize_with = "cve_ids")]
    pub closes: Vec<Arc<CveFacts>>,
}

impl std::ops::Deref for MissingUpdate {
    type Target = UpdateFacts;
    fn deref(&self) -> &UpdateFacts {
        &self.update
    }
}

fn cve_ids<S: serde::Serializer>(closes: &[Arc<CveFacts>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(closes.iter().map(|c| &*c.cve))
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

impl ServerExposure {
    /// A server not assessed yet: nothing known, nothing open.
    pub fn empty(name: &str) -> ServerExposure {
        ServerExposure {
            name: name.to_string(),
            product: None,
            release: None,
            installation: Installation::Desktop,
            build: None,
            build_source: BuildSource::Unknown,
            hotpatch: false,
            support: None,
            missing_updates: Vec::new(),
            open_cves: Vec::new(),
            notes: Vec::new(),
        }
    }
}

mod assess;
pub mod dotnet;
mod index;
mod words;
