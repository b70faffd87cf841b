//! The subscriber thread: keeps a subscription to the channel, applies every
//! message to L1 as it arrives (without the GVL; nothing here touches Ruby), and
//! PINGs the server every health interval. An answered PING extends the node's
//! trust in L1; an unanswered one (a stalled or unreachable server) ends the
//! subscription, which is then rebuilt with capped exponential backoff, forever.

use std::time::{Duration, Instant};

use redis::{Connection, RedisResult, Value};

use super::failure::{describe, describe_at, interrupted};
use super::log;
use super::plain_subscription::PlainSubscription;
use super::{Bus, Member, PubSub};
use crate::clock;

/// Runs until the bus closes.
pub(crate) fn run(bus: &Bus, member: &dyn Member) {
    super::thread::prepare();
    let mut backoff = Duration::from_millis(10);
    let mut subscribed_before = false;
    let plain = PlainSubscription::fits(&bus.settings);
    while !bus.closing() {
        let cause = if plain {
            match PlainSubscription::open(&bus.settings) {
                Ok(mut subscription) => {
                    backoff = Duration::from_millis(10);
                    let server = &bus.settings.description;
                    listen(
                        bus,
                        member,
                        &mut subscription,
                        server,
                        &mut subscribed_before,
                    )
                }
                Err(error) => Some(describe(&error, &bus.settings)),
            }
        } else {
            match super::connect(&bus.settings) {
                Ok(mut link) => {
                    backoff = Duration::from_millis(10);
                    match link.pubsub {
                        PubSub::Classic => listen(
                            bus,
                            member,
                            &mut link.connection,
                            &link.server,
                            &mut subscribed_before,
                        ),
                        PubSub::Sharded | PubSub::Broadcast => super::shard_subscriber::listen(
                            bus,
                            member,
                            &mut link,
                            &mut subscribed_before,
                        ),
                    }
                }
                Err(cause) => Some(cause),
            }
        };
        bus.unsubscribed(member, cause);
        if !super::pause(backoff, || bus.closing()) {
            break;
        }
        backoff = (backoff * 2).min(bus.settings.health.reconnect_max);
    }
    bus.unsubscribed(member, None);
}

/// A connection the subscriber can subscribe on, in RESP2: redis-rs's, or a
/// plain one (`plain_subscription.rs`) where nothing needs redis-rs.
trait Subscribe {
    /// The connection once subscribed.
    type Subscribed: Subscription;
    fn set_read_timeout(&mut self, timeout: Duration) -> RedisResult<()>;
    /// The server's epoch for the channel's log (None without a log, or
    /// when it cannot be asked).
    fn epoch(&mut self, bus: &Bus) -> Option<String>;
    /// Sends SUBSCRIBE and reads its answer (an error: the refusal).
    fn subscribe(self, channel: &str) -> RedisResult<Self::Subscribed>;
}

/// A subscribed connection.
trait Subscription {
    fn set_read_timeout(&mut self, timeout: Duration) -> RedisResult<()>;
    /// Sends a PING and reads until its answer; returns whether it was
    /// answered as on a subscribed connection. Messages that come before the
    /// answer are handed to `deliver` (channel and payload) in order, or kept
    /// for [`Self::next_message`].
    fn ping(&mut self, deliver: &mut dyn FnMut(&[u8], &[u8])) -> RedisResult<bool>;
    /// Waits (at most the read timeout) for the next message and hands it to
    /// `deliver`.
    fn next_message(&mut self, deliver: &mut dyn FnMut(&[u8], &[u8])) -> RedisResult<()>;
}

/// Subscribes and applies messages until the connection (to `server`) fails,
/// stalls or the bus closes; returns why it ended (None: closing).
fn listen(
    bus: &Bus,
    member: &dyn Member,
    mut connection: impl Subscribe,
    server: &str,
    subscribed_before: &mut bool,
) -> Option<String> {
    let health = &bus.settings.health;
    let settings = &bus.settings;
    let lost = |error: redis::RedisError| Some(describe_at(&error, server, settings));
    let channel = settings.channel.as_bytes();
    // Only the channel's messages: the connection subscribes to nothing
    // else, but a message is applied only from where it was published.
    let mut deliver = |from: &[u8], payload: &[u8]| {
        if from == channel {
            bus.deliver(payload, member);
        }
    };
    // SUBSCRIBE as a plain command, whose reply is read as one: a server
    // that refuses it (NOAUTH, NOPERM for the channel) answers with an error
    // that redis-rs's PubSub::subscribe would drop, leaving a subscription
    // that looks alive and hears nothing. The PING behind it, answered in
    // pub/sub form, proves the subscription is in place.
    if let Err(error) = connection.set_read_timeout(health.timeout) {
        return lost(error);
    }
    // The server's epoch, asked on this connection before it subscribes, so
    // it is the epoch of the server the subscription is at (see `log.rs`).
    let epoch = connection.epoch(bus);
    let sent_at = clock::monotonic_nanos();
    let mut connection = match connection.subscribe(&settings.channel) {
        Ok(subscribed) => subscribed,
        Err(error) => return lost(error),
    };
    // Messages that come before the first PONG are applied after the
    // subscription is counted as begun (which drops L1 and marks the changes
    // in flight conflicted): they may follow a gap. (At most what the
    // channel carries within one health timeout, as redis-rs's PubSub would
    // keep on its path.)
    let mut early: Vec<Vec<u8>> = Vec::new();
    let mut keep = |from: &[u8], payload: &[u8]| {
        if from == channel {
            early.push(payload.to_vec());
        }
    };
    match connection.ping(&mut keep) {
        Ok(true) => {}
        Ok(false) => {
            return Some(format!(
                "{server} did not confirm the subscription to {} (PING was answered as on a \
                 connection not subscribed)",
                settings.channel
            ))
        }
        Err(error) => return lost(error),
    }
    // Subscribed first, then the log is read: whatever is published from
    // here on arrives live (and is skipped if the log already had it).
    let replay = bus.recover(epoch.as_deref());
    bus.confirmed(member, subscribed_before, sent_at, epoch, replay);
    for payload in early {
        bus.deliver(&payload, member);
    }
    // Reads wait at most one interval, so PINGs go out on time whether or
    // not messages are flowing, and a close is noticed within an interval.
    if let Err(error) = connection.set_read_timeout(health.interval) {
        return lost(error);
    }
    let mut next_ping = Instant::now() + health.interval;
    while !bus.closing() {
        if Instant::now() >= next_ping {
            let sent_at = clock::monotonic_nanos();
            next_ping = Instant::now() + health.interval;
            // Messages that arrive before the PONG are applied first (or, on
            // redis-rs's connection, kept and returned next), in order; the
            // PONG proves they are all here.
            if let Err(error) = connection.set_read_timeout(health.timeout) {
                return lost(error);
            }
            match connection.ping(&mut deliver) {
                Ok(_) => bus.pinged(member, sent_at),
                // The read was interrupted (see `interrupted`; the plain
                // connection only, see the PubSub impl): try again at the next
                // interval; the lease covers the gap or runs out honestly.
                Err(error) if interrupted(&error) => {}
                Err(error) if error.is_timeout() => {
                    return Some(format!(
                        "{server} did not answer a PING within {:?} (stalled?)",
                        health.timeout
                    ))
                }
                Err(error) => return lost(error),
            }
            if let Err(error) = connection.set_read_timeout(health.interval) {
                return lost(error);
            }
        }
        match connection.next_message(&mut deliver) {
            Ok(()) => {}
            Err(error) if error.is_timeout() || interrupted(&error) => {}
            Err(error) => return lost(error),
        }
    }
    None
}

impl<'a> Subscribe for &'a mut PlainSubscription {
    type Subscribed = &'a mut PlainSubscription;

    fn set_read_timeout(&mut self, timeout: Duration) -> RedisResult<()> {
        Ok(PlainSubscription::set_read_timeout(self, timeout)?)
    }

    fn epoch(&mut self, _bus: &Bus) -> Option<String> {
        // Never used with a log (see `PlainSubscription::fits`).
        None
    }

    fn subscribe(self, channel: &str) -> RedisResult<Self::Subscribed> {
        PlainSubscription::subscribe(self, channel)?;
        Ok(self)
    }
}

impl Subscription for &mut PlainSubscription {
    fn set_read_timeout(&mut self, timeout: Duration) -> RedisResult<()> {
        Ok(PlainSubscription::set_read_timeout(self, timeout)?)
    }

    fn ping(&mut self, deliver: &mut dyn FnMut(&[u8], &[u8])) -> RedisResult<bool> {
        PlainSubscription::ping(self, deliver)
    }

    fn next_message(&mut self, deliver: &mut dyn FnMut(&[u8], &[u8])) -> RedisResult<()> {
        PlainSubscription::next_message(self, deliver)
    }
}

impl<'a> Subscribe for &'a mut Connection {
    type Subscribed = redis::PubSub<'a>;

    fn set_read_timeout(&mut self, timeout: Duration) -> RedisResult<()> {
        Connection::set_read_timeout(self, Some(timeout))
    }

    fn epoch(&mut self, bus: &Bus) -> Option<String> {
        bus.settings
            .log
            .as_ref()
            .and_then(|_| log::epoch(self).ok())
    }

    fn subscribe(self, channel: &str) -> RedisResult<Self::Subscribed> {
        redis::cmd("SUBSCRIBE").arg(channel).query::<Value>(self)?;
        Ok(self.as_pubsub())
    }
}

/// redis-rs's PubSub keeps the messages that come before a PONG and returns
/// them from `get_message`, in order.
impl Subscription for redis::PubSub<'_> {
    fn set_read_timeout(&mut self, timeout: Duration) -> RedisResult<()> {
        redis::PubSub::set_read_timeout(self, Some(timeout))
    }

    fn ping(&mut self, _deliver: &mut dyn FnMut(&[u8], &[u8])) -> RedisResult<bool> {
        match redis::PubSub::ping::<Value>(self) {
            Ok(answer) => Ok(matches!(answer, Value::Array(_))),
            // redis-rs owes a reply whose read was interrupted, and drops the
            // next value it reads (in RESP2, a message) to pay it: nothing
            // read on this connection can be trusted after that.
            Err(error) if interrupted(&error) => Err(std::io::Error::other(
                "the wait for the answer to a PING was interrupted (the connection would drop a message)",
            )
            .into()),
            Err(error) => Err(error),
        }
    }

    fn next_message(&mut self, deliver: &mut dyn FnMut(&[u8], &[u8])) -> RedisResult<()> {
        let message = self.get_message()?;
        deliver(
            message.get_channel_name().as_bytes(),
            message.get_payload_bytes(),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use super::*;
    use crate::bus::message::{Batch, Change, Op, Rejection};
    use crate::bus::plain_subscription::tests::{
        accept, command, expect, server, settings, CONFIRMED, PONG,
    };
    use crate::stats::Stats;
    use crate::sync::Mutex;

    /// What the node was told, in order.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Member for Recorder {
        fn apply(&self, batch: Batch) {
            let seqs: Vec<u64> = batch.changes.iter().map(|change| change.seq).collect();
            self.0.lock().push(format!("apply {seqs:?}"));
        }
        fn missed(&self, why: Rejection) {
            self.0.lock().push(format!("missed {why:?}"));
        }
        fn subscribed(&self) {
            self.0.lock().push("subscribed".into());
        }
        fn unsubscribed(&self) {}
        fn extend_trust(&self, _sent_at: u64) {}
    }

    #[test]
    fn messages_before_the_first_pong_are_applied_after_the_subscription_began() {
        let bus = Arc::new(Bus::new(
            settings("redis://127.0.0.1:1"),
            1,
            Arc::new(Stats::default()),
        ));
        let batch = Batch {
            sender: 7,
            sent_at: clock::unix_millis(),
            changes: vec![Change {
                seq: 1,
                op: Op::Invalidate { key: b"k".to_vec() },
            }],
        };
        let payload = bus.settings.wire.encode(&batch);
        let (url, script) = server("", "", move |mut stream| {
            accept(&mut stream);
            expect(&mut stream, &["SUBSCRIBE", "ch"]);
            stream.write_all(CONFIRMED).unwrap();
            expect(&mut stream, &["PING"]);
            // Published between the subscription and its proof: it may
            // follow a gap, as everything before the proof may.
            let mut early = crate::bus::plain_subscription::tests::message(&payload);
            early.extend_from_slice(PONG);
            stream.write_all(&early).unwrap();
            // The next health PING finds the connection closed.
            let _ = command(&mut stream);
        });
        let member = Recorder::default();
        let mut subscription =
            PlainSubscription::open(&settings(&url)).expect("the scripted server answers");
        let ended = listen(&bus, &member, &mut subscription, "the server", &mut false);
        assert!(ended.is_some(), "the connection ended");
        assert_eq!(*member.0.lock(), ["subscribed", "apply [1]"]);
        script.join().unwrap();
    }

    extern "C" fn ignore(_: libc::c_int) {}

    #[test]
    fn an_interrupted_ping_ends_a_redis_rs_connection() {
        // SAFETY: installs, for SIGUSR1 (which nothing else in the tests
        // uses), a handler that does nothing and no SA_RESTART, so a read
        // blocked in the thread it is sent to fails with EINTR.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut())
        };
        assert_eq!(installed, 0);
        let (answer, held) = std::sync::mpsc::channel::<()>();
        let (url, script) = server("", "", move |mut stream| {
            accept(&mut stream);
            expect(&mut stream, &["SUBSCRIBE", "ch"]);
            stream.write_all(CONFIRMED).unwrap();
            expect(&mut stream, &["PING"]);
            // The PONG only once the wait for it has ended.
            held.recv().unwrap();
            let mut late = PONG.to_vec();
            late.extend_from_slice(&crate::bus::plain_subscription::tests::message(b"after"));
            let _ = stream.write_all(&late);
        });
        let settings = settings(&url);
        let mut connection = crate::bus::open(&settings, settings.connection.addr(), false)
            .expect("the scripted server answers");
        let mut pubsub = Subscribe::subscribe(&mut connection, "ch").unwrap();
        Subscription::set_read_timeout(&mut pubsub, Duration::from_secs(5)).unwrap();
        // SAFETY: pthread_self only names the calling thread.
        let pinging = unsafe { libc::pthread_self() };
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let interrupter = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(20));
                    // SAFETY: the pinging thread joins this one before it
                    // can end, and has the do-nothing handler for SIGUSR1.
                    unsafe { libc::pthread_kill(pinging, libc::SIGUSR1) };
                }
            })
        };
        let ended = Subscription::ping(&mut pubsub, &mut |_, _| {});
        done.store(true, std::sync::atomic::Ordering::Release);
        interrupter.join().unwrap();
        answer.send(()).unwrap();
        // Taken for an interruption, the subscription would go on, and
        // redis-rs would drop "after" to pay for the PONG it owes.
        let ended = ended.unwrap_err();
        assert!(!interrupted(&ended) && !ended.is_timeout(), "{ended}");
        drop(pubsub);
        script.join().unwrap();
    }
}
