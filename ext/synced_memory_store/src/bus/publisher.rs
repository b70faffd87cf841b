//! The publisher thread: takes batches from the outbox and PUBLISHes them, one
//! round trip per batch, reconnecting with capped backoff as long as the node is
//! open. A batch whose PUBLISH fails may or may not have reached Redis, so it is
//! requeued in forms that are safe either way (writes become invalidations).

use std::time::Duration;

use redis::Connection;

use crate::bus::message::{self, Batch};
use crate::bus::outbox::BATCH_CHANGES;
use crate::node::Node;
use crate::stats::Stats;

/// Rough byte bound of one batch.
pub const BATCH_BYTES: usize = 1024 * 1024;

/// Runs until the node closes and the outbox is drained (or Redis is unreachable
/// while closing).
pub fn run(node: &Node) {
    super::latency::favour_latency();
    let bus = node
        .bus
        .as_ref()
        .expect("the publisher runs only for nodes with a bus");
    // Connect before the first change arrives, so the first write does not pay
    // for the connection; if Redis is not there yet, the loop retries on demand.
    let mut connection: Option<Connection> = super::connect(&bus.settings).ok();
    let mut backoff = Duration::from_millis(10);
    while let Some(changes) = bus.outbox.take(BATCH_CHANGES, BATCH_BYTES) {
        if connection.is_none() {
            match super::connect(&bus.settings) {
                Ok(fresh) => {
                    connection = Some(fresh);
                    backoff = Duration::from_millis(10);
                }
                Err(_) => {
                    bus.outbox.requeue_safely(changes);
                    if !super::pause(backoff, || bus.closing()) {
                        return;
                    }
                    backoff = (backoff * 2).min(bus.settings.health.reconnect_max);
                    continue;
                }
            }
        }
        let last = changes.last().map_or(0, |change| change.seq);
        let count = changes.len() as u64;
        let batch = Batch {
            sender: node.id,
            changes,
        };
        let payload = message::encode(&batch, bus.settings.secret.as_ref());
        let sent = redis::cmd("PUBLISH")
            .arg(&bus.settings.channel)
            .arg(payload)
            .query::<i64>(connection.as_mut().expect("connected above"));
        match sent {
            Ok(_) => {
                Stats::add(&node.stats.published, count);
                bus.outbox.published(last);
            }
            Err(_) => {
                connection = None;
                bus.outbox.requeue_safely(batch.changes);
                if bus.closing() {
                    return;
                }
            }
        }
    }
}
