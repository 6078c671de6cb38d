//! The change workflow's use cases (PRODUCT.md C5): cycles with their scope, plan, approvals,
//! deferrals and transitions (`cycles`), exceptions (`exceptions`), and the dashboard that
//! brings them together with exposure (`dashboard`). The rules are `patchward_core::workflow`;
//! this layer reads and writes them, checks roles and tenants and records the audit log.

mod cycles;
mod dashboard;
mod exceptions;

pub use dashboard::Emergency;
pub use exceptions::ActiveExceptions;

use crate::{Actor, App, AppError, Result};
use patchward_core::access::Permission;
use patchward_core::workflow::WorkflowRules;
use patchward_proto::WorkflowRulesView;
use patchward_store::{ControlStore, TenantId};

/// A stored JSON body; an unreadable one names the record (never a silent default).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(what: &str, id: i64, body: &str) -> Result<T> {
    serde_json::from_str(body)
        .map_err(|e| AppError::internal(format!("stored {what} {id} is unreadable: {e}")))
}

pub(crate) fn encode<T: serde::Serialize>(what: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| AppError::internal(format!("writing {what}: {e}")))
}

/// A required text field: trimmed, 1 to 2000 characters.
pub(crate) fn nonempty(s: &str, field: &str) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(AppError::field(field, format!("{field} is required")));
    }
    if t.chars().count() > 2000 {
        return Err(AppError::field(
            field,
            format!("{field} is at most 2000 characters"),
        ));
    }
    Ok(t.to_string())
}

/// `KB5044281` or `5044281` → `KB5044281`.
pub(crate) fn check_kb(s: &str, field: &str) -> Result<String> {
    let t = s.trim();
    let digits = t
        .strip_prefix("KB")
        .or_else(|| t.strip_prefix("kb"))
        .unwrap_or(t);
    if (6..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(format!("KB{digits}"))
    } else {
        Err(AppError::field(
            field,
            format!("{s:?} is not a KB number like KB5044281"),
        ))
    }
}

/// The tenant's workflow rules (the defaults until an admin sets them).
pub(crate) async fn rules_of<S: ControlStore>(
    store: &S,
    tenant: TenantId,
) -> Result<WorkflowRules> {
    match store.workflow_rules(tenant).await? {
        Some(body) => decode("workflow rules of tenant", tenant.0, &body),
        None => Ok(WorkflowRules::default()),
    }
}

fn rules_view(r: &WorkflowRules) -> WorkflowRulesView {
    WorkflowRulesView {
        approvals_required: r.approvals_required,
        separation_of_duties: r.separation_of_duties,
        admins_approve: r.admins_approve,
        exception_max_days: r.exception_max_days,
        emergency_sla_days: r.emergency_sla_days,
        failure_budget_percent: Some(r.failure_budget_percent),
    }
}

impl<S: ControlStore> App<S> {
    /// `GET /api/v1/workflow-rules`.
    pub async fn workflow_rules(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<WorkflowRulesView> {
        actor.require(Permission::Read)?;
        Ok(rules_view(&rules_of(&self.store, tenant).await?))
    }

    /// The tenant's rules as offers read them: at most a second old, and read again at once
    /// after this replica changed them (a fleet checking in does not read them each time).
    pub(crate) async fn offer_rules(&self, tenant: TenantId) -> Result<WorkflowRules> {
        if let Some((at, r)) = crate::agents::lock(&self.rules_cache).get(&tenant)
            && at.elapsed() < std::time::Duration::from_secs(1)
        {
            return Ok(*r);
        }
        let r = rules_of(&self.store, tenant).await?;
        let mut cache = crate::agents::lock(&self.rules_cache);
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(tenant, (std::time::Instant::now(), r));
        Ok(r)
    }

    /// `PUT /api/v1/workflow-rules` (admins).
    pub async fn set_workflow_rules(
        &self,
        actor: &Actor,
        tenant: TenantId,
        v: &WorkflowRulesView,
    ) -> Result<WorkflowRulesView> {
        actor.require(Permission::Administer)?;
        let before = rules_of(&self.store, tenant).await?;
        let new = WorkflowRules {
            approvals_required: v.approvals_required,
            separation_of_duties: v.separation_of_duties,
            admins_approve: v.admins_approve,
            exception_max_days: v.exception_max_days,
            emergency_sla_days: v.emergency_sla_days,
            failure_budget_percent: v
                .failure_budget_percent
                .unwrap_or(before.failure_budget_percent),
        };
        new.check().map_err(|(f, m)| AppError::field(f, m))?;
        self.store
            .set_workflow_rules(tenant, &encode("workflow rules", &new)?, self.now())
            .await?;
        crate::agents::lock(&self.rules_cache).remove(&tenant);
        self.record(
            actor,
            Some(tenant),
            "workflow.rules",
            &format!("tenant:{}", tenant.0),
            serde_json::json!({"before": rules_view(&before), "after": rules_view(&new)}),
        )
        .await?;
        Ok(rules_view(&new))
    }
}
