-- External systems asked by webhook wait in state `asked`: see the SQLite migration of the
-- same name.
DROP INDEX request_systems_due;
CREATE INDEX request_systems_due ON request_systems (next_ms) WHERE state IN ('waiting', 'planned', 'asked');
