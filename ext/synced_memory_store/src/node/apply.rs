//! What the messages of the channel do to L1.
//!
//! Every node applies every verified batch of its channel in the order Redis
//! delivers it, its own echoes included ([`Member::apply`]). Another node's
//! change updates L1, unless this node has a change to the same key in flight:
//! then the local change comes later on the bus and decides, and it is marked
//! conflicted (see `pending.rs`). The node's own echo settles its change, and
//! a conflicted one is invalidated everywhere.
//!
//! A message that may have carried a change but cannot be applied (another
//! secret, a newer format) is handled as if the subscription had dropped it
//! ([`Member::missed`]): L1 is dropped at once (one epoch bump) and local
//! changes in flight become conflicted.

use crate::bus::message::{Batch, Change, Op, Rejection};
use crate::bus::{Bus, Member};
use crate::clock;
use crate::glob::Glob;
use crate::l1::keep_for;
use crate::stats::Stats;

use super::pending::{Echo, Pending};
use super::Node;

impl Member for Node {
    fn apply(&self, batch: Batch) {
        let Some(bus) = &self.bus else { return };
        let own = batch.sender == self.id;
        for Change { seq, op } in batch.changes {
            let op = self.acceptable(op);
            // One change at a time under the lock: a Ruby thread's begin or
            // write never waits behind a whole batch.
            let mut pending = self.pending.lock();
            if own {
                for key in pending.take_lost_before(seq) {
                    self.l1.remove(&key);
                    bus.queue(Op::Invalidate {
                        key: key.into_vec(),
                    });
                }
            }
            match op {
                // Leases change no entry (see leases.rs).
                Op::Lease { key, millis } => self.leases.lease(batch.sender, seq, own, key, millis),
                Op::Release { key } => self.leases.release(batch.sender, &key),
                op if own => {
                    Stats::bump(&self.stats.applied);
                    self.apply_own(bus, &mut pending, seq, op);
                }
                op => {
                    Stats::bump(&self.stats.applied);
                    self.apply_peer(&mut pending, op);
                }
            }
            // Stamped after each change is in L1: a reader that sees this
            // change and then reads the stamp gets when it became visible (or,
            // in the instant between the two, an earlier stamp).
            self.stats.last_applied_at.store(
                clock::monotonic_nanos(),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    fn missed(&self, _why: Rejection) {
        {
            let mut pending = self.pending.lock();
            pending.touch_all();
            self.l1.clear();
        }
        self.leases.forget();
        Stats::bump(&self.stats.missed);
    }

    fn subscribed(&self) {
        self.resubscribed();
        self.leases.forget();
    }

    fn unsubscribed(&self) {
        self.trust.revoke();
        self.leases.forget();
    }

    fn extend_trust(&self, sent_at: u64) {
        if let Some(bus) = &self.bus {
            self.trust.extend(sent_at, bus.settings.health.timeout);
        }
    }
}

impl Node {
    /// `op`, or an invalidation of its key when it carries a record this node
    /// will not hold (one that does not check, or inflates past the largest
    /// entry L1 accepts): the key changed, whatever its value.
    fn acceptable(&self, op: Op) -> Op {
        match op {
            Op::Put { key, record, .. } if record.check(self.l1.max_entry_bytes()).is_err() => {
                Stats::bump(&self.stats.rejected);
                Op::Invalidate { key }
            }
            op => op,
        }
    }

    fn apply_own(&self, bus: &Bus, pending: &mut Pending, seq: u64, op: Op) {
        match op {
            Op::Put {
                key,
                record,
                keep_for: keep,
            } => match pending.echo(&key, seq) {
                Echo::Settle | Echo::Unknown => self.l1.insert_echo(&key, record, keep_for(keep)),
                Echo::InPlace | Echo::Superseded => {}
                Echo::Conflicted => {
                    self.l1.remove(&key);
                    Stats::bump(&self.stats.conflicts);
                    bus.queue(Op::Invalidate { key });
                }
            },
            Op::Invalidate { key } => {
                // A delete that ends up last on the bus is safe whatever its
                // conflicts: every node drops the key and falls back to L2.
                if pending.echo(&key, seq) != Echo::Superseded {
                    self.l1.remove(&key);
                }
            }
            // Changes from other nodes applied here since the local clear are
            // ordered before it on the bus: drop them as every other node does.
            // Local changes made since then come after it and settle on their echo.
            Op::Clear => {
                pending.disturb_all();
                self.l1.clear();
            }
            Op::DeleteMatched { glob } => {
                let glob = Glob::new(&glob);
                pending.disturb_where(|key| glob.matches(key));
                self.l1.remove_where(|key| glob.matches(key));
            }
            // Marker changes nothing; leases are applied apart (see `apply`).
            Op::Marker | Op::Lease { .. } | Op::Release { .. } => {}
        }
    }

    fn apply_peer(&self, pending: &mut Pending, op: Op) {
        match op {
            Op::Put {
                key,
                record,
                keep_for: keep,
            } => {
                if pending.touched_by_peer(&key) {
                    self.l1.remove(&key);
                } else {
                    self.l1.insert(&key, record, keep_for(keep));
                }
            }
            Op::Invalidate { key } => {
                pending.touched_by_peer(&key);
                self.l1.remove(&key);
            }
            Op::Clear => {
                pending.touch_all();
                self.l1.clear();
            }
            Op::DeleteMatched { glob } => {
                let glob = Glob::new(&glob);
                pending.touched_by_peer_where(|key| glob.matches(key));
                self.l1.remove_where(|key| glob.matches(key));
            }
            // Marker changes nothing; leases are applied apart (see `apply`).
            Op::Marker | Op::Lease { .. } | Op::Release { .. } => {}
        }
    }
}
