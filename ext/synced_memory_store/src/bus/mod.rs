//! The bus: Redis pub/sub carrying every node's changes to every other node.
//! Two native threads per node do the network work, so no Ruby thread ever waits
//! on it and no message needs the GVL to be applied.
//!
//! The bus knows bytes, senders and connections; what a change means to L1 is
//! the node's business. The threads see the node only through [`Member`]:
//! verified batches in, subscription state out.

pub(crate) mod cluster;
pub(crate) mod cluster_settings;
pub(crate) mod direct;
pub(crate) mod events;
pub(crate) mod failure;
pub(crate) mod log;
pub(crate) mod log_settings;
pub(crate) mod message;
pub(crate) mod outbox;
pub(crate) mod plain_subscription;
pub(crate) mod publisher;
pub(crate) mod publisher_watch;
pub(crate) mod redis_option;
pub(crate) mod resp;
pub(crate) mod senders;
pub(crate) mod sentinel;
pub(crate) mod sentinel_settings;
pub(crate) mod settings;
pub(crate) mod shard_subscriber;
pub(crate) mod subscriber;
pub(crate) mod thread;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mirrored, Mutex};
use redis::{Client, Connection, ConnectionAddr, ConnectionInfo, ProtocolVersion, RedisResult};

use crate::stats::Stats;
use direct::Publishing;
use events::{Event, Events};
use log::{Cursor, Entries, Position};
use message::{Batch, Op, Rejection, Wire};
use outbox::Outbox;
use publisher_watch::{PublisherWatch, Verdict};
use senders::Senders;
use settings::BusSettings;

/// What the bus threads need from the node they serve.
pub(crate) trait Member: Send + Sync {
    /// Applies a verified batch, in the order the channel delivered it.
    fn apply(&self, batch: Batch);
    /// A message that may have carried a change could not be applied: whatever
    /// it changed is unknown, as after a lost subscription.
    fn missed(&self, why: Rejection);
    /// The subscription is (re)established: messages may have been missed
    /// while it was down.
    fn subscribed(&self);
    /// The subscription is lost or stalled.
    fn unsubscribed(&self);
    /// A PING sent at `sent_at` (CLOCK_MONOTONIC nanoseconds) was answered:
    /// every message published before then has been applied.
    fn extend_trust(&self, sent_at: u64);
}

/// The sync half of a node: its settings, its outbox, its senders' record and
/// the state of its connection.
pub(crate) struct Bus {
    /// Where and how to reach Redis.
    pub(crate) settings: BusSettings,
    /// The node's id, as it signs its batches.
    pub(crate) sender: u64,
    /// Changes waiting for the publisher thread.
    pub(crate) outbox: Outbox,
    /// The publisher's connection (see `direct.rs`).
    publishing: Mutex<Publishing>,
    /// The process's fork count when the bus was made (see `fork.rs`).
    forks_at_start: u64,
    /// The node's counters.
    pub(crate) stats: Arc<Stats>,
    /// State changes and rejections, for the application.
    pub(crate) events: Events,
    senders: Mutex<Senders>,
    /// Where the subscription stands in the channel's log (see `log.rs`);
    /// only the subscriber thread moves it.
    cursor: Mirrored<Cursor>,
    subscription: Mutex<Subscription>,
    connection_changed: Condvar,
    /// Whether the publisher publishes (see `publisher_watch.rs`); only the
    /// subscriber thread looks.
    publisher_watch: Mutex<PublisherWatch>,
    closed: AtomicBool,
}

/// What the subscription has been through, as far as the application has
/// been told.
#[derive(Default)]
struct Subscription {
    up: bool,
    /// A subscription was up once (the next one is a resubscription).
    ever_up: bool,
    /// The application heard that the bus is down (once per outage).
    down_told: bool,
    /// Why the bus last failed, until a subscription is up again.
    last_error: Option<String>,
    /// The report of a stalled publisher (see `publisher_watch.rs`), shown
    /// before `last_error` until publishing resumes.
    stall: Option<String>,
}

impl Bus {
    /// A bus for the node `sender`, not yet connected.
    pub(crate) fn new(settings: BusSettings, sender: u64, stats: Arc<Stats>) -> Bus {
        Bus {
            outbox: Outbox::new(settings.queue_capacity),
            publishing: Mutex::default(),
            forks_at_start: crate::fork::count(),
            settings,
            sender,
            stats,
            events: Events::default(),
            senders: Mutex::new(Senders::default()),
            cursor: Mirrored::default(),
            subscription: Mutex::new(Subscription::default()),
            connection_changed: Condvar::new(),
            publisher_watch: Mutex::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// Starts the publisher and subscriber threads for `member`.
    pub(crate) fn start(self: &Arc<Self>, member: Arc<dyn Member>) -> Vec<JoinHandle<()>> {
        let publisher = Arc::clone(self);
        let subscriber = Arc::clone(self);
        vec![
            spawn("sms-publisher", move || publisher::run(&publisher)),
            spawn("sms-subscriber", move || {
                subscriber::run(&subscriber, &*member)
            }),
        ]
    }

    /// Queues `op` for publication and sends it from this thread if the
    /// publisher is idle (see `direct.rs`), else wakes the publisher; returns
    /// its sequence number. A change that finds the queue full is counted as
    /// dropped (a clear follows it).
    pub(crate) fn queue(&self, op: Op) -> u64 {
        let (seq, queued) = self.outbox.push_quietly(op);
        if !queued {
            Stats::bump(&self.stats.dropped);
        }
        // The publisher reads a direct send's answer later (see
        // `Outbox::wake_for_answers`); it is woken for what is left queued.
        self.publish_directly();
        self.outbox.wake();
        seq
    }

    /// Checks one payload from the channel and hands it to `member`: a batch
    /// that verifies and is new from its sender is applied; one that may hide
    /// a change is reported as missed; the rest is counted and dropped.
    pub(crate) fn deliver(&self, payload: &[u8], member: &dyn Member) {
        Stats::bump(&self.stats.received);
        // A message published through the channel's log carries its place
        // there behind it (see `log.rs`); one that says so and does not is
        // not what the script published.
        let (message, at) = if Wire::is_logged(payload) {
            match log::split_trailer(payload) {
                Some((message, at)) => (message, Some(at)),
                None => return self.reject(Rejection::Malformed, member),
            }
        } else {
            (payload, None)
        };
        // Leases are never logged (see publisher.rs): they neither move nor
        // reset the node's place in the log.
        if !Wire::carries_leases(message)
            && self.moves_cursor(at)
            && self.cursor.lock().replayed(at)
        {
            // Applied from the stream while resubscribing (see `resume`).
            return;
        }
        self.receive(message, at, member);
    }

    /// Verifies `message` (at `at` in the log, if it came through it) and
    /// hands it to `member`.
    fn receive(&self, message: &[u8], at: Option<Position>, member: &dyn Member) {
        let verdict = self
            .settings
            .wire
            .decode(message)
            .and_then(|batch| self.admit(&batch).map(|()| batch));
        match verdict {
            Ok(batch) => {
                let leases = batch.carries_leases();
                member.apply(batch);
                // Only an admitted message moves the position: its id is
                // not signed, and a replayed copy with a later id must not
                // make a resubscription skip what it missed.
                if !leases && self.moves_cursor(at) {
                    self.cursor.lock().applied(at);
                }
            }
            Err(why) => self.reject(why, member),
        }
    }

    /// Whether a message at `at` in the log (None: outside it) can move the
    /// cursor (see its [`crate::sync::Summarized`] impl).
    fn moves_cursor(&self, at: Option<Position>) -> bool {
        at.is_some() || self.cursor.summary() != 0
    }

    fn reject(&self, why: Rejection, member: &dyn Member) {
        // The rejection is counted after what it causes (L1 dropped and
        // counted as missed), so whoever sees it counted sees that too.
        if why.may_hide_a_change() {
            member.missed(why);
        }
        self.events.rejected(why);
        Stats::bump(&self.stats.rejected);
    }

    fn admit(&self, batch: &Batch) -> Result<(), Rejection> {
        let (Some(first), Some(last)) = (batch.changes.first(), batch.changes.last()) else {
            return Err(Rejection::Malformed);
        };
        // A sender numbers its changes in order; a batch that does not could
        // make the sender's record go backwards.
        if batch
            .changes
            .windows(2)
            .any(|pair| pair[0].seq >= pair[1].seq)
        {
            return Err(Rejection::Malformed);
        }
        self.senders
            .lock()
            .admit(batch.sender, first.seq, last.seq, batch.sent_at)
            .map_err(|refusal| match refusal {
                senders::Refusal::Replayed => Rejection::Replayed,
                senders::Refusal::BeforeHorizon => Rejection::BeforeHorizon,
            })
    }

    /// What the channel's log holds after the last position this node
    /// applied, if the log is on, the subscription is at a server in the
    /// epoch that position was recorded in, and the stream still holds the
    /// position (so it holds every message since); None otherwise: a gap, L1
    /// must go. Read on a connection of its own, since the subscription's can
    /// only listen.
    pub(crate) fn recover(&self, epoch: Option<&str>) -> Option<Entries> {
        let log = self.settings.log.as_ref()?;
        let epoch = epoch?;
        let position = self.log_position(epoch)?;
        let mut link = connect(&self.settings).ok()?;
        link.connection
            .set_read_timeout(Some(self.settings.health.timeout))
            .ok()?;
        log::read_since(&mut link.connection, log, epoch, position).ok()?
    }

    /// Where a subscription at a server in `epoch` could resume the
    /// channel's log from (see `log.rs`), if the node knows.
    pub(crate) fn log_position(&self, epoch: &str) -> Option<Position> {
        self.cursor.lock().resume_from(epoch)
    }

    /// The subscription is in place, at a server in `epoch` (when the log is
    /// on and it could be asked), proven by a reply to a command sent at
    /// `sent_at` after it: counts a resubscription and starts the lease.
    /// With `replay` (what the log holds since the last position applied),
    /// a resubscription applies it and keeps L1; otherwise the node is told
    /// (and drops L1 if messages may have been missed).
    pub(crate) fn confirmed(
        &self,
        member: &dyn Member,
        subscribed_before: &mut bool,
        sent_at: u64,
        epoch: Option<String>,
        replay: Option<Entries>,
    ) {
        let again = *subscribed_before;
        if again {
            Stats::bump(&self.stats.reconnects);
        }
        *subscribed_before = true;
        let now = crate::clock::unix_millis();
        self.began(now, epoch, replay.filter(|_| again), member);
        member.extend_trust(sent_at);
    }

    /// A subscription began at `now` (wall clock, ms) at a server in `epoch`:
    /// it resumes the log with `replay`, or starts afresh without.
    pub(crate) fn began(
        &self,
        now: u64,
        epoch: Option<String>,
        replay: Option<Entries>,
        member: &dyn Member,
    ) {
        match replay {
            Some(entries) => self.resume(now, entries, member),
            None => {
                self.cursor.lock().restart(epoch);
                self.subscribed(now, member);
            }
        }
    }

    /// A subscription began at `now` (wall clock, ms) and the log holds
    /// every message since the last one applied: they are applied, in the
    /// channel's order and through the same checks as live ones, and L1 is
    /// kept. The floor of `senders.rs` moves only after them: they were
    /// sent during the previous subscription or since, and are news.
    fn resume(&self, now: u64, entries: Entries, member: &dyn Member) {
        let through = entries.last().map(|(at, _)| *at);
        for (at, message) in &entries {
            Stats::bump(&self.stats.replayed);
            self.receive(message, Some(*at), member);
        }
        self.cursor.lock().replay_ended(through);
        self.senders.lock().subscribed(now);
        Stats::bump(&self.stats.resumed);
        self.up(false);
    }

    /// A subscription began at `now` (wall clock, ms): messages may have
    /// been missed while there was none (see `senders.rs` and [`Member::subscribed`]).
    pub(crate) fn subscribed(&self, now: u64, member: &dyn Member) {
        self.senders.lock().subscribed(now);
        member.subscribed();
        self.up(true);
    }

    /// The subscription is up; tells the application, saying whether L1 was
    /// dropped.
    fn up(&self, l1_dropped: bool) {
        let event = {
            let mut subscription = self.subscription.lock();
            let again = subscription.ever_up;
            // A stalled publisher is not cured by a new subscription.
            *subscription = Subscription {
                up: true,
                ever_up: true,
                stall: subscription.stall.take(),
                ..Subscription::default()
            };
            if again {
                Event::Resubscribed {
                    reconnects: Stats::get(&self.stats.reconnects),
                    l1_dropped,
                }
            } else {
                Event::Connected
            }
        };
        self.events.push(event);
        self.connection_changed.notify_all();
    }

    /// The subscription is lost or stalled (or could not be made), for
    /// `cause`; the application hears of it once per outage.
    pub(crate) fn unsubscribed(&self, member: &dyn Member, cause: Option<String>) {
        member.unsubscribed();
        let told = {
            let mut subscription = self.subscription.lock();
            subscription.up = false;
            if let Some(cause) = &cause {
                subscription.last_error = Some(cause.clone());
            }
            let tell = !subscription.down_told && !self.closing();
            subscription.down_told |= tell;
            tell.then(|| {
                subscription
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the subscription ended".into())
            })
        };
        if let Some(cause) = told {
            self.events.push(Event::Disconnected { cause });
        }
        self.connection_changed.notify_all();
    }

    /// Something failed talking to the bus (the publisher's connection, say)
    /// without ending the subscription: kept as the last error.
    pub(crate) fn failed(&self, cause: String) {
        self.subscription.lock().last_error = Some(cause);
    }

    /// A PING sent at `sent_at` was answered on the subscription: L1 stays
    /// trusted, and the publisher is watched (see `publisher_watch.rs`).
    pub(crate) fn pinged(&self, member: &dyn Member, sent_at: u64) {
        member.extend_trust(sent_at);
        self.outbox.wake_for_answers();
        let (published_through, last_queued) = self.outbox.progress();
        let health = &self.settings.health;
        let verdict = self.publisher_watch.lock().look(
            published_through,
            last_queued,
            Instant::now(),
            health.reconnect_max + health.timeout,
        );
        match verdict {
            Verdict::Fine => {}
            Verdict::Stalled { waited } => {
                let cause = {
                    let mut subscription = self.subscription.lock();
                    let failure = subscription
                        .last_error
                        .as_ref()
                        .map(|error| format!(" (last failure: {error})"))
                        .unwrap_or_default();
                    let cause = format!(
                        "changes queued here not published for {:.1}s{failure}: \
                         other processes may still hold the values they replace",
                        waited.as_secs_f64()
                    );
                    subscription.stall = Some(cause.clone());
                    cause
                };
                self.events.push(Event::Unpublished { cause, waited });
            }
            Verdict::Resumed => {
                // A PUBLISH went through, and the subscription is up: what
                // failed is over.
                let mut subscription = self.subscription.lock();
                subscription.stall = None;
                subscription.last_error = None;
            }
        }
    }

    /// Why the bus last failed, while it has not recovered (a stalled
    /// publisher first).
    pub(crate) fn last_error(&self) -> Option<String> {
        let subscription = self.subscription.lock();
        subscription
            .stall
            .clone()
            .or_else(|| subscription.last_error.clone())
    }

    /// Whether the subscription is up.
    pub(crate) fn connected(&self) -> bool {
        self.subscription.lock().up
    }

    /// Waits until the subscription is up, the bus closes or `deadline`
    /// passes; returns whether it is up.
    pub(crate) fn wait_for_connection(&self, deadline: Instant) -> bool {
        let mut subscription = self.subscription.lock();
        while !subscription.up && !self.closing() {
            let (woken, timed_out) = self.connection_changed.wait_until(subscription, deadline);
            subscription = woken;
            if timed_out {
                break;
            }
        }
        subscription.up
    }

    /// Tells the threads to finish: the publisher drains the outbox (while
    /// Redis answers) and exits, the subscriber leaves within one health
    /// interval.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.outbox.close();
        self.events.close();
        self.connection_changed.notify_all();
    }

    /// Whether the bus is shutting down.
    pub(crate) fn closing(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A connection to the server that carries the channel, and how the channel
/// is carried there.
pub(crate) struct Link {
    pub(crate) connection: Connection,
    pub(crate) pubsub: PubSub,
    /// Which server answered, for messages and to notice a move to another
    /// (with Sentinel, the primary found, which changes with a failover;
    /// otherwise the bus's description).
    pub(crate) server: String,
}

/// How a channel is published and subscribed to on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PubSub {
    /// One server: `PUBLISH`/`SUBSCRIBE`, in RESP2.
    Classic,
    /// A cluster with sharded pub/sub (Redis 7+): `SPUBLISH`/`SSUBSCRIBE` at
    /// the primary of the channel's slot, in RESP3.
    Sharded,
    /// A cluster without it: `PUBLISH`/`SUBSCRIBE` at that same primary, in
    /// RESP3 (the cluster bus broadcasts to the other nodes).
    Broadcast,
}

impl PubSub {
    /// The command that publishes a message.
    pub(crate) fn publish(self) -> &'static str {
        match self {
            PubSub::Sharded => "SPUBLISH",
            PubSub::Classic | PubSub::Broadcast => "PUBLISH",
        }
    }

    /// The command that subscribes to the channel.
    pub(crate) fn subscribe(self) -> &'static str {
        match self {
            PubSub::Sharded => "SSUBSCRIBE",
            PubSub::Classic | PubSub::Broadcast => "SUBSCRIBE",
        }
    }
}

/// Opens a link to the server that carries the channel (with Sentinel, the
/// primary the sentinels name), within the health timeout; or says why it
/// could not, in words for `stats[:last_error]` (see `failure.rs`).
pub(crate) fn connect(settings: &BusSettings) -> Result<Link, String> {
    if let Some(sentinel) = &settings.sentinel {
        return sentinel.connect(settings);
    }
    match &settings.cluster {
        Some(cluster) => cluster::connect(settings, cluster),
        None => open(settings, settings.connection.addr(), false).map(|connection| Link {
            connection,
            pubsub: PubSub::Classic,
            server: settings.description.clone(),
        }),
    }
    .map_err(|error| failure::describe(&error, settings))
}

/// Opens a connection to `addr` with the settings' credentials, database and
/// TLS material (in RESP3 if `resp3`), within the health timeout.
pub(crate) fn open(
    settings: &BusSettings,
    addr: &ConnectionAddr,
    resp3: bool,
) -> RedisResult<Connection> {
    // The protocol is the bus's choice, not the URL's: the pub/sub code of
    // each link reads the replies of one (a `?protocol=resp3` URL on a
    // RESP2 link left the subscription unconfirmed forever).
    let protocol = if resp3 {
        ProtocolVersion::RESP3
    } else {
        ProtocolVersion::RESP2
    };
    let redis_settings = settings
        .connection
        .redis_settings()
        .clone()
        .set_protocol(protocol);
    let info = settings
        .connection
        .clone()
        .set_addr(addr.clone())
        .set_redis_settings(redis_settings);
    open_info(settings, info)
}

/// Opens a connection as `info` says (a sentinel's has credentials of its
/// own), with the settings' TLS material, within the health timeout.
pub(crate) fn open_info(settings: &BusSettings, info: ConnectionInfo) -> RedisResult<Connection> {
    // rustls needs a process-wide crypto provider before the first TLS
    // handshake; installing it twice is harmless (the second call fails quietly).
    let _ = rustls::crypto::ring::default_provider().install_default();
    // TCP_NODELAY: a message is one small write that should leave at once
    // (over TLS it may be several writes, the later ones otherwise held back
    // by Nagle's algorithm until the first is acknowledged).
    let info = info.set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    let client = match &settings.tls {
        Some(certificates) => Client::build_with_tls(info, certificates.clone())?,
        None => Client::open(info)?,
    };
    let connection = client
        .get_connection_with_timeout(settings.health.timeout.max(Duration::from_millis(100)))?;
    connection.set_write_timeout(Some(settings.health.timeout))?;
    Ok(connection)
}

/// Sleeps `duration` in short steps, returning early (false) once `closing` says so.
pub(crate) fn pause(duration: Duration, closing: impl Fn() -> bool) -> bool {
    let step = Duration::from_millis(10);
    let mut left = duration;
    while !left.is_zero() {
        if closing() {
            return false;
        }
        let now = left.min(step);
        std::thread::sleep(now);
        left -= now;
    }
    !closing()
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .expect("the OS can start a thread")
}

#[cfg(test)]
mod tests {
    use super::message::{Change, Op, Rejection};
    use super::settings::{BusOptions, BusSettings};
    use super::*;

    #[derive(Default)]
    struct Recorder {
        applied: Mutex<Vec<Vec<u64>>>,
        missed: Mutex<Vec<Rejection>>,
    }

    impl Member for Recorder {
        fn apply(&self, batch: Batch) {
            self.applied
                .lock()
                .push(batch.changes.iter().map(|change| change.seq).collect());
        }
        fn missed(&self, why: Rejection) {
            self.missed.lock().push(why);
        }
        fn subscribed(&self) {}
        fn unsubscribed(&self) {}
        fn extend_trust(&self, _sent_at: u64) {}
    }

    fn batch(sender: u64, seqs: &[u64]) -> Batch {
        Batch {
            sender,
            sent_at: crate::clock::unix_millis(),
            changes: seqs
                .iter()
                .map(|&seq| Change {
                    seq,
                    op: Op::Invalidate { key: b"k".to_vec() },
                })
                .collect(),
        }
    }

    #[test]
    fn batches_are_applied_once_in_sequence_and_out_of_order_ones_are_missed() {
        let settings = BusSettings::new(&BusOptions {
            channel: Some("c".into()),
            ..Default::default()
        })
        .expect("valid settings");
        let bus = Bus::new(settings, 1, Arc::new(Stats::default()));
        let member = Recorder::default();
        let deliver =
            |seqs: &[u64]| bus.deliver(&bus.settings.wire.encode(&batch(7, seqs)), &member);

        deliver(&[1, 2]);
        deliver(&[2, 3]); // starts at a number already seen: a replay
        deliver(&[5, 4]); // out of order: could lower the sender's record
        deliver(&[3, 4]);

        assert_eq!(*member.applied.lock(), vec![vec![1, 2], vec![3, 4]]);
        assert_eq!(*member.missed.lock(), vec![Rejection::Malformed]);
        assert_eq!(Stats::get(&bus.stats.rejected), 2);
    }
}
