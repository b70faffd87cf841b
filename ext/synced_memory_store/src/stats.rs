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

    /// The current value of `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
