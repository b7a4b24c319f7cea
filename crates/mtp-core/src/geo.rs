//! Great-circle distance, bearing and related geometry on WGS84 coordinates.
