CREATE TABLE data_keys (subject BYTEA PRIMARY KEY, wrapped BYTEA NOT NULL);
