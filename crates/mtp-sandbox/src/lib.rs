//! Emulators of the remote services (see PROTOCOLS.md).
