//! Leases on missed keys: stampede protection across processes.
//!
//! A node about to compute a key that neither L1 nor L2 holds *claims* it: it
//! publishes `Op::Lease` (key, duration) and waits for the echo. Every node
//! applies the channel's messages in the one order Redis delivers, so every
//! node sees the same first lease on a key: the lease that finds no live
//! lease on its key *holds* it, in every node alike, until its holder's
//! `Op::Release` (sent after the value's own message, so the value is in L1
//! when the release is applied) or until its duration has passed since it
//! arrived. A claimer whose lease comes back holding has won and computes; one
//! whose lease comes back behind another waits for the release (or the
//! expiry), then reads the value the holder left, or claims again.
//!
//! Invariants:
//! - The table is changed by the subscriber thread (in bus order) and by a
//!   resubscription only; claims are recorded under the same lock before their
//!   op is queued, so an echo never arrives before its claim is known.
//! - Nothing here is trusted across a gap in the subscription: leases and
//!   releases may have been missed, so every lease is forgotten and every
//!   undecided claim becomes undecidable (its claimer computes without one).
//! - A claim whose echo does not come back within the health timeout (the
//!   publish failed, the bus stalls) is undecidable too: nobody waits on the
//!   bus longer than the bus is trusted.
//! - Expired leases are pruned as the table grows, so keys leased by nodes
//!   that died without releasing do not accumulate.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex};

use crate::bus::message::Op;

use super::Node;

/// Table size past which expired leases are pruned on the next lease.
const PRUNE_AT: usize = 1024;

/// Where a claim stands for its claimer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// The claim came back holding the key: the claimer computes the value.
    Won,
    /// Another lease holds the key, or the claim's echo has not come back yet.
    Waiting,
    /// The claim lost, and the lease that beat it has ended (released or
    /// expired): the value, if any, is in L1 or L2; else claim again.
    Free,
    /// The claim cannot be decided (no bus, no trust, no echo in time, a gap
    /// in the subscription): the claimer computes without a lease.
    Undecided,
    /// The claim lost, and the lease that beat it still holds the key: only
    /// for a claimer that does not wait for it (a refresh-ahead, which leaves
    /// the key to the holder, whose value will arrive by the bus).
    Behind,
}

/// A live lease: who holds the key and until when (by this node's clock,
/// from the lease's arrival).
struct Held {
    holder: u64,
    until: Instant,
}

/// A claim of this node, by its lease's sequence number.
enum Claim {
    Pending { since: Instant },
    Won,
    Lost,
}

#[derive(Default)]
struct Table {
    held: HashMap<Box<[u8]>, Held>,
    claims: HashMap<u64, Claim>,
}

/// The leases this node knows of and its own claims.
#[derive(Default)]
pub(crate) struct Leases {
    table: Mutex<Table>,
    changed: Condvar,
}

impl Leases {
    /// Applies a lease from `sender` (sequence `seq`, `own` when this node
    /// sent it): it holds `key` unless a live lease does already.
    pub(super) fn lease(&self, sender: u64, seq: u64, own: bool, key: Vec<u8>, millis: u64) {
        let now = Instant::now();
        let mut table = self.table.lock();
        if table.held.len() >= PRUNE_AT {
            table.held.retain(|_, held| held.until > now);
        }
        let taken = table
            .held
            .get(&key[..])
            .is_some_and(|held| held.until > now);
        if !taken {
            let until = now + Duration::from_millis(millis);
            table.held.insert(
                key.into(),
                Held {
                    holder: sender,
                    until,
                },
            );
        }
        if own {
            if let Some(claim @ Claim::Pending { .. }) = table.claims.get_mut(&seq) {
                *claim = if taken { Claim::Lost } else { Claim::Won };
            }
        }
        drop(table);
        self.changed.notify_all();
    }

    /// Applies a release from `sender`: its lease on `key`, if it holds one, ends.
    pub(super) fn release(&self, sender: u64, key: &[u8]) {
        let mut table = self.table.lock();
        if table
            .held
            .get(key)
            .is_some_and(|held| held.holder == sender)
        {
            table.held.remove(key);
            drop(table);
            self.changed.notify_all();
        }
    }

    /// Messages may have been missed: no lease can be relied on, and claims
    /// not decided yet never will be. Won claims stay (their claimer is
    /// computing and will release).
    pub(super) fn forget(&self) {
        let mut table = self.table.lock();
        table.held.clear();
        table.claims.retain(|_, claim| matches!(claim, Claim::Won));
        drop(table);
        self.changed.notify_all();
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let table = self.table.lock();
        (table.held.len(), table.claims.len())
    }
}

impl Node {
    /// Claims `key` for a computation of up to `lease`: queues the lease and
    /// returns its sequence number, for [`Node::standing`] and
    /// [`Node::release_claim`]. None without a bus or while L1 is not trusted
    /// (the bus is down or stalled): the caller computes without a lease.
    pub(crate) fn claim(&self, key: &[u8], lease: Duration) -> Option<u64> {
        let bus = self.bus.as_ref()?;
        if !self.trusted() {
            return None;
        }
        let millis = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut table = self.leases.table.lock();
        let seq = bus.queue(Op::Lease {
            key: key.to_vec(),
            millis,
        });
        let since = Instant::now();
        table.claims.insert(seq, Claim::Pending { since });
        Some(seq)
    }

    /// Waits up to `timeout` for claim `seq` on `key` to stand otherwise than
    /// [`Standing::Waiting`]; returns where it stands. With `behind`, a claim
    /// that lost to a live lease is [`Standing::Behind`] at once instead of
    /// waiting for that lease to end.
    pub(crate) fn standing(
        &self,
        key: &[u8],
        seq: u64,
        timeout: Duration,
        behind: bool,
    ) -> Standing {
        let deadline = Instant::now() + timeout;
        let echo_timeout = self
            .bus
            .as_ref()
            .map_or(Duration::ZERO, |bus| bus.settings.health.timeout);
        let leases = &self.leases;
        let mut table = leases.table.lock();
        loop {
            let now = Instant::now();
            if !self.trusted() {
                return Standing::Undecided;
            }
            // The next moment the standing can change without a message.
            let wake = match table.claims.get(&seq) {
                None => return Standing::Undecided,
                Some(Claim::Won) => return Standing::Won,
                Some(Claim::Pending { since }) if now >= *since + echo_timeout => {
                    return Standing::Undecided
                }
                Some(Claim::Pending { since }) => *since + echo_timeout,
                Some(Claim::Lost) => match table.held.get(key) {
                    Some(held) if held.until > now && behind => return Standing::Behind,
                    Some(held) if held.until > now => held.until,
                    _ => return Standing::Free,
                },
            };
            if now >= deadline {
                return Standing::Waiting;
            }
            table = leases.changed.wait_until(table, wake.min(deadline)).0;
        }
    }

    /// Ends claim `seq` on `key`: unless it lost (its lease never held),
    /// queues the release, which every node applies after whatever this node
    /// queued before (the value's write).
    pub(crate) fn release_claim(&self, key: &[u8], seq: u64) {
        let Some(bus) = &self.bus else { return };
        let mut table = self.leases.table.lock();
        if !matches!(table.claims.remove(&seq), Some(Claim::Lost)) {
            bus.queue(Op::Release { key: key.to_vec() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 1;
    const B: u64 = 2;

    #[test]
    fn the_first_live_lease_holds_the_key_and_its_holder_alone_releases_it() {
        let leases = Leases::default();
        leases.table.lock().claims.insert(
            8,
            Claim::Pending {
                since: Instant::now(),
            },
        );
        leases.lease(A, 4, false, b"k".to_vec(), 60_000);
        leases.lease(B, 8, true, b"k".to_vec(), 60_000);
        assert!(matches!(leases.table.lock().claims[&8], Claim::Lost));
        leases.release(B, b"k");
        assert_eq!(leases.table.lock().held[&b"k"[..]].holder, A);
        leases.release(A, b"k");
        assert_eq!(leases.len(), (0, 1));
    }

    #[test]
    fn an_expired_lease_holds_nothing_and_is_pruned_as_the_table_grows() {
        let leases = Leases::default();
        // A zero-length lease has ended by the time anything reads it.
        leases.lease(A, 1, false, b"k".to_vec(), 0);
        leases.table.lock().claims.insert(
            2,
            Claim::Pending {
                since: Instant::now(),
            },
        );
        leases.lease(B, 2, true, b"k".to_vec(), 60_000);
        assert!(matches!(leases.table.lock().claims[&2], Claim::Won));
        for i in 0..PRUNE_AT as u64 {
            leases.lease(A, 10 + i, false, i.to_le_bytes().to_vec(), 0);
        }
        leases.lease(A, 5000, false, b"last".to_vec(), 0);
        // The live lease, and the two that came after the prune.
        assert_eq!(leases.len(), (3, 1));
    }

    #[test]
    fn a_claimer_that_does_not_wait_learns_at_once_that_it_is_behind() {
        let node = Node::new(crate::config::Config::new(1 << 20, None).unwrap(), B);
        node.leases.table.lock().claims.insert(
            8,
            Claim::Pending {
                since: Instant::now(),
            },
        );
        node.leases.lease(A, 4, false, b"k".to_vec(), 60_000);
        node.leases.lease(B, 8, true, b"k".to_vec(), 60_000);
        let started = Instant::now();
        assert_eq!(
            node.standing(b"k", 8, Duration::from_secs(5), true),
            Standing::Behind
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        node.leases.release(A, b"k");
        assert_eq!(
            node.standing(b"k", 8, Duration::from_secs(5), true),
            Standing::Free
        );
    }

    #[test]
    fn forgetting_keeps_only_won_claims() {
        let leases = Leases::default();
        {
            let mut table = leases.table.lock();
            table.claims.insert(1, Claim::Won);
            table.claims.insert(2, Claim::Lost);
            table.claims.insert(
                3,
                Claim::Pending {
                    since: Instant::now(),
                },
            );
        }
        leases.lease(A, 9, false, b"k".to_vec(), 60_000);
        leases.forget();
        assert_eq!(leases.len(), (0, 1));
    }
}
