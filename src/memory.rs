//! The process heap's footprint (issue 16, P5: the hub's peak RSS must not grow with the data it has taken in).
//!
//! glibc's malloc gives threads arenas of their own, up to eight per core, and a freed block stays in its arena for
//! reuse instead of going back to the system. The hub's threads come and go (tokio moves a worker that runs the SQLite
//! writer's row work to the blocking pool and starts another; sqlx runs a thread per SQLite connection), and each
//! ingest message is decoded, validated and encrypted in a few megabytes that are freed a moment later: so every
//! arena in turn grows to the largest batch it has held, and the resident size climbs with the number of arenas
//! touched, not with the live data. Here the hub limits the arenas, sends blocks of [`MMAP_THRESHOLD`] and more
//! straight to the system (glibc otherwise raises that threshold to the largest block freed so far, so that a few
//! freed 2 MB batches make every later batch stay in an arena) ([`configure_heap`], before its first thread), and
//! returns the arenas' free pages to the system every [`TRIM_EVERY`] ([`spawn_trimmer`], `malloc_trim`). Measured
//! with `doudi bench --only P1,P5` (README, issue 16's P5 figures).
//!
//! On other platforms and C libraries both are no-ops.

use std::time::Duration;

/// Arenas glibc may create (`M_ARENA_MAX`): two, one per core of the machines the hub is sized for (docs/spec/
/// performance.md); threads beyond them share, which costs a lock per allocation only when two run at once.
pub const ARENAS: i32 = 2;

/// Bytes from which a block is its own mapping, returned to the system when freed (`M_MMAP_THRESHOLD`, fixed: glibc's
/// own threshold starts at 128 KiB and rises with the blocks freed, up to 32 MiB).
pub const MMAP_THRESHOLD: i32 = 256 * 1024;

/// How often the free pages of every arena are returned to the system.
pub const TRIM_EVERY: Duration = Duration::from_millis(250);

/// Set glibc's heap parameters: at most [`ARENAS`] arenas, blocks of [`MMAP_THRESHOLD`] bytes and more mapped on their
/// own. Call first in `main`, before any thread starts (a thread that already has an arena keeps it).
pub fn configure_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets parameters of the allocator; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Every [`TRIM_EVERY`], return the free pages of the heap's arenas to the system (`malloc_trim(0)`, on a blocking
/// thread: it walks every arena). Stops when the returned handle is aborted or the runtime shuts down.
pub fn spawn_trimmer() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    })
}

/// Return the free pages of every arena to the system now.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it takes each arena's lock itself.
    unsafe {
        libc::malloc_trim(0);
    }
}
