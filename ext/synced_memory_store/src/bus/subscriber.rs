//! The subscriber thread: keeps a subscription to the channel, applies every
//! message to L1 as it arrives (without the GVL; nothing here touches Ruby), and
//! PINGs the server every health interval. An answered PING extends the node's
//! trust in L1; an unanswered one (a stalled or unreachable server) ends the
//! subscription, which is then rebuilt with capped exponential backoff, forever.

use std::time::{Duration, Instant};

use redis::Connection;

use crate::node::{process_nanos, Node};
use crate::stats::Stats;

/// Runs until the node closes.
pub fn run(node: &Node) {
    super::thread::prepare();
    let bus = node
        .bus
        .as_ref()
        .expect("the subscriber runs only for nodes with a bus");
    let mut backoff = Duration::from_millis(10);
    let mut subscribed_before = false;
    while !bus.closing() {
        match super::connect(&bus.settings) {
            Ok(mut connection) => {
                backoff = Duration::from_millis(10);
                if listen(node, &mut connection, &mut subscribed_before) {
                    backoff = Duration::from_millis(10);
                }
                node.unsubscribed();
            }
            Err(_) => node.unsubscribed(),
        }
        if !super::pause(backoff, || bus.closing()) {
            break;
        }
        backoff = (backoff * 2).min(bus.settings.health.reconnect_max);
    }
    node.unsubscribed();
}

/// Subscribes and applies messages until the connection fails, stalls or the
/// node closes. Returns whether the subscription was established.
fn listen(node: &Node, connection: &mut Connection, subscribed_before: &mut bool) -> bool {
    let bus = node.bus.as_ref().expect("checked by run");
    let health = &bus.settings.health;
    let mut pubsub = connection.as_pubsub();
    if pubsub.set_read_timeout(Some(health.timeout)).is_err()
        || pubsub.subscribe(&bus.settings.channel).is_err()
    {
        return false;
    }
    if *subscribed_before {
        Stats::bump(&node.stats.reconnects);
    }
    *subscribed_before = true;
    node.subscribed();
    // Reads wait at most one interval, so PINGs go out on time whether or not
    // messages are flowing, and a close is noticed within an interval.
    if pubsub.set_read_timeout(Some(health.interval)).is_err() {
        return true;
    }
    let mut next_ping = Instant::now() + health.interval;
    while !bus.closing() {
        if Instant::now() >= next_ping {
            let sent_at = process_nanos();
            next_ping = Instant::now() + health.interval;
            // Messages that arrive before the PONG are kept, in order, and
            // returned by get_message below; the PONG proves they are all here.
            if pubsub.set_read_timeout(Some(health.timeout)).is_err() {
                return true;
            }
            match pubsub.ping::<redis::Value>() {
                Ok(_) => node.extend_trust(sent_at),
                // The read was interrupted (see `interrupted`): try again at the
                // next interval; the lease covers the gap or runs out honestly.
                Err(error) if interrupted(&error) => {}
                Err(_) => return true,
            }
            if pubsub.set_read_timeout(Some(health.interval)).is_err() {
                return true;
            }
        }
        match pubsub.get_message() {
            Ok(message) => node.receive(message.get_payload_bytes()),
            Err(error) if error.is_timeout() || interrupted(&error) => {}
            Err(_) => return true,
        }
    }
    true
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
