-- The steps a rights request took: see the SQLite migration of the same name. Distributed by
-- subject on Citus, co-located with `rights_requests`.
CREATE TABLE request_steps (
    subject BYTEA NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (subject, request, state)
);
