//! Who may do what (PRODUCT.md C11): roles and the permissions each grants. Pure rules; the
//! application layer checks them before every use case, the server before every route.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user's role. Owners are application owners: they read only the servers they own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Owner,
    Operator,
    Approver,
    Admin,
}

/// What a use case needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read servers, findings, CVEs, plans, feeds (owners: only their servers).
    Read,
    /// Import hosts, edit the estate, plan cycles.
    Operate,
    /// Import feeds (shared by every tenant: provider-wide administrators only).
    ImportFeeds,
    /// Approve cycles (the workflow issue).
    Approve,
    /// Manage users and tokens of the tenant, and read its audit log.
    Administer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Owner,
        Role::Operator,
        Role::Approver,
        Role::Admin,
    ];

    /// Whether the role grants the permission. Feeds are shared by all tenants, so importing
    /// them also needs a provider-wide account (checked by the caller, which knows the tenant).
    pub fn allows(self, p: Permission) -> bool {
        match p {
            Permission::Read => true,
            Permission::Operate => matches!(self, Role::Operator | Role::Admin),
            Permission::Approve => matches!(self, Role::Approver | Role::Admin),
            Permission::Administer | Permission::ImportFeeds => self == Role::Admin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Owner => "owner",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("{s:?} is not a role (viewer, owner, operator, approver, admin)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_grant_in_order() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert!(r.allows(Permission::Read));
        }
        assert!("Auditor".parse::<Role>().is_err());
        assert!(!Role::Viewer.allows(Permission::Operate));
        assert!(!Role::Owner.allows(Permission::Operate));
        assert!(Role::Operator.allows(Permission::Operate));
        assert!(!Role::Operator.allows(Permission::Approve));
        assert!(Role::Approver.allows(Permission::Approve));
        assert!(!Role::Approver.allows(Permission::Administer));
        assert!(Role::Admin.allows(Permission::Administer));
    }
}
