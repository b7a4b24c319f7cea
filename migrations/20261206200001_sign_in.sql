-- Sign-in paths (issue 8 items 2-3): the redirect URI an OAuth attempt used (the token
-- exchange must repeat it), each service's chosen redirect URI (deep link or loopback), and
-- the OpenStreetMap token a KartaView sign-in got, kept (never shown to the web view) so
-- that KartaView's client_auth can be retried without another browser round.
ALTER TABLE oauth_attempts ADD COLUMN redirect_uri TEXT;

CREATE TABLE sign_in_settings (
    service        TEXT    PRIMARY KEY,
    redirect_uri   TEXT,
    osm_token      TEXT,
    osm_token_at   INTEGER,
    updated_at     INTEGER NOT NULL
);
