-- The language a subject is written to in (zh-CN or en), when they or the provider said so;
-- absent, the policy's default. Deleted when the subject is erased.
CREATE TABLE subject_languages (
    subject BLOB PRIMARY KEY,
    language TEXT NOT NULL,
    set_ms INTEGER NOT NULL
) WITHOUT ROWID;
