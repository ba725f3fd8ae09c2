//! The process heap's footprint (issue 16, P5: the hub's peak RSS must not grow with the data it has taken in).
//!
//! glibc's malloc gives threads arenas of their own, up to eight per core, and a freed block stays in its arena for
//! reuse instead of going back to the system. The hub's threads come and go (tokio moves a worker that runs the SQLite
//! writer's row work to the blocking pool and starts another; sqlx runs a thread per SQLite connection), and each
//! ingest message is decoded, validated and encrypted in a few megabytes that are freed a moment later: so every
//! arena in turn grows to the largest batch it has held, and the resident size climbs with the number of arenas
//! touched, not with the live data. Here the hub limits the arenas ([`configure_heap`], before its first thread) and
//! returns the arenas' free pages to the system every [`TRIM_EVERY`] ([`spawn_trimmer`], `malloc_trim`).
//!
//! Measured (`doudi bench --only P1,P5` and `--only P6`, alternating, README's figures of 2026-12-07, fourth session):
//! the arenas alone take about 10 MiB off the 1M-fact peak. Tried and not kept: trimming every 250 ms (P6's p99 79–112
//! ms against 62–85 ms without: `malloc_trim` holds each arena's lock while it walks it) and a fixed 256 KiB
//! `M_MMAP_THRESHOLD` (P5's ratio steadier, 1.17–1.22, but every large block mapped and faulted in again: ingest
//! with P6's subscriber 53–54k facts/s against 57–59k).
//!
//! On other platforms and C libraries both are no-ops.

use std::time::Duration;

/// Arenas glibc may create (`M_ARENA_MAX`): two, one per core of the machines the hub is sized for
/// (docs/spec/performance.md); threads beyond them share, which costs a lock per allocation only when two run at once.
pub const ARENAS: i32 = 2;

/// How often the free pages of every arena are returned to the system.
pub const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Set glibc's heap parameters: at most [`ARENAS`] arenas. Call first in `main`, before any thread starts (a thread
/// that already has an arena keeps it).
pub fn configure_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
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
