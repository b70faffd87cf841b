//! The subscription on a Redis Cluster node (see `cluster.rs`): the same job
//! as `subscriber::listen` — apply every message, prove the subscription
//! live every health interval — over a RESP3 connection, where the
//! subscriber can tell messages, confirmations and server-side
//! unsubscriptions apart (RESP2 readers skip what is not a classic message,
//! and would take a sharded one for a PING's answer).
//!
//! The proof of life is the subscribe command sent again: its confirmation
//! is a push, so it comes back in order after every message published before
//! it, as a PONG does on one server; on a node that no longer owns the
//! channel's slot it fails with `MOVED`. A `sunsubscribe` push (the slot was
//! migrated away, or the node lost it in a failover) ends the subscription at
//! once; the disconnect rule then covers whatever may have been missed.

use std::time::Instant;

use redis::{PushKind, RedisError, Value};

use super::failure::{describe, interrupted};
use super::log;
use super::{Bus, Link, Member};
use crate::clock;

/// Subscribes and applies messages until the link fails, stalls, loses the
/// subscription or the bus closes; returns why it ended (None: closing).
pub(crate) fn listen(
    bus: &Bus,
    member: &dyn Member,
    link: &mut Link,
    subscribed_before: &mut bool,
) -> Option<String> {
    let settings = &bus.settings;
    let health = &settings.health;
    let lost = |error: RedisError| Some(describe(&error, settings));
    let subscribe = redis::cmd(link.pubsub.subscribe())
        .arg(&settings.channel)
        .get_packed_command();
    let connection = &mut link.connection;
    // The server's epoch, before subscribing (see `subscriber::listen`).
    let epoch = match &settings.log {
        Some(_) => connection
            .set_read_timeout(Some(health.timeout))
            .and_then(|()| log::epoch(connection))
            .ok(),
        None => None,
    };
    // The first confirmation proves the subscription; each later one proves
    // that every message sent before its command has been applied.
    let mut probe_sent_at = clock::monotonic_nanos();
    let mut probe_deadline = Some(Instant::now() + health.timeout);
    // Reads wait at most one interval, so probes go out on time whether or
    // not messages are flowing, and a close is noticed within an interval.
    // (The lease, not this loop, bounds how long L1 is trusted.)
    if let Err(error) = connection
        .set_read_timeout(Some(health.interval))
        .and_then(|()| connection.send_packed_command(&subscribe))
    {
        return lost(error);
    }
    let mut next_probe = Instant::now() + health.interval;
    let mut live = false;
    while !bus.closing() {
        let now = Instant::now();
        if probe_deadline.is_some_and(|deadline| now >= deadline) {
            return Some(format!(
                "{} did not confirm the subscription to {} within {:?} (stalled?)",
                settings.description, settings.channel, health.timeout
            ));
        }
        if probe_deadline.is_none() && now >= next_probe {
            probe_sent_at = clock::monotonic_nanos();
            probe_deadline = Some(now + health.timeout);
            next_probe = now + health.interval;
            if let Err(error) = connection.send_packed_command(&subscribe) {
                return lost(error);
            }
        }
        match connection.recv_response() {
            Ok(Value::Push { kind, data }) => match kind {
                PushKind::SMessage | PushKind::Message => {
                    if let [Value::BulkString(channel), Value::BulkString(payload)] =
                        data.as_slice()
                    {
                        if channel.as_slice() == settings.channel.as_bytes() {
                            bus.deliver(payload, member);
                        }
                    }
                }
                PushKind::SSubscribe | PushKind::Subscribe if probe_deadline.is_some() => {
                    probe_deadline = None;
                    if live {
                        bus.pinged(member, probe_sent_at);
                    } else {
                        live = true;
                        let replay = bus.recover(epoch.as_deref());
                        bus.confirmed(
                            member,
                            subscribed_before,
                            probe_sent_at,
                            epoch.clone(),
                            replay,
                        );
                    }
                }
                PushKind::SUnsubscribe | PushKind::Unsubscribe => {
                    return Some(format!(
                        "{} ended the subscription to {} (its slot moved to another node)",
                        settings.description, settings.channel
                    ))
                }
                _ => {}
            },
            // An error answers the subscribe command (MOVED: the slot is
            // elsewhere now; NOPERM: the user lacks the channel).
            Ok(other) => {
                if let Err(error) = other.extract_error() {
                    return lost(error);
                }
            }
            Err(error) if error.is_timeout() || interrupted(&error) => {}
            Err(error) => return lost(error),
        }
    }
    None
}
