-- Identities linked to a subject (P19): the device a visitor chose cookies on before they
-- signed in (docs/visitors.md). A link is two rows, one under each end's key, so either end
-- finds it by its own: (subject = the person, other = the visitor, kind 'device') and
-- (subject = the visitor, other = the person, kind 'owner'). Each end's rows go when it is
-- erased.
CREATE TABLE subject_links (
    subject BLOB NOT NULL,
    other BLOB NOT NULL,
    kind TEXT NOT NULL,
    linked_ms INTEGER NOT NULL,
    PRIMARY KEY (subject, other)
) WITHOUT ROWID;
