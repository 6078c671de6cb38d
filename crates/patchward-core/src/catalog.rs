//! The update catalog (PRODUCT.md: Update, Vulnerability) as read from MSRC: products, CVEs,
//! per-product severity/CVSS, and Vendor Fix remediations with their fixed builds and
//! supersedence. Facts are keyed on (CVE, product, KB), never on the month: MSRC edits old
//! months for years.

use crate::build::OsBuild;
use crate::product::ProductKind;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A Microsoft Knowledge Base article number, the handle of an update ("KB5040437").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kb(pub u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a KB number: {input:?} (expected e.g. KB5040437 or 5040437)")]
pub struct KbParseError {
    pub input: String,
}

impl FromStr for Kb {
    type Err = KbParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t
            .strip_prefix("KB")
            .or_else(|| t.strip_prefix("kb"))
            .or_else(|| t.strip_prefix("Kb"))
            .unwrap_or(t);
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KbParseError {
                input: s.to_string(),
            });
        }
        digits.parse().map(Kb).map_err(|_| KbParseError {
            input: s.to_string(),
        })
    }
}

impl fmt::Display for Kb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KB{}", self.0)
    }
}

impl Serialize for Kb {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Kb {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Update classification (PRODUCT.md: Update).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// Monthly latest cumulative update (LCU) of the OS; the build-comparable stream.
    SecurityCumulativeUpdate,
    /// 2008–2012 R2 monthly rollup (cumulative).
    MonthlyRollup,
    /// 2008–2012 R2 security-only update (not cumulative).
    SecurityOnly,
    /// Hotpatch: installs without reboot, own (lower) build train, enrolled servers only.
    Hotpatch,
    ServicingStack,
    DotNet,
    InternetExplorer,
    Preview,
    Standalone,
    OutOfBand,
    /// Setup / Safe OS dynamic update: refreshes installation media, not a running server.
    DynamicUpdate,
    Other,
}

impl Classification {
    /// Classify from MSRC's remediation SubType and the product it applies to.
    pub fn from_subtype(subtype: &str, product: Option<&ProductKind>) -> Classification {
        let s: String = subtype
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let component = matches!(product, Some(ProductKind::Component { component, .. }) if component.to_lowercase().contains(".net"));
        if s.contains("hotpatch") {
            return Classification::Hotpatch;
        }
        if s.contains("servicingstack") {
            return Classification::ServicingStack;
        }
        if component {
            return Classification::DotNet;
        }
        match s.as_str() {
            "securityupdate" => Classification::SecurityCumulativeUpdate,
            "monthlyrollup" => Classification::MonthlyRollup,
            "securityonly" => Classification::SecurityOnly,
            "iecumulative" => Classification::InternetExplorer,
            "previewrollup" => Classification::Preview,
            "standalone" | "standalonesecurityupdate" => Classification::Standalone,
            "setupdu" | "safeosdu" | "safeosdynamicupdate" | "setupdynamicupdate" => {
                Classification::DynamicUpdate
            }
            _ => Classification::Other,
        }
    }

    /// Cumulative OS streams whose fixed build can be compared with a server's build.
    pub fn is_os_cumulative(self) -> bool {
        matches!(
            self,
            Classification::SecurityCumulativeUpdate
                | Classification::MonthlyRollup
                | Classification::Hotpatch
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Classification::SecurityCumulativeUpdate => "security cumulative update",
            Classification::MonthlyRollup => "monthly rollup",
            Classification::SecurityOnly => "security-only update",
            Classification::Hotpatch => "hotpatch",
            Classification::ServicingStack => "servicing stack",
            Classification::DotNet => ".NET",
            Classification::InternetExplorer => "Internet Explorer cumulative",
            Classification::Preview => "non-security/preview",
            Classification::Standalone => "standalone",
            Classification::OutOfBand => "out-of-band emergency",
            Classification::DynamicUpdate => "dynamic update (installation media)",
            Classification::Other => "other",
        }
    }
}

/// An MSRC product relevant to Windows Server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// MSRC ProductID ("11923", or compound "11676-11923").
    pub id: String,
    pub name: String,
    pub kind: ProductKind,
}

/// MSRC severity rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Low,
    Moderate,
    Important,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "important" | "high" => Some(Severity::Important),
            "moderate" | "medium" => Some(Severity::Moderate),
            "low" => Some(Severity::Low),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Severity::Critical => "Critical",
            Severity::Important => "Important",
            Severity::Moderate => "Moderate",
            Severity::Low => "Low",
        }
    }
}

/// A CVE as MSRC describes it (vulnerability-level facts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    pub cve: String,
    pub title: String,
    /// MSRC Tag, the component ("Windows Remote Desktop Licensing Service").
    pub tag: Option<String>,
    pub cwe: Option<String>,
    /// MSRC "Exploited:Yes".
    pub exploited: bool,
    /// MSRC "Publicly Disclosed:Yes".
    pub publicly_disclosed: bool,
    /// The raw Exploit Status text, kept for evidence.
    pub exploit_status: Option<String>,
    /// The CVRF document (month) that carries the CVE, e.g. "2024-Jul".
    pub document: String,
    /// When the month was first released; the start of the SLA clock.
    pub released: Option<Timestamp>,
}

/// Per-product facts: severity, impact and CVSS differ between products for one CVE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    pub cve: String,
    pub product_id: String,
    pub severity: Option<Severity>,
    pub impact: Option<String>,
    pub cvss_base: Option<f32>,
    pub cvss_vector: Option<String>,
}

/// One Vendor Fix remediation: installing `kb` on `product_id` fixes `cve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub cve: String,
    pub product_id: String,
    pub kb: Kb,
    pub subtype: String,
    pub classification: Classification,
    /// Validated OS build after the update; junk values and typos (wrong release) are `None`.
    pub fixed_build: Option<OsBuild>,
    pub supersedes: Vec<Kb>,
    pub restart_required: Option<String>,
    pub document: String,
}

/// An update as a unit (per product): what it is, its build, what it replaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub kb: Kb,
    pub product_id: String,
    pub classification: Classification,
    pub subtype: String,
    pub fixed_build: Option<OsBuild>,
    pub supersedes: Vec<Kb>,
    pub restart_required: Option<String>,
    /// Month document in which this update fixes the most CVEs (its release month).
    pub document: String,
    pub released: Option<Timestamp>,
}

impl Update {
    /// Human title in Microsoft's style, e.g.
    /// "2024-07 Security Cumulative Update for Windows Server 2022 (KB5040437)".
    pub fn title(&self, product_name: &str) -> String {
        let month = self
            .released
            .map(|t| t.strftime("%Y-%m ").to_string())
            .unwrap_or_default();
        let what = match self.classification {
            Classification::SecurityCumulativeUpdate => "Cumulative Update",
            Classification::MonthlyRollup => "Security Monthly Quality Rollup",
            Classification::SecurityOnly => "Security Only Quality Update",
            Classification::Hotpatch => "Hotpatch Security Update",
            Classification::ServicingStack => "Servicing Stack Update",
            Classification::DotNet => "Cumulative Update",
            Classification::InternetExplorer => "Cumulative Security Update for Internet Explorer",
            Classification::Preview => "Preview Update",
            Classification::Standalone
            | Classification::OutOfBand
            | Classification::DynamicUpdate
            | Classification::Other => "Security Update",
        };
        format!("{month}{what} for {product_name} ({})", self.kb)
    }
}

/// Parse MSRC's Supercedence text: "5039227", "5039227,5039212", or the 2016 form
/// "MS13-056, 2845187; MS14-013, 2929961". Bulletin ids are dropped, KBs kept.
pub fn parse_supersedence(s: &str) -> Vec<Kb> {
    let mut out: Vec<Kb> = s
        .split([';', ',', ' ', '\t', '\n', '\r'])
        .filter_map(|t| {
            let t = t.trim();
            if t.len() < 6 {
                return None; // bulletin fragments, empty
            }
            t.parse::<Kb>().ok()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kb_parse_display() {
        assert_eq!("KB5040437".parse::<Kb>().ok(), Some(Kb(5040437)));
        assert_eq!("5040437".parse::<Kb>().ok(), Some(Kb(5040437)));
        assert_eq!(Kb(5040437).to_string(), "KB5040437");
        assert!("Release Notes".parse::<Kb>().is_err());
        assert!("KB".parse::<Kb>().is_err());
    }

    #[test]
    fn supersedence_forms() {
        assert_eq!(parse_supersedence("5039227"), vec![Kb(5039227)]);
        assert_eq!(
            parse_supersedence("MS13-056, 2845187; MS14-013, 2929961"),
            vec![Kb(2845187), Kb(2929961)]
        );
        assert!(parse_supersedence("").is_empty());
    }

    #[test]
    fn classify_subtypes() {
        assert_eq!(
            Classification::from_subtype("Security Hotpatch Update", None),
            Classification::Hotpatch
        );
        assert_eq!(
            Classification::from_subtype("SecurityHotpatchUpdate", None),
            Classification::Hotpatch
        );
        assert_eq!(
            Classification::from_subtype("Security Update", None),
            Classification::SecurityCumulativeUpdate
        );
        assert_eq!(
            Classification::from_subtype("ServicingStackUpdate", None),
            Classification::ServicingStack
        );
        assert_eq!(
            Classification::from_subtype("Monthly Rollup", None),
            Classification::MonthlyRollup
        );
    }
}
