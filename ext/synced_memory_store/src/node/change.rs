//! Local changes: a write, delete, clear or delete_matched made by this process.
//!
//! A change that goes through L2 is registered first ([`Node::begin`]), so that
//! a change from another node arriving during the L2 call is noticed (see
//! `pending.rs`). Each of its keys is then finished by a write or delete, which
//! stores the result in L1 at once (read-your-writes) and queues it for every
//! other node. Whatever happens in between, [`Node::end`] closes the change:
//! a key that was never finished (the L2 call raised, before or after changing
//! L2, or refused) is dropped here and invalidated everywhere, so a change
//! whose L2 call began always ends in a message.
//!
//! Under the pending lock, a change is queued first and its L1 work done
//! after: queueing wakes the publisher, so the PUBLISH, and every other
//! node's copy of the change, no longer waits for this node's L1 insert
//! (against the opposite order, in alternating runs of the propagation
//! benchmark: a tight reader's p50 about 15% shorter; see
//! bench/results/2026-11-30-before-after-issue-7.md).
//! The change's echo, applied by this node's subscriber under the same lock,
//! arrives a network round trip later; only on a machine short of CPUs,
//! where the woken publisher preempts the writer, does it find the lock
//! still held (callgrind, 2,000 writes: 1,181 times), which costs this
//! process a context switch, not the other nodes their latency.
//!
//! Silent changes (`silent: true`, or no bus) tell no other node; they still
//! run under the pending lock, so that a published change to the key still in
//! flight does not put its value back when it echoes.

use std::collections::HashSet;
use std::time::Duration;

use crate::bus::message::Op;
use crate::glob::Glob;
use crate::l1::keep_for;
use crate::record::Record;
use crate::stats::Stats;

use super::pending::{ChangeId, Pending};
use super::Node;

/// How a local write treats an existing entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// Replace whatever is there.
    Replace,
    /// Store only if no live entry is there (`unless_exist:`, without an L2).
    UnlessExist,
}

/// Which keys a delete_matched removes.
#[derive(Clone, Copy)]
pub(crate) enum Matcher<'a> {
    /// A Redis-style glob, which every node can match natively.
    Glob(&'a [u8]),
    /// The keys a matcher only this process can run (a Ruby Regexp) picked
    /// from L1, after [`Node::fence_fills`]: other nodes drop everything.
    Listed(&'a HashSet<Box<[u8]>>),
}

impl Node {
    /// Registers a change to `keys` before its L2 call; see the module docs.
    /// `publish`: whether other nodes will be told.
    pub(crate) fn begin(&self, keys: Vec<Box<[u8]>>, publish: bool) -> ChangeId {
        self.pending
            .lock()
            .begin(keys, publish && self.bus.is_some())
    }

    /// Ends `change`: each of its keys not finished by a write or delete is
    /// dropped here and, for a published change, invalidated everywhere.
    /// Returns how many keys that was. Ending a change twice does nothing.
    pub(crate) fn end(&self, change: ChangeId) -> usize {
        // A write finishes its key and so its change: no lock then, which the
        // write's echo may be holding (see `Mirrored`).
        if self.pending.summary() == 0 {
            return 0;
        }
        let mut pending = self.pending.lock();
        let Some((publish, keys)) = pending.end(change) else {
            return 0;
        };
        for key in &keys {
            match &self.bus {
                Some(bus) if publish => {
                    let seq = bus.queue(Op::Invalidate { key: key.to_vec() });
                    pending.queued(key, seq, None);
                }
                _ => pending.overridden_here(key),
            }
            self.l1.remove(key);
        }
        Stats::add(&self.stats.invalidated, keys.len() as u64);
        keys.len()
    }

    /// Stores a value written by this process and, with `publish`, queues it
    /// for every other node (by value up to `broadcast_max_bytes`, else as an
    /// invalidation), finishing `key` of `change` when given. A `record` of
    /// None is a value too large for L1: the key is dropped here and
    /// invalidated everywhere. Returns false only when `UnlessExist` found a
    /// live entry.
    pub(crate) fn write(
        &self,
        key: &[u8],
        record: Option<Record>,
        keep_for_seconds: Option<f64>,
        mode: Write,
        publish: bool,
        change: Option<ChangeId>,
    ) -> bool {
        let Some(record) = record else {
            self.delete(key, publish, change);
            return true;
        };
        let keep = keep_for(keep_for_seconds);
        let mut pending = self.pending.lock();
        let Some(bus) = self.bus.as_ref().filter(|_| publish) else {
            self.changed_silently(&mut pending, key, change);
            return self.store(key, record, keep, mode);
        };
        if mode == Write::UnlessExist && self.get(key).is_some() {
            if let Some(change) = change {
                pending.finished_unpublished(key, change);
            }
            return false;
        }
        let op = if key.len() + record.payload.len() <= bus.settings.broadcast_max_bytes {
            Op::Put {
                key: key.to_vec(),
                record: record.clone(),
                keep_for: keep_for_seconds,
            }
        } else {
            Op::Invalidate { key: key.to_vec() }
        };
        // Queued first (see the module docs).
        let seq = bus.queue(op);
        pending.queued(key, seq, change);
        // A change from another node already arrived while this one was under
        // way: its echo will invalidate the key everywhere, so don't serve it here.
        if pending.is_conflicted(key) {
            self.l1.remove(key);
        } else {
            self.l1.insert(key, record, keep);
        }
        true
    }

    /// Removes `key` from L1 and, with `publish`, from every other node's,
    /// finishing `key` of `change` when given. Returns whether a live entry
    /// was here.
    pub(crate) fn delete(&self, key: &[u8], publish: bool, change: Option<ChangeId>) -> bool {
        let mut pending = self.pending.lock();
        let Some(bus) = self.bus.as_ref().filter(|_| publish) else {
            self.changed_silently(&mut pending, key, change);
            return self.l1.remove(key);
        };
        // Queued first (see the module docs).
        let seq = bus.queue(Op::Invalidate { key: key.to_vec() });
        pending.queued(key, seq, change);
        self.l1.remove(key)
    }

    /// Drops every entry here and, with `publish`, in every other node.
    pub(crate) fn clear(&self, publish: bool) {
        let mut pending = self.pending.lock();
        match &self.bus {
            Some(bus) if publish => {
                // This node's own writes in flight are not ordered against the
                // clear by any lock: one whose L2 write came before the L2 clear
                // may still be published after the Clear, so it must settle as
                // conflicted, exactly as if another node had cleared.
                pending.touch_all();
                bus.queue(Op::Clear);
            }
            _ => pending.overridden_here_where(|_| true),
        }
        self.l1.clear();
    }

    /// Removes the keys `matcher` accepts here and, with `publish`, makes every
    /// other node drop the keys matching the glob (or everything, for a
    /// matcher only this process can run). Fills in flight are refused (see
    /// [`crate::l1::L1::remove_where`]). Returns how many were removed here.
    pub(crate) fn delete_matched(&self, matcher: Matcher<'_>, publish: bool) -> usize {
        let parsed = match matcher {
            Matcher::Glob(glob) => Ok(Glob::new(glob)),
            Matcher::Listed(keys) => Err(keys),
        };
        let matches = |key: &[u8]| match &parsed {
            Ok(glob) => glob.matches(key),
            Err(keys) => keys.contains(key),
        };
        let mut pending = self.pending.lock();
        match &self.bus {
            Some(bus) if publish => {
                // As for clear: writes in flight here are not ordered against it.
                let op = match matcher {
                    Matcher::Glob(glob) => {
                        pending.touched_by_peer_where(|key| matches(key));
                        Op::DeleteMatched {
                            glob: glob.to_vec(),
                        }
                    }
                    Matcher::Listed(_) => {
                        pending.touch_all();
                        Op::Clear
                    }
                };
                bus.queue(op);
            }
            _ => pending.overridden_here_where(|key| matches(key)),
        }
        self.l1.remove_where(matches)
    }

    /// Refuses every fill in flight, before keys are picked for a
    /// [`Matcher::Listed`] delete: a key being filled from L2 right now is
    /// not in L1 to be picked, and its fill may carry what L2 just deleted.
    pub(crate) fn fence_fills(&self) {
        self.l1.fence();
    }

    /// Bookkeeping for a change that tells no other node: it finishes its key
    /// of `change`, and a published change to the key still in flight must not
    /// put its value back when it echoes.
    fn changed_silently(&self, pending: &mut Pending, key: &[u8], change: Option<ChangeId>) {
        if let Some(change) = change {
            pending.finished_unpublished(key, change);
        }
        pending.overridden_here(key);
    }

    fn store(&self, key: &[u8], record: Record, keep: Option<Duration>, mode: Write) -> bool {
        match mode {
            Write::Replace => {
                self.l1.insert(key, record, keep);
                true
            }
            Write::UnlessExist => self.l1.insert_if_absent(key, record, keep),
        }
    }
}
