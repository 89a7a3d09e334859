CREATE TABLE destroyed (subject BYTEA PRIMARY KEY);
