ALTER TABLE subjects ADD COLUMN closed_ms INTEGER;
CREATE INDEX subjects_by_closing ON subjects (state, closed_ms);
CREATE INDEX records_by_age ON records (category, collected_ms);
CREATE TABLE legal_holds (
    id TEXT PRIMARY KEY,
    subject BLOB NOT NULL,
    categories TEXT NOT NULL,
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    placed_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    lifted_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX legal_holds_by_subject ON legal_holds (subject);
CREATE TABLE rights_requests (
    id TEXT PRIMARY KEY,
    subject BLOB NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    target TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    verification TEXT NOT NULL,
    outcome TEXT NOT NULL,
    sealed_text BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX rights_requests_by_due ON rights_requests (due_ms);
