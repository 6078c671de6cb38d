-- Patchward schema v1 on PostgreSQL: the same tables as migrations/sqlite/0001_init.sql in
-- patchward-store. Instants are BIGINT epoch milliseconds (UTC); dates are TEXT YYYY-MM-DD.
-- Records whose shape belongs to the domain (servers, estate objects, plans) are stored as JSON
-- text beside the columns that are queried.
--
-- Text columns use the "C" collation: ORDER BY sorts by code point, as SQLite's BINARY does,
-- and lower() folds ASCII letters only, as SQLite's NOCASE does. Names compared
-- case-insensitively have unique indexes on lower(name).

CREATE TABLE feed_imports (
    feed        TEXT COLLATE "C" NOT NULL,  -- msrc-cvrf, kev, epss, nvd, lifecycle, kb-builds
    key         TEXT COLLATE "C" NOT NULL,  -- document id / catalog / '' for single-file feeds
    source      TEXT NOT NULL,              -- file path or URL it came from
    as_of       BIGINT,                     -- date of the data itself
    revision    TEXT,
    records     BIGINT NOT NULL,
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (feed, key)
);

CREATE TABLE products (
    id   TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL                      -- JSON ProductKind
);

-- Facts are kept per document: MSRC lists some CVEs (and fixes) in more than one month, and
-- re-importing one month must not remove what another month says. The catalog merges them.
CREATE TABLE vulnerabilities (
    cve                TEXT COLLATE "C" NOT NULL,
    document           TEXT COLLATE "C" NOT NULL,
    title              TEXT NOT NULL,
    tag                TEXT,
    cwe                TEXT,
    exploited          BOOLEAN NOT NULL,
    publicly_disclosed BOOLEAN NOT NULL,
    exploit_status     TEXT,
    released           BIGINT,
    PRIMARY KEY (cve, document)
);
CREATE INDEX vulnerabilities_document ON vulnerabilities (document);

CREATE TABLE affected (
    cve         TEXT COLLATE "C" NOT NULL,
    product_id  TEXT COLLATE "C" NOT NULL,
    document    TEXT COLLATE "C" NOT NULL,
    severity    TEXT,
    impact      TEXT,
    cvss_base   DOUBLE PRECISION,
    cvss_vector TEXT,
    PRIMARY KEY (cve, product_id, document)
);
CREATE INDEX affected_document ON affected (document);

CREATE TABLE fixes (
    cve              TEXT COLLATE "C" NOT NULL,
    product_id       TEXT COLLATE "C" NOT NULL,
    kb               BIGINT NOT NULL,
    document         TEXT COLLATE "C" NOT NULL,
    subtype          TEXT NOT NULL,
    classification   TEXT NOT NULL,
    fixed_build      TEXT,
    supersedes       TEXT NOT NULL,         -- space-separated KB numbers
    restart_required TEXT,
    PRIMARY KEY (cve, product_id, kb, document)
);
CREATE INDEX fixes_document ON fixes (document);
CREATE INDEX fixes_kb ON fixes (kb);

CREATE TABLE kb_builds (
    product_id       TEXT COLLATE "C" NOT NULL,
    kb               BIGINT NOT NULL,
    document         TEXT COLLATE "C" NOT NULL,
    subtype          TEXT NOT NULL,
    classification   TEXT NOT NULL,
    fixed_build      TEXT,
    supersedes       TEXT NOT NULL,
    restart_required TEXT,
    PRIMARY KEY (product_id, kb, document)
);

CREATE TABLE kev (
    cve             TEXT COLLATE "C" PRIMARY KEY,
    vendor          TEXT NOT NULL,
    product         TEXT NOT NULL,
    name            TEXT NOT NULL,
    date_added      TEXT NOT NULL,
    due             TEXT NOT NULL,
    ransomware      BOOLEAN NOT NULL,
    required_action TEXT NOT NULL
);

CREATE TABLE epss (
    cve           TEXT COLLATE "C" PRIMARY KEY,
    epss          DOUBLE PRECISION NOT NULL,
    percentile    DOUBLE PRECISION NOT NULL,
    model_version TEXT COLLATE "C" NOT NULL,
    score_date    TEXT COLLATE "C" NOT NULL
);

CREATE TABLE nvd (
    cve           TEXT COLLATE "C" PRIMARY KEY,
    last_modified BIGINT,
    record        TEXT NOT NULL              -- JSON NvdRecord
);

CREATE TABLE lifecycle (
    cycle  TEXT COLLATE "C" PRIMARY KEY,
    record TEXT NOT NULL                     -- JSON LifecycleEntry
);

CREATE TABLE servers (
    name       TEXT COLLATE "C" NOT NULL,
    record     TEXT NOT NULL,                -- JSON Server
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX servers_name ON servers (lower(name));

-- Services, dependencies, windows, blackouts, backup policies, rings, coverage, capacity.
CREATE TABLE estate_objects (
    kind   TEXT COLLATE "C" NOT NULL,
    name   TEXT COLLATE "C" NOT NULL,
    record TEXT NOT NULL
);
CREATE UNIQUE INDEX estate_objects_name ON estate_objects (kind, lower(name));

CREATE TABLE plans (
    cycle      TEXT COLLATE "C" PRIMARY KEY,
    created_at BIGINT NOT NULL,
    record     TEXT NOT NULL                 -- JSON Plan
);
