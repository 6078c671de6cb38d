-- Patchward schema v4 on PostgreSQL (as migrations/sqlite/0004_workflow.sql): the change
-- workflow. Cycles (approvals, deferrals and history in the JSON body; `version` guards every
-- write), exceptions, per-tenant rules.

CREATE TABLE cycles (
    id         BIGINT PRIMARY KEY,
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id),
    name       TEXT COLLATE "C" NOT NULL,
    state      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    body       TEXT NOT NULL,                -- JSON Cycle
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX cycles_name ON cycles (tenant_id, lower(name));

CREATE TABLE exceptions (
    id         BIGINT PRIMARY KEY,
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id),
    server     TEXT COLLATE "C" NOT NULL,
    body       TEXT NOT NULL,                -- JSON Exception
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX exceptions_by_tenant ON exceptions (tenant_id, lower(server));

CREATE TABLE workflow_rules (
    tenant_id  BIGINT PRIMARY KEY REFERENCES tenants (id),
    body       TEXT NOT NULL,                -- JSON WorkflowRules
    updated_at BIGINT NOT NULL
);
