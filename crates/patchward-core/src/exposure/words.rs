//! Words about updates: the classification and title a server's missing update is shown with.
//!
//! CVRF has no update titles and its SubType is coarse, so both are derived here, in one place,
//! from the data and its known quirks:
//! - MSRC labels every OS package "Security Update": the month's cumulative update, but also
//!   standalone packages such as the Secure Boot revocation list (DBX, KB5012170) and WinRE /
//!   Safe OS updates. Only updates in the OS cumulative stream (see the module doc) are called
//!   "Cumulative Update"; the others are standalone security updates.
//! - In-box components serviced by the OS cumulative update (IE 11, .NET on 2016) list the OS
//!   update as their fix, sometimes with a fixed build on another build line (KB5040448's .NET
//!   rows on 2016 give 10.0.10240, Windows 10 1507): such an update is the OS's update, titled
//!   for the OS (KB5066836 is the October 2025 cumulative update for Windows Server 2016, not a
//!   .NET update).
//! - .NET Framework updates are titled for their line's newest product name ("… 3.5 AND 4.8 on
//!   Windows Server 2022"), however MSRC named it when the update came out.
//! - The month is the document in which the update fixes the most CVEs (old months are edited
//!   for years to list newer updates).

use super::*;

impl ExposureIndex {
    /// What an update on `product` is, as a server of OS product `os` sees it.
    pub(super) fn classify(&self, os: usize, product: usize, kb: Kb) -> Classification {
        let c = self
            .updates
            .get(&(product, kb))
            .map(|u| u.classification)
            .unwrap_or(Classification::Other);
        match c {
            Classification::SecurityCumulativeUpdate | Classification::MonthlyRollup
                if product == os && !self.in_stream.contains(&(os, kb)) =>
            {
                Classification::Standalone
            }
            _ => c,
        }
    }

    /// A missing update as shown to people: title and classification.
    pub(super) fn describe(&self, os: usize, product: usize, kb: Kb) -> UpdateFacts {
        let p = &self.catalog.products[product];
        let u = self.updates.get(&(product, kb));
        let classification = self.classify(os, product, kb);
        let update = Update {
            kb,
            product_id: p.id.clone(),
            classification,
            subtype: u.map(|u| u.subtype.clone()).unwrap_or_default(),
            fixed_build: u.and_then(|u| u.fixed_build),
            supersedes: Vec::new(),
            restart_required: u.and_then(|u| u.restart_required.clone()),
            document: u.map(|u| u.document.clone()).unwrap_or_default(),
            released: u.and_then(|u| u.released),
        };
        UpdateFacts {
            kb,
            title: update.title(&p.name),
            classification,
            classification_label: classification.label(),
            product_id: p.id.clone(),
            fixed_build: update.fixed_build,
            restart_required: update.restart_required,
            released: update.released,
        }
    }
}
