CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('record_id', 1);
CREATE TABLE audit (seq BIGINT PRIMARY KEY, entry BYTEA NOT NULL, hash BYTEA NOT NULL);
CREATE TABLE checkpoints (seq BIGINT PRIMARY KEY, head BYTEA NOT NULL, at_ms BIGINT NOT NULL, signature BYTEA NOT NULL);
CREATE TABLE subjects (
    id BYTEA PRIMARY KEY,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    closed_ms BIGINT
);
CREATE INDEX subjects_by_closing ON subjects (state, closed_ms);
CREATE TABLE records (
    subject BYTEA NOT NULL,
    category TEXT NOT NULL,
    id BIGINT NOT NULL,
    feature TEXT NOT NULL,
    source TEXT NOT NULL,
    collected_ms BIGINT NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (subject, category, id)
);
CREATE INDEX records_by_age ON records (category, collected_ms, subject, id);
CREATE TABLE lookup (
    subject BYTEA NOT NULL,
    digest BYTEA NOT NULL,
    record BIGINT NOT NULL,
    PRIMARY KEY (subject, digest, record)
);
CREATE INDEX lookup_by_digest ON lookup (digest);
CREATE TABLE consent_events (
    subject BYTEA NOT NULL,
    id BIGINT GENERATED ALWAYS AS IDENTITY,
    target TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    separate BOOLEAN NOT NULL,
    channel TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL,
    PRIMARY KEY (subject, id)
);
CREATE TABLE consent_current (
    subject BYTEA NOT NULL,
    target TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    separate BOOLEAN NOT NULL,
    channel TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL,
    PRIMARY KEY (subject, target)
);
CREATE TABLE disclosures (
    subject BYTEA NOT NULL,
    id BIGINT GENERATED ALWAYS AS IDENTITY,
    recipient TEXT NOT NULL,
    categories TEXT NOT NULL,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL,
    PRIMARY KEY (subject, id)
);
CREATE TABLE purge_queue (subject BYTEA PRIMARY KEY, queued_ms BIGINT NOT NULL);
CREATE TABLE certificates (subject BYTEA PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE legal_holds (
    subject BYTEA NOT NULL,
    id TEXT NOT NULL,
    categories TEXT NOT NULL,
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    placed_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    lifted_ms BIGINT,
    PRIMARY KEY (subject, id)
);
CREATE INDEX legal_holds_by_id ON legal_holds (id);
CREATE INDEX legal_holds_in_force ON legal_holds (until_ms) WHERE lifted_ms IS NULL;
CREATE TABLE rights_requests (
    subject BYTEA NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    target TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    due_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    verification TEXT NOT NULL,
    outcome TEXT NOT NULL,
    sealed_text BYTEA NOT NULL,
    PRIMARY KEY (subject, id)
);
CREATE INDEX rights_requests_by_id ON rights_requests (id);
CREATE INDEX rights_requests_by_due ON rights_requests (due_ms);
CREATE TABLE otp_codes (
    subject BYTEA PRIMARY KEY,
    digest BYTEA NOT NULL,
    expires_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL
);
CREATE TABLE sessions (
    subject BYTEA NOT NULL,
    digest BYTEA NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (subject, digest)
);
CREATE INDEX sessions_by_digest ON sessions (digest);
CREATE TABLE attempts (key TEXT PRIMARY KEY, window_ms BIGINT NOT NULL, count BIGINT NOT NULL);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    digest BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE staff (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE staff_sessions (
    digest BYTEA PRIMARY KEY,
    username TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
