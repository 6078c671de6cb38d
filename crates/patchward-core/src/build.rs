//! Windows OS build numbers: `major.minor.build.ubr` (e.g. `10.0.20348.2582`).
//!
//! The first three parts name the OS release (20348 = Server 2022); the fourth, the update
//! build revision (UBR), grows with every cumulative update. Builds are compared numerically
//! per component, never as strings (`.999` < `.1000`), and only within one release.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An OS build. `ubr` is `None` when only `10.0.20348` is known (e.g. from `systeminfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OsBuild {
    pub major: u32,
    pub minor: u32,
    pub build: u32,
    pub ubr: Option<u32>,
}

impl OsBuild {
    pub const fn new(major: u32, minor: u32, build: u32, ubr: Option<u32>) -> Self {
        Self {
            major,
            minor,
            build,
            ubr,
        }
    }

    /// The release part (`major.minor.build`) that identifies the OS line.
    pub fn release(&self) -> (u32, u32, u32) {
        (self.major, self.minor, self.build)
    }

    pub fn same_release(&self, other: &OsBuild) -> bool {
        self.release() == other.release()
    }

    pub fn with_ubr(self, ubr: u32) -> Self {
        Self {
            ubr: Some(ubr),
            ..self
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an OS build: {input:?} (expected major.minor.build[.revision], e.g. 10.0.20348.2582)")]
pub struct BuildParseError {
    pub input: String,
}

impl FromStr for OsBuild {
    type Err = BuildParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || BuildParseError {
            input: s.to_string(),
        };
        let t = s.trim();
        let parts: Vec<&str> = t.split('.').collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(err());
        }
        let num = |p: &str| -> Result<u32, BuildParseError> {
            if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        let major = num(parts[0])?;
        let minor = num(parts[1])?;
        let build = num(parts[2])?;
        let ubr = match parts.get(3) {
            Some(p) => Some(num(p)?),
            None => None,
        };
        Ok(OsBuild {
            major,
            minor,
            build,
            ubr,
        })
    }
}

impl fmt::Display for OsBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)?;
        if let Some(u) = self.ubr {
            write!(f, ".{u}")?;
        }
        Ok(())
    }
}

impl Serialize for OsBuild {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OsBuild {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares_numerically() {
        let a: OsBuild = "10.0.20348.999"
            .parse()
            .unwrap_or_else(|e| unreachable!("{e}"));
        let b: OsBuild = "10.0.20348.1000"
            .parse()
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(a < b);
        assert!(a.same_release(&b));
        assert_eq!(b.to_string(), "10.0.20348.1000");
        let c: OsBuild = "10.0.20348".parse().unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.ubr, None);
    }

    #[test]
    fn rejects_junk() {
        for s in [
            "",
            "-",
            "1",
            "1.000",
            "https://aka.ms/x",
            "6.6.35.1-1",
            "10.0.a.1",
            "1.2.3.4.5",
        ] {
            assert!(s.parse::<OsBuild>().is_err(), "{s} should not parse");
        }
    }
}
