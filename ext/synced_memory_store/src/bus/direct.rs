//! Direct publishing: a thread that queues a change while the publisher
//! thread is idle sends the PUBLISH itself, on the publisher's connection,
//! and leaves the answer for the publisher to read later (see
//! [`super::outbox::Outbox::wake_for_answers`]).
//!
//! Waking the publisher costs a change the time a sleeping thread takes to
//! run again (tens of microseconds here, more on a host that halts idle
//! CPUs), on the path of every change a process makes while it is otherwise
//! quiet: the case propagation latency is about. Sending is one `write` to a
//! socket whose send buffer was empty (the publisher's last PUBLISH was
//! answered) and holds little since: direct PUBLISHes of at most
//! [`super::outbox::DIRECT_BYTES`] by their changes' rough size (and at most
//! [`DIRECT_UNANSWERED`] of them) wait for the publisher to take their
//! answers, and as much again while it reads them, a few hundred bytes of
//! framing aside: far less than a fresh socket's send buffer (16 KB on
//! Linux) even if the server stopped reading, so the thread never waits on
//! the network, as before. (The connection's write timeout,
//! `health_timeout`, would end a write that did.) The thread may be a Ruby
//! thread holding the GVL and the node's pending lock, or the subscriber
//! thread sending a conflict's invalidation.
//!
//! Order is kept: only the holder of [`Publishing`] writes to the
//! connection, the outbox hands out changes in sequence order, and nothing
//! is sent directly while a batch handed to the publisher is unpublished
//! (see [`super::outbox::Outbox::take_direct`]). What a direct send carries
//! is settled like a batch the publisher sent: counted published when the
//! answer comes, requeued in safe forms if it does not.
//!
//! Used only where a batch goes out as one PUBLISH on the link: not with
//! the channel's log (a script) or Sentinel (which checks the server's role
//! first).

use redis::{RedisResult, Value};

use super::failure::describe_at;
use super::message::{Batch, Change};
use super::outbox::DIRECT_UNANSWERED;
use super::{Bus, Link};
use crate::clock;
use crate::stats::Stats;

/// The publisher's connection, shared with the threads that publish
/// directly; whoever holds it may write to the connection.
#[derive(Default)]
pub(crate) struct Publishing {
    /// The connection, when there is one.
    pub(crate) link: Option<Link>,
    /// Whether a change may be sent directly on it: the last batch the
    /// publisher sent on this link was published, and the bus publishes
    /// with one PUBLISH.
    pub(crate) direct: bool,
}

impl Bus {
    /// Sends what is queued as one PUBLISH from this thread if the publisher
    /// is idle (see the module docs); returns whether it did.
    pub(crate) fn publish_directly(&self) -> bool {
        // A forked copy of this node must not write to its parent's
        // connection (the parent would read the answer as its own).
        if crate::fork::count() != self.forks_at_start {
            return false;
        }
        let Some(mut publishing) = self.publishing.try_lock() else {
            return false;
        };
        let publishing = &mut *publishing;
        let Some(link) = publishing.link.as_mut().filter(|_| publishing.direct) else {
            return false;
        };
        let Some(changes) = self.outbox.take_direct() else {
            return false;
        };
        let batch = Batch {
            sender: self.sender,
            sent_at: clock::unix_millis(),
            changes,
        };
        let command = redis::cmd(link.pubsub.publish())
            .arg(&self.settings.channel)
            .arg(self.settings.wire.encode(&batch))
            .get_packed_command();
        if let Err(error) = link.connection.send_packed_command(&command) {
            // The publisher requeues the changes when it finds no answer.
            self.failed(describe_at(&error, &link.server, &self.settings));
            *publishing = Publishing::default();
            self.outbox.wake_for_answers();
        }
        true
    }

    /// Reads the answers to the PUBLISHes sent directly (`answers`: the
    /// changes of each, in order): the changes are published, or requeued
    /// in safe forms if an answer is missing or an error (the connection is
    /// then dropped).
    pub(crate) fn read_answers(&self, publishing: &mut Publishing, answers: Vec<Vec<Change>>) {
        debug_assert!(answers.len() <= DIRECT_UNANSWERED);
        let read = match publishing.link.as_mut() {
            Some(link) => answers
                .iter()
                .try_for_each(|_| -> RedisResult<()> {
                    // A RESP3 connection (a cluster's) may carry pushes
                    // between answers; they are not answers.
                    let answer = loop {
                        let value = link.connection.recv_response()?;
                        if !matches!(value, Value::Push { .. }) {
                            break value;
                        }
                    };
                    redis::from_redis_value::<i64>(answer.extract_error()?)?;
                    Ok(())
                })
                .map_err(|error| describe_at(&error, &link.server, &self.settings)),
            // The send failed (and said why) or the link was lost since.
            None => Err(String::new()),
        };
        let changes: Vec<Change> = answers.into_iter().flatten().collect();
        match read {
            Ok(()) => {
                let count = changes
                    .iter()
                    .filter(|change| !change.op.is_lease())
                    .count() as u64;
                Stats::add(&self.stats.published, count);
                Stats::add(&self.stats.published_directly, count);
                if let Some(last) = changes.last() {
                    self.outbox.published(last.seq);
                }
            }
            Err(cause) => {
                if !cause.is_empty() {
                    self.failed(cause);
                }
                *publishing = Publishing::default();
                self.outbox.requeue_safely(changes);
            }
        }
    }
}
