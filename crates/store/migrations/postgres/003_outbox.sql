-- The transactional outbox and webhook endpoints: see the SQLite migration of the same name.
-- On a distributed PostgreSQL the outbox stays on the coordinator beside the audit log (it is
-- written in the same transactions), and the endpoints are a reference table.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_ms BIGINT NOT NULL,
    lease_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    last_error TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_ms);
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE
);
