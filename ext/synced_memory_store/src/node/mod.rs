//! A node: this process's L1 and, with sync on, its membership of the bus.
//!
//! Where each part of the protocol lives:
//!
//! * `change.rs` — what a local change does: registered before its L2 call,
//!   stored in L1 at once (read-your-writes), queued for every other node, and
//!   invalidated everywhere if it ends without reaching L1.
//! * `apply.rs` — what a message from the bus does to L1, in the order Redis
//!   delivers it, the node's own echoes included.
//! * `pending.rs` — the bookkeeping of local changes in flight that makes
//!   concurrent writers converge.
//! * `leases.rs` — stampede protection: which node computes a missed key
//!   while the others wait for its value (leases settled by the bus order).
//! * `trust.rs` — when L1 may answer reads at all (the lease the subscriber's
//!   PINGs keep extending).
//! * `lifecycle.rs` — starting the bus threads, settling changes in flight,
//!   closing.
//! * `simulation.rs` — a deterministic simulation of several nodes, one L2 and
//!   one ordered bus that checks all of the above under random interleavings.

mod apply;
mod change;
mod leases;
mod lifecycle;
mod pending;
#[cfg(test)]
mod simulation;
mod trust;

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::sync::{Mirrored, Mutex};

use crate::bus::Bus;
use crate::config::Config;
use crate::l1::{keep_for, Slot, Ticket, L1};
use crate::record::Record;
use crate::stats::Stats;

pub(crate) use change::{Matcher, Write};
use leases::Leases;
pub(crate) use leases::Standing;
pub(crate) use lifecycle::Settling;
pub(crate) use pending::ChangeId;
use pending::Pending;
use trust::Trust;

/// One store's native state.
pub(crate) struct Node {
    /// Random id of this node (this process's store); a forked child gets a new one.
    pub(crate) id: u64,
    /// The in-process entries.
    pub(crate) l1: L1,
    /// Event counters.
    pub(crate) stats: Arc<Stats>,
    /// The bus, when sync is on.
    pub(crate) bus: Option<Arc<Bus>>,
    pending: Mirrored<Pending>,
    leases: Leases,
    trust: Trust,
    config: Config,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Node {
    /// A node with an empty L1 and, with bus settings, a bus not yet started
    /// (see [`Node::start`]).
    fn new(config: Config, id: u64) -> Node {
        let stats = Arc::new(Stats::default());
        Node {
            id,
            l1: L1::new(config.size, config.l1_expires_in),
            bus: config
                .bus
                .clone()
                .map(|settings| Arc::new(Bus::new(settings, id, Arc::clone(&stats)))),
            stats,
            pending: Mirrored::default(),
            leases: Leases::default(),
            trust: Trust::default(),
            config,
            threads: Mutex::new(Vec::new()),
        }
    }

    /// The slot under `key`, when L1 may be trusted.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Arc<Slot>> {
        if self.trusted() {
            self.l1.get(key)
        } else {
            None
        }
    }

    /// The ticket for a fill of `key` (see [`L1::fill`]).
    pub(crate) fn ticket(&self) -> Ticket {
        self.l1.ticket()
    }

    /// Installs a value read from L2, unless the key changed since `ticket` or L1
    /// is not trusted (the subscription could be missing the change that would
    /// refuse it).
    pub(crate) fn fill(
        &self,
        key: &[u8],
        record: Record,
        keep_for_seconds: Option<f64>,
        ticket: Ticket,
    ) -> bool {
        self.trusted()
            && self
                .l1
                .fill(key, record, keep_for(keep_for_seconds), ticket)
    }

    /// Removes `key` from this node's L1 only, as when an entry turns out to be
    /// expired or unreadable here; other nodes judge their own copies.
    pub(crate) fn forget(&self, key: &[u8]) -> bool {
        self.l1.remove(key)
    }

    /// Whether lookups leave expired entries in L1 (`fail_safe:`; see
    /// [`Config::keep_expired`]).
    pub(crate) fn keeps_expired(&self) -> bool {
        self.config.keep_expired
    }

    /// Number of local changes queued or under way.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.lock().len()
    }
}
