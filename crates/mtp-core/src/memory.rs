//! Giving the system back memory the program has freed.
//!
//! glibc's allocator keeps freed memory in the arena of the thread that allocated it, and
//! returns it to the system only from the top of each heap. Reading a folder allocates on
//! rayon's threads, planning on a blocking thread, saving on SQLite's: once all that is
//! freed, it stays resident while the upload allocates anew on tokio's threads, so the peak
//! was the sum of the phases instead of the largest of them. [`release_free_memory`] after
//! such a phase hands the free pages of every arena back.

/// Asks the allocator to return every whole free page of every arena to the system
/// (`malloc_trim(0)`). Returns whether anything was returned. Call it between phases, not
/// in a hot loop: it walks and locks each arena in turn. Off glibc it does nothing (musl,
/// macOS and Windows allocators return memory themselves or have no such call).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() -> bool {
    // SAFETY: `malloc_trim` takes no pointer and touches only the allocator's own state,
    // under the same per-arena locks `malloc` and `free` take; it is MT-safe (malloc_trim(3)).
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Off glibc: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}
