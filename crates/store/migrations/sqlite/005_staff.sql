CREATE TABLE staff (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE staff_sessions (
    digest BLOB PRIMARY KEY,
    username TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
