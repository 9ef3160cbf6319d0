-- Portable SQL (SQLite and PostgreSQL): text JSON bodies, REAL epoch seconds for times
-- the deliverer compares, natural primary keys (no AUTOINCREMENT / SERIAL).
CREATE TABLE templates (
    kind TEXT NOT NULL,              -- AnalysisTemplate | ClusterAnalysisTemplate
    namespace TEXT NOT NULL,         -- '' for cluster templates
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);

CREATE TABLE runs (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL,
    body TEXT NOT NULL,              -- the manifest without status
    status TEXT,                     -- Argo status JSON (retained measurements only)
    phase TEXT NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0,
    labels TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    owner TEXT,                      -- replica holding the lease
    lease_expires_at DOUBLE PRECISION,
    epoch BIGINT NOT NULL DEFAULT 0, -- fencing token: bumped on every write
    PRIMARY KEY (namespace, name)
);
CREATE INDEX runs_unfinished ON runs (completed, namespace);

-- Full measurement history (the status keeps only the retained tail).
CREATE TABLE measurements (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    metric TEXT NOT NULL,
    seq INTEGER NOT NULL,
    phase TEXT NOT NULL,
    dry_run INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    PRIMARY KEY (namespace, name, metric, seq)
);

CREATE TABLE outbox (
    event_id TEXT NOT NULL,
    target TEXT NOT NULL,            -- the URL
    secret_name TEXT,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,              -- the exact bytes that are signed and sent
    state TEXT NOT NULL,             -- pending | delivered | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    last_attempt_at DOUBLE PRECISION,
    last_status INTEGER,
    last_error TEXT,
    PRIMARY KEY (event_id, target)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_run ON outbox (namespace, name);
