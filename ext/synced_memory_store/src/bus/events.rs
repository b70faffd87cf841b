//! What the bus threads tell the application: the bus's state changes and
//! the messages it rejects, for the Ruby side to publish as
//! ActiveSupport::Notifications events (and log).
//!
//! The bus threads cannot call Ruby (they never hold the GVL), so they queue
//! events here and one Ruby thread per store waits for them (without the GVL)
//! and publishes them. Rejections are told at most once per cause per
//! [`REJECTION_INTERVAL`], with the number of messages rejected since: a
//! peer signing with another secret sends every message that way, and one
//! event says what a thousand would. The queue is bounded; a flood of
//! distinct events loses the oldest.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex};

use super::message::Rejection;

/// Events kept waiting at most.
const CAPACITY: usize = 256;

/// Shortest time between two events for the same cause of rejection.
pub(crate) const REJECTION_INTERVAL: Duration = Duration::from_secs(60);

/// One state change of the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The first subscription is up: L1 is in use.
    Connected,
    /// The subscription is back after a loss; L1 was dropped, since messages
    /// may have been missed while it was down, unless the channel's log held
    /// them (`l1_dropped: false`).
    Resubscribed { reconnects: u64, l1_dropped: bool },
    /// The subscription was lost, or could not be made (the bus is then
    /// bypassed: reads go to L2).
    Disconnected { cause: String },
    /// Messages were rejected: `count` since the last event for this cause;
    /// `missed`: they may have carried changes, so L1 was dropped.
    Rejected {
        cause: &'static str,
        description: &'static str,
        missed: bool,
        count: u64,
    },
    /// Changes queued here have not been published for `waited`,
    /// longer than a healthy publisher takes (see `publisher_watch.rs`); told
    /// once per stall.
    Unpublished { cause: String, waited: Duration },
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Event>,
    /// Per cause of rejection: when it was last told, and how many since.
    rejections: HashMap<&'static str, (Option<Instant>, u64)>,
    closed: bool,
}

/// The events of one bus.
#[derive(Default)]
pub(crate) struct Events {
    inner: Mutex<Inner>,
    ready: Condvar,
}

impl Events {
    /// Queues `event` and wakes the waiting thread.
    pub(crate) fn push(&self, event: Event) {
        let mut inner = self.inner.lock();
        if inner.queue.len() == CAPACITY {
            inner.queue.pop_front();
        }
        inner.queue.push_back(event);
        drop(inner);
        self.ready.notify_all();
    }

    /// A message was rejected for `why`; told now if this cause was not told
    /// within the last [`REJECTION_INTERVAL`], else counted for later.
    pub(crate) fn rejected(&self, why: Rejection) {
        let now = Instant::now();
        let count = {
            let mut inner = self.inner.lock();
            let (last, count) = inner.rejections.entry(why.name()).or_insert((None, 0));
            *count += 1;
            if last.is_some_and(|at| now.duration_since(at) < REJECTION_INTERVAL) {
                return;
            }
            *last = Some(now);
            std::mem::take(count)
        };
        self.push(Event::Rejected {
            cause: why.name(),
            description: why.describe(),
            missed: why.may_hide_a_change(),
            count,
        });
    }

    /// Waits up to `timeout` for events and takes them all (an empty Vec when
    /// none came, or once closed).
    pub(crate) fn wait(&self, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock();
        while inner.queue.is_empty() && !inner.closed {
            let (woken, timed_out) = self.ready.wait_until(inner, deadline);
            inner = woken;
            if timed_out {
                break;
            }
        }
        inner.queue.drain(..).collect()
    }

    /// Wakes the waiting thread for good: the store is closing.
    pub(crate) fn close(&self) {
        self.inner.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_told_once_per_cause_per_interval_with_a_count() {
        let events = Events::default();
        events.rejected(Rejection::BadSignature);
        events.rejected(Rejection::BadSignature);
        events.rejected(Rejection::NotOurs);
        events.rejected(Rejection::BadSignature);
        let told = events.wait(Duration::ZERO);
        assert_eq!(
            told,
            [
                Event::Rejected {
                    cause: "bad_signature",
                    description: Rejection::BadSignature.describe(),
                    missed: true,
                    count: 1
                },
                Event::Rejected {
                    cause: "not_ours",
                    description: Rejection::NotOurs.describe(),
                    missed: false,
                    count: 1
                },
            ]
        );
        assert!(events.wait(Duration::ZERO).is_empty());
    }

    #[test]
    fn waiting_ends_with_events_at_the_deadline_or_on_close() {
        let events = std::sync::Arc::new(Events::default());
        assert!(events.wait(Duration::from_millis(5)).is_empty());
        let pusher = {
            let events = events.clone();
            std::thread::spawn(move || events.push(Event::Connected))
        };
        assert_eq!(events.wait(Duration::from_secs(5)), [Event::Connected]);
        pusher.join().unwrap();
        events.close();
        assert!(events.wait(Duration::from_secs(5)).is_empty());
    }

    #[test]
    fn the_queue_is_bounded() {
        let events = Events::default();
        for reconnects in 0..(CAPACITY as u64 + 10) {
            events.push(Event::Resubscribed {
                reconnects,
                l1_dropped: true,
            });
        }
        let told = events.wait(Duration::ZERO);
        assert_eq!(told.len(), CAPACITY);
        assert_eq!(
            told[0],
            Event::Resubscribed {
                reconnects: 10,
                l1_dropped: true
            }
        );
    }
}
