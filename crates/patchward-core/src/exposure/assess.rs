//! Assessing one server against the [`ExposureIndex`], and choosing what to install.

use super::*;

impl ExposureIndex {
    pub fn kev(&self, cve: &str) -> Option<&KevEntry> {
        self.kev.get(cve).map(|&i| &self.catalog.kev[i])
    }

    /// The newest score of the CVE.
    pub fn epss(&self, cve: &str) -> Option<&EpssScore> {
        self.epss.get(cve).map(|&i| &self.catalog.epss[i])
    }

    pub fn nvd(&self, cve: &str) -> Option<&NvdRecord> {
        self.nvd.get(cve).map(|&i| &self.catalog.nvd[i])
    }

    /// The one release whose OS stream contains installed KBs of the server, if exactly one.
    fn release_from_kbs(&self, server: &Server) -> Option<ServerRelease> {
        let mut found: Option<ServerRelease> = None;
        for (key, &os) in &self.os_products {
            if server
                .installed_kbs
                .iter()
                .any(|k| self.in_stream.contains(&(os, *k)))
            {
                match found {
                    Some(r) if r != key.0 => return None,
                    _ => found = Some(key.0),
                }
            }
        }
        found
    }

    /// Number of distinct per-(product, CVE, train) facts: `CveFacts::slot` is below it.
    pub fn slots(&self) -> usize {
        self.slots
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
    pub(super) fn closure(&self, installed: impl IntoIterator<Item = Kb>) -> HashSet<Kb> {
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

    /// Assess one server: its open CVEs (sorted by CVE id) and the updates that close them.
    pub fn assess(&self, server: &Server, as_of: Date) -> ServerExposure {
        let mut open: Vec<OpenCve> = Vec::new();
        let mut missing: BTreeMap<(u32, Kb), Vec<Arc<CveFacts>>> = BTreeMap::new();
        let mut out = self.scan(server, as_of, |facts, determined_by| {
            open.push(OpenCve {
                facts: facts.clone(),
                determined_by,
                priority: None,
            });
            missing
                .entry((facts.owner, facts.install))
                .or_default()
                .push(facts.clone());
        });
        for ((owner, kb), mut closes) in missing {
            closes.sort_by_key(|c| c.order);
            closes.dedup_by_key(|c| c.order);
            if let Some(update) = self.update_facts.get(&(owner as usize, kb)) {
                out.missing_updates.push(MissingUpdate {
                    update: update.clone(),
                    closes,
                });
            }
        }
        out.missing_updates
            .sort_by(|a, b| b.closes.len().cmp(&a.closes.len()).then(a.kb.cmp(&b.kb)));
        open.sort_by_key(|c| c.order);
        open.shrink_to_fit();
        out.open_cves = open;
        out
    }

    /// The assessment without materialising findings: `visit` sees every open CVE's shared
    /// facts and how it was decided (callers that only count, such as fleet summaries, keep
    /// nothing per finding). Returns the server-level result with its notes and no findings.
    pub fn scan<F: FnMut(&Arc<CveFacts>, Determination)>(
        &self,
        server: &Server,
        as_of: Date,
        mut visit: F,
    ) -> ServerExposure {
        let mut notes = Vec::new();
        let release = Self::release_of(server).or_else(|| {
            // A bare KB list (Get-HotFix) names no OS: the release whose cumulative updates
            // the installed KBs are, when they are those of exactly one release.
            let r = self.release_from_kbs(server)?;
            notes.push(format!(
                "OS not reported: {r} inferred from its installed cumulative updates{}",
                if server.installation.is_none() {
                    " (installation type unknown: Desktop Experience assumed)"
                } else {
                    ""
                }
            ));
            Some(r)
        });
        let installation = server.installation.unwrap_or(Installation::Desktop);
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
        out.support = self
            .lifecycle
            .get(&release)
            .map(|&i| self.catalog.lifecycle[i].status(as_of));
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

        // Everything the installed KBs cover: themselves and, transitively, what they
        // supersede. An out-of-band update MSRC lists only under a component (KB4483229 under
        // IE 11) still supersedes the month's OS update and so places the server in the stream.
        let installed_closure = self.closure(server.installed_kbs.iter().copied());

        // Build: reported, or inferred from the newest cumulative update the installed KBs
        // cover.
        let mut build = server.build.filter(|b| b.ubr.is_some());
        let mut build_unknown = false;
        if build.is_none() {
            let inferred = self.cumulative[os]
                .iter()
                .filter(|(_, k, c)| {
                    installed_closure.contains(k) && (hotpatch || *c != Classification::Hotpatch)
                })
                .max();
            if let Some((b, k, _)) = inferred {
                build = Some(*b);
                out.build = Some(*b);
                out.build_source = BuildSource::InferredFromKb;
                let via = if server.installed_kbs.contains(k) {
                    format!("installed {k}")
                } else {
                    format!("{k}, which an installed update supersedes")
                };
                notes.push(format!(
                    "build revision inferred from {via} (fixed build {b})"
                ));
            } else {
                build_unknown = true;
            }
        }
        let build = build.filter(|b| ServerRelease::from_build(b) == Some(release));

        // Effective coverage: the installed closure plus the cumulative update the build
        // implies (a server at a build has, in effect, every older cumulative update).
        let mut covered = installed_closure;
        if let Some(b) = build
            && let Some((_, k, _)) = self.cumulative[os]
                .iter()
                .filter(|(fb, _, c)| *fb <= b && (hotpatch || *c != Classification::Hotpatch))
                .max()
            && !covered.contains(k)
        {
            covered.extend(self.closure([*k]));
        }
        // The server's place in the cumulative stream by release: the newest monthly
        // cumulative update it covers. It satisfies every older cumulative fix, including those
        // from months MSRC published without builds.
        let stream_place: Option<(Timestamp, Kb)> = covered
            .iter()
            .filter(|k| self.in_stream.contains(&(os, **k)))
            .filter_map(|k| self.updates.get(&(os, *k)))
            .filter_map(|u| u.released.map(|r| (r, u.kb)))
            .max();
        let stream_release = stream_place.map(|(r, _)| r);

        let lines = self.components_on(server, os, release, installation, &mut notes);

        // Installed KBs that Microsoft's data does not list: they may contain fixes the data
        // cannot show (numbered after the fix, since KB numbers grow with time).
        let unlisted: Vec<Kb> = server
            .installed_kbs
            .iter()
            .copied()
            .filter(|k| !self.known_kbs.contains(k))
            .collect();
        let newest_unlisted = unlisted.iter().copied().max();

        // Open CVEs by determination: Build, Kb, KbUnlisted.
        let mut counts = [0usize; 3];
        let mut seen: HashSet<(u32, Kb)> = HashSet::default();
        let ubr = build.and_then(|b| b.ubr);
        let stream_ms = stream_release.map(|t| t.as_millisecond());
        let train = usize::from(hotpatch);
        for &p in std::iter::once(&os).chain(&lines) {
            // Components have their own stream: the newest of their updates covered.
            let after_ms = if p == os {
                stream_ms
            } else {
                covered
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
                if closed {
                    continue;
                }
                let facts = if hotpatch {
                    cf.hot.as_ref()
                } else {
                    cf.plain.as_ref()
                };
                let Some(facts) = facts else {
                    continue;
                };
                let determined_by = if by_stream {
                    Determination::Build
                } else if self.dotnet[p].is_some()
                    && newest_unlisted.is_some_and(|u| facts.fixed_by.iter().any(|k| *k < u))
                {
                    Determination::KbUnlisted
                } else {
                    Determination::Kb
                };
                // One finding per CVE and remedy: MSRC lists some CVEs under the OS and its
                // components (IE 11 and EdgeHTML, .NET 3.5 and 3.5 AND 4.7.2) with one fix.
                if p == os {
                    if self.also_on_components[os]
                        .get(facts.order as usize / 64)
                        .is_some_and(|w| w & (1 << (facts.order % 64)) != 0)
                    {
                        seen.insert((facts.order, facts.install));
                    }
                } else if !seen.insert((facts.order, facts.install)) {
                    continue;
                }
                counts[determined_by as usize] += 1;
                visit(facts, determined_by);
            }
        }
        let by_kb = counts[Determination::Kb as usize] + counts[Determination::KbUnlisted as usize];
        let total: usize = counts.iter().sum();
        if build_unknown {
            let decided = format!("{by_kb} of {total} open CVEs decided by installed KBs only");
            notes.push(match stream_place {
                // Months before mid-2021 have no fixed builds: the place is the month.
                Some((released, kb)) => format!(
                    "build revision unknown; place in the cumulative stream from {kb} ({}){}: {decided}",
                    released.strftime("%Y-%m"),
                    if server.installed_kbs.contains(&kb) {
                        String::new()
                    } else {
                        ", which an installed update supersedes".to_string()
                    }
                ),
                None => format!(
                    "build revision unknown and no installed cumulative update recognised: {decided}"
                ),
            });
        }
        if !unlisted.is_empty() {
            let uncertain = counts[Determination::KbUnlisted as usize];
            let shown: Vec<String> = unlisted.iter().take(5).map(Kb::to_string).collect();
            let more = if unlisted.len() > 5 {
                format!(" and {} more", unlisted.len() - 5)
            } else {
                String::new()
            };
            let effect = if uncertain > 0 {
                format!("; {uncertain} open CVEs they may already fix are marked kb_unlisted")
            } else {
                String::new()
            };
            notes.push(format!(
                "installed {}{more} not listed in the imported Microsoft data (for example the umbrella KB of a .NET Framework cumulative update, whose parts MSRC lists): what they contain is unknown{effect}",
                shown.join(", ")
            ));
        }
        out.notes = notes;
        out
    }

    /// The components assessed on a server besides its OS: those the OS cumulative update
    /// services (IE 11, EdgeHTML), the one .NET Framework 4.x line it runs (in-box, or a later
    /// one an installed update proves), and other components with evidence.
    fn components_on(
        &self,
        server: &Server,
        os: usize,
        release: ServerRelease,
        installation: Installation,
        notes: &mut Vec<String>,
    ) -> Vec<usize> {
        let candidates = self
            .component_products
            .get(&(release, installation))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // Evidence is an installed update of the component that is not also an OS update (on
        // 2016 the OS cumulative update services in-box .NET, and installing a newer one must
        // never move the server to another line).
        let evidenced = |c: usize| {
            server
                .installed_kbs
                .iter()
                .any(|k| self.product_kbs[c].contains(k) && !self.product_kbs[os].contains(k))
        };
        // The 4.x family: in-box, raised by an installed update that only later lines list (an
        // update listed for 4.8 and 4.8.1 alike proves 4.8, not 4.8.1).
        let inbox = DotNetFamily::inbox(release);
        let mut family = inbox;
        let mut proof: Option<Kb> = None;
        for k in &server.installed_kbs {
            if self.product_kbs[os].contains(k) {
                continue;
            }
            let lowest = candidates
                .iter()
                .filter(|c| self.product_kbs[**c].contains(k))
                .filter_map(|c| self.dotnet[*c])
                .filter(|f| f.is_4x())
                .min();
            if lowest.is_some() && lowest > family {
                family = lowest;
                proof = Some(*k);
            }
        }
        // 3.5 alone is an optional feature: shown only by an update no 4.x line lists too (an
        // umbrella rollup for 2.0–4.8 proves that some .NET is there, not which).
        let lists_4x = |k: &Kb| {
            candidates.iter().any(|c| {
                self.dotnet[*c].is_some_and(DotNetFamily::is_4x) && self.product_kbs[*c].contains(k)
            })
        };
        let evidenced_35 = |c: usize| {
            server.installed_kbs.iter().any(|k| {
                self.product_kbs[c].contains(k) && !self.product_kbs[os].contains(k) && !lists_4x(k)
            })
        };
        let mut out = Vec::new();
        for &c in candidates {
            let include = match self.dotnet[c] {
                Some(f) if f.is_4x() => Some(f) == family,
                Some(_) => evidenced_35(c),
                None => self.os_serviced[c] || evidenced(c),
            };
            if include {
                out.push(c);
            }
        }
        if let Some(f) = family {
            let has_line = out.iter().any(|c| self.dotnet[*c] == Some(f));
            match proof {
                Some(k) => notes.push(format!(
                    ".NET Framework {f} assessed: installed {k} shows it replaced the in-box version"
                )),
                None if has_line => notes.push(format!(
                    ".NET Framework {} assessed: it ships with {release}",
                    DotNetFamily::inbox_version(release).unwrap_or("4.x")
                )),
                None if candidates.iter().any(|c| self.dotnet[*c].is_some()) => {
                    notes.push(format!(
                        ".NET Framework {} ships with {release}, but the imported Microsoft data has no updates for that version (out of support?): its CVEs are not assessed",
                        DotNetFamily::inbox_version(release).unwrap_or("4.x")
                    ))
                }
                None => {}
            }
        }
        out
    }

    /// Which update to install for a CVE: the newest OS cumulative update when the fix is in
    /// the OS build stream (it satisfies all older ones), else the newest update that
    /// supersedes the fix, on this product or the OS.
    pub(super) fn remediation(
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
        // A component the OS cumulative update services (2016's in-box .NET, IE 11) is fixed
        // by the newest one too, whatever KB its row names (MSRC names Windows 10 1507's
        // KB5040448 for .NET on 2016).
        let in_os_stream = (best.stream && best.class != Classification::SecurityOnly)
            || (product == os && (best.next_month || best.class == Classification::ServicingStack))
            || (product != os
                && self.os_serviced[product]
                && best.class != Classification::SecurityOnly)
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
