//! Counters a store reports through `SyncedMemoryStore::Store#stats`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic event counters, updated with relaxed atomics: each is independent and
/// only ever read as a snapshot for reporting.
#[derive(Debug, Default)]
pub struct Stats {
    /// Reads answered from L1.
    pub l1_hits: AtomicU64,
    /// Reads L1 could not answer.
    pub l1_misses: AtomicU64,
    /// L1 misses answered by L2.
    pub l2_hits: AtomicU64,
    /// L1 misses L2 could not answer either.
    pub l2_misses: AtomicU64,
    /// Changes this node published.
    pub published: AtomicU64,
    /// Messages this node received from the bus (its own echoes included).
    pub received: AtomicU64,
    /// Changes this node applied from received messages.
    pub applied: AtomicU64,
    /// Messages rejected: garbage, truncated, oversized, unknown format, forged.
    pub rejected: AtomicU64,
    /// Times the subscription was re-established after a loss.
    pub reconnects: AtomicU64,
    /// Changes dropped because the publish queue was full (a clear went out instead).
    pub dropped: AtomicU64,
    /// Local writes found conflicting with another node's and invalidated everywhere.
    pub conflicts: AtomicU64,
    /// When the latest change from the bus was applied, in nanoseconds on
    /// CLOCK_MONOTONIC (the clock every process of the machine shares); 0 before
    /// the first.
    pub last_applied_at: AtomicU64,
}

impl Stats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Nanoseconds on CLOCK_MONOTONIC, the clock every process shares (so times
    /// taken in different processes compare).
    pub fn monotonic_nanos() -> u64 {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        (now.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(now.tv_nsec as u64)
    }

    /// The current value of `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
