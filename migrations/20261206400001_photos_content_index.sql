-- Finding photos already saved from another folder, by content (size and capture time).
CREATE INDEX photos_content ON photos (file_size, original_captured_at);
