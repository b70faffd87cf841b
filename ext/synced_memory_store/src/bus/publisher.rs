//! The publisher thread: takes batches from the outbox and PUBLISHes them, one
//! round trip per batch, reconnecting with capped backoff as long as the node is
//! open; and reads the answers to what other threads sent directly (see
//! `direct.rs`). A batch whose PUBLISH fails may or may not have reached Redis, so it is
//! requeued in forms that are safe either way (writes become invalidations).

use std::collections::HashSet;
use std::time::Duration;

use super::direct::Publishing;
use super::failure::describe_at;
use super::log::Appender;
use super::message::{Batch, Change, Op};
use super::outbox::{BATCH_BYTES, BATCH_CHANGES};
use super::{sentinel, Bus};
use crate::clock;
use crate::stats::Stats;

/// Runs until the bus closes and the outbox is drained (or Redis is unreachable
/// while closing), then closes the connection: it is shared with the threads
/// that publish directly, so it would otherwise stay open until the node is
/// dropped.
pub(crate) fn run(bus: &Bus) {
    super::thread::prepare();
    publish_until_closed(bus);
    *bus.publishing.lock() = Publishing::default();
}

fn publish_until_closed(bus: &Bus) {
    // Connect before the first change arrives, so the first write does not pay
    // for the connection; if Redis is not there yet, the loop retries on demand.
    bus.publishing.lock().link = super::connect(&bus.settings).ok();
    // The server the last batch was published to.
    let mut published_to: Option<String> = None;
    let mut backoff = Duration::from_millis(10);
    // The scripts of the channel's log, once loaded (see `log.rs`).
    let mut appender = Appender::default();
    // One PUBLISH carries a batch: changes may be sent directly (see direct.rs).
    let one_publish = bus.settings.log.is_none() && bus.settings.sentinel.is_none();
    while let Some(work) = bus.outbox.take(BATCH_CHANGES, BATCH_BYTES) {
        let mut publishing = bus.publishing.lock();
        if !work.answers.is_empty() {
            bus.read_answers(&mut publishing, work.answers);
        }
        let changes = work.batch;
        if changes.is_empty() {
            continue;
        }
        if publishing.link.is_none() {
            match super::connect(&bus.settings) {
                Ok(fresh) => publishing.link = Some(fresh),
                Err(cause) => {
                    bus.failed(cause);
                    bus.outbox.requeue_safely(changes);
                    drop(publishing);
                    if !super::pause(backoff, || bus.closing()) {
                        return;
                    }
                    backoff = (backoff * 2).min(bus.settings.health.reconnect_max);
                    continue;
                }
            }
        }
        let current = publishing.link.as_mut().expect("connected above");
        if published_to
            .as_ref()
            .is_some_and(|server| *server != current.server)
        {
            // Another server than the last one (a failover, see sentinel.rs):
            // its subscribers may have missed what went to the other, so
            // every L1 is dropped first. The dummy sequence number is replaced.
            published_to = None;
            publishing.direct = false;
            let clear = Change {
                seq: 0,
                op: Op::Clear,
            };
            bus.outbox
                .requeue_safely(std::iter::once(clear).chain(changes).collect());
            continue;
        }
        let last = changes.last().map_or(0, |change| change.seq);
        let changes = coalesce(changes);
        // Leases are not changes (see message.rs).
        let count = changes
            .iter()
            .filter(|change| !change.op.is_lease())
            .count() as u64;
        let batch = Batch {
            sender: bus.sender,
            sent_at: clock::unix_millis(),
            changes,
        };
        let channel = &bus.settings.channel;
        // On a cluster a MOVED answer (the channel's slot has moved) fails
        // like a lost connection: the batch is requeued safely and the next
        // connection finds the slot's new owner.
        // Leases coordinate computations under way, they change nothing: they
        // are never logged, and a resubscription does not replay them (the
        // node forgets every lease then, see node/leases.rs).
        let log = bus
            .settings
            .log
            .as_ref()
            .filter(|_| !batch.carries_leases());
        let sent = match (log, &bus.settings.sentinel) {
            (Some(log), sentinel) => appender
                .publish(
                    current,
                    log,
                    channel,
                    &bus.settings.wire.encode_logged(&batch),
                    || bus.settings.wire.encode(&batch),
                    sentinel.is_some(),
                )
                .map(drop),
            (None, Some(_)) => sentinel::publish(
                &mut current.connection,
                channel,
                &bus.settings.wire.encode(&batch),
            ),
            (None, None) => redis::cmd(current.pubsub.publish())
                .arg(channel)
                .arg(bus.settings.wire.encode(&batch))
                .query::<i64>(&mut current.connection)
                .map(drop),
        };
        match sent {
            Ok(()) => {
                Stats::add(&bus.stats.published, count);
                bus.outbox.published(last);
                backoff = Duration::from_millis(10);
                if published_to.as_deref() != Some(current.server.as_str()) {
                    published_to = Some(current.server.clone());
                }
                publishing.direct = one_publish;
            }
            Err(error) => {
                bus.failed(describe_at(&error, &current.server, &bus.settings));
                *publishing = Publishing::default();
                drop(publishing);
                bus.outbox.requeue_safely(batch.changes);
                // Only a PUBLISH that went through proves the server takes
                // them: one it refuses (NOPERM) is refused again on a fresh
                // connection, so the retries back off like failed connects
                // rather than opening connections as fast as it answers.
                if !super::pause(backoff, || bus.closing()) {
                    return;
                }
                backoff = (backoff * 2).min(bus.settings.health.reconnect_max);
            }
        }
    }
}

/// Drops every change to a key that a later change in the same batch to the
/// same key supersedes (clears and delete_matched separate the runs in which
/// this holds). A batch is one message, applied in order by every receiver, so
/// they all end in the same state; hot keys written in a burst cost one change
/// each. The node's own bookkeeping is unaffected: a key's pending change is
/// always its latest, which is never dropped.
pub(crate) fn coalesce(changes: Vec<Change>) -> Vec<Change> {
    if changes.len() < 2 {
        return changes;
    }
    let mut later: HashSet<Vec<u8>> = HashSet::new();
    let mut kept: Vec<Change> = Vec::with_capacity(changes.len());
    for change in changes.into_iter().rev() {
        match &change.op {
            Op::Put { key, .. } | Op::Invalidate { key } => {
                if !later.insert(key.clone()) {
                    continue;
                }
            }
            Op::Clear | Op::DeleteMatched { .. } => later.clear(),
            Op::Marker | Op::Lease { .. } | Op::Release { .. } => {}
        }
        kept.push(change);
    }
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Kind, Record};

    fn put(seq: u64, key: &str, value: &str) -> Change {
        let record = Record::new(Kind::Utf8, value.as_bytes().to_vec());
        Change {
            seq,
            op: Op::Put {
                key: key.as_bytes().to_vec(),
                record,
                keep_for: None,
            },
        }
    }

    fn seqs(changes: &[Change]) -> Vec<u64> {
        changes.iter().map(|change| change.seq).collect()
    }

    #[test]
    fn only_the_last_change_to_a_key_travels() {
        let batch = vec![
            put(1, "a", "1"),
            put(2, "b", "1"),
            put(3, "a", "2"),
            Change {
                seq: 4,
                op: Op::Invalidate { key: b"b".to_vec() },
            },
        ];
        assert_eq!(seqs(&coalesce(batch)), [3, 4]);
    }

    #[test]
    fn clears_and_delete_matched_separate_the_runs() {
        let batch = vec![
            put(1, "a", "1"),
            Change {
                seq: 2,
                op: Op::Clear,
            },
            put(3, "a", "2"),
            Change {
                seq: 4,
                op: Op::DeleteMatched {
                    glob: b"*".to_vec(),
                },
            },
            put(5, "a", "3"),
            Change {
                seq: 6,
                op: Op::Marker,
            },
            put(7, "a", "4"),
        ];
        assert_eq!(seqs(&coalesce(batch)), [1, 2, 3, 4, 6, 7]);
    }
}
