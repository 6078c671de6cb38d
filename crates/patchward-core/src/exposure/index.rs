//! Building the [`ExposureIndex`] from a [`Catalog`]: update facts, the OS cumulative stream,
//! per-(product, CVE) fixes with their shared facts, remedies and flat stream thresholds.

use super::*;

impl ExposureIndex {
    pub fn new(catalog: impl Into<Arc<Catalog>>) -> ExposureIndex {
        let shared: Arc<Catalog> = catalog.into();
        let catalog: &Catalog = &shared;
        let vidx: HashMap<&str, usize> = catalog
            .vulnerabilities
            .iter()
            .enumerate()
            .map(|(i, v)| (v.cve.as_str(), i))
            .collect();
        // .NET Framework products are renamed over the years with new ids: every product of one
        // line (OS + servicing family) maps to one index, the one MSRC used last, so fixes,
        // updates and the line's own stream are unioned across the renames.
        let line_of = |p: &Product| match &p.kind {
            ProductKind::Component {
                component,
                release,
                installation,
            } => DotNetFamily::of_component(component).map(|f| (*release, *installation, f)),
            ProductKind::Os { .. } => None,
        };
        let mut newest: HashMap<&str, Option<Timestamp>> = HashMap::default();
        for f in &catalog.fixes {
            let rel = vidx
                .get(f.cve.as_str())
                .and_then(|&v| catalog.vulnerabilities[v].released);
            let e = newest.entry(f.product_id.as_str()).or_default();
            *e = (*e).max(rel);
        }
        let mut line_at: HashMap<(ServerRelease, Installation, DotNetFamily), usize> =
            HashMap::default();
        for (i, p) in catalog.products.iter().enumerate() {
            if let Some(line) = line_of(p) {
                let key = |j: usize| {
                    let q = &catalog.products[j];
                    (newest.get(q.id.as_str()).copied().flatten(), q.id.as_str())
                };
                let e = line_at.entry(line).or_insert(i);
                if key(i) > key(*e) {
                    *e = i;
                }
            }
        }
        let mut pidx: HashMap<&str, usize> = HashMap::default();
        let mut os_products = HashMap::default();
        let mut component_products: HashMap<(ServerRelease, Installation), Vec<usize>> =
            HashMap::default();
        let mut dotnet: Vec<Option<DotNetFamily>> = vec![None; catalog.products.len()];
        for (i, p) in catalog.products.iter().enumerate() {
            let line = line_of(p);
            let at = line.and_then(|l| line_at.get(&l).copied()).unwrap_or(i);
            pidx.insert(p.id.as_str(), at);
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
                    dotnet[at] = line.map(|l| l.2);
                    if at == i {
                        component_products
                            .entry((*release, *installation))
                            .or_default()
                            .push(i);
                    }
                }
            }
        }
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
        // The first cumulative update of its own month (the month's main one). Any place in
        // that month contains it; an out-of-band update of the same month comes after it.
        let month_main: HashSet<(usize, Kb)> = main_of_doc
            .iter()
            .filter(|((p, doc), (_, kb))| {
                updates
                    .get(&(*p, *kb))
                    .is_some_and(|u| u.document.as_str() == *doc)
            })
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

        let mut known_kbs: HashSet<Kb> = catalog.updates.iter().map(|u| u.kb).collect();
        known_kbs.extend(catalog.fixes.iter().map(|f| f.kb));
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
        // A component is serviced by the OS when the OS cumulative update is how it is fixed:
        // most of its fix rows name an OS stream update (IE 11, 2016's in-box .NET). Others have
        // their own updates (.NET 4.8 on 2019); which .NET line a server runs is decided per
        // server (in-box version, or evidence of a later one).
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
        let os_serviced: Vec<bool> = rows
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
                    month_main: month_main.contains(&(p, f.kb))
                        || os.is_some_and(|o| month_main.contains(&(o, f.kb))),
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

        let kev = catalog
            .kev
            .iter()
            .enumerate()
            .map(|(i, k)| (Box::from(k.cve.as_str()), i))
            .collect();
        let mut epss: HashMap<Box<str>, usize> = HashMap::default();
        for (i, e) in catalog.epss.iter().enumerate() {
            let slot = epss.entry(Box::from(e.cve.as_str())).or_insert(i);
            if e.score_date > catalog.epss[*slot].score_date {
                *slot = i;
            }
        }
        let nvd = catalog
            .nvd
            .iter()
            .enumerate()
            .map(|(i, n)| (Box::from(n.cve.as_str()), i))
            .collect();
        let lifecycle = catalog
            .lifecycle
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.release.map(|r| (r, i)))
            .collect();
        let mut index = ExposureIndex {
            catalog: Arc::clone(&shared),
            os_products,
            component_products,
            checks: Vec::new(),
            update_facts: HashMap::default(),
            also_on_components: Vec::new(),
            slots: 0,
            os_serviced,
            dotnet,
            known_kbs,
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
        let mut update_facts: HashMap<(usize, Kb), Arc<UpdateFacts>> = HashMap::default();
        let mut slots: u32 = 0;
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
                let facts = CveFacts {
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
                    fixed_by: Arc::from([]),
                    install: Kb(0),
                    fix_released: None,
                    order: *order.get(v.cve.as_str()).unwrap_or(&u32::MAX),
                    slot: 0,
                    owner: 0,
                };
                // One set of facts per train (hotpatch or not): the fixes that apply and the
                // update to install differ.
                let mut remedy = |hotpatch: bool, memo: &mut HashMap<(usize, usize, Kb), Kb>| {
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
                    let install = self.remediation(os, p, &applicable, hotpatch, memo);
                    // The update is the OS's when it is an OS update (2016's .NET rows name
                    // the OS cumulative update), else the component's.
                    let owner = if self.updates.contains_key(&(os, install)) {
                        os
                    } else {
                        p
                    };
                    update_facts
                        .entry((owner, install))
                        .or_insert_with(|| Arc::new(self.describe(os, owner, install)));
                    slots += 1;
                    Some(Arc::new(CveFacts {
                        fixed_by: fixed_by.into(),
                        install,
                        fix_released: applicable.iter().filter_map(|f| f.released).min(),
                        owner: owner as u32,
                        slot: slots - 1,
                        ..facts.clone()
                    }))
                };
                let plain = remedy(false, &mut memo);
                let hot = remedy(true, &mut memo);
                out.push((plain, hot));
            }
            prepared.push(out);
        }
        self.checks = self
            .per_product
            .iter()
            .enumerate()
            .map(|(p, list)| {
                let is_os = matches!(self.catalog.products[p].kind, ProductKind::Os { .. });
                let serviced = self.os_serviced[p];
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
                                // Places are compared by month where there are no builds: a
                                // place in the fix's month contains the month's main update,
                                // not an out-of-band one that came later (IE 11's KB4483229
                                // after December 2018's KB4471321); those need a later month.
                                let in_month = if f.month_main
                                    || (is_os && f.class == Classification::ServicingStack)
                                {
                                    released
                                } else {
                                    released.saturating_add(1)
                                };
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
                                    // A component the OS cumulative update services (2016's
                                    // in-box .NET): a later place in the stream contains its
                                    // fix, even one named by a KB this catalog does not know
                                    // as an OS update.
                                    || (serviced
                                        && f.class != Classification::Hotpatch
                                        && f.class != Classification::SecurityOnly)
                                {
                                    check.min_release = check.min_release.min(in_month);
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
            for (cf, (plain, hot)) in list.iter_mut().zip(prepared) {
                cf.plain = plain;
                cf.hot = hot;
            }
        }
        self.update_facts = update_facts;
        // Per OS product: CVEs its components list too (candidates for one finding, not two).
        let words = self.catalog.vulnerabilities.len().div_ceil(64);
        let mut also: Vec<Vec<u64>> = vec![Vec::new(); self.per_product.len()];
        for (key, comps) in &self.component_products {
            let Some(&os) = self.os_products.get(key) else {
                continue;
            };
            for &c in comps {
                for cf in &self.per_product[c] {
                    if let Some(f) = cf.plain.as_ref().or(cf.hot.as_ref()) {
                        let bits = &mut also[os];
                        if bits.is_empty() {
                            bits.resize(words, 0);
                        }
                        if let Some(w) = bits.get_mut(f.order as usize / 64) {
                            *w |= 1 << (f.order % 64);
                        }
                    }
                }
            }
        }
        self.also_on_components = also;
        self.slots = slots as usize;
    }
}
