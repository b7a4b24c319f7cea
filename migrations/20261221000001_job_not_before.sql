-- The earliest time a job waiting out a service's "too many requests" may try again, as
-- the service asked (Retry-After, Mapillary's backoff); 0 when it asked nothing. Another
-- job of the service getting through wakes waiting jobs, but never before this.
ALTER TABLE jobs ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
