//! Process-wide memory allocator settings for the data path.
//!
//! Every SSH data packet (up to 64 KiB here) is decoded by russh into a fresh, zeroed buffer and
//! freed soon after. With glibc's default settings the freed space at the top of the heap is
//! handed back to the kernel (`trim_threshold`, 128 KiB) and the next packet's buffer faults
//! the same pages in again, zero-filled: `perf` on `tunnelbook forward -L` showed page faults,
//! page clearing and `memset` at about 13 % of the client's samples. Keeping the heap (trimming
//! only past 64 MiB of free space, growing it 16 MiB at a time) cut the page faults of a forward
//! by 80 % and its CPU per GiB by 2–15 % in same-run A/Bs on a busy machine
//! (docs/PERFORMANCE.md).

/// Tunes the allocator for forwarding; call once, early, from a front end's `main`. Only glibc
/// on Linux has these settings; elsewhere it does nothing. The cost is that up to 64 MiB of
/// freed heap stays with the process instead of going back to the system.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets two of glibc's malloc parameters; it is called before other
    // threads exist and touches no Rust-visible memory.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}
