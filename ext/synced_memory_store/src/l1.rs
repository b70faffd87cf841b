//! L1: this process's in-memory entries, as bytes, bounded by a byte budget.
//!
//! Three mechanisms make L1 safe to keep in sync with other processes:
//!
//! * **Epoch.** Every slot is stamped with the epoch current when it was stored;
//!   a slot from an older epoch reads as a miss. Dropping everything (clear, a
//!   bus reconnect, a publisher overflow) is one counter increment, with the
//!   memory released by moka in the background.
//! * **Generations.** Every change takes the next number of one change sequence
//!   and records it where a fill will look: a change to one key as the
//!   generation of the stripe its key hashes to (under the stripe's lock); a
//!   change to keys L1 cannot name one by one (a pattern delete, which may hit
//!   keys being filled right now and so absent from L1) as the *fence*; a clear
//!   as the new epoch. A read-through fill takes a [`Ticket`] (the sequence's
//!   current number) before it reads L2 and installs only if none of the three
//!   moved past the ticket, so a fill can never install a value older than a
//!   change that passed while L2 was being read, whichever way the change named
//!   its keys. Stripes are shared by keys and a fence stops every fill in
//!   flight, so an unrelated change only costs a skipped fill, never a stale one.
//! * **Logical versus physical expiry.** A slot's record carries ActiveSupport's
//!   logical `expires_at`, checked by the reader against Ruby's clock (which tests
//!   stub). Moka evicts the slot once its `keep_for` has passed since it was
//!   stored, measured on the monotonic clock: a stubbed Ruby clock can therefore
//!   never make L1 evict early, and `keep_for` may outlast `expires_at`
//!   (race_condition_ttl keeps stale entries around so one reader can regenerate).
//!   The store's `l1_expires_in:` caps every `keep_for`: no entry outlives it in
//!   L1, whatever stored it (a local write, a fill, a value from the bus).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::Mutex;
use moka::policy::{EvictionPolicy, Expiry};
use moka::sync::Cache;

use crate::record::Record;

/// Bytes counted for each entry on top of its key, payload and version: about
/// ten heap allocations (the key, moka's copy of it, its entry, entry info and
/// access-order node, the slot, the payload) with malloc's rounding and headers.
/// Measured by `overhead_estimate_covers_real_allocations` in tests/l1_memory.rs
/// with the system's malloc; jemalloc, which the extension allocates with (see
/// allocator.rs), keeps no header per block, so a process grows by less than
/// this count (0.93× of it for 100-byte values in `bench/run --only memory`).
pub const ENTRY_OVERHEAD: usize = 432;

/// Extra bytes for an entry that expires: moka's timer-wheel node.
pub const EXPIRY_OVERHEAD: usize = 64;

/// Extra bytes for an entry with a version: its allocation's header and rounding.
pub const VERSION_OVERHEAD: usize = 24;

const STRIPES: usize = 1024;

/// `seconds` as a duration to keep a slot, `None` for "until evicted for space".
/// Negative and NaN become zero: the slot is gone at once.
pub fn keep_for(seconds: Option<f64>) -> Option<Duration> {
    seconds.map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO))
}

/// One stored entry: the record plus what L1 needs to judge it.
#[derive(Debug)]
pub struct Slot {
    /// The entry.
    pub record: Record,
    /// Epoch current when the slot was stored.
    epoch: u64,
    /// How long after it was stored moka may evict the slot; `None` keeps it
    /// until it is evicted for space.
    keep_for: Option<Duration>,
}

/// The weight moka counts for an entry: the bytes it holds plus [`ENTRY_OVERHEAD`].
// The `&Box` is moka's signature for a `Box<[u8]>` key.
#[allow(clippy::borrowed_box)]
fn weigh(key: &Box<[u8]>, slot: &Arc<Slot>) -> u32 {
    u32::try_from(weight(key.len(), slot)).unwrap_or(u32::MAX)
}

/// The bytes an entry is counted for: what it holds plus the measured overheads.
fn weight(key_len: usize, slot: &Slot) -> usize {
    let expiry = if slot.keep_for.is_some() {
        EXPIRY_OVERHEAD
    } else {
        0
    };
    let version = if slot.record.version.is_some() {
        VERSION_OVERHEAD
    } else {
        0
    };
    key_len + slot.record.heap_bytes() + ENTRY_OVERHEAD + expiry + version
}

struct SlotExpiry;

impl Expiry<Box<[u8]>, Arc<Slot>> for SlotExpiry {
    fn expire_after_create(
        &self,
        _key: &Box<[u8]>,
        slot: &Arc<Slot>,
        _at: Instant,
    ) -> Option<Duration> {
        slot.keep_for
    }

    fn expire_after_update(
        &self,
        _key: &Box<[u8]>,
        slot: &Arc<Slot>,
        _at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        slot.keep_for
    }
}

/// What a fill presents to prove nothing changed since it started: the change
/// sequence's number when it began.
pub type Ticket = u64;

/// The in-process cache.
pub struct L1 {
    cache: Cache<Box<[u8]>, Arc<Slot>>,
    /// The change sequence: every change and every clear takes the next number.
    sequence: AtomicU64,
    /// Sequence number of the last clear; slots stamped with another are dead.
    epoch: AtomicU64,
    /// Sequence number of the last change to keys not named one by one: fills
    /// with an older ticket are refused.
    fence: AtomicU64,
    /// Per stripe, the sequence number of the last change to one of its keys.
    generations: Box<[Mutex<u64>]>,
    budget: u64,
    /// Longest any slot is kept (`l1_expires_in:`), if capped.
    max_keep: Option<Duration>,
}

impl L1 {
    /// An empty L1 that keeps at most `budget` bytes, counting keys, payloads,
    /// versions and [`ENTRY_OVERHEAD`] per entry, and no slot longer than
    /// `max_keep` when one is given.
    pub fn new(budget: u64, max_keep: Option<Duration>) -> Self {
        let cache = Cache::builder()
            .max_capacity(budget)
            .eviction_policy(EvictionPolicy::lru())
            .weigher(weigh)
            .expire_after(SlotExpiry)
            .build();
        L1 {
            cache,
            sequence: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            fence: AtomicU64::new(0),
            generations: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
            budget,
            max_keep,
        }
    }

    /// The byte budget given at construction.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// The largest entry L1 accepts, by its plain (inflated) payload: an entry
    /// larger than the whole budget could never be kept, so nothing larger is
    /// ever inflated or decoded either.
    pub fn max_entry_bytes(&self) -> usize {
        usize::try_from(self.budget).unwrap_or(usize::MAX)
    }

    /// The slot stored under `key`, unless it is absent, physically expired or
    /// from an older epoch. Logical expiry and versions are the caller's to judge.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Slot>> {
        let slot = self.cache.get(key)?;
        (slot.epoch == self.epoch.load(Ordering::Acquire)).then_some(slot)
    }

    /// Stores `record` under `key` as a change made by this process: it replaces
    /// whatever was there and invalidates fills in flight for the key.
    pub fn insert(&self, key: &[u8], record: Record, keep_for: Option<Duration>) {
        let mut generation = self.stripe(key).lock();
        *generation = self.next_sequence();
        self.store(key, record, keep_for, self.epoch.load(Ordering::Acquire));
    }

    /// As [`L1::insert`], for the echo of this process's own write: it keeps
    /// the stamp the write put on the entry (see `Record::stored_at`) when the
    /// slot still holds that entry (same expiry), so that the entry's life is
    /// still measured by the clock that set its expiry.
    pub fn insert_echo(&self, key: &[u8], mut record: Record, keep_for: Option<Duration>) {
        if record.expires_at.is_some() {
            record.stored_at = self
                .get(key)
                .filter(|slot| slot.record.expires_at == record.expires_at)
                .and_then(|slot| slot.record.stored_at);
        }
        self.insert(key, record, keep_for);
    }

    /// Stores `record` under `key` only when no live entry is there; returns
    /// whether it stored (ActiveSupport's `unless_exist:`).
    pub fn insert_if_absent(&self, key: &[u8], record: Record, keep_for: Option<Duration>) -> bool {
        let mut generation = self.stripe(key).lock();
        if self.get(key).is_some() {
            return false;
        }
        *generation = self.next_sequence();
        self.store(key, record, keep_for, self.epoch.load(Ordering::Acquire));
        true
    }

    /// Takes the ticket a read-through fill of `key` must present to [`L1::fill`].
    pub fn ticket(&self) -> Ticket {
        self.sequence.load(Ordering::Acquire)
    }

    /// Installs a value read from L2 if nothing touched `key` (and nothing was
    /// dropped wholesale) since `ticket` was taken. Returns whether it installed.
    pub fn fill(
        &self,
        key: &[u8],
        record: Record,
        keep_for: Option<Duration>,
        ticket: Ticket,
    ) -> bool {
        let generation = self.stripe(key).lock();
        // The epoch is read once, before the checks, and stamped on the slot: a
        // clear that lands after this read leaves the slot dead under the new
        // epoch, and one that landed before it fails the check.
        let epoch = self.epoch.load(Ordering::Acquire);
        if *generation > ticket || epoch > ticket || self.fence.load(Ordering::SeqCst) > ticket {
            return false;
        }
        self.store(key, record, keep_for, epoch);
        // A pattern delete fences before it scans the keys. If its fence is
        // still not past the ticket now, the scan starts after this store and
        // finds the slot; if it is, the scan may have run before the store, so
        // the slot is taken back out (the stripe lock keeps any other change
        // to the key waiting meanwhile).
        if self.fence.load(Ordering::SeqCst) > ticket {
            self.cache.remove(key);
            return false;
        }
        true
    }

    /// Removes `key`; returns whether a live entry was there.
    pub fn remove(&self, key: &[u8]) -> bool {
        let mut generation = self.stripe(key).lock();
        *generation = self.next_sequence();
        let epoch = self.epoch.load(Ordering::Acquire);
        self.cache
            .remove(key)
            .is_some_and(|slot| slot.epoch == epoch)
    }

    /// Removes every live entry whose key `matching` accepts; returns how many.
    /// Keys that are being filled from L2 right now are not in L1 to be
    /// matched, so every fill in flight is fenced off first.
    pub fn remove_where(&self, matching: impl Fn(&[u8]) -> bool) -> usize {
        self.fence();
        self.keys()
            .iter()
            .filter(|key| matching(key))
            .filter(|key| self.remove(key))
            .count()
    }

    /// Refuses every fill in flight (whose ticket came before now), leaving
    /// the entries as they are.
    pub fn fence(&self) {
        self.fence.fetch_max(self.next_sequence(), Ordering::SeqCst);
    }

    /// Drops every entry. Fills in flight are refused because their tickets carry
    /// the old epoch.
    pub fn clear(&self) {
        // fetch_max: two racing clears must leave the larger number, or slots
        // stored under it would come back to life.
        self.epoch.fetch_max(self.next_sequence(), Ordering::AcqRel);
        self.cache.invalidate_all();
    }

    /// The keys of live entries, in no particular order.
    pub fn keys(&self) -> Vec<Arc<Box<[u8]>>> {
        let epoch = self.epoch.load(Ordering::Acquire);
        self.cache
            .iter()
            .filter(|(_, slot)| slot.epoch == epoch)
            .map(|(key, _)| key)
            .collect()
    }

    /// Removes every entry whose logical expiry is at or before `now`; returns how many.
    pub fn purge_expired(&self, now: f64) -> usize {
        let epoch = self.epoch.load(Ordering::Acquire);
        let expired: Vec<_> = self
            .cache
            .iter()
            .filter(|(_, slot)| slot.epoch != epoch || slot.record.is_expired_at(now))
            .map(|(key, _)| key)
            .collect();
        expired.iter().filter(|key| self.remove(key)).count()
    }

    /// Number of live entries, after moka's pending evictions have run.
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// Bytes held, by the weigher's count, after moka's pending evictions have run.
    pub fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }

    fn store(&self, key: &[u8], record: Record, keep_for: Option<Duration>, epoch: u64) {
        let keep_for = match (keep_for, self.max_keep) {
            (Some(keep), Some(max)) => Some(keep.min(max)),
            (keep, max) => keep.or(max),
        };
        let mut record = record;
        if record.stored_at.is_none() && record.expires_at.is_some() {
            record.stored_at = Some(crate::clock::unix_seconds());
        }
        let slot = Arc::new(Slot {
            record,
            epoch,
            keep_for,
        });
        self.cache.insert(key.into(), slot);
    }

    fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn stripe(&self, key: &[u8]) -> &Mutex<u64> {
        let mut hasher = StripeHasher.build_hasher();
        hasher.write(key);
        &self.generations[(hasher.finish() as usize) % STRIPES]
    }
}

/// FNV-1a: stripes only need spread, not resistance to chosen keys (a collision
/// costs a skipped fill).
#[derive(Clone, Copy, Default)]
struct StripeHasher;

struct Fnv(u64);

impl BuildHasher for StripeHasher {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Kind;

    fn text(value: &str) -> Record {
        Record::new(Kind::Utf8, value.as_bytes().to_vec())
    }

    fn value_of(l1: &L1, key: &str) -> Option<Vec<u8>> {
        l1.get(key.as_bytes())
            .map(|slot| slot.record.payload.to_vec())
    }

    #[test]
    fn entries_that_expire_are_stamped_when_stored_and_echoes_keep_the_writers_stamp() {
        let l1 = L1::new(1 << 20, None);
        let mut arrived = text("one");
        arrived.expires_at = Some(f64::MAX);
        let before = crate::clock::unix_seconds();
        l1.insert(b"k", arrived.clone(), None);
        let stamp = l1.get(b"k").unwrap().record.stored_at.unwrap();
        assert!(stamp >= before && stamp <= crate::clock::unix_seconds());
        l1.insert(b"plain", text("never expires"), None);
        assert_eq!(l1.get(b"plain").unwrap().record.stored_at, None);

        let mut written = arrived.clone();
        written.stored_at = Some(42.0);
        l1.insert(b"k", written, None);
        l1.insert_echo(b"k", arrived.clone(), None);
        assert_eq!(l1.get(b"k").unwrap().record.stored_at, Some(42.0));

        // The echo of an older write (another expiry) is stamped anew.
        let mut older = arrived;
        older.expires_at = Some(1e15);
        l1.insert_echo(b"k", older, None);
        assert!(l1.get(b"k").unwrap().record.stored_at.unwrap() >= before);
    }

    #[test]
    fn stores_replaces_and_removes() {
        let l1 = L1::new(1 << 20, None);
        l1.insert(b"k", text("one"), None);
        assert_eq!(value_of(&l1, "k").as_deref(), Some(&b"one"[..]));
        l1.insert(b"k", text("two"), None);
        assert_eq!(value_of(&l1, "k").as_deref(), Some(&b"two"[..]));
        assert!(l1.remove(b"k"));
        assert!(!l1.remove(b"k"));
        assert_eq!(value_of(&l1, "k"), None);
    }

    #[test]
    fn insert_if_absent_keeps_the_existing_entry() {
        let l1 = L1::new(1 << 20, None);
        assert!(l1.insert_if_absent(b"k", text("first"), None));
        assert!(!l1.insert_if_absent(b"k", text("second"), None));
        assert_eq!(value_of(&l1, "k").as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn clear_drops_everything_at_once() {
        let l1 = L1::new(1 << 20, None);
        for i in 0..100 {
            l1.insert(format!("k{i}").as_bytes(), text("v"), None);
        }
        l1.clear();
        assert!((0..100).all(|i| value_of(&l1, &format!("k{i}")).is_none()));
        assert!(l1.keys().is_empty());
        l1.insert(b"after", text("v"), None);
        assert_eq!(l1.keys().len(), 1);
    }

    #[test]
    fn a_fill_is_refused_when_the_key_changed_after_its_ticket() {
        let l1 = L1::new(1 << 20, None);
        let ticket = l1.ticket();
        l1.insert(b"k", text("newer"), None);
        assert!(!l1.fill(b"k", text("older, from L2"), None, ticket));
        assert_eq!(value_of(&l1, "k").as_deref(), Some(&b"newer"[..]));

        let ticket = l1.ticket();
        l1.remove(b"k");
        assert!(!l1.fill(b"k", text("older, from L2"), None, ticket));
        assert_eq!(value_of(&l1, "k"), None);
    }

    #[test]
    fn a_fill_is_refused_after_a_clear() {
        let l1 = L1::new(1 << 20, None);
        let ticket = l1.ticket();
        l1.clear();
        assert!(!l1.fill(b"k", text("from L2"), None, ticket));
        assert_eq!(value_of(&l1, "k"), None);
    }

    #[test]
    fn a_fill_is_refused_after_a_pattern_delete_even_for_a_key_l1_did_not_hold() {
        let l1 = L1::new(1 << 20, None);
        l1.insert(b"user:2", text("cached"), None);
        let ticket = l1.ticket();
        assert_eq!(l1.remove_where(|key| key.starts_with(b"user:")), 1);
        assert!(!l1.fill(b"user:1", text("older, from L2"), None, ticket));
        assert_eq!(value_of(&l1, "user:1"), None);
        let later = l1.ticket();
        assert!(l1.fill(b"user:1", text("after the delete"), None, later));
    }

    #[test]
    fn no_slot_outlives_the_keep_cap() {
        let l1 = L1::new(1 << 20, Some(Duration::from_millis(30)));
        l1.insert(b"capped", text("v"), keep_for(Some(3600.0)));
        l1.insert(b"forever", text("v"), None);
        assert!(value_of(&l1, "capped").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(value_of(&l1, "capped"), None);
        assert_eq!(value_of(&l1, "forever"), None);
    }

    #[test]
    fn an_undisturbed_fill_installs() {
        let l1 = L1::new(1 << 20, None);
        let ticket = l1.ticket();
        l1.insert(b"other", text("x"), None);
        assert!(l1.fill(b"k", text("from L2"), None, ticket));
        assert_eq!(value_of(&l1, "k").as_deref(), Some(&b"from L2"[..]));
    }

    #[test]
    fn physically_expired_slots_are_never_returned() {
        let l1 = L1::new(1 << 20, None);
        l1.insert(b"gone", text("v"), keep_for(Some(-1.0)));
        l1.insert(b"kept", text("v"), keep_for(Some(60.0)));
        assert_eq!(value_of(&l1, "gone"), None);
        assert!(value_of(&l1, "kept").is_some());
    }

    #[test]
    fn purge_expired_removes_logically_expired_records_only() {
        let l1 = L1::new(1 << 20, None);
        let mut old = text("old");
        old.expires_at = Some(10.0);
        let mut fresh = text("fresh");
        fresh.expires_at = Some(30.0);
        l1.insert(b"old", old, None);
        l1.insert(b"fresh", fresh, None);
        l1.insert(b"forever", text("v"), None);
        assert_eq!(l1.purge_expired(20.0), 1);
        assert!(value_of(&l1, "old").is_none());
        assert!(value_of(&l1, "fresh").is_some());
        assert!(value_of(&l1, "forever").is_some());
    }

    #[test]
    fn stays_within_its_byte_budget() {
        let budget = 256 * 1024;
        let l1 = L1::new(budget, None);
        let payload = vec![b'x'; 1000];
        for i in 0..2000 {
            l1.insert(
                format!("key-{i}").as_bytes(),
                Record::new(Kind::Binary, payload.clone()),
                None,
            );
        }
        let size = l1.weighted_size();
        assert!(
            size <= budget,
            "weighted size {size} exceeds budget {budget}"
        );
        assert!(
            size > budget * 9 / 10,
            "weighted size {size} leaves the budget unused"
        );
        let entries = l1.entry_count();
        let per_entry = (1000 + "key-1000".len() + ENTRY_OVERHEAD) as u64;
        assert!(entries <= budget / per_entry + 1);
        assert!(
            value_of(&l1, "key-1999").is_some(),
            "the newest entry survives"
        );
        assert!(
            value_of(&l1, "key-0").is_none(),
            "the oldest entry is evicted"
        );
    }
}
