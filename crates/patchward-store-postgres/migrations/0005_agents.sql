-- Patchward schema v5 on PostgreSQL (as migrations/sqlite/0005_agents.sql): agents.
-- Enrolment tokens (one-time by default, expiring, per tenant; only their SHA-256 is kept) and
-- enrolled agents with their own credential (SHA-256 too).

CREATE TABLE enrol_tokens (
    id         BIGINT PRIMARY KEY,
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id),
    hash       TEXT NOT NULL UNIQUE,
    label      TEXT NOT NULL,
    uses_left  BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX enrol_tokens_by_tenant ON enrol_tokens (tenant_id);

CREATE TABLE agents (
    id               BIGINT PRIMARY KEY,
    tenant_id        BIGINT NOT NULL REFERENCES tenants (id),
    server           TEXT COLLATE "C" NOT NULL,
    credential_hash  TEXT NOT NULL UNIQUE,
    agent_version    TEXT NOT NULL,
    protocol         BIGINT NOT NULL,
    enrolled_at      BIGINT NOT NULL,
    last_seen        BIGINT NOT NULL,
    revoked_at       BIGINT,
    inventory_digest TEXT,
    reported_at      BIGINT,
    report           TEXT                 -- JSON InventoryReport, the last one received
);
CREATE INDEX agents_by_tenant ON agents (tenant_id, lower(server));

-- Jobs: the work on one server in one cycle. `version` guards every write (two replicas never
-- both lease or both finish a job); `lease_token` grows with every lease (the fencing token an
-- agent must present); the steps, results and verification travel in the JSON body.
CREATE TABLE jobs (
    id          BIGINT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    cycle_id    BIGINT NOT NULL REFERENCES cycles (id),
    server      TEXT COLLATE "C" NOT NULL,
    ring        TEXT,
    state       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    lease_agent BIGINT,
    lease_token BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    body        TEXT NOT NULL,            -- JSON Job
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_cycle_server ON jobs (cycle_id, lower(server));
CREATE INDEX jobs_by_server ON jobs (tenant_id, lower(server), state);
CREATE INDEX jobs_by_state ON jobs (state, lease_until);
