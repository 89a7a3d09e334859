-- Published policy versions and what each subject was told and accepted: see the SQLite
-- migration of the same name. `policy_versions` is a reference table on Citus;
-- `policy_events` is distributed by subject, co-located with `subjects`.
CREATE TABLE policy_versions (
    version TEXT PRIMARY KEY,
    serial BIGINT NOT NULL UNIQUE,
    digest TEXT NOT NULL,
    text TEXT NOT NULL,
    effective_ms BIGINT NOT NULL,
    published_ms BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    changes TEXT NOT NULL
);
CREATE TABLE policy_events (
    subject BYTEA NOT NULL,
    version TEXT NOT NULL,
    event TEXT NOT NULL,
    how TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (subject, version, event)
);
CREATE INDEX policy_events_by_version ON policy_events (version, event);
