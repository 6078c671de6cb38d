//! Threat intelligence beside MSRC: CISA KEV, FIRST EPSS, NVD CVSS, and the lifecycle table.

use crate::product::ServerRelease;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// One CISA Known Exploited Vulnerabilities entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KevEntry {
    pub cve: String,
    pub vendor: String,
    pub product: String,
    pub name: String,
    pub date_added: Date,
    /// Always read from the feed, never computed (BOD 22-01 and 26-04 use different gaps).
    pub due: Date,
    pub known_ransomware: bool,
    pub required_action: String,
}

/// One FIRST EPSS score, with the model and date it came from (models change scores abruptly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpssScore {
    pub cve: String,
    pub epss: f64,
    pub percentile: f64,
    pub model_version: String,
    pub score_date: Date,
}

/// A CVSS metric from NVD (v3.x or v4.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvssMetric {
    pub version: String,
    pub source: String,
    pub primary: bool,
    pub vector: String,
    pub base_score: f32,
    pub base_severity: Option<String>,
}

/// The parts of an NVD CVE API 2.0 record Patchward uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NvdRecord {
    pub cve: String,
    pub published: Option<Timestamp>,
    pub last_modified: Option<Timestamp>,
    pub status: Option<String>,
    pub description: Option<String>,
    pub metrics: Vec<CvssMetric>,
    pub cwes: Vec<String>,
    pub kev_added: Option<Date>,
    pub kev_due: Option<Date>,
}

impl NvdRecord {
    /// Preferred metric: v4.0 over v3.1 over v3.0; Primary over Secondary.
    pub fn best_metric(&self) -> Option<&CvssMetric> {
        let rank = |m: &CvssMetric| {
            let v = match m.version.as_str() {
                "4.0" => 3,
                "3.1" => 2,
                "3.0" => 1,
                _ => 0,
            };
            (v, m.primary)
        };
        self.metrics.iter().max_by_key(|m| rank(m))
    }
}

/// One row of the Windows Server lifecycle table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEntry {
    /// endoflife.date releaseCycle ("2022", "2012-r2", "23h2-ac").
    pub cycle: String,
    pub release: Option<ServerRelease>,
    pub label: Option<String>,
    pub release_date: Option<Date>,
    /// End of mainstream support.
    pub mainstream_end: Option<Date>,
    /// End of extended support.
    pub extended_end: Option<Date>,
    /// End of paid Extended Security Updates.
    pub esu_end: Option<Date>,
}

/// Support phase of a server's OS on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportPhase {
    Mainstream,
    Extended,
    Esu,
    Unsupported,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportStatus {
    pub phase: SupportPhase,
    /// When the current phase ends (None when unsupported or unknown).
    pub ends: Option<Date>,
    pub detail: String,
}

impl LifecycleEntry {
    /// Support status on `as_of`. ESU counts only where the table lists an ESU end.
    pub fn status(&self, as_of: Date) -> SupportStatus {
        let fmt = |d: Date| d.strftime("%Y-%m-%d").to_string();
        if let Some(m) = self.mainstream_end
            && as_of < m
        {
            return SupportStatus {
                phase: SupportPhase::Mainstream,
                ends: Some(m),
                detail: format!("mainstream support until {}", fmt(m)),
            };
        }
        if let Some(e) = self.extended_end
            && as_of < e
        {
            return SupportStatus {
                phase: SupportPhase::Extended,
                ends: Some(e),
                detail: format!("extended support until {}", fmt(e)),
            };
        }
        if let Some(e) = self.esu_end
            && as_of < e
        {
            return SupportStatus {
                phase: SupportPhase::Esu,
                ends: Some(e),
                detail: format!("security updates only with paid ESU, until {}", fmt(e)),
            };
        }
        let last = self.esu_end.or(self.extended_end);
        SupportStatus {
            phase: SupportPhase::Unsupported,
            ends: None,
            detail: match last {
                Some(d) => format!("unsupported since {}", fmt(d)),
                None => "unsupported".into(),
            },
        }
    }
}

/// Parsed CVSS v3.x / v4.0 base metrics that matter for SSVC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CvssFacts {
    pub network: bool,
    pub low_complexity: bool,
    pub no_privileges: bool,
    pub no_user_interaction: bool,
    pub high_confidentiality: bool,
    pub high_integrity: bool,
    pub high_availability: bool,
    /// CVSS v4 "Attack Requirements: None" (always true for v3, which has no such metric).
    pub no_attack_requirements: bool,
}

impl CvssFacts {
    /// Parse a vector such as `CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C`
    /// (MSRC includes temporal metrics) or `CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/...`.
    /// Returns `None` when the vector is not CVSS v3/v4.
    pub fn parse(vector: &str) -> Option<CvssFacts> {
        let mut parts = vector.trim().split('/');
        let head = parts.next()?;
        let v4 = match head {
            "CVSS:3.0" | "CVSS:3.1" => false,
            "CVSS:4.0" => true,
            _ => return None,
        };
        let mut f = CvssFacts {
            no_attack_requirements: !v4,
            ..CvssFacts::default()
        };
        let mut seen_av = false;
        for p in parts {
            let (k, v) = p.split_once(':')?;
            match (k, v) {
                ("AV", v) => {
                    seen_av = true;
                    f.network = v == "N";
                }
                ("AC", v) => f.low_complexity = v == "L",
                ("PR", v) => f.no_privileges = v == "N",
                ("UI", v) => f.no_user_interaction = v == "N",
                ("AT", v) if v4 => f.no_attack_requirements = v == "N",
                ("C", v) if !v4 => f.high_confidentiality = v == "H",
                ("I", v) if !v4 => f.high_integrity = v == "H",
                ("A", v) if !v4 => f.high_availability = v == "H",
                ("VC", v) if v4 => f.high_confidentiality = v == "H",
                ("VI", v) if v4 => f.high_integrity = v == "H",
                ("VA", v) if v4 => f.high_availability = v == "H",
                _ => {}
            }
        }
        seen_av.then_some(f)
    }

    /// SSVC "Automatable": an attacker can reliably repeat exploitation without a human in the
    /// loop — network reachable, low complexity, no privileges, no user interaction.
    pub fn automatable(&self) -> bool {
        self.network
            && self.low_complexity
            && self.no_privileges
            && self.no_user_interaction
            && self.no_attack_requirements
    }

    /// SSVC "Technical impact: total": full control of the component's behaviour or total
    /// disclosure of its information (confidentiality and integrity both high).
    pub fn total_impact(&self) -> bool {
        self.high_confidentiality && self.high_integrity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_vectors() {
        let f = CvssFacts::parse("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C");
        assert!(f.is_some_and(|f| f.automatable() && f.total_impact()));
        let f = CvssFacts::parse("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H");
        assert!(f.is_some_and(|f| !f.automatable() && f.total_impact()));
        let f = CvssFacts::parse("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:L/VA:N/SC:N/SI:N/SA:N");
        assert!(f.is_some_and(|f| f.automatable() && !f.total_impact()));
        // v4 attack requirements present: not automatable.
        let f = CvssFacts::parse("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N");
        assert!(f.is_some_and(|f| !f.automatable() && f.total_impact()));
        assert!(CvssFacts::parse("AV:N/AC:L/Au:N/C:P/I:P/A:P").is_none());
        assert!(CvssFacts::parse("").is_none());
    }

    #[test]
    fn lifecycle_phases() {
        let d = |s: &str| s.parse::<Date>().unwrap_or_else(|e| unreachable!("{e}"));
        let e = LifecycleEntry {
            cycle: "2012-r2".into(),
            release: Some(ServerRelease::Server2012R2),
            label: None,
            release_date: Some(d("2013-10-18")),
            mainstream_end: Some(d("2018-10-09")),
            extended_end: Some(d("2023-10-10")),
            esu_end: Some(d("2026-10-13")),
        };
        assert_eq!(e.status(d("2017-01-01")).phase, SupportPhase::Mainstream);
        assert_eq!(e.status(d("2020-01-01")).phase, SupportPhase::Extended);
        assert_eq!(e.status(d("2025-01-01")).phase, SupportPhase::Esu);
        assert_eq!(e.status(d("2026-10-13")).phase, SupportPhase::Unsupported);
    }
}
