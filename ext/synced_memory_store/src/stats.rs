//! Counters a store reports through `SyncedMemoryStore::Store#stats`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic event counters, updated with relaxed atomics: each is independent and
/// only ever read as a snapshot for reporting.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Reads answered from L1.
    pub(crate) l1_hits: AtomicU64,
    /// Reads L1 could not answer.
    pub(crate) l1_misses: AtomicU64,
    /// L1 misses answered by L2.
    pub(crate) l2_hits: AtomicU64,
    /// L1 misses L2 could not answer either.
    pub(crate) l2_misses: AtomicU64,
    /// Changes this node published.
    pub(crate) published: AtomicU64,
    /// Of those, the changes sent by the thread that made them, the publisher
    /// thread being idle (see `bus/direct.rs`).
    pub(crate) published_directly: AtomicU64,
    /// Messages this node received from the bus (its own echoes included).
    pub(crate) received: AtomicU64,
    /// Changes this node applied from received messages.
    pub(crate) applied: AtomicU64,
    /// Messages not applied: garbage, truncated, oversized, forged, replayed,
    /// unreadable (a newer format) or carrying a record that does not check.
    pub(crate) rejected: AtomicU64,
    /// Times L1 was dropped because a message that may have carried a change
    /// could not be read or verified (another secret, a newer format).
    pub(crate) missed: AtomicU64,
    /// Times the subscription was re-established after a loss.
    pub(crate) reconnects: AtomicU64,
    /// Of those, the times L1 was kept: the channel's log held every message
    /// missed meanwhile (`bus_log:`).
    pub(crate) resumed: AtomicU64,
    /// Messages applied from the channel's log on resubscribing.
    pub(crate) replayed: AtomicU64,
    /// Changes dropped because the publish queue was full (a clear went out instead).
    pub(crate) dropped: AtomicU64,
    /// Local writes found conflicting with another node's and invalidated everywhere.
    pub(crate) conflicts: AtomicU64,
    /// Entries this node could not decode (another coder, a class it lacks): read as misses.
    pub(crate) undecodable: AtomicU64,
    /// Keys invalidated everywhere because a change ended without its value
    /// reaching L1 (it raised), or was still waiting for its echo at close.
    pub(crate) invalidated: AtomicU64,
    /// When the latest change from the bus was applied, in nanoseconds on
    /// CLOCK_MONOTONIC (see `clock.rs`); 0 before the first.
    pub(crate) last_applied_at: AtomicU64,
}

impl Stats {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value of `counter`.
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
