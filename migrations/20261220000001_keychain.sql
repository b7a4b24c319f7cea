-- Tokens in the OS keychain (Secret Service, Keychain, Credential Manager). Where one
-- answers, `accounts.access_token`, `accounts.refresh_token` and `sign_in_settings.osm_token`
-- hold a reference, `keychain:<entry>#<tag>`, instead of the token; the entry's name ends
-- with this database's id, so that two databases (live and sandbox, a test's) never share
-- an entry. The new schema version also keeps an older build, which would send a reference
-- as a token, from opening the file.
CREATE TABLE store_identity (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    store_id  TEXT    NOT NULL
);

INSERT INTO store_identity (id, store_id) VALUES (1, lower(hex(randomblob(8))));
