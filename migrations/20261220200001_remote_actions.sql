-- Edits and deletes sent to a service for a sequence that is already there: one row per
-- (sequence, destination, action), kept until the service confirmed it, so a quit or a
-- crash in the middle resumes. No foreign key: the local sequence is removed once every
-- delete it asked for is confirmed, and the rows stay as the record of what was done.
CREATE TABLE remote_actions (
    id             INTEGER PRIMARY KEY,
    sequence_id    INTEGER NOT NULL,
    sequence_name  TEXT    NOT NULL,
    destination    TEXT    NOT NULL CHECK (destination IN ('mapillary', 'kartaview', 'panoramax', 'mtpw')),
    action         TEXT    NOT NULL CHECK (action IN ('edit', 'delete')),
    -- The job's remote state when the action was asked (the ids to act on).
    remote_json    TEXT    NOT NULL DEFAULT '{}',
    -- For an edit: what to set (e.g. the new title).
    payload_json   TEXT    NOT NULL DEFAULT '{}',
    status         TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_run_at    INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    -- What the service answered in the end (e.g. "already gone").
    outcome        TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX remote_actions_due ON remote_actions (status, next_run_at);
CREATE INDEX remote_actions_sequence ON remote_actions (sequence_id);

-- Set when the user asked to delete a sequence everywhere: the list says so until every
-- service confirmed, then the local records go.
ALTER TABLE sequences ADD COLUMN deleting_at INTEGER;
