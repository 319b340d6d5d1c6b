//! glibc malloc tuning for programs whose memory comes in bursts: the tracker's streams
//! (hyper's per-connection buffers on both sides) and the console's refreshes of every
//! client (HTTP clients, JSON, snapshots) and its opening of the cache. After a burst,
//! glibc keeps the freed memory in its arenas, so RSS stays at the burst's peak unless
//! it is handed back explicitly. No-ops on other allocators.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::ffi::c_int;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
    }
    const M_ARENA_MAX: c_int = -8;

    pub fn limit_arenas() {
        // `MALLOC_ARENA_MAX` in the environment still wins.
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only changes allocator tuning; it is thread-safe.
            unsafe {
                mallopt(M_ARENA_MAX, 2);
            }
        }
    }

    pub fn trim() -> bool {
        // SAFETY: malloc_trim only returns free pages to the kernel; it is thread-safe.
        unsafe { malloc_trim(0) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn limit_arenas() {}
    pub fn trim() -> bool {
        false
    }
}

/// Caps glibc at two heap arenas (call once at start-up). By default glibc gives
/// contending threads their own 64 MiB arenas, and freed stream buffers end up spread
/// over several of them.
pub fn limit_arenas() {
    imp::limit_arenas()
}

/// Returns free heap pages to the kernel; true when some were released. Meant for
/// quiet moments (nothing in flight): it briefly holds the allocator's locks.
pub fn trim() -> bool {
    imp::trim()
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    #[test]
    fn trim_releases_memory_freed_after_a_burst() {
        // Many small blocks (below the mmap threshold) live in the heap, like stream buffers.
        let blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 8192]).collect();
        assert_eq!(blocks.iter().map(Vec::len).sum::<usize>(), 32 * 1024 * 1024);
        drop(blocks);
        assert!(
            super::trim(),
            "glibc released no pages after 32 MiB were freed"
        );
    }
}
