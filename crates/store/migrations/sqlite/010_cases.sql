-- Cases: incidents (P22) and transfer plans (P14). Each change writes a new revision of the
-- case's document (JSON, no PI values); the latest revision is the case as it stands, and a
-- revision already taken refuses a second writer (optimistic concurrency).
CREATE TABLE cases (
    id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (id, revision)
) WITHOUT ROWID;
CREATE INDEX cases_by_kind ON cases (kind, id);

-- The subjects a case concerns (an incident's affected set, a transfer's subjects), one set per
-- computation (`version`), as sorted 16-byte subject keys packed in chunks.
CREATE TABLE case_sets (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    subjects BLOB NOT NULL,
    PRIMARY KEY (id, version, chunk)
) WITHOUT ROWID;

CREATE INDEX outbox_by_event ON outbox (event, state);
