-- Published policy versions (P29): the text as published, its digest, when it takes effect,
-- who published it, and its classified differences from the version before (JSON).
CREATE TABLE policy_versions (
    version TEXT PRIMARY KEY,
    serial INTEGER NOT NULL UNIQUE,
    digest TEXT NOT NULL,
    text TEXT NOT NULL,
    effective_ms INTEGER NOT NULL,
    published_ms INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    changes TEXT NOT NULL
);

-- What each subject was told of a version and whether they accepted it (P30): one row per
-- (subject, version, event), the first time it happened. `event` is `notified` (a notice
-- mail delivered), `shown` (the notice shown in the privacy centre) or `accepted`; `how` is
-- `email`, `page`, `explicit`, `staff` or `continued_use`. Deleted when the subject is erased.
CREATE TABLE policy_events (
    subject BLOB NOT NULL,
    version TEXT NOT NULL,
    event TEXT NOT NULL,
    how TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (subject, version, event)
) WITHOUT ROWID;
CREATE INDEX policy_events_by_version ON policy_events (version, event);
