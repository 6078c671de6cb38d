-- Patchward schema v2: the control plane. Tenants own servers, estate objects and plans;
-- users, API tokens and sessions; the hash-chained audit log.

CREATE TABLE tenants (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at INTEGER NOT NULL,
    -- Bumped by every write to the tenant's estate: a server caches per (tenant, revision).
    revision   INTEGER NOT NULL DEFAULT 0
);
-- A single-tenant install never has to think about tenants: everything is in `default`.
INSERT INTO tenants (id, name, created_at) VALUES (1, 'default', 0);

CREATE TABLE servers_v2 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL COLLATE NOCASE,
    record     TEXT NOT NULL,            -- JSON Server
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
INSERT INTO servers_v2 (tenant_id, name, record, updated_at)
    SELECT 1, name, record, updated_at FROM servers ORDER BY name COLLATE NOCASE;
DROP TABLE servers;
ALTER TABLE servers_v2 RENAME TO servers;

CREATE TABLE estate_objects_v2 (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL COLLATE NOCASE,
    record    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, name)
);
INSERT INTO estate_objects_v2 (tenant_id, kind, name, record)
    SELECT 1, kind, name, record FROM estate_objects;
DROP TABLE estate_objects;
ALTER TABLE estate_objects_v2 RENAME TO estate_objects;

CREATE TABLE plans_v2 (
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    cycle      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    record     TEXT NOT NULL,            -- JSON Plan
    PRIMARY KEY (tenant_id, cycle)
);
INSERT INTO plans_v2 (tenant_id, cycle, created_at, record)
    SELECT 1, cycle, created_at, record FROM plans;
DROP TABLE plans;
ALTER TABLE plans_v2 RENAME TO plans;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL: a provider-wide administrator (sees every tenant).
    tenant_id     INTEGER REFERENCES tenants (id),
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role          TEXT NOT NULL,         -- viewer, operator, approver, admin, owner
    password_hash TEXT,                  -- argon2id PHC string; NULL: token-only account
    disabled      INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    hash         TEXT NOT NULL UNIQUE,   -- SHA-256 of the secret (hex); the secret is shown once
    label        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,         -- SHA-256 of the cookie value (hex)
    user_id    INTEGER NOT NULL REFERENCES users (id),
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Append-only for the application: no UPDATE or DELETE path exists in the code.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,       -- 1, 2, 3, ... without gaps
    at        INTEGER NOT NULL,
    tenant_id INTEGER,                   -- NULL: provider-wide
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL,             -- JSON: before/after or what was done
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);

-- The chain's head (last seq and hash), written in the same transaction as each entry: a
-- deleted last entry leaves the head pointing past the end, which `audit verify` reports.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
