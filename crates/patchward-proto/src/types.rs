//! Requests and responses of `/api/v1`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or what is not ready.
    pub status: String,
    pub version: String,
}

/// One server in a list: inventory facts and its exposure counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerItem {
    pub id: i64,
    pub name: String,
    pub fqdn: Option<String>,
    pub os: String,
    /// Windows Server release (`2022`, `2019`, ...), when known.
    pub release: Option<String>,
    pub build: Option<String>,
    pub owner: Option<String>,
    pub tier: String,
    pub environment: Option<String>,
    pub site: Option<String>,
    pub ring: Option<String>,
    pub tags: Vec<String>,
    /// Support phase on the assessment date (`mainstream`, `extended`, `esu`, `unsupported`).
    pub support: Option<String>,
    /// Open CVEs, and per SSVC decision.
    pub open: u32,
    pub act: u32,
    pub attend: u32,
    pub track_star: u32,
    pub track: u32,
    /// Open CVEs in CISA KEV.
    pub kev: u32,
    /// Open CVEs past their due date.
    pub overdue: u32,
    /// Open CVEs under an active exception (left out of the counts above).
    pub excepted: u32,
    /// The most urgent decision among open CVEs.
    pub worst_decision: Option<String>,
    /// The earliest due date among open CVEs of the worst decision.
    pub next_due: Option<String>,
}

/// A page of servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerPage {
    pub items: Vec<ServerItem>,
    /// Servers matching the filters (all pages).
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    pub as_of: String,
}

/// Filters, search and paging of `GET /api/v1/servers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServerQuery {
    /// Substring of the name or FQDN (case-insensitive).
    pub q: Option<String>,
    /// Release (`2016`, `2019`, `2022`, `2025`, ...).
    pub release: Option<String>,
    /// Only servers with open CVEs in CISA KEV.
    pub kev: Option<bool>,
    /// Only servers whose worst decision is at least this (`act`, `attend`, `track-star`, `track`).
    pub decision: Option<String>,
    pub tag: Option<String>,
    pub ring: Option<String>,
    /// Owner name (case-insensitive).
    pub owner: Option<String>,
    /// Only servers out of support.
    pub unsupported: Option<bool>,
    /// Only servers with open CVEs past their due date.
    pub overdue: Option<bool>,
    /// Sort: `urgency` (default) or `name`.
    pub sort: Option<String>,
    /// 1-based page number (default 1).
    pub page: Option<u32>,
    /// Items per page, 1 to 500 (default 50).
    pub per_page: Option<u32>,
    /// Provider-wide administrators: the tenant to read (name); others always read their own.
    pub tenant: Option<String>,
}

/// `GET /api/v1/servers/{id}` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DetailQuery {
    /// How many findings to include, most urgent first: 0 to 5000 (default 100).
    pub findings: Option<u32>,
    pub tenant: Option<String>,
}

/// The tenant selector of routes without other query parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantQuery {
    /// Provider-wide administrators: the tenant to act on (name); others always use their own.
    pub tenant: Option<String>,
}

/// One open CVE on one server, with why it has its priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub cve: String,
    pub title: String,
    pub product: String,
    pub severity: Option<String>,
    pub cvss: Option<f32>,
    pub kev: bool,
    pub epss: Option<f32>,
    pub exploited: bool,
    /// `act`, `attend`, `track-star`, `track`.
    pub decision: Option<String>,
    pub due: Option<String>,
    pub overdue: bool,
    /// Why this decision and this due date.
    pub reasons: Vec<String>,
    /// The KBs any of which closes it.
    pub fixed_by: Vec<String>,
    /// `build`, `kb` or `kb_unlisted`.
    pub determined_by: String,
    /// The active exception that takes it out of the open counts.
    pub exception_id: Option<i64>,
    pub exception_expires: Option<String>,
}

/// An update the server lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MissingUpdate {
    pub kb: String,
    pub title: String,
    pub classification: String,
    /// Open CVEs it closes.
    pub closes: u32,
    pub closes_kev: u32,
}

/// `GET /api/v1/servers/{id}`: the server, its findings with reasons, what to install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerDetail {
    #[serde(flatten)]
    pub summary: ServerItem,
    pub installation: Option<String>,
    pub roles: Vec<String>,
    pub installed_kbs: Vec<String>,
    pub windows: Vec<String>,
    pub backup_policy: Option<String>,
    pub last_scan: Option<String>,
    /// The most urgent open CVEs (at most `findings` of the query, default 100), most urgent
    /// first; `findings_total` counts them all.
    pub findings: Vec<Finding>,
    pub findings_total: u32,
    /// Open CVEs under an active exception (not counted as open), soonest expiry first.
    pub excepted: Vec<Finding>,
    /// Updates to install (the list's counts leave them out: they need the full assessment).
    pub missing: Vec<MissingUpdate>,
    pub notes: Vec<String>,
}

/// Open findings of a tenant's fleet, counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExposureSummary {
    pub as_of: String,
    pub servers: u32,
    pub servers_with_kev: u32,
    pub servers_with_overdue: u32,
    pub unsupported: u32,
    pub open: u64,
    pub act: u64,
    pub attend: u64,
    pub track_star: u64,
    pub track: u64,
    pub kev: u64,
    pub overdue: u64,
    /// Open CVEs under an active exception (left out of every count above).
    pub excepted: u64,
}

/// `GET /api/v1/cves/{cve}`: the CVE, who is exposed to it and what fixes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CveExposure {
    pub cve: String,
    pub title: String,
    pub kev: bool,
    /// When CISA added it to KEV, and CISA's due date for federal agencies.
    pub kev_added: Option<String>,
    pub kev_due: Option<String>,
    pub ransomware: bool,
    pub severity: Option<String>,
    pub cvss: Option<f32>,
    pub epss: Option<f32>,
    pub epss_percentile: Option<f32>,
    pub exploited: bool,
    /// Exposed servers with an active exception are listed, marked with its id.
    pub exposed: Vec<ExposedServer>,
    /// The fixing KB per product, from MSRC (also for products no server runs).
    pub fixes: Vec<CveFix>,
}

/// What fixes a CVE on one product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CveFix {
    pub product: String,
    pub kb: String,
    pub fixed_build: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExposedServer {
    pub id: i64,
    pub name: String,
    pub product: String,
    pub decision: Option<String>,
    pub due: Option<String>,
    pub fixed_by: Vec<String>,
    /// The active exception that covers it on this server (not counted as open).
    pub exception_id: Option<i64>,
}

/// One stored feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedView {
    pub feed: String,
    pub key: String,
    pub source: String,
    pub as_of: Option<String>,
    pub revision: Option<String>,
    pub records: i64,
    pub imported_at: String,
}

/// What an upload imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    /// Servers stored (new or merged).
    pub servers: u64,
    /// Feed files stored, unchanged, or older than what is stored.
    pub stored: u64,
    pub unchanged: u64,
    pub older: u64,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub name: String,
    pub password: String,
}

/// A session started: the cookie is set; send `csrf_token` as `X-CSRF-Token` on writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub user: UserView,
    pub csrf_token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub name: String,
    pub role: String,
    /// `None`: a provider-wide administrator.
    pub tenant: Option<String>,
    pub disabled: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub name: String,
    /// `viewer`, `owner`, `operator`, `approver` or `admin`.
    pub role: String,
    /// At least 12 characters; without it the account can only use tokens.
    pub password: Option<String>,
    /// Provider-wide administrators: the user's tenant (name); others create in their own.
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub user: String,
    pub label: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub label: Option<String>,
    /// Days until it expires (1 to 3650); default 90.
    pub expires_days: Option<u32>,
    /// Administrators: create it for this user (name); others for themselves.
    pub user: Option<String>,
}

/// The secret is shown here once; only its hash is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    pub token: TokenView,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    pub id: i64,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// The entry's number: in the whole log for provider-wide administrators; among the
    /// tenant's own entries (1, 2, 3, ...) for a tenant's administrators.
    pub seq: i64,
    pub at: String,
    pub tenant: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// The hash chain (provider-wide administrators only: it spans every tenant).
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQueryParams {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// RFC 3339 instant.
    pub since: Option<String>,
    /// Entries after this number (`seq` as this reader sees it).
    pub after: Option<i64>,
    /// At most this many (default 500, at most 10000).
    pub limit: Option<u32>,
    /// `json` (default) or `jsonl` (one entry per line, for export).
    pub format: Option<String>,
    pub tenant: Option<String>,
}

/// The result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditVerification {
    pub entries: u64,
    pub ok: bool,
    /// The first entry that does not match, and why.
    pub first_bad: Option<i64>,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanItem {
    pub cycle: String,
    pub created_at: String,
}

/// A service: servers that provide one function together, and how many may be down at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceView {
    pub name: String,
    pub members: Vec<String>,
    /// `max_unavailable` members, or `max_unavailable_percent` of them, down at once.
    pub max_unavailable: Option<u32>,
    pub max_unavailable_percent: Option<u8>,
    pub owner: Option<String>,
}

/// One end of a dependency: a server or every member of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DependencyEnd {
    /// `server` or `service`.
    pub kind: String,
    pub name: String,
}

/// `dependent` needs `depends_on` up: it is patched after it, never at the same time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DependencyView {
    pub dependent: DependencyEnd,
    pub depends_on: DependencyEnd,
}

/// A recurring maintenance window (RFC 5545 rule in an IANA zone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WindowView {
    pub name: String,
    pub rrule: String,
    pub offset_days: i32,
    /// Local start time `HH:MM`.
    pub start: String,
    pub duration_minutes: i64,
    pub time_zone: String,
    pub emergency: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlackoutView {
    pub name: String,
    /// `global`, or `site:NAME`, `service:NAME`, `server:NAME`.
    pub scope: String,
    pub start: String,
    pub end: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupPolicyView {
    pub name: String,
    pub source: String,
    pub max_age_hours: i64,
    pub job_window: Option<WindowView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RingView {
    pub name: String,
    pub order: u32,
    pub soak_hours: i64,
    pub emergency_soak_hours: Option<i64>,
}

/// A server's rollback plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RollbackPlanView {
    pub server_id: i64,
    pub server: String,
    /// `uninstall_kb`, `snapshot`, ...
    pub method: String,
    pub who: Option<String>,
    pub tested_on: Option<String>,
    pub notes: Option<String>,
    /// Rolled back without waiting for an approver when verification fails.
    #[serde(default)]
    pub automatic: bool,
}

/// The tenant's estate besides its servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EstateView {
    pub services: Vec<ServiceView>,
    pub dependencies: Vec<DependencyView>,
    pub windows: Vec<WindowView>,
    pub blackouts: Vec<BlackoutView>,
    pub backup_policies: Vec<BackupPolicyView>,
    pub rings: Vec<RingView>,
    pub rollback_plans: Vec<RollbackPlanView>,
}

/// `POST /api/v1/plans`: plan a cycle (stored under its name, replacing an earlier plan).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlanRequest {
    /// e.g. "2026-12 Patch Tuesday".
    pub cycle: String,
    /// RFC 3339 instant the cycle starts.
    pub start: String,
    /// Servers to plan (any case); without them every server with open CVEs or missing updates.
    pub servers: Option<Vec<String>>,
    /// A deadline for every server in scope: RFC 3339, or `YYYY-MM-DD` (23:59 UTC that day).
    pub deadline: Option<String>,
    /// Only servers of this ring.
    pub ring: Option<String>,
    /// An emergency cycle: emergency windows and soaks.
    pub emergency: Option<bool>,
    /// How far ahead to look for windows (1 to 365 days; default 35).
    pub horizon_days: Option<u32>,
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlacementView {
    pub server: String,
    pub ring: Option<String>,
    pub wave: u32,
    pub window: String,
    pub start: String,
    pub end: String,
    pub due: Option<String>,
    pub due_source: Option<String>,
    /// Minutes past its due date, when it is late.
    pub late_minutes: Option<i64>,
    /// Why it is in this slot, headline first.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnplacedView {
    pub server: String,
    pub ring: Option<String>,
    /// The rule that keeps it out (`no_window`, `blackout`, ...).
    pub rule: String,
    pub reasons: Vec<String>,
    pub due: Option<String>,
}

/// A stored plan (owners: their servers only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanView {
    pub cycle: String,
    pub emergency: bool,
    pub start: String,
    pub horizon_end: String,
    pub finish: Option<String>,
    pub placements: Vec<PlacementView>,
    pub unplaced: Vec<UnplacedView>,
    pub late: u32,
    pub dependency_cycles: Vec<Vec<String>>,
    pub warnings: Vec<String>,
}
