//! Exceptions (PRODUCT.md: Exception): granted by approvers per server and CVE or update, with
//! a reason, a compensating control, a risk owner and an expiry the tenant's rules cap. An
//! active exception takes its findings out of the open counts everywhere (the fleet view reads
//! them with the servers); when it expires, the findings are open again with their priority
//! computed as of that day.

use super::{check_kb, decode, encode, nonempty, rules_of};
use crate::fleet::owns;
use crate::{Actor, App, AppError, Result};
use jiff::civil::Date;
use patchward_core::access::{Permission, Role};
use patchward_core::exposure::CveFacts;
use patchward_core::priority::assess_server;
use patchward_core::workflow::{
    Exception, ExceptionStatus, ExceptionSubject, Withdrawal, refuse_expiry,
};
use patchward_proto::{CreateExceptionRequest, ExceptionQuery, ExceptionView};
use patchward_store::{ControlStore, ExceptionRecord, TenantId};
use std::collections::HashMap;

/// The exceptions active on one day, by server (lower-case name).
#[derive(Debug, Default)]
pub struct ActiveExceptions {
    by_server: HashMap<String, Vec<(i64, Exception)>>,
}

impl ActiveExceptions {
    /// Decodes the stored exceptions and keeps those active on `today`; an unreadable record
    /// is an error naming it (a silently dropped exception would reopen findings).
    pub fn new(records: &[ExceptionRecord], today: Date) -> Result<ActiveExceptions> {
        let mut by_server: HashMap<String, Vec<(i64, Exception)>> = HashMap::new();
        for r in records {
            let e: Exception = decode("exception", r.id, &r.body)?;
            if e.is_active(today) {
                by_server
                    .entry(e.server.to_ascii_lowercase())
                    .or_default()
                    .push((r.id, e));
            }
        }
        Ok(ActiveExceptions { by_server })
    }

    pub fn of(&self, server: &str) -> &[(i64, Exception)] {
        self.by_server
            .get(&server.to_ascii_lowercase())
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }

    /// The exception (id, expiry) that covers an open CVE of the server, if any.
    pub fn covering(&self, server: &str, facts: &CveFacts) -> Option<(i64, Date)> {
        self.of(server)
            .iter()
            .find(|(_, e)| e.covers_facts(facts))
            .map(|(id, e)| (*id, e.expires))
    }
}

fn status_word(s: ExceptionStatus) -> &'static str {
    match s {
        ExceptionStatus::Active => "active",
        ExceptionStatus::Expiring => "expiring",
        ExceptionStatus::Expired => "expired",
        ExceptionStatus::Revoked => "revoked",
    }
}

pub(crate) fn view(id: i64, e: &Exception, server_id: Option<i64>, today: Date) -> ExceptionView {
    let (kind, subject) = match &e.subject {
        ExceptionSubject::Cve(c) => ("cve", c.clone()),
        ExceptionSubject::Update(k) => ("update", k.clone()),
    };
    ExceptionView {
        id,
        server: e.server.clone(),
        server_id,
        kind: kind.into(),
        subject,
        reason: e.reason.clone(),
        compensating_control: e.compensating_control.clone(),
        risk_owner: e.risk_owner.clone(),
        approver: e.approver.clone(),
        granted_at: e.granted_at.to_string(),
        expires: e.expires.to_string(),
        status: status_word(e.status(today)).into(),
        days_left: i64::from((e.expires - today).get_days()),
        revoked_at: e.revoked.as_ref().map(|r| r.at.to_string()),
        revoked_why: e.revoked.as_ref().map(|r| r.why.clone()),
    }
}

impl<S: ControlStore> App<S> {
    /// `POST /api/v1/exceptions`: an approver grants an exception for an open finding.
    pub async fn grant_exception(
        &self,
        actor: &Actor,
        tenant: TenantId,
        req: &CreateExceptionRequest,
    ) -> Result<ExceptionView> {
        actor.require(Permission::Approve)?;
        let today = self.today();
        let rules = rules_of(&self.store, tenant).await?;
        let subject = match (req.cve.as_deref(), req.update.as_deref()) {
            (Some(c), None) => ExceptionSubject::Cve(crate::fleet::check_cve(c)?),
            (None, Some(k)) => ExceptionSubject::Update(check_kb(k, "update")?),
            _ => {
                return Err(AppError::field(
                    "cve",
                    "name exactly one of cve (CVE-YYYY-NNNN) and update (KBnnnnnnn)",
                ));
            }
        };
        let reason = nonempty(&req.reason, "reason")?;
        let control = nonempty(&req.compensating_control, "compensating_control")?;
        let owner = nonempty(&req.risk_owner, "risk_owner")?;
        let expires: Date = req.expires.trim().parse().map_err(|_| {
            AppError::field(
                "expires",
                format!("{:?} is not a date (YYYY-MM-DD)", req.expires),
            )
        })?;
        if let Some(why) = refuse_expiry(today, expires, rules.exception_max_days) {
            return Err(AppError::field("expires", why));
        }
        // The finding must be open on the server now (and the server visible to the actor).
        let fleet = self.fleet(tenant).await?;
        let at = fleet
            .position_named(&req.server)
            .filter(|&i| actor.role != Role::Owner || owns(actor, &fleet.servers[i]))
            .ok_or_else(|| {
                AppError::field("server", format!("no server named {:?}", req.server))
            })?;
        let server = fleet.servers[at].clone();
        if let Some((id, e)) = fleet
            .exceptions
            .of(&server.name)
            .iter()
            .find(|(_, e)| e.subject.id().eq_ignore_ascii_case(subject.id()))
        {
            return Err(AppError::new(
                patchward_proto::ErrorCode::Conflict,
                format!(
                    "{} already has exception {id} for {} until {}: revoke it first to change it",
                    server.name,
                    subject.id(),
                    e.expires
                ),
            ));
        }
        let probe = Exception {
            server: server.name.clone(),
            subject,
            reason,
            compensating_control: control,
            risk_owner: owner,
            approver: actor.name.clone(),
            granted_at: self.now(),
            expires,
            revoked: None,
        };
        let index = fleet.index.clone();
        let policy = self.policy().clone();
        let check = probe.clone();
        let covered = tokio::task::spawn_blocking(move || {
            let e = assess_server(&index, &server, &policy, today);
            e.open_cves
                .iter()
                .filter(|c| check.covers_facts(&c.facts))
                .map(|c| c.facts.cve.to_string())
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| AppError::internal(e.to_string()))?;
        if covered.is_empty() {
            let field = match probe.subject {
                ExceptionSubject::Cve(_) => "cve",
                ExceptionSubject::Update(_) => "update",
            };
            return Err(AppError::field(
                field,
                format!(
                    "{} has no open finding for {}: nothing to except",
                    probe.server,
                    probe.subject.id()
                ),
            ));
        }
        let rec = self
            .store
            .create_exception(
                tenant,
                &probe.server,
                &encode("exception", &probe)?,
                self.now(),
            )
            .await?;
        self.record(
            actor,
            Some(tenant),
            "exception.grant",
            &format!("exception:{}", rec.id),
            serde_json::json!({
                "server": probe.server,
                "subject": probe.subject.id(),
                "expires": probe.expires.to_string(),
                "covers": covered,
                "reason": probe.reason,
                "compensating_control": probe.compensating_control,
                "risk_owner": probe.risk_owner,
            }),
        )
        .await?;
        Ok(view(rec.id, &probe, Some(fleet.ids[at]), today))
    }

    /// `GET /api/v1/exceptions`: soonest expiry first (owners: their servers').
    pub async fn exceptions(
        &self,
        actor: &Actor,
        tenant: TenantId,
        q: &ExceptionQuery,
    ) -> Result<Vec<ExceptionView>> {
        actor.require(Permission::Read)?;
        let wanted = match q.status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s @ ("active" | "expiring" | "expired" | "revoked")) => Some(s.to_string()),
            Some(other) => {
                return Err(AppError::field(
                    "status",
                    format!("{other:?}: status is active, expiring, expired or revoked"),
                ));
            }
        };
        let today = self.today();
        let fleet = self.fleet(tenant).await?;
        let mut out = Vec::new();
        for r in self.store.exceptions(tenant).await? {
            let e: Exception = decode("exception", r.id, &r.body)?;
            let pos = fleet.position_named(&e.server);
            if actor.role == Role::Owner && !pos.is_some_and(|i| owns(actor, &fleet.servers[i])) {
                continue;
            }
            if q.server
                .as_deref()
                .is_some_and(|s| !s.trim().eq_ignore_ascii_case(&e.server))
            {
                continue;
            }
            let v = view(r.id, &e, pos.map(|i| fleet.ids[i]), today);
            let keep = match wanted.as_deref() {
                None => true,
                Some("active") => v.status == "active" || v.status == "expiring",
                Some(s) => v.status == s,
            };
            if keep {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.expires.cmp(&b.expires).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `POST /api/v1/exceptions/{id}/revoke`: its findings are open again at once.
    pub async fn revoke_exception(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        reason: &str,
    ) -> Result<ExceptionView> {
        actor.require(Permission::Approve)?;
        let why = nonempty(reason, "reason")?;
        let rec = self
            .store
            .exception(tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("exception {id}")))?;
        let mut e: Exception = decode("exception", rec.id, &rec.body)?;
        if e.revoked.is_some() {
            return Err(AppError::new(
                patchward_proto::ErrorCode::Conflict,
                format!("exception {id} was revoked before"),
            ));
        }
        let now = self.now();
        e.revoked = Some(Withdrawal { at: now, why });
        if !self
            .store
            .revoke_exception(tenant, id, &encode("exception", &e)?, now)
            .await?
        {
            return Err(AppError::new(
                patchward_proto::ErrorCode::Conflict,
                format!("exception {id} was revoked meanwhile"),
            ));
        }
        self.record(
            actor,
            Some(tenant),
            "exception.revoke",
            &format!("exception:{id}"),
            serde_json::json!({"server": e.server, "subject": e.subject.id(), "reason": reason}),
        )
        .await?;
        let fleet = self.fleet(tenant).await?;
        let pos = fleet.position_named(&e.server).map(|i| fleet.ids[i]);
        Ok(view(id, &e, pos, self.today()))
    }
}
