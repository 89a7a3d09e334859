CREATE TABLE otp_codes (
    subject BLOB PRIMARY KEY,
    digest BLOB NOT NULL,
    expires_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE attempts (
    key TEXT PRIMARY KEY,
    window_ms INTEGER NOT NULL,
    count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE sessions (
    digest BLOB PRIMARY KEY,
    subject BLOB NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
