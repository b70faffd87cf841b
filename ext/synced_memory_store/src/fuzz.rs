//! Shared ground of the property tests that feed random and mutated input to
//! what comes off the network: `bus::message`, `bus::resp`, `bus::senders`,
//! `record` and `tree` (each keeps its properties in its own `tests` module).
//!
//! **How many inputs.** [`PLAN`] names every property test and the number of
//! inputs it runs; [`check`] runs exactly that many, so the total asserted and
//! printed by `the_property_tests_feed_at_least_100_000_inputs` (see it with
//! `cargo test -- --show-output`) is what `cargo test` feeds.
//!
//! **Reproducible.** A run draws its inputs from a fixed seed ([`SEED`], mixed
//! with the test's name so the tests do not share a stream), so CI sees the
//! same inputs every time and a failure comes back by running the test again.
//! `PROPTEST_RNG_SEED=<u64> cargo test` replaces the seed to explore further; a
//! failure names the seed it ran with. Failures are not persisted in
//! `proptest-regressions/` files: with a fixed seed they would replay what the
//! next run finds anyway, and the input a failure is minimized to belongs in a
//! named unit test beside the property, where a reader sees why it matters.
//!
//! **Allocations.** This test binary measures every allocation (per thread), so
//! a property can state how much memory an input may make the code ask for at
//! once ([`largest_allocation`]): a forged length is caught even when the
//! allocator hands out untouched pages and nothing would ever show in a timing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestError, TestRunner};

/// Every property test and how many inputs it runs.
#[rustfmt::skip]
pub(crate) const PLAN: &[(&str, u32)] = &[
    // bus::message
    ("arbitrary_bytes_are_rejected_or_decoded_within_bounds",          40_000),
    ("batches_round_trip_in_both_formats_signed_or_not",               10_000),
    ("mutated_unsigned_messages_are_rejected_or_decode",               12_000),
    ("any_change_to_a_signed_message_is_rejected",                     15_000),
    ("forged_lengths_are_rejected_without_allocating_for_them",        8_000),
    ("a_message_signed_for_one_channel_verifies_on_no_other",          2_000),
    // bus::resp
    ("resp_frames_parse_back_whole_at_any_split",                      6_000),
    ("resp_mutated_and_random_bytes_parse_within_bounds",              10_000),
    // bus::senders
    ("senders_agree_with_a_replay_model_while_nothing_is_forgotten",   3_000),
    ("senders_never_admit_a_replay_of_an_honest_sender",               2_500),
    ("senders_stay_bounded_and_remember_the_latest_under_floods",      500),
    // record
    ("records_from_the_bus_are_checked_without_panicking",             10_000),
    ("compressed_payloads_never_inflate_past_the_limit",               1_500),
    ("deflate_and_inflate_round_trip",                                 2_500),
    // tree
    ("arbitrary_tree_payloads_are_validated_without_panicking",        30_000),
    ("written_trees_validate_and_read_back",                           4_000),
    ("mutated_tree_payloads_validate_only_if_they_read",               20_000),
];

/// The seed every run starts from unless `PROPTEST_RNG_SEED` names another.
pub(crate) const SEED: u64 = 0x5eed_2026_0b05_f022;

/// Runs `property` on as many inputs from `strategy` as [`PLAN`] gives `name`;
/// on a failure, panics with the input proptest minimized it to.
pub(crate) fn check<S: Strategy>(
    name: &str,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = planned(name);
    // The environment's seed, if any, comes through proptest's own parsing.
    let base = match ProptestConfig::default().rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => SEED,
    };
    let config = ProptestConfig {
        rng_seed: RngSeed::Fixed(base ^ fnv1a(name.as_bytes())),
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    };
    let ran = AtomicU32::new(0);
    let outcome = TestRunner::new(config).run(&strategy, |input| {
        ran.fetch_add(1, Ordering::Relaxed);
        property(input)
    });
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(why, input)) => {
            panic!("{name} failed (seed {base}): {why}\nminimal input: {input:#?}")
        }
        Err(TestError::Abort(why)) => panic!("{name} aborted (seed {base}): {why}"),
    }
    assert_eq!(ran.into_inner(), cases, "{name} ran every planned input");
    println!("{name}: {cases} inputs");
}

fn planned(name: &str) -> u32 {
    PLAN.iter()
        .find(|(planned, _)| *planned == name)
        .unwrap_or_else(|| panic!("{name} is not in fuzz::PLAN"))
        .1
}

/// Counts the inputs of one property test that reached some outcome, so the
/// test can show that its inputs get where they are meant to (random bytes
/// that never decode test little of a decoder).
pub(crate) struct Tally(AtomicU32);

impl Tally {
    pub(crate) const fn new() -> Self {
        Tally(AtomicU32::new(0))
    }

    /// Counts one input if `reached`.
    pub(crate) fn count(&self, reached: bool) {
        if reached {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Asserts that at least `share` of the inputs `name` ran reached `what`.
    pub(crate) fn at_least(&self, share: f64, name: &str, what: &str) {
        let cases = planned(name);
        let reached = self.0.load(Ordering::Relaxed);
        println!("{name}: {reached} of {cases} inputs {what}");
        assert!(
            f64::from(reached) >= share * f64::from(cases),
            "{name}: only {reached} of {cases} inputs {what}"
        );
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One change to a byte string. Places are taken modulo the string's length
/// (so they shrink towards its start).
#[derive(Clone, Debug)]
pub(crate) enum Edit {
    Flip {
        at: usize,
        bit: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Truncate {
        at: usize,
    },
    /// Copies a run of the bytes to another place (a field repeated or shifted).
    Duplicate {
        from: usize,
        len: usize,
        to: usize,
    },
}

/// Bytes that mean something to the decoders: varint markers, the largest
/// values, tags of the tree format.
pub(crate) fn telling_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(vec![
            0u8, 1, 2, 0x7f, 0x80, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff
        ]),
    ]
}

/// One to four edits; applied with [`apply`].
pub(crate) fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        3 => (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        2 => (any::<usize>(), telling_byte()).prop_map(|(at, byte)| Edit::Set { at, byte }),
        2 => (any::<usize>(), prop::collection::vec(telling_byte(), 1..10))
            .prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        2 => (any::<usize>(), 1..8usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        1 => any::<usize>().prop_map(|at| Edit::Truncate { at }),
        1 => (any::<usize>(), 1..16usize, any::<usize>())
            .prop_map(|(from, len, to)| Edit::Duplicate { from, len, to }),
    ];
    prop::collection::vec(edit, 1..=4)
}

/// `bytes` with `edits` applied in order (an edit of an empty string inserts
/// or does nothing).
pub(crate) fn apply(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for edit in edits {
        let len = bytes.len();
        let place = |at: &usize| at % len.max(1);
        match edit {
            Edit::Insert { at, bytes: new } => {
                let at = at % (len + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            _ if len == 0 => {}
            Edit::Flip { at, bit } => bytes[place(at)] ^= 1 << bit,
            Edit::Set { at, byte } => bytes[place(at)] = *byte,
            Edit::Delete { at, len: cut } => {
                let at = place(at);
                bytes.drain(at..(at + cut).min(len));
            }
            Edit::Truncate { at } => bytes.truncate(place(at)),
            Edit::Duplicate { from, len: run, to } => {
                let from = place(from);
                let run = bytes[from..(from + run).min(len)].to_vec();
                let to = place(to);
                bytes.splice(to..to, run);
            }
        }
    }
    bytes
}

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
    fn the_property_tests_feed_at_least_100_000_inputs() {
        let total: u64 = PLAN.iter().map(|&(_, cases)| u64::from(cases)).sum();
        println!(
            "property tests: {total} inputs in {} tests (seed {SEED})",
            PLAN.len()
        );
        assert!(total >= 100_000, "only {total}");
    }

    #[test]
    fn edits_change_bytes_as_named() {
        let edit = |edit| apply(b"abcdef", &[edit]);
        assert_eq!(edit(Edit::Truncate { at: 8 }), b"ab");
        assert_eq!(edit(Edit::Flip { at: 0, bit: 0 }), b"`bcdef");
        assert_eq!(edit(Edit::Set { at: 5, byte: b'!' }), b"abcde!");
        assert_eq!(edit(Edit::Delete { at: 4, len: 100 }), b"abcd");
        assert_eq!(
            edit(Edit::Insert {
                at: 6,
                bytes: b"gh".to_vec()
            }),
            b"abcdefgh"
        );
        assert_eq!(
            edit(Edit::Duplicate {
                from: 1,
                len: 2,
                to: 0
            }),
            b"bcabcdef"
        );
        let empty = |edit| apply(b"", &[edit]);
        assert_eq!(
            empty(Edit::Insert {
                at: 5,
                bytes: b"x".to_vec()
            }),
            b"x"
        );
        assert_eq!(empty(Edit::Set { at: 5, byte: 1 }), b"");
    }

    #[test]
    fn allocations_are_measured_per_call() {
        let (_, largest) = largest_allocation(|| vec![0u8; 12_345]);
        assert!(largest >= 12_345);
        let (_, nothing) = largest_allocation(|| 1 + 1);
        assert_eq!(nothing, 0);
    }
}
