//! The subscriber thread: keeps a subscription to the channel, applies every
//! message to L1 as it arrives (without the GVL; nothing here touches Ruby), and
//! PINGs the server every health interval. An answered PING extends the node's
//! trust in L1; an unanswered one (a stalled or unreachable server) ends the
//! subscription, which is then rebuilt with capped exponential backoff, forever.

use std::time::{Duration, Instant};

use redis::Connection;

use super::{Bus, Member};
use crate::clock;
use crate::stats::Stats;

/// Runs until the bus closes.
pub(crate) fn run(bus: &Bus, member: &dyn Member) {
    super::thread::prepare();
    let mut backoff = Duration::from_millis(10);
    let mut subscribed_before = false;
    while !bus.closing() {
        if let Ok(mut connection) = super::connect(&bus.settings) {
            backoff = Duration::from_millis(10);
            listen(bus, member, &mut connection, &mut subscribed_before);
        }
        bus.unsubscribed(member);
        if !super::pause(backoff, || bus.closing()) {
            break;
        }
        backoff = (backoff * 2).min(bus.settings.health.reconnect_max);
    }
    bus.unsubscribed(member);
}

/// Subscribes and applies messages until the connection fails, stalls or the
/// bus closes.
fn listen(
    bus: &Bus,
    member: &dyn Member,
    connection: &mut Connection,
    subscribed_before: &mut bool,
) {
    let health = &bus.settings.health;
    let mut pubsub = connection.as_pubsub();
    if pubsub.set_read_timeout(Some(health.timeout)).is_err()
        || pubsub.subscribe(&bus.settings.channel).is_err()
    {
        return;
    }
    if *subscribed_before {
        Stats::bump(&bus.stats.reconnects);
    }
    *subscribed_before = true;
    bus.subscribed(clock::unix_millis(), member);
    // Reads wait at most one interval, so PINGs go out on time whether or not
    // messages are flowing, and a close is noticed within an interval.
    if pubsub.set_read_timeout(Some(health.interval)).is_err() {
        return;
    }
    let mut next_ping = Instant::now() + health.interval;
    while !bus.closing() {
        if Instant::now() >= next_ping {
            let sent_at = clock::monotonic_nanos();
            next_ping = Instant::now() + health.interval;
            // Messages that arrive before the PONG are kept, in order, and
            // returned by get_message below; the PONG proves they are all here.
            if pubsub.set_read_timeout(Some(health.timeout)).is_err() {
                return;
            }
            match pubsub.ping::<redis::Value>() {
                Ok(_) => member.extend_trust(sent_at),
                // The read was interrupted (see `interrupted`): try again at the
                // next interval; the lease covers the gap or runs out honestly.
                Err(error) if interrupted(&error) => {}
                Err(_) => return,
            }
            if pubsub.set_read_timeout(Some(health.interval)).is_err() {
                return;
            }
        }
        match pubsub.get_message() {
            Ok(message) => bus.deliver(message.get_payload_bytes(), member),
            Err(error) if error.is_timeout() || interrupted(&error) => {}
            Err(_) => return,
        }
    }
}

/// Whether a read failed with EINTR. On Linux a `recv` on a socket with a read
/// timeout fails so after the process was stopped and continued (SIGSTOP,
/// SIGCONT), even with every signal blocked (signal(7)). Nothing was lost in
/// the common case, a wait between messages; should it strike in the middle of
/// a reply, the next read fails to parse and the subscription is rebuilt.
fn interrupted(error: &redis::RedisError) -> bool {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let Some(source) = std::error::Error::source(error) else {
        return false;
    };
    // redis-rs keeps the io::Error behind an Arc, which is what source() gives.
    let io = match source.downcast_ref::<Shared>() {
        Some(shared) => shared.downcast_ref::<std::io::Error>(),
        None => source.downcast_ref::<std::io::Error>(),
    };
    io.is_some_and(|io| io.kind() == std::io::ErrorKind::Interrupted)
}
