CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE subjects (
    id BLOB PRIMARY KEY,
    state TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE records (
    subject BLOB NOT NULL,
    category TEXT NOT NULL,
    id INTEGER NOT NULL,
    feature TEXT NOT NULL,
    source TEXT NOT NULL,
    collected_ms INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (subject, category, id)
) WITHOUT ROWID;
CREATE TABLE lookup (
    digest BLOB NOT NULL,
    subject BLOB NOT NULL,
    record INTEGER NOT NULL,
    PRIMARY KEY (digest, subject, record)
) WITHOUT ROWID;
CREATE INDEX lookup_by_subject ON lookup (subject);
CREATE TABLE consent_events (
    id INTEGER PRIMARY KEY,
    subject BLOB NOT NULL,
    target TEXT NOT NULL,
    granted INTEGER NOT NULL,
    separate INTEGER NOT NULL,
    channel TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
);
CREATE INDEX consent_events_by_subject ON consent_events (subject, id);
CREATE TABLE consent_current (
    subject BLOB NOT NULL,
    target TEXT NOT NULL,
    granted INTEGER NOT NULL,
    separate INTEGER NOT NULL,
    channel TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL,
    PRIMARY KEY (subject, target)
) WITHOUT ROWID;
CREATE TABLE disclosures (
    id INTEGER PRIMARY KEY,
    subject BLOB NOT NULL,
    recipient TEXT NOT NULL,
    categories TEXT NOT NULL,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
);
CREATE INDEX disclosures_by_subject ON disclosures (subject, id);
CREATE TABLE purge_queue (subject BLOB PRIMARY KEY, queued_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE certificates (subject BLOB PRIMARY KEY, document TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    entry BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE checkpoints (
    seq INTEGER PRIMARY KEY,
    head BLOB NOT NULL,
    at_ms INTEGER NOT NULL,
    signature BLOB NOT NULL
);
