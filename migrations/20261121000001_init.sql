-- MTP Desktop schema, version 1.
-- Times are integers: milliseconds since the Unix epoch, UTC.

-- One folder read: the plan it produced and the files it could not use.
CREATE TABLE imports (
    id            INTEGER PRIMARY KEY,
    folder        TEXT    NOT NULL,
    -- Hash of the sorted (relative path, size, mtime) list: re-importing the same folder is detected.
    fingerprint   TEXT    NOT NULL,
    options_json  TEXT    NOT NULL DEFAULT '{}',
    files_seen    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
CREATE INDEX imports_fingerprint ON imports (fingerprint);

CREATE TABLE sequences (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT    NOT NULL UNIQUE,
    import_id       INTEGER REFERENCES imports (id) ON DELETE SET NULL,
    -- Position of this sequence within its import's plan (a folder can give several).
    plan_index      INTEGER NOT NULL DEFAULT 0,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    transport_type  TEXT,
    tags_json       TEXT    NOT NULL DEFAULT '[]',
    -- draft: prepared, not yet sent anywhere; queued: destinations chosen; archived: hidden.
    state           TEXT    NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'queued', 'archived')),
    is_360          INTEGER NOT NULL DEFAULT 0,
    photo_count     INTEGER NOT NULL DEFAULT 0,
    total_bytes     INTEGER NOT NULL DEFAULT 0,
    distance_m      REAL    NOT NULL DEFAULT 0,
    started_at      INTEGER,
    ended_at        INTEGER,
    split_reason    TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (import_id, plan_index)
);

CREATE TABLE photos (
    id               INTEGER PRIMARY KEY,
    sequence_id      INTEGER NOT NULL REFERENCES sequences (id) ON DELETE CASCADE,
    seq_index        INTEGER NOT NULL,
    path             TEXT    NOT NULL,
    file_name        TEXT    NOT NULL,
    file_size        INTEGER NOT NULL,
    captured_at      INTEGER NOT NULL,
    original_captured_at INTEGER,
    lat              REAL    NOT NULL,
    lon              REAL    NOT NULL,
    altitude         REAL,
    heading          REAL,
    heading_source   TEXT,
    make             TEXT,
    model            TEXT,
    serial           TEXT,
    width            INTEGER,
    height           INTEGER,
    orientation      INTEGER,
    is_360           INTEGER NOT NULL DEFAULT 0,
    gps_accuracy_m   REAL,
    UNIQUE (sequence_id, seq_index)
);

-- Files of an import that were not kept, and why (the user sees these on the map and list).
CREATE TABLE dropped_photos (
    id           INTEGER PRIMARY KEY,
    import_id    INTEGER NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    path         TEXT    NOT NULL,
    file_name    TEXT    NOT NULL,
    reason_code  TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    lat          REAL,
    lon          REAL,
    captured_at  INTEGER
);
CREATE INDEX dropped_photos_import ON dropped_photos (import_id);

-- The pipeline: one row per (sequence, destination).
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    sequence_id      INTEGER NOT NULL REFERENCES sequences (id) ON DELETE CASCADE,
    destination      TEXT    NOT NULL CHECK (destination IN ('mapillary', 'kartaview', 'panoramax', 'mtpw')),
    stage            TEXT    NOT NULL DEFAULT 'prepare'
                     CHECK (stage IN ('prepare', 'upload', 'publish', 'poll', 'sync', 'done')),
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'paused', 'waiting_auth', 'failed', 'cancelled', 'done')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_run_at      INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    last_error_kind  TEXT,
    -- Remote ids known so far (cluster ids, KartaView sequence id, upload-set id, MTPW unique id...).
    remote_json      TEXT    NOT NULL DEFAULT '{}',
    remote_url       TEXT,
    photos_total     INTEGER NOT NULL DEFAULT 0,
    photos_done      INTEGER NOT NULL DEFAULT 0,
    bytes_total      INTEGER NOT NULL DEFAULT 0,
    bytes_done       INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (sequence_id, destination)
);
CREATE INDEX jobs_runnable ON jobs (status, next_run_at);

-- Per photo and job: what the remote already has, saved the moment it is known.
CREATE TABLE job_items (
    job_id         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    photo_id       INTEGER NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    state          TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'partial', 'sent', 'rejected')),
    -- Mapillary session key (md5 of the bytes sent), KartaView sequence index, Panoramax file name...
    remote_key     TEXT,
    remote_offset  INTEGER NOT NULL DEFAULT 0,
    -- Mapillary file handle, KartaView photo id, Panoramax picture id.
    remote_id      TEXT,
    bytes          INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (job_id, photo_id)
);

-- Connected services. Tokens never leave the Rust side.
CREATE TABLE accounts (
    service         TEXT    PRIMARY KEY CHECK (service IN ('mapillary', 'kartaview', 'panoramax', 'mtpw')),
    user_id         TEXT,
    username        TEXT,
    access_token    TEXT    NOT NULL,
    refresh_token   TEXT,
    expires_at      INTEGER,
    needs_reauth    INTEGER NOT NULL DEFAULT 0,
    instance_url    TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- OAuth attempts waiting for their deep link; `state` is checked before anything else.
CREATE TABLE oauth_attempts (
    state           TEXT    PRIMARY KEY,
    service         TEXT    NOT NULL,
    pkce_verifier   TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);

-- Append-only log of what happened, for the status list and for support.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    sequence_id  INTEGER,
    job_id       INTEGER,
    message      TEXT    NOT NULL DEFAULT '',
    data_json    TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX events_sequence ON events (sequence_id, id);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
