-- The language a subject is written to in: see the SQLite migration of the same name.
-- Distributed by subject on Citus, co-located with `subjects`.
CREATE TABLE subject_languages (
    subject BYTEA PRIMARY KEY,
    language TEXT NOT NULL,
    set_ms BIGINT NOT NULL
);
