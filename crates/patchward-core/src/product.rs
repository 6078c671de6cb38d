//! Windows Server products: the OS release a server runs and how MSRC names it.
//!
//! MSRC product names vary over the years (double spaces, "Installation" vs "installation",
//! "for x64-based Systems"), so names are normalised and parsed into a [`ServerRelease`] and an
//! [`Installation`] rather than matched as strings. Product IDs are taken from the catalog, never
//! hard-coded.

use crate::build::OsBuild;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Windows Server release line. Each has its own build number (and so its own UBR train).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServerRelease {
    #[serde(rename = "2008")]
    Server2008,
    #[serde(rename = "2008 R2")]
    Server2008R2,
    #[serde(rename = "2012")]
    Server2012,
    #[serde(rename = "2012 R2")]
    Server2012R2,
    #[serde(rename = "2016")]
    Server2016,
    #[serde(rename = "2019")]
    Server2019,
    #[serde(rename = "2022")]
    Server2022,
    /// "Windows Server 2022, 23H2 Edition": Annual Channel, Server Core only, build 25398.
    #[serde(rename = "2022 23H2")]
    Server2022_23H2,
    #[serde(rename = "2025")]
    Server2025,
}

impl ServerRelease {
    pub const ALL: [ServerRelease; 9] = [
        Self::Server2008,
        Self::Server2008R2,
        Self::Server2012,
        Self::Server2012R2,
        Self::Server2016,
        Self::Server2019,
        Self::Server2022,
        Self::Server2022_23H2,
        Self::Server2025,
    ];

    /// The `major.minor.build` this release reports.
    pub fn release_build(self) -> (u32, u32, u32) {
        match self {
            Self::Server2008 => (6, 0, 6003),
            Self::Server2008R2 => (6, 1, 7601),
            Self::Server2012 => (6, 2, 9200),
            Self::Server2012R2 => (6, 3, 9600),
            Self::Server2016 => (10, 0, 14393),
            Self::Server2019 => (10, 0, 17763),
            Self::Server2022 => (10, 0, 20348),
            Self::Server2022_23H2 => (10, 0, 25398),
            Self::Server2025 => (10, 0, 26100),
        }
    }

    /// Release from a build number. 2008 SP2 reports 6002 or 6003 depending on servicing.
    pub fn from_build(b: &OsBuild) -> Option<Self> {
        if (b.major, b.minor, b.build) == (6, 0, 6002) {
            return Some(Self::Server2008);
        }
        Self::ALL
            .into_iter()
            .find(|r| r.release_build() == b.release())
    }

    /// The key used by the lifecycle table (endoflife.date `releaseCycle`).
    pub fn lifecycle_key(self) -> &'static str {
        match self {
            Self::Server2008 => "2008",
            Self::Server2008R2 => "2008-r2",
            Self::Server2012 => "2012",
            Self::Server2012R2 => "2012-r2",
            Self::Server2016 => "2016",
            Self::Server2019 => "2019",
            Self::Server2022 => "2022",
            Self::Server2022_23H2 => "23h2-ac",
            Self::Server2025 => "2025",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Server2008 => "Windows Server 2008",
            Self::Server2008R2 => "Windows Server 2008 R2",
            Self::Server2012 => "Windows Server 2012",
            Self::Server2012R2 => "Windows Server 2012 R2",
            Self::Server2016 => "Windows Server 2016",
            Self::Server2019 => "Windows Server 2019",
            Self::Server2022 => "Windows Server 2022",
            Self::Server2022_23H2 => "Windows Server 2022, 23H2 Edition",
            Self::Server2025 => "Windows Server 2025",
        }
    }

    /// Whether Microsoft offers hotpatch updates on this release (Azure Edition / Arc-enabled).
    pub fn supports_hotpatch(self) -> bool {
        matches!(self, Self::Server2022 | Self::Server2025)
    }
}

impl fmt::Display for ServerRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Installation option. MSRC lists Server Core as its own product ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Installation {
    #[serde(rename = "Desktop Experience")]
    Desktop,
    #[serde(rename = "Server Core")]
    ServerCore,
}

impl Installation {
    pub fn parse(s: &str) -> Option<Self> {
        let n = normalise(s);
        match n.as_str() {
            "desktop"
            | "desktop experience"
            | "full"
            | "gui"
            | "server with desktop experience" => Some(Self::Desktop),
            "server core" | "core" | "servercore" | "server core installation" => {
                Some(Self::ServerCore)
            }
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Desktop => "Desktop Experience",
            Self::ServerCore => "Server Core",
        }
    }
}

impl fmt::Display for Installation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an MSRC product is, as far as Windows Server patching is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProductKind {
    /// The operating system itself (IDs such as 11923 "Windows Server 2022").
    Os {
        release: ServerRelease,
        installation: Installation,
    },
    /// A component serviced separately on a server OS (compound IDs such as
    /// `11676-11923` ".NET Framework 3.5 AND 4.8 on Windows Server 2022").
    Component {
        component: String,
        release: ServerRelease,
        installation: Installation,
    },
}

impl ProductKind {
    pub fn release(&self) -> ServerRelease {
        match self {
            Self::Os { release, .. } | Self::Component { release, .. } => *release,
        }
    }
    pub fn installation(&self) -> Installation {
        match self {
            Self::Os { installation, .. } | Self::Component { installation, .. } => *installation,
        }
    }
}

/// Lower-case and collapse whitespace: MSRC names have double spaces and mixed case.
pub fn normalise(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Classify an MSRC product name. Returns `None` for products that are not Windows Server
/// or something installed on it (clients, Office, SAC releases, Itanium, ...).
pub fn classify_product_name(name: &str) -> Option<ProductKind> {
    let n = normalise(name);
    if let Some(idx) = n.find(" on windows server") {
        let component = name_prefix(name, &n, idx);
        let (release, installation) = parse_server(&n[idx + 4..])?;
        return Some(ProductKind::Component {
            component,
            release,
            installation,
        });
    }
    let (release, installation) = parse_server(&n)?;
    Some(ProductKind::Os {
        release,
        installation,
    })
}

/// The original-case text before " on Windows Server" (whitespace collapsed).
fn name_prefix(original: &str, normalised: &str, idx: usize) -> String {
    let collapsed = original.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.len() == normalised.len() {
        collapsed[..idx].to_string()
    } else {
        normalised[..idx].to_string()
    }
}

/// Parse "windows server 2022 (server core installation)" and friends (already normalised).
fn parse_server(n: &str) -> Option<(ServerRelease, Installation)> {
    let rest = n.strip_prefix("windows server ")?;
    let installation = if rest.contains("server core") {
        Installation::ServerCore
    } else {
        Installation::Desktop
    };
    if rest.contains("itanium") {
        return None;
    }
    let release = if rest.starts_with("2008 r2") {
        ServerRelease::Server2008R2
    } else if rest.starts_with("2008") {
        ServerRelease::Server2008
    } else if rest.starts_with("2012 r2") {
        ServerRelease::Server2012R2
    } else if rest.starts_with("2012") {
        ServerRelease::Server2012
    } else if rest.starts_with("2016") {
        ServerRelease::Server2016
    } else if rest.starts_with("2019") {
        ServerRelease::Server2019
    } else if rest.starts_with("2022, 23h2") || rest.starts_with("2022 23h2") {
        ServerRelease::Server2022_23H2
    } else if rest.starts_with("2022") {
        ServerRelease::Server2022
    } else if rest.starts_with("2025") {
        ServerRelease::Server2025
    } else {
        // Semi-Annual Channel ("version 20H2") and anything unknown: not a supported line here.
        return None;
    };
    Some((release, installation))
}

/// Release from a free-text OS caption such as "Microsoft Windows Server 2022 Datacenter"
/// or "Windows Server 2012 R2 Standard". Used when no build number is known.
pub fn release_from_caption(caption: &str) -> Option<ServerRelease> {
    let n = normalise(caption);
    let i = n.find("windows server")?;
    parse_server(&n[i..]).map(|(r, _)| r).or_else(|| {
        let tail = &n[i + "windows server".len()..];
        let tail = tail.trim_start_matches(['®', '(', 'r', ')', ' ']);
        parse_server(&format!("windows server {tail}")).map(|(r, _)| r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_real_msrc_names() {
        let cases = [
            (
                "Windows Server 2019  (Server Core installation)",
                ServerRelease::Server2019,
                Installation::ServerCore,
            ),
            (
                "Windows Server 2016  (Server Core Installation)",
                ServerRelease::Server2016,
                Installation::ServerCore,
            ),
            (
                "Windows Server 2022",
                ServerRelease::Server2022,
                Installation::Desktop,
            ),
            (
                "Windows Server 2022, 23H2 Edition (Server Core installation)",
                ServerRelease::Server2022_23H2,
                Installation::ServerCore,
            ),
            (
                "Windows Server 2012 R2",
                ServerRelease::Server2012R2,
                Installation::Desktop,
            ),
            (
                "Windows Server 2008 R2 for x64-based Systems Service Pack 1 (Server Core installation)",
                ServerRelease::Server2008R2,
                Installation::ServerCore,
            ),
            (
                "Windows Server 2025",
                ServerRelease::Server2025,
                Installation::Desktop,
            ),
        ];
        for (name, rel, inst) in cases {
            assert_eq!(
                classify_product_name(name),
                Some(ProductKind::Os {
                    release: rel,
                    installation: inst
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn classifies_components_and_rejects_others() {
        let k = classify_product_name(
            "Microsoft .NET Framework 3.5 AND 4.8 on Windows Server 2022 (Server Core installation)",
        );
        assert_eq!(
            k,
            Some(ProductKind::Component {
                component: "Microsoft .NET Framework 3.5 AND 4.8".into(),
                release: ServerRelease::Server2022,
                installation: Installation::ServerCore
            })
        );
        assert_eq!(
            classify_product_name("Windows 10 Version 21H2 for x64-based Systems"),
            None
        );
        assert_eq!(
            classify_product_name("Windows Server, version 20H2 (Server Core Installation)"),
            None
        );
        assert_eq!(classify_product_name("Microsoft Office 2019"), None);
    }

    #[test]
    fn release_from_build_and_caption() {
        let b: OsBuild = "10.0.25398.1009"
            .parse()
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            ServerRelease::from_build(&b),
            Some(ServerRelease::Server2022_23H2)
        );
        assert_eq!(
            release_from_caption("Microsoft Windows Server 2022 Datacenter"),
            Some(ServerRelease::Server2022)
        );
        assert_eq!(
            release_from_caption("Microsoft Windows Server 2012 R2 Standard"),
            Some(ServerRelease::Server2012R2)
        );
        assert_eq!(
            release_from_caption("Microsoft(R) Windows(R) Server 2003, Standard Edition"),
            None
        );
    }
}
