//! .NET Framework on a server: which servicing line it runs, from what ships in the box and
//! what its installed updates prove.
//!
//! Facts (Microsoft's ".NET Framework versions and dependencies" and "Install .NET Framework on
//! Windows Server" pages): every 4.x version is an in-place update of the one before, so a
//! server runs exactly one 4.x version; Windows Server 2012 ships 4.5, 2012 R2 4.5.1, 2016
//! 4.6.2, 2019 4.7.2, 2022 4.8, 2022 23H2 Edition and 2025 4.8.1. 3.5 is an optional feature
//! (a Feature on Demand) on 2012 and later.
//!
//! MSRC names a .NET product by the versions one update services ("4.6.2/4.7/4.7.1/4.7.2 on
//! Windows Server 2016", "3.5 AND 4.8 on Windows Server 2022") and renames it over the years
//! with a new product id ("4.7.2 on Windows Server 2019" became "3.5 AND 4.7.2 on Windows Server
//! 2019" in mid-2019). A *line* is therefore identified by OS and [`DotNetFamily`] — the 4.x
//! servicing family of the newest version in the name — never by product id, and all products
//! of one line are assessed as one.

use crate::product::{ServerRelease, normalise};
use std::fmt;

/// A .NET Framework servicing family: the versions one cumulative update services together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DotNetFamily {
    /// 2.0 / 3.0 / 3.5 / 3.5.1 only (CLR 2): an optional feature on 2012 and later.
    V35,
    /// 4.0 (2008 / 2008 R2).
    V40,
    /// 4.5, 4.5.1, 4.5.2.
    V45,
    /// 4.6 … 4.7.2: one servicing family (the "4.6.2/4.7/4.7.1/4.7.2" products).
    V46,
    V48,
    V481,
}

impl DotNetFamily {
    /// The family of an MSRC component name, if it is .NET Framework: the newest 4.x version
    /// it names, else 3.5. ".NET Core", ".NET 8.0" and ASP.NET are not .NET Framework.
    pub fn of_component(component: &str) -> Option<DotNetFamily> {
        let n = normalise(component);
        let i = n.find(".net framework")?;
        let versions = &n[i + ".net framework".len()..];
        let mut best: Option<DotNetFamily> = None;
        for tok in versions.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
            let tok = tok.trim_matches('.');
            if tok.is_empty() {
                continue;
            }
            let family = match tok {
                "2.0" | "3.0" | "3.5" | "3.5.1" => Some(DotNetFamily::V35),
                "4" | "4.0" => Some(DotNetFamily::V40),
                "4.5" | "4.5.1" | "4.5.2" => Some(DotNetFamily::V45),
                "4.6" | "4.6.1" | "4.6.2" | "4.7" | "4.7.1" | "4.7.2" => Some(DotNetFamily::V46),
                "4.8" => Some(DotNetFamily::V48),
                "4.8.1" => Some(DotNetFamily::V481),
                _ => None,
            };
            best = best.max(family);
        }
        best
    }

    /// The 4.x family Windows installs with the release (none documented for 2008 / 2008 R2,
    /// where 4.x is always an add-on).
    pub fn inbox(release: ServerRelease) -> Option<DotNetFamily> {
        match release {
            ServerRelease::Server2008 | ServerRelease::Server2008R2 => None,
            ServerRelease::Server2012 | ServerRelease::Server2012R2 => Some(DotNetFamily::V45),
            ServerRelease::Server2016 | ServerRelease::Server2019 => Some(DotNetFamily::V46),
            ServerRelease::Server2022 => Some(DotNetFamily::V48),
            ServerRelease::Server2022_23H2 | ServerRelease::Server2025 => Some(DotNetFamily::V481),
        }
    }

    /// The in-box version, for notes ("4.7.2 ships with Windows Server 2019").
    pub fn inbox_version(release: ServerRelease) -> Option<&'static str> {
        Some(match release {
            ServerRelease::Server2012 => "4.5",
            ServerRelease::Server2012R2 => "4.5.1",
            ServerRelease::Server2016 => "4.6.2",
            ServerRelease::Server2019 => "4.7.2",
            ServerRelease::Server2022 => "4.8",
            ServerRelease::Server2022_23H2 | ServerRelease::Server2025 => "4.8.1",
            ServerRelease::Server2008 | ServerRelease::Server2008R2 => return None,
        })
    }

    /// A 4.x family: the server runs exactly one of these.
    pub fn is_4x(self) -> bool {
        self != DotNetFamily::V35
    }
}

impl fmt::Display for DotNetFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DotNetFamily::V35 => "3.5",
            DotNetFamily::V40 => "4.0",
            DotNetFamily::V45 => "4.5.x",
            DotNetFamily::V46 => "4.6.2–4.7.2",
            DotNetFamily::V48 => "4.8",
            DotNetFamily::V481 => "4.8.1",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_real_msrc_component_names() {
        for (name, family) in [
            (
                "Microsoft .NET Framework 4.6.2/4.7/4.7.1/4.7.2",
                DotNetFamily::V46,
            ),
            ("Microsoft .NET Framework 3.5 AND 4.7.2", DotNetFamily::V46),
            ("Microsoft .NET Framework 4.7.2", DotNetFamily::V46),
            ("Microsoft .NET Framework 3.5 AND 4.8", DotNetFamily::V48),
            ("Microsoft .NET Framework 3.5 AND 4.8.1", DotNetFamily::V481),
            ("Microsoft .NET Framework 4.8.1", DotNetFamily::V481),
            (".NET Framework 4.5.2", DotNetFamily::V45),
            (
                ".NET Framework 4.6/4.6.1/4.6.2/4.7/4.7.1/4.7.2",
                DotNetFamily::V46,
            ),
            ("Microsoft .NET Framework 3.5", DotNetFamily::V35),
            ("Microsoft .NET Framework 3.5.1", DotNetFamily::V35),
            ("Microsoft .NET Framework 4.6.2", DotNetFamily::V46),
        ] {
            assert_eq!(DotNetFamily::of_component(name), Some(family), "{name}");
        }
        assert_eq!(DotNetFamily::of_component("Internet Explorer 11"), None);
        assert_eq!(DotNetFamily::of_component(".NET 8.0"), None);
        assert_eq!(DotNetFamily::of_component("ASP.NET Core 8.0"), None);
    }

    #[test]
    fn in_box_versions_follow_microsofts_table() {
        assert_eq!(
            DotNetFamily::inbox(ServerRelease::Server2019),
            Some(DotNetFamily::V46)
        );
        assert_eq!(
            DotNetFamily::inbox(ServerRelease::Server2022),
            Some(DotNetFamily::V48)
        );
        assert_eq!(
            DotNetFamily::inbox(ServerRelease::Server2025),
            Some(DotNetFamily::V481)
        );
        assert_eq!(
            DotNetFamily::inbox_version(ServerRelease::Server2016),
            Some("4.6.2")
        );
        assert!(DotNetFamily::V48 > DotNetFamily::V46 && DotNetFamily::V481 > DotNetFamily::V48);
    }
}
