//! The locks and condition variables of the node and its bus: the standard
//! library's, whose whole state lives in the object (a futex word on Linux).
//!
//! **Why not a parking table.** A lock library that keeps its waiting threads in
//! one process-wide table (parking_lot does) is not fork-safe: a process forked
//! while one of its threads waits inherits that table listing a thread that does
//! not exist in the child, whose stack and thread-local memory the child's new
//! threads then reuse. The child's wake-ups can go astray: Puma workers forked
//! from a master whose publisher was waiting for work had their own publisher
//! sleep through the changes queued for it (every other process kept the old
//! values), or crashed. With the state in the object, a child never touches
//! what its parent's threads waited on: it builds a fresh node (see
//! `Node::respawn`) and abandons the inherited one.
//!
//! A panic while a lock is held (a bug; none crosses the FFI boundary) does not
//! make the data unusable here: the lock is taken as it was left.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, TryLockError};
use std::time::Instant;

pub(crate) use std::sync::MutexGuard;

/// A mutex whose `lock` never fails (see the module docs on poisoning).
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock if nobody holds it, without waiting.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// A condition variable for a [`Mutex`].
#[derive(Debug, Default)]
pub(crate) struct Condvar(std::sync::Condvar);

impl Condvar {
    pub(crate) const fn new() -> Self {
        Condvar(std::sync::Condvar::new())
    }

    /// Releases `guard` until notified (or woken spuriously), then takes it again.
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// As [`Condvar::wait`], but at most until `deadline`; the flag tells
    /// whether it passed.
    pub(crate) fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, bool) {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (guard, result) = self
            .0
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        (guard, result.timed_out())
    }

    pub(crate) fn notify_one(&self) {
        self.0.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// State whose [`Mirrored`] lock keeps a summary of it readable without the lock.
pub(crate) trait Summarized {
    /// What is mirrored, computed under the lock each time it is released.
    fn summary(&self) -> usize;
}

/// A [`Mutex`] whose value's [`Summarized::summary`] is stored, each time
/// the lock is released, where it can be read without the lock: a hot path
/// that has nothing to do unless the summary says so skips the lock, which
/// another thread may be holding.
///
/// A thread reads a summary at least as recent as its own last release of
/// the lock (its store comes before its load), and every later one was made
/// under the lock too. So a summary that can change only under the lock
/// shows every state the reading thread left in place: "0 changes under
/// way" is certain for the changes that thread began.
#[derive(Debug, Default)]
pub(crate) struct Mirrored<T: Summarized> {
    value: Mutex<T>,
    summary: AtomicUsize,
}

impl<T: Summarized> Mirrored<T> {
    /// Takes the lock.
    pub(crate) fn lock(&self) -> MirroredGuard<'_, T> {
        MirroredGuard {
            value: self.value.lock(),
            summary: &self.summary,
        }
    }

    /// The summary as of the latest release of the lock.
    pub(crate) fn summary(&self) -> usize {
        self.summary.load(Ordering::Acquire)
    }
}

/// A [`Mirrored`] lock, held; releasing it stores the summary.
pub(crate) struct MirroredGuard<'a, T: Summarized> {
    value: MutexGuard<'a, T>,
    summary: &'a AtomicUsize,
}

impl<T: Summarized> Deref for MirroredGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Summarized> DerefMut for MirroredGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Summarized> Drop for MirroredGuard<'_, T> {
    fn drop(&mut self) {
        // Runs before the field's own drop releases the lock.
        self.summary.store(self.value.summary(), Ordering::Release);
    }
}
