-- Authenticity tags of the state that decides reads (P10, P27, P33): HMAC under a key derived
-- from the master key, written by the core. Rows from before are tagged when a vault opens.
ALTER TABLE subjects ADD COLUMN tag BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE consent_events ADD COLUMN tag BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE consent_current ADD COLUMN tag BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE legal_holds ADD COLUMN tag BYTEA NOT NULL DEFAULT ''::bytea;
