-- The steps a rights request took (the console's request history): the state it entered, when,
-- and by whose act. A request enters each state at most once. Requests opened before this
-- table show their received time and their last change only.
CREATE TABLE request_steps (
    subject BLOB NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (subject, request, state)
) WITHOUT ROWID;
