//! Local changes whose echo has not come back yet, the record that makes
//! concurrent writers converge.
//!
//! Redis delivers one channel's messages to every subscriber in one order, and
//! every node applies them in that order, its own echoes included. With no L2 that
//! alone makes all L1s agree. With an L2, two overlapping writes to one key can be
//! ordered one way in L2 and the other way on the bus (A writes L2, B writes L2,
//! B publishes, A publishes: L2 holds B's value, every L1 A's). The writer whose
//! message is later on the bus can always see it happen: the other write's message
//! reaches it after its own L2 write began (the other writer published after
//! writing L2, which came after ours began) and before its own echo. So a node
//! registers each local change before touching L2, marks it *conflicted* when a
//! message from another sender touches the key before the echo, and on the echo of
//! a conflicted change publishes an invalidation that every node applies after
//! both writes: all fall back to L2.
//!
//! A node's own messages come back in the order it sent them, so the echo of
//! change `s` proves that every change before `s` which has not echoed never will
//! (it was dropped, or published while the subscription was down). Those are
//! *lost*: their keys get an invalidation too, since other nodes may or may not
//! have seen them.
//!
//! **Changes under way.** A change is registered with [`Pending::begin`] before
//! its L2 call and gets a [`ChangeId`]; each of its keys is finished exactly
//! once, when its value (or its removal) is queued, and [`Pending::end`] hands
//! back the keys that never were (the L2 call raised, or refused), so the node
//! can invalidate them: whatever L2 did, a change that began ends in a
//! message. Because the id tracks which keys are still open, a key can never
//! be counted out twice, which would hide another thread's overlapping write.

use std::collections::{BTreeMap, HashMap};

use crate::sync::Summarized;

/// Names one change under way (see [`Pending::begin`]).
pub(crate) type ChangeId = u64;

/// What the echo of a local change asks the node to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Echo {
    /// The key's latest local change came back unopposed after this node's own
    /// clear or delete_matched removed it here: store it again.
    Settle,
    /// The key's latest local change came back unopposed and is still in L1 as
    /// it was stored: nothing to do.
    InPlace,
    /// The key's latest local change came back after another sender touched the
    /// key: drop it locally and publish an invalidation.
    Conflicted,
    /// A newer local change to the key is queued or under way: nothing to do yet.
    Superseded,
    /// No local change is pending for the key (an echo of a follow-up, or of a
    /// change already settled as lost): apply it like anyone's.
    Unknown,
}

#[derive(Debug, Default)]
struct Entry {
    /// Sequence number of the latest queued change to the key; 0 when none is.
    seq: u64,
    /// Changes begun (registered before their L2 write) and not yet queued.
    under_way: u32,
    conflicted: bool,
    /// A silent (unpublished) local change replaced the queued one here: its
    /// echo must not put the replaced value back.
    overridden: bool,
    /// This node's own clear or delete_matched removed the key from L1 after the
    /// change was stored: its echo must store it again.
    disturbed: bool,
}

/// A change under way: whether it will be published, and its keys not yet
/// finished.
#[derive(Debug)]
struct Open {
    publish: bool,
    keys: Vec<Box<[u8]>>,
}

/// The in-flight local changes of one node, by key.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    by_key: HashMap<Box<[u8]>, Entry>,
    by_seq: BTreeMap<u64, Box<[u8]>>,
    open: HashMap<ChangeId, Open>,
    last_change: ChangeId,
}

impl Pending {
    /// Registers a local change to `keys` before it reaches L2 and names it.
    /// A change to be published is noted under each key, so that messages from
    /// other senders arriving during the L2 call are noticed. Two local changes
    /// to one key whose L2 calls overlap may reach L2 and the bus in different
    /// orders too, so a change begun while another is under way marks the key
    /// conflicted. (Sequential changes do not: the earlier one was queued before
    /// the later one's L2 call began.) A silent change is only remembered, so
    /// that its keys can be dropped from L1 should it end unfinished.
    pub(crate) fn begin(&mut self, mut keys: Vec<Box<[u8]>>, publish: bool) -> ChangeId {
        if keys.len() > 1 {
            keys.sort_unstable();
            keys.dedup();
        }
        if publish {
            for key in &keys {
                match self.by_key.get_mut(key) {
                    Some(entry) => {
                        if entry.under_way > 0 {
                            entry.conflicted = true;
                        }
                        entry.under_way += 1;
                    }
                    None => {
                        let entry = Entry {
                            under_way: 1,
                            ..Entry::default()
                        };
                        self.by_key.insert(key.clone(), entry);
                    }
                }
            }
        }
        self.last_change += 1;
        self.open.insert(self.last_change, Open { publish, keys });
        self.last_change
    }

    /// Takes `key` off `change`'s open keys; returns whether it was open and
    /// the change is published (its key's count of changes under way must
    /// then go down, exactly once).
    fn finish(&mut self, change: ChangeId, key: &[u8]) -> bool {
        let Some(open) = self.open.get_mut(&change) else {
            return false;
        };
        let Some(index) = open.keys.iter().position(|open_key| **open_key == *key) else {
            return false;
        };
        open.keys.swap_remove(index);
        let publish = open.publish;
        if open.keys.is_empty() {
            self.open.remove(&change);
        }
        publish
    }

    /// The change to `key` was queued as `seq`, finishing the key of `change`
    /// when it has one. A conflict already seen for the key stays marked.
    pub(crate) fn queued(&mut self, key: &[u8], seq: u64, change: Option<ChangeId>) {
        let finished = change.is_some_and(|change| self.finish(change, key));
        // A begun change already has its entry: no copy of the key is made then.
        let mut fresh = None;
        let entry = match self.by_key.get_mut(key) {
            Some(entry) => entry,
            None => fresh.insert(Entry::default()),
        };
        if finished {
            entry.under_way = entry.under_way.saturating_sub(1);
        }
        if entry.seq != 0 {
            self.by_seq.remove(&entry.seq);
        }
        entry.seq = seq;
        self.by_seq.insert(seq, key.into());
        if let Some(entry) = fresh {
            self.by_key.insert(key.into(), entry);
        }
    }

    /// `key` of `change` was changed here without being published (a silent
    /// change, or a write L1 will not hold): it is finished and, when it was
    /// registered as under way, no longer is.
    pub(crate) fn finished_unpublished(&mut self, key: &[u8], change: ChangeId) {
        if self.finish(change, key) {
            self.leave(key);
        }
    }

    /// Ends `change`, returning whether it is published and its keys that were
    /// never finished (the node invalidates them: their L2 call may or may not
    /// have changed L2). None when it already ended. Those keys are no longer
    /// under way; a published change's keys keep their record here until the
    /// invalidations are queued.
    pub(crate) fn end(&mut self, change: ChangeId) -> Option<(bool, Vec<Box<[u8]>>)> {
        let open = self.open.remove(&change)?;
        if open.publish {
            for key in &open.keys {
                if let Some(entry) = self.by_key.get_mut(key) {
                    entry.under_way = entry.under_way.saturating_sub(1);
                }
            }
        }
        Some((open.publish, open.keys))
    }

    fn leave(&mut self, key: &[u8]) {
        if let Some(entry) = self.by_key.get_mut(key) {
            entry.under_way = entry.under_way.saturating_sub(1);
            if entry.under_way == 0 && entry.seq == 0 {
                self.by_key.remove(key);
            }
        }
    }

    /// Every key with a local change queued or under way.
    pub(crate) fn keys(&self) -> Vec<Box<[u8]>> {
        self.by_key.keys().cloned().collect()
    }

    /// Whether nothing is in flight: every change has ended and every queued
    /// change has come back.
    pub(crate) fn is_idle(&self) -> bool {
        self.by_key.is_empty() && self.open.is_empty()
    }

    /// Whether `key`'s change in flight has been marked conflicted.
    pub(crate) fn is_conflicted(&self, key: &[u8]) -> bool {
        self.by_key.get(key).is_some_and(|entry| entry.conflicted)
    }

    /// Another sender touched `key`; returns whether a local change was in flight.
    pub(crate) fn touched_by_peer(&mut self, key: &[u8]) -> bool {
        match self.by_key.get_mut(key) {
            Some(entry) => {
                entry.conflicted = true;
                true
            }
            None => false,
        }
    }

    /// Another sender touched the keys `matching` accepts (a delete_matched).
    pub(crate) fn touched_by_peer_where(&mut self, matching: impl Fn(&[u8]) -> bool) {
        self.by_key
            .iter_mut()
            .filter(|(key, _)| matching(key))
            .for_each(|(_, entry)| entry.conflicted = true);
    }

    /// A silent local change (one that tells no other node) replaced `key` here
    /// after a published change still in flight: the published change's echo must
    /// leave this node's L1 alone.
    pub(crate) fn overridden_here(&mut self, key: &[u8]) {
        if let Some(entry) = self.by_key.get_mut(key) {
            entry.overridden = true;
        }
    }

    /// As [`Pending::overridden_here`] for the keys `matching` accepts.
    pub(crate) fn overridden_here_where(&mut self, matching: impl Fn(&[u8]) -> bool) {
        self.by_key
            .iter_mut()
            .filter(|(key, _)| matching(key))
            .for_each(|(_, entry)| entry.overridden = true);
    }

    /// This node's own clear, echoing, removed every key from L1: changes queued
    /// after it must be stored again when they echo.
    pub(crate) fn disturb_all(&mut self) {
        self.by_key
            .values_mut()
            .for_each(|entry| entry.disturbed = true);
    }

    /// As [`Pending::disturb_all`] for the keys `matching` accepts.
    pub(crate) fn disturb_where(&mut self, matching: impl Fn(&[u8]) -> bool) {
        self.by_key
            .iter_mut()
            .filter(|(key, _)| matching(key))
            .for_each(|(_, entry)| entry.disturbed = true);
    }

    /// Another sender touched every key (a clear), or the subscription broke so
    /// this node can no longer tell: every change in flight is conflicted.
    pub(crate) fn touch_all(&mut self) {
        self.by_key
            .values_mut()
            .for_each(|entry| entry.conflicted = true);
    }

    /// Keys whose queued changes precede `seq` and will never echo; forgets them.
    /// A key with another change under way is kept, marked conflicted (whether the
    /// lost change reached anyone is unknown), and not returned.
    pub(crate) fn take_lost_before(&mut self, seq: u64) -> Vec<Box<[u8]>> {
        let rest = self.by_seq.split_off(&seq);
        let lost = std::mem::replace(&mut self.by_seq, rest);
        let mut keys = Vec::with_capacity(lost.len());
        for key in lost.into_values() {
            match self.by_key.get_mut(&key) {
                Some(entry) if entry.under_way > 0 => {
                    entry.seq = 0;
                    entry.conflicted = true;
                }
                Some(_) => {
                    self.by_key.remove(&key);
                    keys.push(key);
                }
                None => {}
            }
        }
        keys
    }

    /// The echo of local change `seq` to `key` arrived (after the lost changes
    /// before it were taken).
    pub(crate) fn echo(&mut self, key: &[u8], seq: u64) -> Echo {
        match self.by_key.get_mut(key) {
            None => Echo::Unknown,
            Some(entry) if entry.under_way > 0 || entry.seq > seq => {
                // This change came back while a newer one is under way: it is
                // no longer in flight, so a later echo must not take it for lost.
                if entry.seq == seq {
                    self.by_seq.remove(&seq);
                    entry.seq = 0;
                }
                Echo::Superseded
            }
            Some(entry) if entry.seq < seq => Echo::Unknown,
            Some(entry) => {
                let (conflicted, overridden, disturbed) =
                    (entry.conflicted, entry.overridden, entry.disturbed);
                self.by_seq.remove(&seq);
                self.by_key.remove(key);
                if conflicted {
                    Echo::Conflicted
                } else if overridden {
                    Echo::Superseded
                } else if disturbed {
                    Echo::Settle
                } else {
                    Echo::InPlace
                }
            }
        }
    }

    /// Number of keys with changes in flight.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

impl Summarized for Pending {
    /// The number of changes under way: with it read outside the lock,
    /// ending a change that already finished (every write's case) takes no
    /// lock, which the echo of that very write may be holding on the
    /// subscriber thread (see [`crate::node::Node::end`]).
    fn summary(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Mirrored;

    fn begin(pending: &mut Pending, key: &[u8]) -> ChangeId {
        pending.begin(vec![key.into()], true)
    }

    fn queue(pending: &mut Pending, key: &[u8], seq: u64) {
        let change = begin(pending, key);
        pending.queued(key, seq, Some(change));
    }

    #[test]
    fn an_unopposed_change_settles_on_its_echo() {
        let mut pending = Pending::default();
        queue(&mut pending, b"k", 1);
        assert_eq!(pending.keys(), [Box::from(&b"k"[..])]);
        assert_eq!(pending.echo(b"k", 1), Echo::InPlace);
        assert!(pending.is_idle());
    }

    #[test]
    fn a_change_removed_by_the_nodes_own_clear_is_stored_again_on_its_echo() {
        let mut pending = Pending::default();
        queue(&mut pending, b"k", 1);
        queue(&mut pending, b"user:1", 2);
        queue(&mut pending, b"post:1", 3);
        pending.disturb_all();
        assert_eq!(pending.echo(b"k", 1), Echo::Settle);
        queue(&mut pending, b"user:2", 4);
        pending.disturb_where(|key| key.starts_with(b"user:"));
        assert_eq!(pending.echo(b"user:2", 4), Echo::Settle);
    }

    #[test]
    fn a_peer_touching_the_key_during_the_l2_write_or_before_the_echo_conflicts_it() {
        let mut pending = Pending::default();
        let change = begin(&mut pending, b"k");
        assert!(
            pending.touched_by_peer(b"k"),
            "noticed while the L2 write is under way"
        );
        assert!(!pending.touched_by_peer(b"other"));
        pending.queued(b"k", 1, Some(change));
        assert_eq!(pending.echo(b"k", 1), Echo::Conflicted);
    }

    #[test]
    fn only_the_latest_local_change_settles_and_conflicts_carry_over() {
        let mut pending = Pending::default();
        queue(&mut pending, b"k", 1);
        pending.touched_by_peer(b"k");
        let change = begin(&mut pending, b"k");
        assert_eq!(
            pending.echo(b"k", 1),
            Echo::Superseded,
            "a newer change is under way"
        );
        pending.queued(b"k", 2, Some(change));
        assert!(pending.is_conflicted(b"k"));
        assert_eq!(pending.echo(b"k", 2), Echo::Conflicted);
        assert_eq!(pending.echo(b"k", 2), Echo::Unknown);
    }

    #[test]
    fn overlapping_local_changes_conflict_and_sequential_ones_do_not() {
        let mut pending = Pending::default();
        queue(&mut pending, b"k", 1);
        queue(&mut pending, b"k", 2);
        assert_eq!(pending.echo(b"k", 2), Echo::InPlace, "sequential");
        let first = begin(&mut pending, b"k");
        let second = begin(&mut pending, b"k");
        pending.queued(b"k", 3, Some(first));
        pending.queued(b"k", 4, Some(second));
        assert_eq!(pending.echo(b"k", 4), Echo::Conflicted, "overlapping");
    }

    #[test]
    fn a_silent_local_change_keeps_the_echo_from_restoring_the_replaced_value() {
        let mut pending = Pending::default();
        queue(&mut pending, b"k", 1);
        pending.overridden_here(b"k");
        assert_eq!(pending.echo(b"k", 1), Echo::Superseded);
        assert!(pending.is_idle());
        queue(&mut pending, b"k", 2);
        pending.overridden_here(b"k");
        pending.touched_by_peer(b"k");
        assert_eq!(
            pending.echo(b"k", 2),
            Echo::Conflicted,
            "other nodes still need the invalidation"
        );
    }

    #[test]
    fn an_ended_change_hands_back_its_unfinished_keys_once() {
        let mut pending = Pending::default();
        let change = pending.begin(vec![b"a".as_slice().into(), b"b".as_slice().into()], true);
        pending.queued(b"a", 1, Some(change));
        let (publish, open) = pending.end(change).expect("still open");
        assert!(publish);
        assert_eq!(open, [Box::from(&b"b"[..])]);
        assert_eq!(pending.end(change), None, "ends once");
        pending.queued(b"b", 2, None);
        assert_eq!(pending.echo(b"a", 1), Echo::InPlace);
        assert_eq!(pending.echo(b"b", 2), Echo::InPlace);
        assert!(pending.is_idle());
    }

    #[test]
    fn a_key_is_finished_once_so_another_threads_overlapping_write_stays_visible() {
        let mut pending = Pending::default();
        let mine = begin(&mut pending, b"k");
        let theirs = begin(&mut pending, b"k");
        pending.queued(b"k", 1, Some(mine));
        // Finishing the same key of the same change again must not count
        // `theirs` out.
        pending.queued(b"k", 2, Some(mine));
        assert!(pending.end(mine).is_none());
        pending.touched_by_peer(b"k");
        pending.queued(b"k", 3, Some(theirs));
        assert_eq!(pending.echo(b"k", 3), Echo::Conflicted);
    }

    #[test]
    fn a_silent_change_leaves_nothing_behind() {
        let mut pending = Pending::default();
        let change = pending.begin(vec![b"k".as_slice().into()], false);
        assert!(pending.keys().is_empty(), "not under way for the bus");
        pending.finished_unpublished(b"k", change);
        assert!(pending.is_idle());
        let published = begin(&mut pending, b"k");
        pending.finished_unpublished(b"k", published);
        assert!(pending.is_idle());
    }

    #[test]
    fn changes_before_an_echo_that_never_echoed_are_lost() {
        let mut pending = Pending::default();
        queue(&mut pending, b"a", 1);
        queue(&mut pending, b"b", 2);
        queue(&mut pending, b"c", 4);
        let mut lost = pending.take_lost_before(3);
        lost.sort();
        assert_eq!(lost, vec![Box::from(&b"a"[..]), Box::from(&b"b"[..])]);
        assert_eq!(pending.len(), 1);
        assert!(pending.take_lost_before(4).is_empty());
        assert_eq!(pending.echo(b"c", 4), Echo::InPlace);
    }

    #[test]
    fn an_echo_arriving_while_the_next_change_is_under_way_is_not_taken_for_lost_later() {
        let mut pending = Pending::default();
        queue(&mut pending, b"k", 1);
        let change = begin(&mut pending, b"k");
        assert_eq!(pending.echo(b"k", 1), Echo::Superseded);
        queue(&mut pending, b"other", 2);
        assert!(
            pending.take_lost_before(2).is_empty(),
            "change 1 echoed; nothing before 2 is lost"
        );
        assert_eq!(pending.echo(b"other", 2), Echo::InPlace);
        pending.queued(b"k", 3, Some(change));
        assert_eq!(
            pending.echo(b"k", 3),
            Echo::InPlace,
            "no conflict was ever seen"
        );
    }

    #[test]
    fn a_lost_change_with_another_under_way_marks_the_key_conflicted() {
        let mut pending = Pending::default();
        queue(&mut pending, b"k", 1);
        let change = begin(&mut pending, b"k");
        assert!(pending.take_lost_before(5).is_empty());
        pending.queued(b"k", 6, Some(change));
        assert_eq!(pending.echo(b"k", 6), Echo::Conflicted);
    }

    #[test]
    fn touch_all_and_touch_where_conflict_changes_in_flight() {
        let mut pending = Pending::default();
        queue(&mut pending, b"user:1", 1);
        queue(&mut pending, b"post:1", 2);
        pending.touched_by_peer_where(|key| key.starts_with(b"user:"));
        assert_eq!(pending.echo(b"user:1", 1), Echo::Conflicted);
        assert_eq!(pending.echo(b"post:1", 2), Echo::InPlace);
        queue(&mut pending, b"x", 3);
        pending.touch_all();
        assert_eq!(pending.echo(b"x", 3), Echo::Conflicted);
    }

    #[test]
    fn the_count_outside_the_lock_follows_every_change_until_it_ends() {
        let shared = Mirrored::<Pending>::default();
        let any_under_way = || shared.summary() > 0;
        assert!(!any_under_way());
        let both = shared
            .lock()
            .begin(vec![b"a".as_slice().into(), b"b".as_slice().into()], true);
        assert!(any_under_way());
        shared.lock().queued(b"a", 1, Some(both));
        assert!(any_under_way(), "b is not finished yet");
        let silent = shared.lock().begin(vec![b"c".as_slice().into()], false);
        shared.lock().queued(b"b", 2, Some(both));
        assert!(any_under_way(), "the silent change is still open");
        shared.lock().finished_unpublished(b"c", silent);
        assert!(!any_under_way(), "every key finished");
        let raised = shared.lock().begin(vec![b"d".as_slice().into()], true);
        assert!(any_under_way());
        let ended = shared.lock().end(raised);
        assert_eq!(ended, Some((true, vec![Box::from(&b"d"[..])])));
        assert!(!any_under_way());
    }
}
