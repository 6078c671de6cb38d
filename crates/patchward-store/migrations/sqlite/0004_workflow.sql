-- Patchward schema v4: the change workflow. Cycles (their approvals, deferrals and history
-- travel in the JSON body; `version` guards every write), exceptions, per-tenant rules.

CREATE TABLE cycles (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL COLLATE NOCASE,
    state      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,            -- JSON Cycle
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE exceptions (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    server     TEXT NOT NULL COLLATE NOCASE,
    body       TEXT NOT NULL,            -- JSON Exception
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX exceptions_by_tenant ON exceptions (tenant_id, server);

CREATE TABLE workflow_rules (
    tenant_id  INTEGER PRIMARY KEY REFERENCES tenants (id),
    body       TEXT NOT NULL,            -- JSON WorkflowRules
    updated_at INTEGER NOT NULL
);
