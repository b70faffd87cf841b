//! A node: this process's L1 and, with sync on, its membership of the bus.
//!
//! Local changes go into L1 at once (read-your-writes) and into the outbox; the
//! subscriber thread applies every message of the channel, the node's own echoes
//! included, in the order Redis delivers them ([`Node::apply`]). The rules that
//! make the nodes converge are in `pending.rs`; the ones here decide what each
//! message does to L1.
//!
//! **Trust.** L1 is answered from only while the subscription is known to be
//! live: each answered PING extends a lease to the PING's send time plus the
//! health timeout, and a read checks the lease. A stalled server, a dropped
//! connection, a starved subscriber thread or a forked child without bus threads
//! all make the lease run out, and reads fall through to L2. Each (re)subscription
//! drops everything L1 held (one epoch bump), since messages may have been missed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::bus::message::{self, Batch, Change, Op};
use crate::bus::outbox::Outbox;
use crate::bus::settings::BusSettings;
use crate::config::Config;
use crate::glob;
use crate::l1::{keep_for, Slot, Ticket, L1};
use crate::pending::{Echo, Pending};
use crate::record::Record;
use crate::stats::Stats;

/// Nanoseconds on a monotonic clock shared by every node of the process.
pub fn process_nanos() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The sync half of a node.
pub struct Bus {
    /// Where and how to reach Redis.
    pub settings: BusSettings,
    /// Changes waiting for the publisher thread.
    pub outbox: Outbox,
    pending: Mutex<Pending>,
    /// Reads may use L1 until this instant (process_nanos); 0 when untrusted.
    trusted_until: AtomicU64,
    connected: Mutex<bool>,
    connection_changed: Condvar,
    closed: AtomicBool,
}

/// One store's native state.
pub struct Node {
    /// Random id of this node (this process's store); a forked child gets a new one.
    pub id: u64,
    /// The in-process entries.
    pub l1: L1,
    /// Event counters.
    pub stats: Stats,
    /// The bus, when sync is on.
    pub bus: Option<Bus>,
    config: Config,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// How a local write treats an existing entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Replace whatever is there.
    Replace,
    /// Store only if no live entry is there (`unless_exist:`, without an L2).
    UnlessExist,
}

impl Node {
    /// A node with an empty L1; with bus settings, its publisher and subscriber
    /// threads are started (connecting in the background, never blocking here).
    pub fn start(config: Config) -> Arc<Node> {
        let node = Arc::new(Node {
            id: random_id(),
            l1: L1::new(config.size),
            stats: Stats::default(),
            bus: config.bus.clone().map(|settings| Bus {
                outbox: Outbox::new(settings.queue_capacity),
                settings,
                pending: Mutex::new(Pending::default()),
                trusted_until: AtomicU64::new(0),
                connected: Mutex::new(false),
                connection_changed: Condvar::new(),
                closed: AtomicBool::new(false),
            }),
            config,
            threads: Mutex::new(Vec::new()),
        });
        if node.bus.is_some() {
            let publisher = node.clone();
            let subscriber = node.clone();
            let mut threads = node.threads.lock();
            threads.push(spawn("sms-publisher", move || {
                crate::bus::publisher::run(&publisher)
            }));
            threads.push(spawn("sms-subscriber", move || {
                crate::bus::subscriber::run(&subscriber)
            }));
        }
        node
    }

    /// A fresh node with the same configuration (for a forked child).
    pub fn respawn(&self) -> Arc<Node> {
        Node::start(self.config.clone())
    }

    /// Whether reads may be answered from L1 now.
    pub fn trusted(&self) -> bool {
        self.bus
            .as_ref()
            .is_none_or(|bus| process_nanos() < bus.trusted_until.load(Ordering::Acquire))
    }

    /// The slot under `key`, when L1 may be trusted.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Slot>> {
        if self.trusted() {
            self.l1.get(key)
        } else {
            None
        }
    }

    /// The ticket for a fill of `key` (see [`L1::fill`]).
    pub fn ticket(&self) -> Ticket {
        self.l1.ticket()
    }

    /// Installs a value read from L2, unless the key changed since `ticket` or L1
    /// is not trusted (the subscription could be missing the change that would
    /// refuse it).
    pub fn fill(
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

    /// Registers a local change to `key` before its L2 write, so that changes from
    /// other nodes arriving meanwhile are noticed. Ended by [`Node::put`] or
    /// [`Node::remove`] with `begun`, or by [`Node::abandon`].
    pub fn begin(&self, key: &[u8]) {
        if let Some(bus) = &self.bus {
            bus.pending.lock().begin(key);
        }
    }

    /// A begun change failed before reaching L1.
    pub fn abandon(&self, key: &[u8]) {
        if let Some(bus) = &self.bus {
            bus.pending.lock().abandon(key);
        }
    }

    /// Stores a value written by this process and, with `publish`, queues it for
    /// every other node (by value up to `broadcast_max_bytes`, else as an
    /// invalidation). Returns false only when `UnlessExist` found a live entry.
    pub fn put(
        &self,
        key: &[u8],
        record: Record,
        keep_for_seconds: Option<f64>,
        mode: Write,
        publish: bool,
        begun: bool,
    ) -> bool {
        let keep = keep_for(keep_for_seconds);
        let Some(bus) = self.bus.as_ref().filter(|_| publish) else {
            return self.change_silently(key, begun, || self.store(key, record, keep, mode));
        };
        let mut pending = bus.pending.lock();
        if mode == Write::UnlessExist && self.get(key).is_some() {
            if begun {
                pending.abandon(key);
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
        let seq = self.queue(bus, op);
        pending.queued(key, seq, begun);
        // A change from another node already arrived while this one was under
        // way: its echo will invalidate the key everywhere, so don't serve it here.
        if pending.is_conflicted(key) {
            self.l1.remove(key);
        } else {
            self.l1.insert(key, record, keep);
        }
        true
    }

    /// Removes `key` from L1 and, with `publish`, from every other node's.
    /// Returns whether a live entry was here.
    pub fn remove(&self, key: &[u8], publish: bool, begun: bool) -> bool {
        let Some(bus) = self.bus.as_ref().filter(|_| publish) else {
            return self.change_silently(key, begun, || self.l1.remove(key));
        };
        let mut pending = bus.pending.lock();
        let seq = self.queue(bus, Op::Invalidate { key: key.to_vec() });
        pending.queued(key, seq, begun);
        self.l1.remove(key)
    }

    /// Drops every entry here and, with `publish`, in every other node.
    pub fn clear(&self, publish: bool) {
        match &self.bus {
            Some(bus) if !publish => {
                let mut pending = bus.pending.lock();
                pending.overridden_here_where(|_| true);
                self.l1.clear();
            }
            Some(bus) => {
                let mut pending = bus.pending.lock();
                // This node's own writes in flight are not ordered against the
                // clear by any lock: one whose L2 write came before the L2 clear
                // may still be published after the Clear, so it must settle as
                // conflicted, exactly as if another node had cleared.
                pending.touch_all();
                self.queue(bus, Op::Clear);
                self.l1.clear();
            }
            None => self.l1.clear(),
        }
    }

    /// Removes `keys` (the local matches of a delete_matched) and, with
    /// `publish`, makes every other node drop the keys matching `glob`, or
    /// everything when the matcher was not a glob.
    pub fn delete_matched(&self, keys: &[Box<[u8]>], glob: Option<&[u8]>, publish: bool) -> usize {
        let mut removed = 0;
        let _pending = self.bus.as_ref().map(|bus| {
            let mut pending = bus.pending.lock();
            if publish {
                // As for clear: writes in flight here are not ordered against it.
                match glob {
                    Some(glob) => {
                        pending.touched_by_peer_where(|key| crate::glob::matches(glob, key))
                    }
                    None => pending.touch_all(),
                }
                let op = glob.map_or(Op::Clear, |glob| Op::DeleteMatched {
                    glob: glob.to_vec(),
                });
                self.queue(bus, op);
            } else {
                let doomed: std::collections::HashSet<&[u8]> =
                    keys.iter().map(|key| &**key).collect();
                pending.overridden_here_where(|key| doomed.contains(key));
            }
            pending
        });
        for key in keys {
            removed += usize::from(self.l1.remove(key));
        }
        removed
    }

    /// Applies a change that tells no other node (`silent: true`, or no bus):
    /// under the pending lock, so that a published change to the key still in
    /// flight does not put its value back when it echoes.
    fn change_silently<T>(&self, key: &[u8], begun: bool, change: impl FnOnce() -> T) -> T {
        let Some(bus) = &self.bus else {
            return change();
        };
        let mut pending = bus.pending.lock();
        if begun {
            pending.abandon(key);
        }
        pending.overridden_here(key);
        change()
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

    fn queue(&self, bus: &Bus, op: Op) -> u64 {
        let (seq, queued) = bus.outbox.push(op);
        if !queued {
            Stats::bump(&self.stats.dropped);
        }
        seq
    }

    /// Decodes and applies one payload from the bus; garbage is counted and dropped.
    pub fn receive(&self, payload: &[u8]) {
        let Some(bus) = &self.bus else { return };
        Stats::bump(&self.stats.received);
        match message::decode(
            payload,
            bus.settings.secret.as_ref(),
            bus.settings.max_message_bytes(),
        ) {
            Ok(batch) if batch.changes.iter().all(well_formed) => self.apply(batch),
            _ => Stats::bump(&self.stats.rejected),
        }
    }

    /// Applies a batch in order: the node's own echoes settle its pending changes,
    /// other nodes' changes update L1 (or, for keys with a local change in flight,
    /// mark it conflicted and drop the key, since the local change comes later on
    /// the bus and will decide).
    pub fn apply(&self, batch: Batch) {
        let Some(bus) = &self.bus else { return };
        let own = batch.sender == self.id;
        for Change { seq, op } in batch.changes {
            // One change at a time under the lock: a Ruby thread's begin or put
            // never waits behind a whole batch.
            let mut pending = bus.pending.lock();
            Stats::bump(&self.stats.applied);
            if own {
                for key in pending.take_lost_before(seq) {
                    self.l1.remove(&key);
                    self.queue(
                        bus,
                        Op::Invalidate {
                            key: key.into_vec(),
                        },
                    );
                }
                self.apply_own(bus, &mut pending, seq, op);
            } else {
                self.apply_peer(&mut pending, op);
            }
            // Stamped after each change is in L1: a reader that sees this
            // change and then reads the stamp gets when it became visible (or,
            // in the instant between the two, an earlier stamp).
            self.stats.last_applied_at.store(
                Stats::monotonic_nanos(),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    fn apply_own(&self, bus: &Bus, pending: &mut Pending, seq: u64, op: Op) {
        match op {
            Op::Put {
                key,
                record,
                keep_for: keep,
            } => match pending.echo(&key, seq) {
                Echo::Settle | Echo::Unknown => self.l1.insert(&key, record, keep_for(keep)),
                Echo::InPlace => {}
                Echo::Conflicted => {
                    self.l1.remove(&key);
                    Stats::bump(&self.stats.conflicts);
                    self.queue(bus, Op::Invalidate { key });
                }
                Echo::Superseded => {}
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
                pending.disturb_where(|key| glob::matches(&glob, key));
                self.remove_matching(&glob);
            }
            Op::Marker => {}
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
                pending.touched_by_peer_where(|key| glob::matches(&glob, key));
                self.remove_matching(&glob);
            }
            Op::Marker => {}
        }
    }

    fn remove_matching(&self, glob: &[u8]) {
        for key in self.l1.keys() {
            if glob::matches(glob, &key) {
                self.l1.remove(&key);
            }
        }
    }

    /// The subscription is (re)established: whatever L1 held may have missed
    /// messages, so it is dropped; local changes in flight can no longer be judged
    /// and become conflicted; a marker is sent so its echo settles the changes
    /// published while the subscription was down.
    pub fn subscribed(&self) {
        let Some(bus) = &self.bus else { return };
        {
            let mut pending = bus.pending.lock();
            pending.touch_all();
            self.l1.clear();
            self.queue(bus, Op::Marker);
        }
        self.extend_trust(process_nanos());
        *bus.connected.lock() = true;
        bus.connection_changed.notify_all();
    }

    /// The subscription is lost or stalled: stop trusting L1 at once.
    pub fn unsubscribed(&self) {
        let Some(bus) = &self.bus else { return };
        bus.trusted_until.store(0, Ordering::Release);
        *bus.connected.lock() = false;
        bus.connection_changed.notify_all();
    }

    /// A PING sent at `sent_at` (process_nanos) was answered: every message
    /// published before then has been applied, so L1 is current as of then.
    pub fn extend_trust(&self, sent_at: u64) {
        if let Some(bus) = &self.bus {
            let until = sent_at.saturating_add(duration_nanos(bus.settings.health.timeout));
            bus.trusted_until.fetch_max(until, Ordering::AcqRel);
        }
    }

    /// Whether the subscription is up.
    pub fn connected(&self) -> bool {
        self.bus.as_ref().is_some_and(|bus| *bus.connected.lock())
    }

    /// Waits until the subscription is up or `timeout` passes; returns whether it is.
    pub fn wait_for_connection(&self, timeout: Duration) -> bool {
        let Some(bus) = &self.bus else { return false };
        let deadline = Instant::now() + timeout;
        let mut connected = bus.connected.lock();
        while !*connected && !self.is_closed() {
            if bus
                .connection_changed
                .wait_until(&mut connected, deadline)
                .timed_out()
            {
                break;
            }
        }
        *connected
    }

    /// Waits until everything queued so far has been published or `timeout`
    /// passes; returns whether it was. True at once without a bus.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.bus
            .as_ref()
            .is_none_or(|bus| bus.outbox.wait_published(Instant::now() + timeout))
    }

    /// Number of local changes waiting for their echo.
    pub fn pending_len(&self) -> usize {
        self.bus.as_ref().map_or(0, |bus| bus.pending.lock().len())
    }

    /// Whether close was called.
    pub fn is_closed(&self) -> bool {
        self.bus
            .as_ref()
            .is_some_and(|bus| bus.closed.load(Ordering::Acquire))
    }

    /// Stops the bus threads: the publisher sends what is queued (while it can)
    /// and exits, the subscriber leaves within one health interval. Waits for
    /// both up to `timeout`; returns whether they ended. Idempotent.
    pub fn close(&self, timeout: Duration) -> bool {
        if let Some(bus) = &self.bus {
            bus.closed.store(true, Ordering::Release);
            bus.outbox.close();
            bus.trusted_until.store(0, Ordering::Release);
            bus.connection_changed.notify_all();
        }
        let deadline = Instant::now() + timeout;
        let mut threads = self.threads.lock();
        while threads.iter().any(|thread| !thread.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let finished = threads.iter().all(JoinHandle::is_finished);
        if finished {
            threads.drain(..).for_each(|thread| {
                let _ = thread.join();
            });
        }
        finished
    }
}

impl Bus {
    /// Whether the node is shutting down.
    pub fn closing(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Whether a change from the bus may be applied: a stored record must decode.
fn well_formed(change: &Change) -> bool {
    match &change.op {
        Op::Put { record, .. } => record.check().is_ok(),
        _ => true,
    }
}

fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .expect("the OS can start a thread")
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

#[cfg(test)]
impl Node {
    /// A node with a bus but no threads, for driving the ordering logic by hand.
    fn detached(id: u64) -> Node {
        let settings = crate::bus::settings::BusSettings::new(
            &crate::bus::settings::RedisOption::default(),
            "test",
            None,
            crate::bus::settings::Health {
                timeout: Duration::from_secs(3600),
                ..Default::default()
            },
            64 * 1024,
            1_000_000,
        )
        .expect("valid settings");
        let config = Config::new(1 << 24).expect("valid size").with_bus(settings);
        Node {
            id,
            l1: L1::new(config.size),
            stats: Stats::default(),
            bus: config.bus.clone().map(|settings| Bus {
                outbox: Outbox::new(settings.queue_capacity),
                settings,
                pending: Mutex::new(Pending::default()),
                trusted_until: AtomicU64::new(0),
                connected: Mutex::new(false),
                connection_changed: Condvar::new(),
                closed: AtomicBool::new(false),
            }),
            config,
            threads: Mutex::new(Vec::new()),
        }
    }
}

#[cfg(test)]
mod simulation {
    //! Several nodes, one L2 and one totally ordered bus, driven step by step in
    //! random interleavings: after everything settles, every L1 must agree with L2.

    use std::collections::HashMap;

    use super::*;
    use crate::record::Kind;

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A local operation in progress, one step at a time.
    enum Task {
        /// A write or delete begun; its L2 step is next.
        Change {
            node: usize,
            key: Vec<u8>,
            value: Option<String>,
        },
        /// Its L2 step done; L1 and the outbox are next.
        Finish {
            node: usize,
            key: Vec<u8>,
            value: Option<String>,
        },
        /// A read-through fill: ticket taken, L2 read next.
        FillRead {
            node: usize,
            key: Vec<u8>,
            ticket: Ticket,
        },
        /// L2 read done; the fill is next.
        FillInstall {
            node: usize,
            key: Vec<u8>,
            value: Option<String>,
            ticket: Ticket,
        },
        /// A clear: L2 cleared; L1 and the outbox are next.
        Clear { node: usize },
    }

    struct World {
        nodes: Vec<Node>,
        l2: HashMap<Vec<u8>, String>,
        log: Vec<Vec<u8>>,
        delivered: Vec<usize>,
        tasks: Vec<Task>,
        rng: Rng,
        counter: usize,
        down: Vec<bool>,
        trace: Vec<String>,
    }

    fn record(value: &str) -> Record {
        Record::new(Kind::Utf8, value.as_bytes().to_vec())
    }

    impl World {
        fn new(nodes: usize, seed: u64) -> World {
            let nodes: Vec<Node> = (0..nodes as u64).map(|id| Node::detached(id + 1)).collect();
            for node in &nodes {
                node.extend_trust(process_nanos());
            }
            World {
                trace: Vec::new(),
                down: vec![false; nodes.len()],
                delivered: vec![0; nodes.len()],
                nodes,
                l2: HashMap::new(),
                log: Vec::new(),
                tasks: Vec::new(),
                rng: Rng(seed | 1),
                counter: 0,
            }
        }

        fn key(&mut self) -> Vec<u8> {
            format!("k{}", self.rng.below(3)).into_bytes()
        }

        fn step(&mut self) {
            let n = self.nodes.len();
            match self.rng.below(13) {
                10 => {
                    let node = self.rng.below(n);
                    self.l2.clear();
                    self.trace.push(format!("n{node} clears L2"));
                    self.tasks.push(Task::Clear { node });
                }
                11 => {
                    // The subscription drops; whatever is published until it is
                    // back never reaches this node.
                    let node = self.rng.below(n);
                    if self.down[node] {
                        self.trace.push(format!(
                            "n{node} resubscribes, skipping log {}..{}",
                            self.delivered[node],
                            self.log.len()
                        ));
                        self.delivered[node] = self.log.len();
                        self.down[node] = false;
                        self.nodes[node].subscribed();
                    } else {
                        self.trace.push(format!("n{node} loses its subscription"));
                        self.down[node] = true;
                        self.nodes[node].unsubscribed();
                    }
                }
                12 => {
                    // A PUBLISH fails; whether it reached Redis is unknown.
                    let node = self.rng.below(n);
                    let bus = self.nodes[node].bus.as_ref().unwrap();
                    if !bus.outbox.is_empty() {
                        let changes = crate::bus::publisher::coalesce(
                            bus.outbox.take(1 + self.rng.below(5), usize::MAX).unwrap(),
                        );
                        let reached = self.rng.below(2) == 0;
                        self.trace.push(format!(
                            "n{node} publish fails (reached Redis: {reached}): {changes:?}"
                        ));
                        if reached {
                            let batch = Batch {
                                sender: self.nodes[node].id,
                                changes: changes.clone(),
                            };
                            self.trace.push(format!(
                                "log[{}] = n{node} {:?}",
                                self.log.len(),
                                batch.changes
                            ));
                            self.log.push(message::encode(&batch, None));
                        }
                        self.nodes[node]
                            .bus
                            .as_ref()
                            .unwrap()
                            .outbox
                            .requeue_safely(changes);
                    }
                }
                0 | 1 => {
                    let node = self.rng.below(n);
                    let key = self.key();
                    self.counter += 1;
                    let value = (self.rng.below(5) > 0).then(|| format!("v{}", self.counter));
                    self.trace.push(format!(
                        "n{node} begins {:?} = {value:?}",
                        String::from_utf8_lossy(&key)
                    ));
                    self.nodes[node].begin(&key);
                    self.tasks.push(Task::Change { node, key, value });
                }
                2 => {
                    let node = self.rng.below(n);
                    let key = self.key();
                    if self.nodes[node].get(&key).is_none() {
                        let ticket = self.nodes[node].ticket();
                        self.tasks.push(Task::FillRead { node, key, ticket });
                    }
                }
                3..=5 if !self.tasks.is_empty() => {
                    let index = self.rng.below(self.tasks.len());
                    let task = self.tasks.swap_remove(index);
                    self.advance(task);
                }
                6 | 7 => {
                    let node = self.rng.below(n);
                    self.publish(node);
                }
                _ => {
                    let node = self.rng.below(n);
                    self.deliver(node);
                }
            }
        }

        fn advance(&mut self, task: Task) {
            match task {
                Task::Change { node, key, value } => {
                    self.trace.push(format!(
                        "n{node} L2 {:?} = {value:?}",
                        String::from_utf8_lossy(&key)
                    ));
                    match &value {
                        Some(v) => self.l2.insert(key.clone(), v.clone()),
                        None => self.l2.remove(&key),
                    };
                    self.tasks.push(Task::Finish { node, key, value });
                }
                Task::Finish { node, key, value } => match value.inspect(|v| {
                    self.trace.push(format!(
                        "n{node} finishes {:?} = {v:?}",
                        String::from_utf8_lossy(&key)
                    ))
                }) {
                    Some(v) => {
                        self.nodes[node].put(&key, record(&v), None, Write::Replace, true, true);
                    }
                    None => {
                        self.nodes[node].remove(&key, true, true);
                    }
                },
                Task::FillRead { node, key, ticket } => {
                    let value = self.l2.get(&key).cloned();
                    self.trace.push(format!(
                        "n{node} fill reads L2 {:?} = {value:?} (ticket {ticket})",
                        String::from_utf8_lossy(&key)
                    ));
                    self.tasks.push(Task::FillInstall {
                        node,
                        key,
                        value,
                        ticket,
                    });
                }
                Task::FillInstall {
                    node,
                    key,
                    value,
                    ticket,
                } => {
                    if let Some(v) = value {
                        let done = self.nodes[node].fill(&key, record(&v), None, ticket);
                        self.trace.push(format!(
                            "n{node} fill {:?} = {v:?}: installed {done}",
                            String::from_utf8_lossy(&key)
                        ));
                    }
                }
                Task::Clear { node } => {
                    self.trace
                        .push(format!("n{node} clears L1 and queues Clear"));
                    self.nodes[node].clear(true);
                }
            }
        }

        fn publish(&mut self, node: usize) {
            let bus = self.nodes[node].bus.as_ref().unwrap();
            if bus.outbox.is_empty() {
                return;
            }
            let changes = crate::bus::publisher::coalesce(
                bus.outbox.take(1 + self.rng.below(5), usize::MAX).unwrap(),
            );
            let batch = Batch {
                sender: self.nodes[node].id,
                changes,
            };
            self.trace.push(format!(
                "log[{}] = n{node} {:?}",
                self.log.len(),
                batch.changes
            ));
            self.log.push(message::encode(&batch, None));
        }

        fn deliver(&mut self, node: usize) {
            if self.down[node] {
                return;
            }
            if let Some(payload) = self.log.get(self.delivered[node]) {
                self.trace
                    .push(format!("n{node} applies log[{}]", self.delivered[node]));
                self.nodes[node].receive(payload);
                self.delivered[node] += 1;
            }
        }

        fn settle(&mut self) {
            while let Some(task) = self.tasks.pop() {
                self.advance(task);
            }
            for node in 0..self.nodes.len() {
                if self.down[node] {
                    self.delivered[node] = self.log.len();
                    self.down[node] = false;
                    self.nodes[node].subscribed();
                }
            }
            loop {
                let mut moved = false;
                for node in 0..self.nodes.len() {
                    if !self.nodes[node].bus.as_ref().unwrap().outbox.is_empty() {
                        self.publish(node);
                        moved = true;
                    }
                }
                for node in 0..self.nodes.len() {
                    while self.delivered[node] < self.log.len() {
                        self.deliver(node);
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }

        fn check(&self, seed: u64) {
            for (index, node) in self.nodes.iter().enumerate() {
                assert_eq!(
                    node.pending_len(),
                    0,
                    "seed {seed}: node {index} has pending changes left"
                );
                for key in node.l1.keys() {
                    let held = node
                        .get(&key)
                        .map(|slot| String::from_utf8(slot.record.payload.to_vec()).unwrap());
                    assert_eq!(
                        held.as_deref(),
                        self.l2.get(&*key.to_vec()).map(String::as_str),
                        "seed {seed}: node {index} holds {:?} for {:?}; L2 holds {:?}\n{}",
                        held,
                        String::from_utf8_lossy(&key),
                        self.l2.get(&*key.to_vec()),
                        self.trace.join("\n")
                    );
                }
            }
        }
    }

    #[test]
    fn the_classic_reordering_is_detected_and_invalidated() {
        // A writes L2, B writes L2, B publishes, A publishes: L2 holds B's value
        // while every L1 would hold A's, but for A's conflict detection.
        let mut world = World::new(2, 1);
        let key = b"k".to_vec();
        world.nodes[0].begin(&key);
        world.l2.insert(key.clone(), "a".into());
        world.nodes[1].begin(&key);
        world.l2.insert(key.clone(), "b".into());
        world.nodes[1].put(&key, record("b"), None, Write::Replace, true, true);
        world.publish(1);
        world.nodes[0].put(&key, record("a"), None, Write::Replace, true, true);
        world.publish(0);
        world.settle();
        world.check(1);
        assert!(world.nodes.iter().all(|node| node.l1.get(&key).is_none()));
        assert_eq!(Stats::get(&world.nodes[0].stats.conflicts), 1);
    }

    #[test]
    fn an_unopposed_write_reaches_every_node_by_value() {
        let mut world = World::new(3, 2);
        world.nodes[0].begin(b"k");
        world.l2.insert(b"k".to_vec(), "v".into());
        world.nodes[0].put(b"k", record("v"), None, Write::Replace, true, true);
        world.settle();
        world.check(2);
        for node in &world.nodes {
            assert_eq!(&*node.l1.get(b"k").unwrap().record.payload, b"v");
        }
    }

    #[test]
    fn random_interleavings_converge_to_l2() {
        // Settling and checking after each round, not just at the end, so that a
        // divergence is seen before later writes to the same key can mend it.
        let seeds: u64 = std::env::var("SIMULATION_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(400);
        for seed in 1..=seeds {
            let mut world = World::new(
                2 + (seed % 3) as usize,
                seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            for _ in 0..12 {
                for _ in 0..25 {
                    world.step();
                }
                world.settle();
                world.check(seed);
            }
        }
    }
}
