//! The subscriber thread: keeps a subscription to the channel, applies every
//! message to L1 as it arrives (without the GVL; nothing here touches Ruby), and
//! PINGs the server every health interval. An answered PING extends the node's
//! trust in L1; an unanswered one (a stalled or unreachable server) ends the
//! subscription, which is then rebuilt with capped exponential backoff, forever.

use std::time::{Duration, Instant};

use redis::Connection;

use super::failure::{describe_at, interrupted};
use super::log;
use super::{Bus, Member, PubSub};
use crate::clock;

/// Runs until the bus closes.
pub(crate) fn run(bus: &Bus, member: &dyn Member) {
    super::thread::prepare();
    let mut backoff = Duration::from_millis(10);
    let mut subscribed_before = false;
    while !bus.closing() {
        let cause = match super::connect(&bus.settings) {
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
        };
        bus.unsubscribed(member, cause);
        if !super::pause(backoff, || bus.closing()) {
            break;
        }
        backoff = (backoff * 2).min(bus.settings.health.reconnect_max);
    }
    bus.unsubscribed(member, None);
}

/// Subscribes and applies messages until the connection (to `server`) fails,
/// stalls or the bus closes; returns why it ended (None: closing).
fn listen(
    bus: &Bus,
    member: &dyn Member,
    connection: &mut Connection,
    server: &str,
    subscribed_before: &mut bool,
) -> Option<String> {
    let health = &bus.settings.health;
    let settings = &bus.settings;
    let lost = |error: redis::RedisError| Some(describe_at(&error, server, settings));
    // SUBSCRIBE as a plain command, whose reply is read as one: a server
    // that refuses it (NOAUTH, NOPERM for the channel) answers with an error
    // that redis-rs's PubSub::subscribe would drop, leaving a subscription
    // that looks alive and hears nothing. The PING behind it, answered in
    // pub/sub form, proves the subscription is in place.
    if let Err(error) = connection.set_read_timeout(Some(health.timeout)) {
        return lost(error);
    }
    // The server's epoch, asked on this connection before it subscribes, so
    // it is the epoch of the server the subscription is at (see `log.rs`).
    let epoch = settings
        .log
        .as_ref()
        .and_then(|_| log::epoch(connection).ok());
    let sent_at = clock::monotonic_nanos();
    if let Err(error) = redis::cmd("SUBSCRIBE")
        .arg(&settings.channel)
        .query::<redis::Value>(connection)
    {
        return lost(error);
    }
    let mut pubsub = connection.as_pubsub();
    match pubsub.ping::<redis::Value>() {
        Ok(redis::Value::Array(_)) => {}
        Ok(other) => {
            return Some(format!(
                "{server} did not confirm the subscription to {} (PING answered {other:?})",
                settings.channel
            ))
        }
        Err(error) => return lost(error),
    }
    // Subscribed first, then the log is read: whatever is published from
    // here on arrives live (and is skipped if the log already had it).
    let replay = bus.recover(epoch.as_deref());
    bus.confirmed(member, subscribed_before, sent_at, epoch, replay);
    // Reads wait at most one interval, so PINGs go out on time whether or not
    // messages are flowing, and a close is noticed within an interval.
    if let Err(error) = pubsub.set_read_timeout(Some(health.interval)) {
        return lost(error);
    }
    let mut next_ping = Instant::now() + health.interval;
    while !bus.closing() {
        if Instant::now() >= next_ping {
            let sent_at = clock::monotonic_nanos();
            next_ping = Instant::now() + health.interval;
            // Messages that arrive before the PONG are kept, in order, and
            // returned by get_message below; the PONG proves they are all here.
            if let Err(error) = pubsub.set_read_timeout(Some(health.timeout)) {
                return lost(error);
            }
            match pubsub.ping::<redis::Value>() {
                Ok(_) => bus.pinged(member, sent_at),
                // The read was interrupted (see `interrupted`): try again at the
                // next interval; the lease covers the gap or runs out honestly.
                Err(error) if interrupted(&error) => {}
                Err(error) if error.is_timeout() => {
                    return Some(format!(
                        "{server} did not answer a PING within {:?} (stalled?)",
                        health.timeout
                    ))
                }
                Err(error) => return lost(error),
            }
            if let Err(error) = pubsub.set_read_timeout(Some(health.interval)) {
                return lost(error);
            }
        }
        match pubsub.get_message() {
            Ok(message) => bus.deliver(message.get_payload_bytes(), member),
            Err(error) if error.is_timeout() || interrupted(&error) => {}
            Err(error) => return lost(error),
        }
    }
    None
}
