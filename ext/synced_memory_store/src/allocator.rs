//! The allocator of the native core: jemalloc, for every Rust allocation of
//! the extension (Ruby's own objects stay with Ruby's allocator).
//!
//! **Why not the system's.** Much of what the core allocates is freed on
//! another thread: a write's change is built by the Ruby thread and dropped
//! by the publisher once sent, its pending record is dropped by the
//! subscriber when the echo comes back. glibc's malloc returns such a block
//! to the arena it came from, under that arena's lock, and the Ruby thread
//! allocates from the same arena for everything Ruby does: the bus threads
//! and the writer took turns on one lock, and every write paid for it. In
//! `bench/run --only micro`, a write with a MemoryStore L2 and sync on cost
//! 2.17× a MemoryStore write before issue 7 and 1.79× with jemalloc (medians
//! of 6 alternating pairs, see bench/results/2026-11-30-before-after-issue-7.md);
//! with sync off, before and after (system allocator) were within 2%.
//!
//! **Loaded with dlopen.** A Ruby extension is, so jemalloc is built without
//! the initial-exec TLS model (which can fail to load that way).
//!
//! **Fork.** jemalloc takes its locks around `fork` (pthread_atfork), so a
//! child never inherits one held by a thread that does not exist there.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
