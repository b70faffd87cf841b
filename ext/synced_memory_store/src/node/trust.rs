//! When L1 may answer reads: the trust lease.
//!
//! L1 is answered from only while the subscription is known to be live: each
//! answered PING (which Redis answers after every message published before it)
//! extends a lease to the PING's send time plus the health timeout, and a read
//! checks the lease. A stalled server, a dropped connection, a starved
//! subscriber thread or a forked child without bus threads all make the lease
//! run out, and reads fall through to L2. Each (re)subscription drops
//! everything L1 held (one epoch bump), since messages may have been missed.
//! A node without a bus trusts its L1 always.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::bus::message::Op;
use crate::clock;

use super::Node;

/// The lease: reads may use L1 until this CLOCK_MONOTONIC instant (0: never).
#[derive(Default)]
pub(super) struct Trust {
    until: AtomicU64,
}

impl Trust {
    fn holds(&self) -> bool {
        clock::monotonic_nanos() < self.until.load(Ordering::Acquire)
    }

    /// Everything published before `sent_at` has been applied: trust L1 until
    /// `timeout` after it.
    pub(super) fn extend(&self, sent_at: u64, timeout: Duration) {
        let until = sent_at.saturating_add(clock::nanos(timeout));
        self.until.fetch_max(until, Ordering::AcqRel);
    }

    /// Stops trusting L1 at once.
    pub(super) fn revoke(&self) {
        self.until.store(0, Ordering::Release);
    }
}

impl Node {
    /// Whether reads may be answered from L1 now.
    pub(crate) fn trusted(&self) -> bool {
        self.bus.is_none() || self.trust.holds()
    }

    /// The subscription is (re)established: whatever L1 held may have missed
    /// messages, so it is dropped; local changes in flight can no longer be
    /// judged and become conflicted; a marker is sent so that its echo settles
    /// the changes published while the subscription was down.
    pub(super) fn resubscribed(&self) {
        let Some(bus) = &self.bus else { return };
        {
            let mut pending = self.pending.lock();
            pending.touch_all();
            self.l1.clear();
            bus.queue(Op::Marker);
        }
        self.trust
            .extend(clock::monotonic_nanos(), bus.settings.health.timeout);
    }
}
