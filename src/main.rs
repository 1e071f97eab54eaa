use std::process::ExitCode;

fn main() -> ExitCode {
    cap_malloc_arenas();
    hark::cli::main()
}

/// glibc gives each thread that allocates its own malloc arena (up to 8 per
/// core), and memory freed in one arena is never used by another: with the
/// pump, a worker per source, the writer and the monitor each holding one,
/// RSS grows by the high-water mark of every thread. Two arenas keep the
/// worker's allocations apart from the rest without that cost. Set before
/// any thread starts. The real-time callback never allocates, so arena
/// contention cannot reach it.
///
/// The mmap threshold is fixed at 128 KiB too: by default glibc raises it
/// each time a large block is freed, after which blocks of that size (a
/// pass's mel and audio copies) come from the heap and stay resident.
/// Fixed, they are mapped and unmapped per pass: peak RSS of
/// `hark live --demo` 112 256 -> 108 836 KiB (`/usr/bin/time`, max RSS).
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc tunable; called before any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
