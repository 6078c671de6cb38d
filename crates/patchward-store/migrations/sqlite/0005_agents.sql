-- Patchward schema v5: agents. Enrolment tokens (one-time by default, expiring, per tenant;
-- only their SHA-256 is kept) and enrolled agents with their own credential (SHA-256 too).

CREATE TABLE enrol_tokens (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    hash       TEXT NOT NULL UNIQUE,
    label      TEXT NOT NULL,
    uses_left  INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX enrol_tokens_by_tenant ON enrol_tokens (tenant_id);

CREATE TABLE agents (
    id               INTEGER PRIMARY KEY,
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    server           TEXT NOT NULL COLLATE NOCASE,
    credential_hash  TEXT NOT NULL UNIQUE,
    agent_version    TEXT NOT NULL,
    protocol         INTEGER NOT NULL,
    enrolled_at      INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    revoked_at       INTEGER,
    inventory_digest TEXT,
    reported_at      INTEGER,
    report           TEXT                 -- JSON InventoryReport, the last one received
);
CREATE INDEX agents_by_tenant ON agents (tenant_id, server);
