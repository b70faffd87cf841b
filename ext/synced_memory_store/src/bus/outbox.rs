//! The publish queue between Ruby threads (which never wait on the network) and
//! the publisher thread.
//!
//! A thread that queues a change while the publisher is idle may send it
//! itself (see `direct.rs`): it takes the change from here with
//! [`Outbox::take_direct`], and the publisher reads the answer later, which
//! [`Outbox::take`] hands it with its next batch.
//!
//! Every queued change gets the next sequence number under the queue's lock, so
//! the order of sequence numbers is the order of publication. The queue is
//! bounded: a change that finds it full is dropped, and a `Clear` is queued
//! behind everything still waiting, so an overflow costs every node its L1 but
//! never leaves a stale entry behind.

use std::collections::VecDeque;
use std::time::Instant;

use crate::sync::{Condvar, Mutex};

use crate::bus::message::{Change, Op};

/// Largest number of changes in one batch (one PUBLISH).
pub(crate) const BATCH_CHANGES: usize = 1024;

/// Rough byte bound of one batch.
pub(crate) const BATCH_BYTES: usize = 1024 * 1024;

#[derive(Default)]
struct State {
    last_seq: u64,
    queue: VecDeque<Change>,
    overflowed: bool,
    published_through: u64,
    closed: bool,
    /// The publisher waits in `take` for work: only then does a push wake it
    /// (a condition variable's notify is a system call even when nobody waits).
    taker_waiting: bool,
    /// Threads waiting in `wait_published`: only they need `published`'s wake.
    progress_waiters: usize,
    /// The last change handed to the publisher in a batch: until it is
    /// published nothing is sent directly, which could overtake it.
    taken_through: u64,
    /// The changes of each PUBLISH sent directly whose answer the publisher
    /// has not read yet, in the order they were sent (as they would be
    /// requeued, see `requeue_safely`).
    unanswered: Vec<Vec<Change>>,
    /// Their rough size (see `rough_size`).
    unanswered_bytes: usize,
    /// Changes requeued after a failed PUBLISH and not published since, as
    /// (the lowest number they had, the highest they have now; repeated
    /// failures widen the one pair): a change numbered from the first on
    /// may be among them, whatever `published_through` says (see `settled`).
    requeued: Option<(u64, u64)>,
}

impl State {
    /// Whether every change numbered up to `target` has been published:
    /// the changes after it were, or were sent in its place.
    fn settled(&self, target: u64) -> bool {
        self.published_through >= target
            && !self.requeued.is_some_and(|(original, replaced_by)| {
                original <= target && replaced_by > self.published_through
            })
    }
}

/// What the publisher is handed: the directly sent PUBLISHes whose answers it
/// reads first, then a batch to publish (either may be empty, not both).
pub(crate) struct Work {
    pub(crate) answers: Vec<Vec<Change>>,
    pub(crate) batch: Vec<Change>,
}

/// Largest rough size of what the direct PUBLISHes not yet handed to the
/// publisher carry in all (it may be reading the answers to as much again):
/// far below what a connection's send buffer holds from the start (16 KB on
/// Linux), so that a direct send never waits for room in it, even when the
/// server or the network between stopped taking data.
pub(crate) const DIRECT_BYTES: usize = 4096;

/// Most direct PUBLISHes not yet handed to the publisher.
pub(crate) const DIRECT_UNANSWERED: usize = 8;

/// The bounded queue of changes waiting to be published.
pub(crate) struct Outbox {
    state: Mutex<State>,
    work: Condvar,
    progress: Condvar,
    capacity: usize,
}

impl Outbox {
    /// An empty queue holding at most `capacity` changes.
    pub(crate) fn new(capacity: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
            capacity,
        }
    }

    /// Queues `op` and wakes the publisher; returns its sequence number and
    /// whether it was queued (false: the queue was full, the op is dropped and
    /// a `Clear` will follow).
    #[cfg(test)]
    pub(crate) fn push(&self, op: Op) -> (u64, bool) {
        let pushed = self.push_quietly(op);
        self.wake();
        pushed
    }

    /// As `push`, without waking the publisher: the caller may send the
    /// change itself (see `take_direct`), and calls `wake` after.
    pub(crate) fn push_quietly(&self, op: Op) -> (u64, bool) {
        let mut state = self.state.lock();
        state.last_seq += 1;
        let seq = state.last_seq;
        let queued = state.queue.len() < self.capacity;
        if queued {
            state.queue.push_back(Change { seq, op });
        } else {
            state.overflowed = true;
        }
        (seq, queued)
    }

    /// Wakes the publisher if it waits and changes are queued for it, or
    /// answers to direct sends are unread while someone waits for publication.
    pub(crate) fn wake(&self) {
        let state = self.state.lock();
        let answers = state.progress_waiters > 0 && !state.unanswered.is_empty();
        let wake = state.taker_waiting && (!state.queue.is_empty() || state.overflowed || answers);
        drop(state);
        if wake {
            self.work.notify_one();
        }
    }

    /// Wakes the publisher if it waits and answers to direct sends are
    /// unread. They are read lazily (a wake right after the send would
    /// compete for the CPU with the message's delivery): with the next batch,
    /// when [`DIRECT_UNANSWERED`] are outstanding, at the subscription's next
    /// PING, or when someone waits for publication.
    pub(crate) fn wake_for_answers(&self) {
        let state = self.state.lock();
        self.wake_for_answers_locked(&state);
    }

    fn wake_for_answers_locked(&self, state: &State) {
        if state.taker_waiting && !state.unanswered.is_empty() {
            self.work.notify_one();
        }
    }

    /// Takes what is queued for a direct PUBLISH, if the publisher could not
    /// be overtaken by it (nothing handed to it is unpublished), nothing was
    /// dropped, fewer than [`DIRECT_UNANSWERED`] direct PUBLISHes are not yet
    /// handed to the publisher and the queue's first changes fit in what is
    /// left of [`DIRECT_BYTES`]. The changes count as unanswered until the
    /// publisher is handed them.
    pub(crate) fn take_direct(&self) -> Option<Vec<Change>> {
        let mut state = self.state.lock();
        if state.closed
            || state.overflowed
            || state.queue.is_empty()
            || state.published_through < state.taken_through
            || state.unanswered.len() >= DIRECT_UNANSWERED
        {
            return None;
        }
        let room = DIRECT_BYTES.saturating_sub(state.unanswered_bytes);
        let changes = take_run(&mut state.queue, usize::MAX, room, false)?;
        state.unanswered_bytes += changes.iter().map(|c| rough_size(&c.op)).sum::<usize>();
        state
            .unanswered
            .push(changes.iter().map(safe_copy).collect());
        Some(changes)
    }

    /// Waits for work and takes it: the answers to read (see `take_direct`)
    /// and up to `max_changes` queued changes (and at most `max_bytes` by
    /// their rough size, but always at least one). Returns None once the
    /// queue is closed, empty and every answer handed out.
    pub(crate) fn take(&self, max_changes: usize, max_bytes: usize) -> Option<Work> {
        let mut state = self.state.lock();
        loop {
            if state.overflowed {
                // Behind whatever was kept: every node drops everything.
                state.overflowed = false;
                state.last_seq += 1;
                let seq = state.last_seq;
                state.queue.push_back(Change { seq, op: Op::Clear });
            }
            let batch =
                take_run(&mut state.queue, max_changes, max_bytes, true).unwrap_or_default();
            if let Some(last) = batch.last() {
                state.taken_through = last.seq;
            }
            if !batch.is_empty() || !state.unanswered.is_empty() {
                let answers = std::mem::take(&mut state.unanswered);
                state.unanswered_bytes = 0;
                return Some(Work { answers, batch });
            }
            if state.closed {
                return None;
            }
            state.taker_waiting = true;
            state = self.work.wait(state);
            state.taker_waiting = false;
        }
    }

    /// Every change up to `seq` has been published.
    pub(crate) fn published(&self, seq: u64) {
        let mut state = self.state.lock();
        state.published_through = state.published_through.max(seq);
        let through = state.published_through;
        state.requeued = state
            .requeued
            .filter(|&(_, replaced_by)| replaced_by > through);
        let wake = state.progress_waiters > 0;
        drop(state);
        if wake {
            self.progress.notify_all();
        }
    }

    /// Puts back changes whose PUBLISH failed, in forms that are safe to publish
    /// whether or not the first attempt reached anyone (a write becomes an
    /// invalidation), behind everything queued meanwhile and with new sequence
    /// numbers, so publication order stays sequence order. A lease is given
    /// up rather than announced late: its release may be queued already, and
    /// the node that claimed it stops waiting for its echo on its own.
    pub(crate) fn requeue_safely(&self, failed: Vec<Change>) {
        let mut state = self.state.lock();
        let original = failed.iter().map(|change| change.seq).min();
        let before = state.last_seq;
        for change in failed {
            let op = match change.op {
                Op::Put { key, .. } => Op::Invalidate { key },
                Op::Lease { .. } => continue,
                other => other,
            };
            state.last_seq += 1;
            let seq = state.last_seq;
            state.queue.push_back(Change { seq, op });
        }
        if let Some(original) = original.filter(|_| state.last_seq > before) {
            let lowest = state
                .requeued
                .map_or(original, |(earlier, _)| earlier.min(original));
            state.requeued = Some((lowest, state.last_seq));
        }
        drop(state);
        self.work.notify_one();
    }

    /// Waits until everything queued before the call has been published (or
    /// sent again in a safe form, after a failed PUBLISH), or until
    /// `deadline`; returns whether it was.
    pub(crate) fn wait_published(&self, deadline: Instant) -> bool {
        let target = self.state.lock().last_seq;
        self.wait_published_through(target, deadline)
    }

    /// As `wait_published`, for the changes numbered up to `target`.
    fn wait_published_through(&self, target: u64, deadline: Instant) -> bool {
        let mut state = self.state.lock();
        while !state.settled(target) {
            self.wake_for_answers_locked(&state);
            state.progress_waiters += 1;
            let (woken, timed_out) = self.progress.wait_until(state, deadline);
            state = woken;
            state.progress_waiters -= 1;
            if timed_out {
                return state.settled(target);
            }
        }
        true
    }

    /// Everything up to the first number has been published; changes up to
    /// the second were queued.
    pub(crate) fn progress(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.published_through, state.last_seq)
    }

    /// Whether every change queued so far has been published (waking the
    /// publisher for unread answers, since someone is waiting to know).
    pub(crate) fn drained(&self) -> bool {
        let state = self.state.lock();
        self.wake_for_answers_locked(&state);
        state.queue.is_empty() && state.published_through >= state.last_seq
    }

    /// Number of changes waiting.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Whether nothing is waiting.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops accepting work: `take` drains what is queued, then returns None.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.work.notify_all();
        self.progress.notify_all();
    }
}

/// What to keep of a change sent directly, for `requeue_safely` should its
/// answer not come: a write's key (it becomes an invalidation), or the
/// change itself.
fn safe_copy(change: &Change) -> Change {
    let op = match &change.op {
        Op::Put { key, .. } => Op::Invalidate { key: key.clone() },
        other => other.clone(),
    };
    Change {
        seq: change.seq,
        op,
    }
}

/// Takes the queue's first changes for one PUBLISH: up to `max_changes`, at
/// most `max_bytes` by their rough size, and never a lease beside other
/// changes (leases travel in batches of their own, see message.rs). With
/// `at_least_one`, a first change over the byte budget is taken alone;
/// without, nothing is taken then (None, as for an empty queue).
fn take_run(
    queue: &mut VecDeque<Change>,
    max_changes: usize,
    max_bytes: usize,
    at_least_one: bool,
) -> Option<Vec<Change>> {
    let leases = queue.front()?.op.is_lease();
    let mut bytes = 0;
    let mut changes = Vec::with_capacity(queue.len().min(max_changes).min(16));
    while let Some(change) = queue.front() {
        let size = rough_size(&change.op);
        let fits = changes.len() < max_changes && bytes + size <= max_bytes;
        let alone = changes.is_empty() && at_least_one;
        if change.op.is_lease() != leases || !(fits || alone) {
            break;
        }
        bytes += size;
        changes.push(queue.pop_front().expect("front was Some"));
    }
    (!changes.is_empty()).then_some(changes)
}

fn rough_size(op: &Op) -> usize {
    match op {
        Op::Put { key, record, .. } => key.len() + record.heap_bytes() + 32,
        Op::Invalidate { key } | Op::Lease { key, .. } | Op::Release { key } => key.len() + 8,
        Op::DeleteMatched { glob } => glob.len() + 8,
        Op::Clear | Op::Marker => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Spins until `done` holds for the outbox's state, 5 s at most.
    fn wait_until(outbox: &Outbox, what: &str, done: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(&outbox.state.lock()) {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::yield_now();
        }
    }

    fn invalidate(key: &str) -> Op {
        Op::Invalidate {
            key: key.as_bytes().to_vec(),
        }
    }

    #[test]
    fn sequence_numbers_follow_queue_order_and_batches_respect_the_limits() {
        let outbox = Outbox::new(100);
        for i in 0..5 {
            assert_eq!(outbox.push(invalidate(&format!("k{i}"))), (i + 1, true));
        }
        let first = outbox.take(2, usize::MAX).unwrap().batch;
        assert_eq!(first.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
        let rest = outbox.take(10, 1).unwrap().batch;
        assert_eq!(
            rest.len(),
            1,
            "at least one change even when over the byte budget"
        );
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn an_overflow_drops_changes_and_ends_the_next_batch_with_a_clear() {
        let outbox = Outbox::new(2);
        assert!(outbox.push(invalidate("a")).1);
        assert!(outbox.push(invalidate("b")).1);
        assert_eq!(outbox.push(invalidate("c")), (3, false));
        let batch = outbox.take(10, usize::MAX).unwrap().batch;
        assert_eq!(batch.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(batch[2].op, Op::Clear);
    }

    #[test]
    fn failed_changes_come_back_as_safe_ops_with_later_numbers() {
        let outbox = Outbox::new(10);
        outbox.push(Op::Put {
            key: b"k".to_vec(),
            record: crate::record::Record::new(crate::record::Kind::Nil, vec![]),
            keep_for: None,
        });
        let failed = outbox.take(10, usize::MAX).unwrap().batch;
        outbox.push(invalidate("meanwhile"));
        outbox.requeue_safely(failed);
        let batch = outbox.take(10, usize::MAX).unwrap().batch;
        assert_eq!(batch.iter().map(|c| c.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(batch[1].op, invalidate("k"));
    }

    #[test]
    fn waiting_for_publication_waits_for_what_a_failed_publish_was_sent_again_as() {
        let outbox = Outbox::new(10);
        outbox.push_quietly(invalidate("sent directly"));
        let direct = outbox.take_direct().unwrap();
        let (queued, _) = outbox.push_quietly(invalidate("queued behind"));
        // The publisher finds no answer to the direct send (requeued with a
        // later number), then publishes the change queued behind it.
        let work = outbox.take(10, usize::MAX).unwrap();
        assert_eq!(work.answers, vec![direct]);
        outbox.requeue_safely(work.answers.concat());
        outbox.published(queued);
        let soon = || Instant::now() + Duration::from_millis(20);
        assert!(!outbox.wait_published_through(queued, soon()));
        let again = outbox.take(10, usize::MAX).unwrap().batch;
        assert_eq!(again.len(), 1);
        outbox.published(again[0].seq);
        assert!(outbox.wait_published_through(queued, soon()));
        assert!(outbox.wait_published(soon()));
    }

    #[test]
    fn waiting_for_publication_ends_when_published_or_at_the_deadline() {
        let outbox = std::sync::Arc::new(Outbox::new(10));
        outbox.push(invalidate("a"));
        assert!(!outbox.wait_published(Instant::now() + Duration::from_millis(10)));
        let publisher = {
            let outbox = outbox.clone();
            std::thread::spawn(move || {
                let batch = outbox.take(10, usize::MAX).unwrap().batch;
                outbox.published(batch.last().unwrap().seq);
            })
        };
        assert!(outbox.wait_published(Instant::now() + Duration::from_secs(5)));
        publisher.join().unwrap();
    }

    #[test]
    fn leases_are_taken_in_batches_of_their_own_and_never_requeued() {
        let outbox = Outbox::new(10);
        outbox.push(invalidate("a"));
        outbox.push(Op::Lease {
            key: b"k".to_vec(),
            millis: 10,
        });
        outbox.push(Op::Release { key: b"k".to_vec() });
        outbox.push(invalidate("b"));
        let kinds = |batch: Vec<Change>| batch.iter().map(|c| c.seq).collect::<Vec<_>>();
        assert_eq!(kinds(outbox.take(10, usize::MAX).unwrap().batch), [1]);
        let leases = outbox.take(10, usize::MAX).unwrap().batch;
        assert_eq!(kinds(leases.clone()), [2, 3]);
        assert_eq!(kinds(outbox.take(10, usize::MAX).unwrap().batch), [4]);
        outbox.requeue_safely(leases);
        let again = outbox.take(10, usize::MAX).unwrap().batch;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].op, Op::Release { key: b"k".to_vec() });
    }

    #[test]
    fn a_push_wakes_a_publisher_waiting_for_work_and_only_then_notifies() {
        let outbox = std::sync::Arc::new(Outbox::new(10));
        let taker = {
            let outbox = outbox.clone();
            std::thread::spawn(move || outbox.take(10, usize::MAX).unwrap().batch.len())
        };
        wait_until(&outbox, "the taker never waited", |state| {
            state.taker_waiting
        });
        outbox.push(invalidate("a"));
        assert_eq!(taker.join().unwrap(), 1);
        assert!(!outbox.state.lock().taker_waiting);
    }

    #[test]
    fn closing_drains_then_ends() {
        let outbox = Outbox::new(10);
        outbox.push(invalidate("a"));
        outbox.close();
        assert!(outbox.take(10, usize::MAX).is_some());
        assert!(outbox.take(10, usize::MAX).is_none());
    }

    #[test]
    fn a_direct_send_takes_small_changes_only_when_it_cannot_overtake_a_batch() {
        let outbox = Outbox::new(10);
        assert!(outbox.take_direct().is_none(), "nothing queued");
        outbox.push_quietly(invalidate("a"));
        outbox.push_quietly(invalidate("b"));
        let sent = outbox.take_direct().unwrap();
        assert_eq!(sent.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
        // A batch handed to the publisher and not yet published.
        outbox.push_quietly(invalidate("c"));
        let work = outbox.take(10, usize::MAX).unwrap();
        assert_eq!(work.answers.len(), 1, "the direct send's answer to read");
        assert_eq!(work.batch.len(), 1);
        outbox.push_quietly(invalidate("d"));
        assert!(outbox.take_direct().is_none(), "could overtake c");
        outbox.published(3);
        assert_eq!(outbox.take_direct().unwrap()[0].seq, 4);
        // Too large for a direct send: the publisher takes it.
        outbox.push_quietly(Op::DeleteMatched {
            glob: vec![b'*'; DIRECT_BYTES],
        });
        assert!(outbox.take_direct().is_none());
        assert_eq!(outbox.take(10, usize::MAX).unwrap().batch.len(), 1);
    }

    #[test]
    fn direct_sends_share_one_byte_budget_until_the_publisher_takes_their_answers() {
        let outbox = Outbox::new(10);
        let glob = |len: usize| Op::DeleteMatched {
            glob: vec![b'*'; len],
        };
        // Rough size: the glob plus 8.
        outbox.push_quietly(glob(DIRECT_BYTES / 2));
        assert!(outbox.take_direct().is_some());
        outbox.push_quietly(glob(DIRECT_BYTES / 2));
        assert!(outbox.take_direct().is_none(), "over what is left");
        let work = outbox.take(10, usize::MAX).unwrap();
        assert_eq!((work.answers.len(), work.batch.len()), (1, 1));
        outbox.published(work.batch[0].seq);
        outbox.push_quietly(glob(DIRECT_BYTES / 2));
        assert!(outbox.take_direct().is_some(), "the budget is whole again");
    }

    #[test]
    fn direct_sends_wait_for_answers_within_a_bound_and_keep_safe_forms() {
        let outbox = Outbox::new(100);
        for i in 0..DIRECT_UNANSWERED {
            outbox.push_quietly(invalidate(&format!("k{i}")));
            assert!(outbox.take_direct().is_some());
        }
        outbox.push_quietly(Op::Put {
            key: b"w".to_vec(),
            record: crate::record::Record::new(crate::record::Kind::Nil, vec![]),
            keep_for: None,
        });
        assert!(
            outbox.take_direct().is_none(),
            "too many answers outstanding"
        );
        let work = outbox.take(10, usize::MAX).unwrap();
        assert_eq!(work.answers.len(), DIRECT_UNANSWERED);
        outbox.published(work.batch.last().unwrap().seq);
        outbox.push_quietly(Op::Put {
            key: b"x".to_vec(),
            record: crate::record::Record::new(crate::record::Kind::Nil, vec![]),
            keep_for: None,
        });
        assert!(outbox.take_direct().is_some());
        let answers = outbox.take(10, usize::MAX).unwrap().answers;
        let seq = DIRECT_UNANSWERED as u64 + 2;
        assert_eq!(
            answers,
            [[Change {
                seq,
                op: invalidate("x")
            }]]
        );
    }

    #[test]
    fn the_publisher_is_woken_for_answers_and_the_queue_ends_after_them() {
        let outbox = std::sync::Arc::new(Outbox::new(10));
        let taker = {
            let outbox = outbox.clone();
            std::thread::spawn(move || outbox.take(10, usize::MAX).unwrap().answers.len())
        };
        wait_until(&outbox, "the taker never waited", |state| {
            state.taker_waiting
        });
        outbox.push_quietly(invalidate("a"));
        assert!(outbox.take_direct().is_some());
        outbox.wake_for_answers();
        assert_eq!(taker.join().unwrap(), 1);
        outbox.push_quietly(invalidate("b"));
        assert!(outbox.take_direct().is_some());
        outbox.close();
        assert!(outbox.take_direct().is_none(), "closed");
        assert_eq!(outbox.take(10, usize::MAX).unwrap().answers.len(), 1);
        assert!(outbox.take(10, usize::MAX).is_none());
    }

    #[test]
    fn a_direct_send_wakes_the_publisher_for_its_answer_when_someone_waits_for_publication() {
        let outbox = std::sync::Arc::new(Outbox::new(10));
        let publisher = {
            let outbox = outbox.clone();
            std::thread::spawn(move || {
                let work = outbox.take(10, usize::MAX).unwrap();
                let last = work.answers.iter().flatten().map(|c| c.seq).max();
                outbox.published(last.unwrap_or(0));
            })
        };
        wait_until(&outbox, "the publisher never waited", |state| {
            state.taker_waiting
        });
        outbox.push_quietly(invalidate("a"));
        let flusher = {
            let outbox = outbox.clone();
            std::thread::spawn(move || {
                outbox.wait_published(Instant::now() + Duration::from_secs(5))
            })
        };
        wait_until(&outbox, "the flush never waited", |state| {
            state.progress_waiters == 1
        });
        // Sent directly after the flush began waiting, with nothing else queued.
        assert!(outbox.take_direct().is_some());
        outbox.wake();
        assert!(flusher.join().unwrap(), "the flush ran out of time");
        publisher.join().unwrap();
    }
}
