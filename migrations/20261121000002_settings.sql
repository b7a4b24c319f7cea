-- User settings (key/value, JSON values) and a faster lookup of a sequence's photos by time.
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value_json  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE INDEX photos_sequence_time ON photos (sequence_id, captured_at);
