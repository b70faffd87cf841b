//! The channel's log (`bus_log:`): a short, server-ordered record of the
//! channel in a capped Redis stream, so that a node whose subscription
//! dropped for a moment can replay what it missed and keep its L1.
//!
//! **Append and publish are one step.** The publisher runs [`APPEND`], a
//! script that `XADD`s the message to the stream (`MAXLEN ~ n`) and publishes
//! it with the entry's id appended (the *trailer*), so every logged message
//! on the channel is in the stream, in channel order, and carries its place
//! there. A message is marked as logged by a flag in its signed header (see
//! `message.rs`); the id itself is the server's, after signing, so it is not
//! covered by the tag: it is only trusted to say where to resume, and a
//! message moves the node's position only once it has verified and been
//! admitted as new from its sender.
//!
//! **Resuming.** Each subscription records the server's *epoch* (its
//! `run_id` and replication id: a restart, with or without persistence, a
//! failover or a resync changes it) before it subscribes. When a
//! subscription comes back, the subscriber first subscribes (so nothing
//! published from then on is lost), then reads the stream from the last
//! position applied, inclusive ([`read_since`]). L1 is kept only if the
//! epoch is the one the position was recorded in and the first entry read is
//! that very position (the stream still holds it: not trimmed past, not
//! deleted and recreated); the entries after it are then applied in order,
//! through the same verification and replay protection as live messages,
//! and live messages that were also read from the stream are skipped by id.
//! Anything else is a gap: L1 is dropped as without the log.
//!
//! **When the stream cannot be written** (the server is out of memory: `XADD`
//! is refused while `PUBLISH` is not), the publisher runs [`HOLE`] instead,
//! which deletes the stream and publishes the message unlogged, in one step:
//! a node resuming across that moment finds its position gone and drops L1,
//! and a live node that receives an unlogged message forgets its position
//! until the next logged one. So a message is never on the channel without
//! either being in the stream or breaking the stream's continuity.

use redis::{Connection, RedisResult, Value};

use super::log_settings::LogSettings;
use super::Link;
use crate::sync::Summarized;

/// Appends `ARGV[2]` (a signed message) to the stream `KEYS[1]`, trimmed to
/// about `ARGV[1]` entries, and publishes it with `ARGV[4]` (`PUBLISH` or
/// `SPUBLISH`) on `ARGV[3]`, followed by the entry's id and the id's length
/// in one byte. Returns the id.
const APPEND: &str =
    "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])\n\
redis.call(ARGV[4], ARGV[3], ARGV[2] .. id .. string.char(#id))\n\
return id";

/// Deletes the stream `KEYS[1]` and publishes `ARGV[1]` (an unlogged
/// message) with `ARGV[3]` on `ARGV[2]`: the stream's continuity is broken
/// where a message is published without it.
const HOLE: &str = "redis.call('DEL', KEYS[1])\n\
redis.call(ARGV[3], ARGV[2], ARGV[1])\n\
return 0";

/// Entries read from the stream: each message's place and the message as
/// signed.
pub(crate) type Entries = Vec<(Position, Vec<u8>)>;

/// A place in the stream: an entry id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl Position {
    /// The id in `bytes` (`<ms>-<seq>`, decimal), if that is what it is.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Position> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (ms, seq) = text.split_once('-')?;
        let number = |part: &str| {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten()
        };
        Some(Position {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Splits a logged message as published into the message as signed and the
/// position [`APPEND`] put behind it; None if the trailer is not one.
pub(crate) fn split_trailer(payload: &[u8]) -> Option<(&[u8], Position)> {
    let (&len, rest) = payload.split_last()?;
    let at = rest.len().checked_sub(usize::from(len))?;
    let position = Position::parse(&rest[at..])?;
    Some((&rest[..at], position))
}

/// A message as [`APPEND`] publishes it (for tests and the simulation).
#[cfg(test)]
pub(crate) fn with_trailer(message: &[u8], position: Position) -> Vec<u8> {
    let id = position.to_string();
    [message, id.as_bytes(), &[id.len() as u8]].concat()
}

/// The server's epoch: its run id (new at every start) and replication id
/// (new when it is promoted or resynchronised from another primary), from
/// `INFO`. A stream position means something only within one epoch.
pub(crate) fn epoch(connection: &mut Connection) -> RedisResult<String> {
    let info: String = redis::cmd("INFO").query(connection)?;
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    };
    Ok(format!("{}/{}", field("run_id"), field("master_replid")))
}

/// The entries after `position`, if the stream at the server of `epoch`
/// still holds `position` itself (so nothing between was trimmed or lost);
/// None if it does not (a gap) or the server is in another epoch.
pub(crate) fn read_since(
    connection: &mut Connection,
    log: &LogSettings,
    epoch: &str,
    position: Position,
) -> RedisResult<Option<Entries>> {
    let (now, entries): (String, Value) = (
        self::epoch(connection)?,
        redis::cmd("XRANGE")
            .arg(&log.key)
            .arg(position.to_string())
            .arg("+")
            .query(connection)?,
    );
    if now != epoch {
        return Ok(None);
    }
    let mut entries = entries_of(entries).into_iter();
    match entries.next() {
        Some((first, _)) if first == position => Ok(Some(entries.collect())),
        _ => Ok(None),
    }
}

/// `(id, message)` pairs of an `XRANGE` reply; entries that are not this
/// module's (another field, an id that does not parse) are left out, which
/// can only make a gap look like one.
fn entries_of(reply: Value) -> Entries {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else {
                return None;
            };
            let [Value::BulkString(id), Value::Array(fields)] = pair.as_slice() else {
                return None;
            };
            let position = Position::parse(id)?;
            match fields.as_slice() {
                [Value::BulkString(name), Value::BulkString(message)] if name == b"m" => {
                    Some((position, message.clone()))
                }
                _ => None,
            }
        })
        .collect()
}

/// The publisher's side of the log on one connection: the scripts' digests
/// once loaded there.
#[derive(Default)]
pub(crate) struct Appender {
    append: Option<String>,
    hole: Option<String>,
}

impl Appender {
    /// Appends `logged` (a message signed with the logged flag) to the log
    /// and publishes it on `channel` in one step, and then, with `role_check`,
    /// asks `ROLE` in the same round trip (see `sentinel::publish`). If the
    /// stream cannot be written (OOM), publishes `unlogged` (the same batch
    /// without the flag) and deletes the stream instead.
    pub(crate) fn publish(
        &mut self,
        link: &mut Link,
        log: &LogSettings,
        channel: &str,
        logged: &[u8],
        unlogged: impl FnOnce() -> Vec<u8>,
        role_check: bool,
    ) -> RedisResult<Value> {
        let pubsub = link.pubsub;
        let connection = &mut link.connection;
        let appended = self.run(connection, Which::Append, role_check, |cmd| {
            cmd.arg(1)
                .arg(&log.key)
                .arg(log.length)
                .arg(logged)
                .arg(channel)
                .arg(pubsub.publish());
        });
        match appended {
            Err(error) if error.code() == Some("OOM") => {
                let message = unlogged();
                self.run(connection, Which::Hole, role_check, |cmd| {
                    cmd.arg(1)
                        .arg(&log.key)
                        .arg(&message)
                        .arg(channel)
                        .arg(pubsub.publish());
                })
            }
            other => other,
        }
    }

    /// Runs one script by digest, loading it first when this connection has
    /// not (or the server forgot it: `NOSCRIPT`, which runs nothing).
    fn run(
        &mut self,
        connection: &mut Connection,
        which: Which,
        role_check: bool,
        args: impl Fn(&mut redis::Cmd),
    ) -> RedisResult<Value> {
        for attempt in 0..2 {
            let slot = match which {
                Which::Append => &mut self.append,
                Which::Hole => &mut self.hole,
            };
            let sha = match slot {
                Some(sha) if attempt == 0 => sha.clone(),
                _ => {
                    let source = match which {
                        Which::Append => APPEND,
                        Which::Hole => HOLE,
                    };
                    let sha: String = redis::cmd("SCRIPT")
                        .arg("LOAD")
                        .arg(source)
                        .query(connection)?;
                    *slot = Some(sha.clone());
                    sha
                }
            };
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(sha);
            args(&mut cmd);
            let result = if role_check {
                let mut pipe = redis::pipe();
                pipe.add_command(cmd).cmd("ROLE");
                pipe.query::<(Value, Value)>(connection)
                    .and_then(|(reply, role)| super::sentinel::check_master(&role).map(|()| reply))
            } else {
                cmd.query::<Value>(connection)
            };
            match result {
                Err(error) if error.code() == Some("NOSCRIPT") && attempt == 0 => continue,
                other => return other,
            }
        }
        unreachable!("the second attempt returns")
    }
}

#[derive(Clone, Copy)]
enum Which {
    Append,
    Hole,
}

/// Where the subscriber stands in the log: the epoch of its subscription,
/// the last position applied in it, and, right after a replay, the last
/// position replayed (live messages up to it were applied from the stream).
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    epoch: Option<String>,
    position: Option<Position>,
    replayed_through: Option<Position>,
}

impl Cursor {
    /// Where to resume a subscription in `epoch` from, if the node knows.
    pub(crate) fn resume_from(&self, epoch: &str) -> Option<Position> {
        (self.epoch.as_deref() == Some(epoch))
            .then_some(self.position)
            .flatten()
    }

    /// A subscription in `epoch` (None: not known) starts without a replay:
    /// L1 is dropped, and the position is learned again from the next
    /// logged message.
    pub(crate) fn restart(&mut self, epoch: Option<String>) {
        *self = Cursor {
            epoch,
            ..Cursor::default()
        };
    }

    /// Whether a live message at `at` was already applied from the stream.
    pub(crate) fn replayed(&mut self, at: Option<Position>) -> bool {
        match (self.replayed_through, at) {
            (Some(through), Some(at)) if at <= through => true,
            (Some(_), _) => {
                self.replayed_through = None;
                false
            }
            _ => false,
        }
    }

    /// A message at `at` was admitted (or, unreadable, cost L1); None: it
    /// came unlogged, so the stream does not hold every message since the
    /// position, which is forgotten.
    pub(crate) fn applied(&mut self, at: Option<Position>) {
        self.position = at.map(|at| self.position.map_or(at, |known| known.max(at)));
    }

    /// A replay from the stream ended at `through`.
    pub(crate) fn replay_ended(&mut self, through: Option<Position>) {
        self.replayed_through = through.or(self.position);
    }
}

impl Summarized for Cursor {
    /// 1 when the cursor holds a position or a replayed range, else 0: a
    /// message from outside the log (every message without `bus_log:`)
    /// then changes nothing ([`Cursor::replayed`] and [`Cursor::applied`]
    /// with None only forget those), and the subscriber skips the lock.
    fn summary(&self) -> usize {
        usize::from(self.position.is_some() || self.replayed_through.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, seq: u64) -> Position {
        Position { ms, seq }
    }

    #[test]
    fn the_log_shares_the_channels_slot_whatever_its_braces() {
        use crate::bus::cluster_settings::slot;
        use crate::bus::log_settings::key_for;
        for channel in [
            "synced_memory_store:0",
            "{app}:cache",
            "a}b",
            "{}x",
            "a{b",
            "x}{y}",
            "{",
            "}",
        ] {
            let key = key_for(channel);
            assert_eq!(
                slot(key.as_bytes()),
                slot(channel.as_bytes()),
                "{channel} → {key}"
            );
            assert!(key.starts_with(channel) || key.starts_with(&format!("{{{channel}")));
        }
        assert_eq!(
            key_for("synced_memory_store:0"),
            "{synced_memory_store:0}:log"
        );
        assert_eq!(key_for("{app}:cache"), "{app}:cache:log");
    }

    #[test]
    fn positions_parse_as_stream_ids_and_order_as_redis_orders_them() {
        assert_eq!(
            Position::parse(b"1700000000000-3"),
            Some(at(1_700_000_000_000, 3))
        );
        for bad in [
            &b""[..],
            b"12",
            b"-1",
            b"1-",
            b"a-1",
            b"1-+2",
            b"1-2-3",
            b"99999999999999999999-0",
        ] {
            assert_eq!(
                Position::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(at(5, 10) < at(6, 0));
        assert!(at(6, 1) > at(6, 0));
        assert_eq!(at(12, 7).to_string(), "12-7");
    }

    #[test]
    fn a_trailer_is_split_off_as_the_script_appends_it() {
        let published = with_trailer(b"SMS\x02\x02body", at(1_700_000_000_123, 4));
        assert_eq!(
            split_trailer(&published),
            Some((&b"SMS\x02\x02body"[..], at(1_700_000_000_123, 4)))
        );
        assert_eq!(split_trailer(b""), None);
        assert_eq!(
            split_trailer(b"SMS\x02\x02body\x09"),
            None,
            "length past the start"
        );
        assert_eq!(split_trailer(b"SMS\x02\x02body\x00"), None, "not an id");
    }

    #[test]
    fn the_logged_flag_is_covered_by_the_signature_and_changes_nothing_else() {
        use crate::bus::message::tests::{sample, signed};
        use crate::bus::message::{Rejection, Wire};
        let wire = signed("c", &[b"s3cret"]);
        let logged = wire.encode_logged(&sample());
        assert!(Wire::is_logged(&logged));
        assert!(!Wire::is_logged(&wire.encode(&sample())));
        assert_eq!(wire.decode(&logged), Ok(sample()));
        let mut stripped = logged.clone();
        stripped[4] &= !2;
        assert!(!Wire::is_logged(&stripped));
        assert_eq!(wire.decode(&stripped), Err(Rejection::BadSignature));
        // A reader that does not know the flag, given the message with its
        // trailer, cannot read it: a missed change, never a silent one.
        let published = with_trailer(&logged, at(1, 0));
        assert!(wire
            .decode(&published)
            .is_err_and(Rejection::may_hide_a_change));
    }

    #[test]
    fn the_cursor_resumes_only_within_its_epoch_from_the_last_admitted_position() {
        let mut cursor = Cursor::default();
        cursor.restart(Some("run-a".into()));
        assert_eq!(cursor.resume_from("run-a"), None, "nothing applied yet");
        cursor.applied(Some(at(10, 0)));
        cursor.applied(Some(at(9, 0))); // never backwards
        assert_eq!(cursor.resume_from("run-a"), Some(at(10, 0)));
        assert_eq!(cursor.resume_from("run-b"), None, "another epoch");
        cursor.applied(None);
        assert_eq!(
            cursor.resume_from("run-a"),
            None,
            "an unlogged message breaks it"
        );
        cursor.applied(Some(at(11, 0)));
        assert_eq!(cursor.resume_from("run-a"), Some(at(11, 0)));
    }

    #[test]
    fn live_messages_already_replayed_are_skipped_until_one_is_past_the_replay() {
        let mut cursor = Cursor::default();
        cursor.restart(Some("e".into()));
        cursor.applied(Some(at(20, 0)));
        cursor.replay_ended(Some(at(30, 0)));
        assert!(cursor.replayed(Some(at(25, 0))));
        assert!(cursor.replayed(Some(at(30, 0))));
        assert!(!cursor.replayed(Some(at(31, 0))));
        assert!(!cursor.replayed(Some(at(29, 0))), "the overlap is over");
        cursor.replay_ended(None);
        assert!(
            cursor.replayed(Some(at(20, 0))),
            "an empty replay ends at the position"
        );
    }

    #[test]
    fn the_summary_says_when_a_message_from_outside_the_log_can_change_the_cursor() {
        let mut cursor = Cursor::default();
        cursor.restart(Some("e".into()));
        assert_eq!(cursor.summary(), 0);
        // What the subscriber skips when the summary is 0 changes nothing.
        assert!(!cursor.replayed(None));
        cursor.applied(None);
        assert_eq!((cursor.summary(), cursor.resume_from("e")), (0, None));
        cursor.applied(Some(at(5, 0)));
        assert_eq!(cursor.summary(), 1, "a position to forget");
        cursor.applied(None);
        assert_eq!(cursor.summary(), 0);
        cursor.replay_ended(Some(at(7, 0)));
        assert_eq!(cursor.summary(), 1, "a replayed range to end");
        assert!(!cursor.replayed(None));
        assert_eq!(cursor.summary(), 0);
    }
}
