//! MTP Desktop shell.
