-- External systems asked by webhook wait in state `asked` (docs/datasets.md): the index of
-- rows to try again covers them too.
DROP INDEX request_systems_due;
CREATE INDEX request_systems_due ON request_systems (next_ms) WHERE state IN ('waiting', 'planned', 'asked');
