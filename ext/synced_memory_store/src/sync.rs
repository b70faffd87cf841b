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

use std::sync::PoisonError;
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
