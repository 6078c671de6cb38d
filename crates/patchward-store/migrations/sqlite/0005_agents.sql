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

-- Jobs: the work on one server in one cycle. `version` guards every write (two replicas never
-- both lease or both finish a job); `lease_token` grows with every lease (the fencing token an
-- agent must present); the steps, results and verification travel in the JSON body.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    cycle_id    INTEGER NOT NULL REFERENCES cycles (id),
    server      TEXT NOT NULL COLLATE NOCASE,
    ring        TEXT,
    state       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    lease_agent INTEGER,
    lease_token INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    body        TEXT NOT NULL,            -- JSON Job
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (cycle_id, server)
);
CREATE INDEX jobs_by_server ON jobs (tenant_id, server, state);
CREATE INDEX jobs_by_state ON jobs (state, lease_until);
