-- Where a rights request's erasure stands in each of the provider's other databases
-- (docs/datasets.md): its plan (sealed under the subject's data key), attempts, the reason
-- the last one failed and what was done.
CREATE TABLE request_systems (
    subject BLOB NOT NULL,
    request TEXT NOT NULL,
    system TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    sealed_plan BLOB NOT NULL,
    result TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (subject, request, system)
) WITHOUT ROWID;
CREATE INDEX request_systems_due ON request_systems (next_ms) WHERE state IN ('waiting', 'planned');
