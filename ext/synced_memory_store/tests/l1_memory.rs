//! What L1 really costs in heap memory, measured with a counting allocator in
//! this test binary of its own (unit tests running in parallel threads would be
//! counted too), one test at a time.
//!
//! Built without the binding layer (`cargo test --no-default-features --test
//! l1_memory`, as bin/test runs it): with it, the library brings its own global
//! allocator (src/allocator.rs), and a binary has only one.
#![cfg(not(feature = "ruby"))]

use std::time::Duration;

use std::sync::{Mutex, PoisonError};
use synced_memory_store::l1::{keep_for, ENTRY_OVERHEAD, EXPIRY_OVERHEAD, L1};
use synced_memory_store::record::{Kind, Record};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicIsize = AtomicIsize::new(0);

/// malloc's usable chunks are multiples of 16 bytes.
fn chunk(size: usize) -> isize {
    size.div_ceil(16) as isize * 16
}

// SAFETY: every method forwards to the system allocator unchanged; the counters
// are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(chunk(layout.size()), Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(chunk(layout.size()), Ordering::Relaxed);
        ALLOCATIONS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(chunk(new_size) - chunk(layout.size()), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Live heap bytes and allocations at one moment (of the whole test binary:
/// measure in one test at a time, or on deltas large enough to drown others).
struct Snapshot {
    /// Live bytes, in malloc chunks.
    bytes: usize,
    /// Live allocations.
    allocations: usize,
}

/// The current counts.
fn snapshot() -> Snapshot {
    Snapshot {
        bytes: BYTES.load(Ordering::Relaxed).max(0) as usize,
        allocations: ALLOCATIONS.load(Ordering::Relaxed).max(0) as usize,
    }
}

/// Serializes the measurements: each reads the process-wide counters.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What an entry really costs on the heap, per entry: requested bytes plus
/// glibc malloc's overhead (a 16-byte rounded chunk with an 8-byte header
/// for each allocation), minus the key and payload the weigher counts itself.
fn measured_overhead(key_len: usize, payload_len: usize, expiring: bool) -> usize {
    let l1 = L1::new(1 << 40, None);
    let payload = vec![b'x'; payload_len];
    let count = 20_000;
    // Warm up structures that grow in steps (hash table, timer wheel) so
    // the measured window sees their steady state.
    for i in 0..count {
        l1.insert(
            format!("{i:0>key_len$}").as_bytes(),
            Record::new(Kind::Binary, payload.clone()),
            None,
        );
    }
    l1.clear();
    l1.weighted_size();
    let before = snapshot();
    for i in 0..count {
        let keep = if expiring {
            keep_for(Some(3600.0))
        } else {
            None
        };
        l1.insert(
            format!("w{i:0>key_len$}").as_bytes(),
            Record::new(Kind::Binary, payload.clone()),
            keep,
        );
    }
    l1.weighted_size();
    let after = snapshot();
    let live = after.bytes - before.bytes + (after.allocations - before.allocations) * 8;
    live / count - (key_len + 1) - payload_len
}

#[test]
fn overhead_estimate_covers_real_allocations() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    for (key, payload, expiring) in [(10, 100, false), (40, 1000, true), (20, 10, true)] {
        let overhead = measured_overhead(key, payload, expiring);
        let estimate = ENTRY_OVERHEAD + if expiring { EXPIRY_OVERHEAD } else { 0 };
        assert!(
            overhead <= estimate && overhead * 100 >= estimate * 90,
            "measured {overhead} bytes per entry beyond key and payload (key {key}, payload {payload}, \
             expiring {expiring}); the weigher counts {estimate}"
        );
    }
}

#[test]
fn a_full_l1_holds_as_many_heap_bytes_as_its_budget_within_five_percent() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let budget: u64 = 16 << 20;
    let before = snapshot();
    let l1 = L1::new(budget, None);
    let mut state = 88_172_645_463_325_252u64;
    for i in 0..60_000u32 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let payload = vec![b'v'; 10 + (state % 2000) as usize];
        let mut record = Record::new(Kind::Binary, payload);
        if i % 3 == 0 {
            record.version = Some(b"v7".to_vec().into());
        }
        let keep = (i % 2 == 0).then(|| Duration::from_secs(3600));
        l1.insert(format!("key:{i}").as_bytes(), record, keep);
    }
    let counted = l1.weighted_size();
    let held = snapshot();
    let heap = (held.bytes + held.allocations * 8)
        .saturating_sub(before.bytes + before.allocations * 8) as u64;
    assert!(counted <= budget, "counted {counted} > budget {budget}");
    assert!(
        heap <= budget * 105 / 100,
        "heap {heap} bytes is over budget {budget} by more than 5%"
    );
    assert!(
        heap >= budget * 85 / 100,
        "heap {heap} bytes leaves the budget {budget} underused"
    );
}
