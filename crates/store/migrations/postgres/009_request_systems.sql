-- Where a rights request's erasure stands in each of the provider's other databases: see the
-- SQLite migration of the same name. Distributed by subject on Citus, co-located with
-- `rights_requests`.
CREATE TABLE request_systems (
    subject BYTEA NOT NULL,
    request TEXT NOT NULL,
    system TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_ms BIGINT NOT NULL,
    reason TEXT NOT NULL,
    sealed_plan BYTEA NOT NULL,
    result TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (subject, request, system)
);
CREATE INDEX request_systems_due ON request_systems (next_ms) WHERE state IN ('waiting', 'planned');
