-- Patchward schema v1. Instants are INTEGER epoch milliseconds (UTC); dates are TEXT YYYY-MM-DD.
-- Records whose shape belongs to the domain (servers, estate objects, plans) are stored as JSON
-- beside the columns that are queried.

CREATE TABLE feed_imports (
    feed        TEXT NOT NULL,          -- msrc-cvrf, kev, epss, nvd, lifecycle, kb-builds
    key         TEXT NOT NULL,          -- document id / catalog / '' for single-file feeds
    source      TEXT NOT NULL,          -- file path or URL it came from
    as_of       INTEGER,                -- date of the data itself
    revision    TEXT,
    records     INTEGER NOT NULL,
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (feed, key)
);

CREATE TABLE products (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL                  -- JSON ProductKind
);

-- Facts are kept per document: MSRC lists some CVEs (and fixes) in more than one month, and
-- re-importing one month must not remove what another month says. The catalog merges them.
CREATE TABLE vulnerabilities (
    cve                TEXT NOT NULL,
    document           TEXT NOT NULL,
    title              TEXT NOT NULL,
    tag                TEXT,
    cwe                TEXT,
    exploited          INTEGER NOT NULL,
    publicly_disclosed INTEGER NOT NULL,
    exploit_status     TEXT,
    released           INTEGER,
    PRIMARY KEY (cve, document)
);
CREATE INDEX vulnerabilities_document ON vulnerabilities (document);

CREATE TABLE affected (
    cve         TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    document    TEXT NOT NULL,
    severity    TEXT,
    impact      TEXT,
    cvss_base   REAL,
    cvss_vector TEXT,
    PRIMARY KEY (cve, product_id, document)
);
CREATE INDEX affected_document ON affected (document);

CREATE TABLE fixes (
    cve              TEXT NOT NULL,
    product_id       TEXT NOT NULL,
    kb               INTEGER NOT NULL,
    document         TEXT NOT NULL,
    subtype          TEXT NOT NULL,
    classification   TEXT NOT NULL,
    fixed_build      TEXT,
    supersedes       TEXT NOT NULL,     -- space-separated KB numbers
    restart_required TEXT,
    PRIMARY KEY (cve, product_id, kb, document)
);
CREATE INDEX fixes_document ON fixes (document);
CREATE INDEX fixes_kb ON fixes (kb);

CREATE TABLE kb_builds (
    product_id       TEXT NOT NULL,
    kb               INTEGER NOT NULL,
    document         TEXT NOT NULL,
    subtype          TEXT NOT NULL,
    classification   TEXT NOT NULL,
    fixed_build      TEXT,
    supersedes       TEXT NOT NULL,
    restart_required TEXT,
    PRIMARY KEY (product_id, kb, document)
);

CREATE TABLE kev (
    cve             TEXT PRIMARY KEY,
    vendor          TEXT NOT NULL,
    product         TEXT NOT NULL,
    name            TEXT NOT NULL,
    date_added      TEXT NOT NULL,
    due             TEXT NOT NULL,
    ransomware      INTEGER NOT NULL,
    required_action TEXT NOT NULL
);

CREATE TABLE epss (
    cve           TEXT PRIMARY KEY,
    epss          REAL NOT NULL,
    percentile    REAL NOT NULL,
    model_version TEXT NOT NULL,
    score_date    TEXT NOT NULL
);

CREATE TABLE nvd (
    cve           TEXT PRIMARY KEY,
    last_modified INTEGER,
    record        TEXT NOT NULL          -- JSON NvdRecord
);

CREATE TABLE lifecycle (
    cycle  TEXT PRIMARY KEY,
    record TEXT NOT NULL                 -- JSON LifecycleEntry
);

CREATE TABLE servers (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    record     TEXT NOT NULL,            -- JSON Server
    updated_at INTEGER NOT NULL
);

-- Services, dependencies, windows, blackouts, backup policies, rings, coverage, capacity.
CREATE TABLE estate_objects (
    kind   TEXT NOT NULL,
    name   TEXT NOT NULL COLLATE NOCASE,
    record TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE plans (
    cycle      TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    record     TEXT NOT NULL             -- JSON Plan
);
