-- Which OpenStreetMap app issued the OSM token kept for KartaView (`sign_in_settings.osm_token`):
-- KartaView's client_auth takes that app's secret beside the token, and a KartaView sign-in
-- may go through the user's own OSM app or through KartaView's (a pasted code). NULL: the
-- configured app (tokens kept before this column).
ALTER TABLE sign_in_settings ADD COLUMN osm_client_id TEXT;
