-- Cases and the subject sets they concern: see the SQLite migration of the same name. Both are
-- reference tables on Citus.
CREATE TABLE cases (
    id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (id, revision)
);
CREATE INDEX cases_by_kind ON cases (kind, id);
CREATE TABLE case_sets (
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    chunk BIGINT NOT NULL,
    subjects BYTEA NOT NULL,
    PRIMARY KEY (id, version, chunk)
);
CREATE INDEX outbox_by_event ON outbox (event, state);
-- Subject keys are random: compressing a set's chunks costs time and saves nothing.
ALTER TABLE case_sets ALTER COLUMN subjects SET STORAGE EXTERNAL;
