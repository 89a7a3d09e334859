-- Identities linked to a subject: see the SQLite migration of the same name. Distributed by
-- subject on Citus, co-located with `subjects`: each end of a link reads its own row.
CREATE TABLE subject_links (
    subject BYTEA NOT NULL,
    other BYTEA NOT NULL,
    kind TEXT NOT NULL,
    linked_ms BIGINT NOT NULL,
    PRIMARY KEY (subject, other)
);
