//! Support for tests of what comes off the network.
//!
//! **Allocations.** This test binary measures every allocation (per thread), so
//! a test can state how much memory an input may make the code ask for at
//! once ([`largest_allocation`]): a forged length is caught even when the
//! allocator hands out untouched pages and nothing would ever show in a timing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// Passes every call to the system allocator, noting the largest size asked
/// for on the calling thread.
struct MeasuringAllocator;

fn note(size: usize) {
    // try_with: a thread's last allocations come after its thread-locals are
    // gone. A const-initialised Cell needs no allocation of its own.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every method hands its arguments to `System` unchanged and returns
// what `System` returned, so the GlobalAlloc contract is `System`'s; the
// bookkeeping touches only a thread-local integer and never allocates.
unsafe impl GlobalAlloc for MeasuringAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: MeasuringAllocator = MeasuringAllocator;

/// What `work` returns, and the largest block it asked for at once (on this
/// thread).
pub(crate) fn largest_allocation<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let outer = LARGEST.with(|largest| largest.replace(0));
    let value = work();
    let largest = LARGEST.with(|largest| largest.replace(outer.max(largest.get())));
    (value, largest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_measured_per_call() {
        let (_, largest) = largest_allocation(|| vec![0u8; 12_345]);
        assert!(largest >= 12_345);
        let (_, nothing) = largest_allocation(|| 1 + 1);
        assert_eq!(nothing, 0);
    }
}
