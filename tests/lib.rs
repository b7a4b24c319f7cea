//! Shared helpers for the story and end-to-end tests.
