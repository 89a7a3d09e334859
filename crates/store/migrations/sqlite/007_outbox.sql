-- The transactional outbox: every message (an email to a subject, a webhook call) is a row
-- written in the same transaction as the act that causes it; a dispatcher claims due rows,
-- delivers them and records the outcome. Rows hold ids, pseudonyms and event names, never PI
-- values: an email's address is looked up when it is sent.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_ms INTEGER NOT NULL,
    lease_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    last_error TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX outbox_due ON outbox (state, next_ms);
-- Webhook endpoints: where events go, which events, and the signing secret (sealed under a
-- key derived from the master key).
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
