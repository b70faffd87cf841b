//! A node's life: start (bus threads connecting in the background), settle
//! (every local change published and come back), close (threads stopped),
//! and a fresh node for a forked child.
//!
//! **Settling.** A local change is done for other nodes only once its echo has
//! come back: that is when a conflict with another writer is noticed and its
//! invalidation sent. A process that stops earlier (`close`, exit) would leave
//! other nodes holding its value while L2 holds the other writer's. So closing
//! waits, within a bound, until every change has ended and echoed; the keys of
//! those that have not are invalidated everywhere, and the invalidations are
//! published before the threads stop. The Ruby side runs these steps in short
//! slices so that interrupts are served between them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bus::message::Op;
use crate::bus::Member;
use crate::config::Config;

use super::Node;

/// How waiting for the local changes to settle ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settling {
    /// Every change has ended, been published and come back.
    Settled,
    /// Some have not yet; waiting longer may help.
    Waiting,
    /// Some have not, and cannot while the subscription is down.
    Stuck,
}

impl Node {
    /// A node with an empty L1; with bus settings, its publisher and subscriber
    /// threads are started (connecting in the background, never blocking here).
    pub(crate) fn start(config: Config) -> Arc<Node> {
        let node = Arc::new(Node::new(config, random_id()));
        if let Some(bus) = &node.bus {
            let member: Arc<dyn Member> = node.clone();
            *node.threads.lock() = bus.start(member);
        }
        node
    }

    /// A fresh node with the same configuration (for a forked child).
    pub(crate) fn respawn(&self) -> Arc<Node> {
        Node::start(self.config.clone())
    }

    /// Whether the subscription is up.
    pub(crate) fn connected(&self) -> bool {
        self.bus.as_ref().is_some_and(|bus| bus.connected())
    }

    /// Waits until the subscription is up or `timeout` passes; returns whether it is.
    pub(crate) fn wait_for_connection(&self, timeout: Duration) -> bool {
        self.bus
            .as_ref()
            .is_some_and(|bus| bus.wait_for_connection(Instant::now() + timeout))
    }

    /// Waits until everything queued so far has been published or `timeout`
    /// passes; returns whether it was. True at once without a bus.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.bus
            .as_ref()
            .is_none_or(|bus| bus.outbox.wait_published(Instant::now() + timeout))
    }

    /// Waits up to `timeout` until every local change has ended, been
    /// published and come back (see the module docs).
    pub(crate) fn wait_settled(&self, timeout: Duration) -> Settling {
        let Some(bus) = &self.bus else {
            return Settling::Settled;
        };
        let deadline = Instant::now() + timeout;
        loop {
            if self.pending.lock().is_idle() && bus.outbox.drained() {
                return Settling::Settled;
            }
            if !bus.connected() {
                return Settling::Stuck;
            }
            if Instant::now() >= deadline {
                return Settling::Waiting;
            }
            // An echo takes well under a millisecond on a healthy bus.
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Invalidates everywhere every key whose local change has not settled
    /// (queued or under way); returns how many. What another node holds for
    /// such a key is unknown to this one, so all of them fall back to L2.
    pub(crate) fn invalidate_unsettled(&self) -> usize {
        let Some(bus) = &self.bus else { return 0 };
        let mut pending = self.pending.lock();
        let keys = pending.keys();
        for key in &keys {
            let seq = bus.queue(Op::Invalidate { key: key.to_vec() });
            // Registered like any change, so an older echo still on its way
            // finds itself superseded rather than putting its value back.
            pending.queued(key, seq, None);
            self.l1.remove(key);
        }
        keys.len()
    }

    /// Whether close was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.bus.as_ref().is_some_and(|bus| bus.closing())
    }

    /// Stops the bus threads: the publisher sends what is queued (while Redis
    /// answers) and exits, the subscriber leaves within one health interval.
    /// Waits for both up to `timeout`; returns whether they ended. Idempotent.
    /// Settle first (see the module docs): changes still in flight are not
    /// waited for here.
    pub(crate) fn close(&self, timeout: Duration) -> bool {
        if let Some(bus) = &self.bus {
            bus.close();
            self.trust.revoke();
        }
        let deadline = Instant::now() + timeout;
        let mut threads = self.threads.lock();
        while threads.iter().any(|thread| !thread.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let finished = threads.iter().all(|thread| thread.is_finished());
        if finished {
            threads.drain(..).for_each(|thread| {
                let _ = thread.join();
            });
        }
        finished
    }
}

/// A node id unlikely to repeat across processes and forks: the process id, the
/// time and a per-process counter, mixed.
fn random_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = time
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(17);
    // splitmix64 finalizer
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
