//! What travels on the bus, and the one place that turns it into bytes and back.
//!
//! Wire layout of one Redis pub/sub payload:
//!
//! ```text
//! "SMS" | format (1 byte) | flags (1 byte) | [HMAC-SHA256 tag, 32 bytes, if flag SIGNED] | body
//! format 2 (current): body = bincode(Batch { sender, sent_at, changes })
//! format 1 (previous): body = bincode({ sender, changes })
//! flag LOGGED (2): published through the channel's log; the stream entry's id
//!   follows the message on the channel (see `log.rs`), outside the tag
//! ```
//!
//! **Signing.** With a `secret:`, the tag of a format-2 message covers the
//! header, the channel's name (not sent: each receiver uses its own) and the
//! body, so a message signed for one channel does not verify on another. The
//! sender and its per-sender sequence numbers are inside the body, so replays
//! are recognised once the tag verifies (see `senders.rs`). A store with a
//! secret rejects anything unsigned or signed with a secret it does not hold;
//! a store without one ignores tags.
//!
//! **Formats.** A node writes one format and reads that one and the one
//! before, so a rolling upgrade never stops nodes of neighbouring versions from
//! understanding each other. Format 1 carried no channel binding and no send
//! time, so it cannot be told from a replay: its writes are applied as
//! invalidations only (peers refill from L2), never as values. A message in a
//! format this node does not read is well-formed but unreadable, which the
//! receiver treats as a change it missed.
//!
//! **Leases** (stampede protection, see `node/leases.rs`) travel in batches
//! of their own, which start with `LEASE_MAGIC` instead of `MAGIC` and are
//! otherwise laid out, signed and numbered like any batch. A node of a version
//! without leases therefore reads them as not this gem's (`NotOurs`, counted
//! as rejected, hiding no change) and keeps its L1, while the changes around
//! them are read as before; this node rejects a batch that mixes the two kinds.
//!
//! Bytes that do not decode, are too large, come in an unknown format or fail
//! the signature are rejected before anything is applied: values inside a
//! batch are only ever bytes to the receiver, and nothing is allocated beyond
//! the message's own (bounded) size.

use hmac::{Hmac, Mac};
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::record::{received_bytes, Record};

/// The format this version writes (unless told otherwise, for upgrade tests).
pub(crate) const FORMAT: u8 = 2;

const MAGIC: &[u8; 3] = b"SMS";
/// Starts a batch of leases (see the module docs).
const LEASE_MAGIC: &[u8; 3] = b"SML";
const FLAG_SIGNED: u8 = 1;
/// Set (inside the signed header) on a message published through the
/// channel's log, whose stream id follows it on the channel. Readers before
/// this flag read such a message as malformed or wrongly signed, i.e. as a
/// missed change: turn `bus_log:` on once every process reads it.
const FLAG_LOGGED: u8 = 2;
const TAG_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + 2;

type HmacSha256 = Hmac<Sha256>;

/// One change to the cache, as peers apply it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Op {
    /// `key` now holds `record` (a write shipped by value); receivers keep it in
    /// memory for `keep_for` seconds (None: until evicted for space).
    Put {
        #[serde(with = "received_bytes")]
        key: Vec<u8>,
        record: Record,
        keep_for: Option<f64>,
    },
    /// `key` changed or was deleted; drop it (peers refill from L2).
    Invalidate {
        #[serde(with = "received_bytes")]
        key: Vec<u8>,
    },
    /// Drop every entry (a clear, or the sender may have lost track of changes).
    Clear,
    /// Drop every key matching a Redis-style glob (`delete_matched`).
    DeleteMatched {
        #[serde(with = "received_bytes")]
        glob: Vec<u8>,
    },
    /// Changes nothing; its echo tells the sender which of its earlier changes
    /// the subscription saw (sent after each (re)subscription).
    Marker,
    // The lease kinds stay last, so that the other kinds keep their encoding.
    /// The sender is computing `key` after a miss and asks every node to wait
    /// up to `millis` for its value (the first lease on the bus wins).
    Lease {
        #[serde(with = "received_bytes")]
        key: Vec<u8>,
        millis: u64,
    },
    /// The sender's lease on `key` ends (its value, if any, came before).
    Release {
        #[serde(with = "received_bytes")]
        key: Vec<u8>,
    },
}

impl Op {
    /// Whether this op travels in a batch of leases (see the module docs).
    pub(crate) fn is_lease(&self) -> bool {
        matches!(self, Op::Lease { .. } | Op::Release { .. })
    }
}

/// An op and its place in the sender's sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Change {
    /// The sender's sequence number for this change (strictly increasing per sender).
    pub(crate) seq: u64,
    /// What changed.
    pub(crate) op: Op,
}

/// What one PUBLISH carries: consecutive changes from one sender.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Batch {
    /// The sending node's id (random per process, new after fork).
    pub(crate) sender: u64,
    /// When it was sent, in milliseconds since the Unix epoch by the sender's
    /// clock (0 in format 1, which did not say).
    pub(crate) sent_at: u64,
    /// The changes, in the sender's order.
    #[serde(deserialize_with = "received_changes")]
    pub(crate) changes: Vec<Change>,
}

impl Batch {
    /// Whether this is a batch of leases (the outbox never mixes kinds).
    pub(crate) fn carries_leases(&self) -> bool {
        self.changes
            .first()
            .is_some_and(|change| change.op.is_lease())
    }
}

/// Format 1's body: a batch without a send time.
#[derive(Serialize, Deserialize)]
struct BatchV1 {
    sender: u64,
    #[serde(deserialize_with = "received_changes")]
    changes: Vec<Change>,
}

/// Reads a batch's changes one by one. The count the message declares does
/// not reserve memory: serde would reserve up to 1 MiB for it whatever the
/// message's size, while changes read one by one are each backed by bytes
/// received.
fn received_changes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Change>, D::Error> {
    struct Changes;

    impl<'de> Visitor<'de> for Changes {
        type Value = Vec<Change>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a sequence of changes")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Change>, A::Error> {
            let mut changes = Vec::new();
            while let Some(change) = seq.next_element()? {
                changes.push(change);
            }
            Ok(changes)
        }
    }

    deserializer.deserialize_seq(Changes)
}

/// Why bytes from the bus were not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Rejection {
    /// Does not start with the magic bytes, or is too short: not a message of
    /// this gem (something else publishes on the channel).
    NotOurs,
    /// Larger than this node accepts (a peer configured for larger entries?).
    TooLarge,
    /// A format this node does not read (a newer version during a deploy?).
    UnknownFormat,
    /// A secret is configured and the message carries no tag (a peer without
    /// the secret?).
    Unsigned,
    /// The tag matches none of this node's secrets (another secret during a
    /// rotation, a peer on another application, or a forgery).
    BadSignature,
    /// The body does not decode, or holds no change.
    Malformed,
    /// Verified, but not newer than the last message from its sender: a
    /// replay, or a stale copy of a batch the sender has republished.
    Replayed,
    /// Verified, from a sender this node no longer remembers, and sent too
    /// long ago to be told from a replay (see `senders.rs`).
    BeforeHorizon,
}

impl Rejection {
    /// Whether the message may have been a peer's change this node could not
    /// apply (so what it changed must be treated as missed), rather than
    /// something that is not a message of this gem at all.
    pub(crate) fn may_hide_a_change(self) -> bool {
        !matches!(self, Rejection::NotOurs | Rejection::Replayed)
    }

    /// The cause's name, for stats and events.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rejection::NotOurs => "not_ours",
            Rejection::TooLarge => "too_large",
            Rejection::UnknownFormat => "unknown_format",
            Rejection::Unsigned => "unsigned",
            Rejection::BadSignature => "bad_signature",
            Rejection::Malformed => "malformed",
            Rejection::Replayed => "replayed",
            Rejection::BeforeHorizon => "before_horizon",
        }
    }

    /// A short description, for logs and notices.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Rejection::NotOurs => "a message that is not from synced_memory_store",
            Rejection::TooLarge => "a message larger than this node accepts",
            Rejection::UnknownFormat => "a message in a format this version does not read",
            Rejection::Unsigned => "an unsigned message (this store has a secret)",
            Rejection::BadSignature => "a message signed with a secret this store does not hold",
            Rejection::Malformed => "a message whose body does not decode",
            Rejection::Replayed => "a replayed message",
            Rejection::BeforeHorizon => {
                "a message from a forgotten sender, too old to tell from a replay"
            }
        }
    }
}

/// One HMAC key.
#[derive(Clone)]
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    /// A key from the secret's bytes.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Secret(bytes.to_vec())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How a node writes and reads messages.
#[derive(Clone, Debug)]
pub(crate) struct Wire {
    /// The channel's name, bound into every signature.
    pub(crate) channel: Vec<u8>,
    /// The secrets: the first signs, any of them verifies (so a secret can be
    /// rotated by deploying `[new, old]` before `new` alone). Empty: unsigned.
    pub(crate) secrets: Vec<Secret>,
    /// The format written; this one and the one before are read.
    pub(crate) format: u8,
    /// The largest payload accepted.
    pub(crate) max_bytes: usize,
}

impl Wire {
    /// Unsigned, current format, for tests.
    #[cfg(test)]
    pub(crate) fn plain(channel: &str) -> Wire {
        Wire {
            channel: channel.as_bytes().to_vec(),
            secrets: Vec::new(),
            format: FORMAT,
            max_bytes: 1 << 20,
        }
    }

    /// The payload for `batch`, signed when the node has a secret. A batch of
    /// leases (the outbox never mixes kinds) starts with `LEASE_MAGIC`.
    pub(crate) fn encode(&self, batch: &Batch) -> Vec<u8> {
        self.encode_flagged(batch, 0)
    }

    /// The payload for `batch` as appended to the channel's log (see `log.rs`).
    pub(crate) fn encode_logged(&self, batch: &Batch) -> Vec<u8> {
        self.encode_flagged(batch, FLAG_LOGGED)
    }

    /// Whether `bytes` are a batch of leases, which are never logged (a
    /// look at the magic only: decoding checks the rest).
    pub(crate) fn carries_leases(bytes: &[u8]) -> bool {
        bytes.starts_with(LEASE_MAGIC)
    }

    /// Whether `bytes` say they were published through the log (so the
    /// entry's id follows them on the channel). Checked by the signature
    /// like every header bit.
    pub(crate) fn is_logged(bytes: &[u8]) -> bool {
        bytes.len() >= HEADER_LEN
            && &bytes[..MAGIC.len()] == MAGIC
            && bytes[MAGIC.len() + 1] & FLAG_LOGGED != 0
    }

    fn encode_flagged(&self, batch: &Batch, flags: u8) -> Vec<u8> {
        let body = if self.format == 1 {
            let v1 = BatchV1 {
                sender: batch.sender,
                changes: batch.changes.clone(),
            };
            bincode::serde::encode_to_vec(&v1, bincode::config::standard())
        } else {
            bincode::serde::encode_to_vec(batch, bincode::config::standard())
        }
        .expect("a batch always encodes");
        let mut bytes = Vec::with_capacity(HEADER_LEN + TAG_LEN + body.len());
        bytes.extend_from_slice(if batch.carries_leases() {
            LEASE_MAGIC
        } else {
            MAGIC
        });
        bytes.push(self.format);
        match self.secrets.first() {
            Some(secret) => {
                bytes.push(FLAG_SIGNED | flags);
                let tag = self.tag(secret, self.format, &bytes, &body);
                bytes.extend_from_slice(&tag);
            }
            None => bytes.push(flags),
        }
        bytes.extend_from_slice(&body);
        bytes
    }

    /// The batch in `bytes`, or why it was rejected. Formats before the
    /// current one come back with their writes turned into invalidations.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Batch, Rejection> {
        if bytes.len() < HEADER_LEN {
            return Err(Rejection::NotOurs);
        }
        let leases = match &bytes[..MAGIC.len()] {
            magic if magic == MAGIC => false,
            magic if magic == LEASE_MAGIC => true,
            _ => return Err(Rejection::NotOurs),
        };
        if bytes.len() > self.max_bytes {
            return Err(Rejection::TooLarge);
        }
        let format = bytes[MAGIC.len()];
        // This format, or the one before it (format 1 is the first there was).
        if format == 0 || (format != self.format && format.checked_add(1) != Some(self.format)) {
            return Err(Rejection::UnknownFormat);
        }
        let signed = bytes[MAGIC.len() + 1] & FLAG_SIGNED != 0;
        let body = if signed {
            let tag = bytes
                .get(HEADER_LEN..HEADER_LEN + TAG_LEN)
                .ok_or(Rejection::BadSignature)?;
            let body = &bytes[HEADER_LEN + TAG_LEN..];
            if !self.secrets.is_empty() && !self.verifies(format, &bytes[..HEADER_LEN], body, tag) {
                return Err(Rejection::BadSignature);
            }
            body
        } else {
            if !self.secrets.is_empty() {
                return Err(Rejection::Unsigned);
            }
            &bytes[HEADER_LEN..]
        };
        // Every length inside the body is checked against the body before
        // anything is allocated for it (`received_bytes`, `received_changes`),
        // so a forged length cannot make decoding allocate more than was
        // received.
        let batch = if format == 1 {
            let v1: BatchV1 = decode_exactly(body)?;
            Batch {
                sender: v1.sender,
                sent_at: 0,
                changes: v1
                    .changes
                    .into_iter()
                    .map(values_as_invalidations)
                    .collect(),
            }
        } else {
            decode_exactly(body)?
        };
        // A batch is of one kind, the kind its magic says: a node without
        // leases must never skip a change hidden among them.
        if batch
            .changes
            .iter()
            .any(|change| change.op.is_lease() != leases)
        {
            return Err(Rejection::Malformed);
        }
        Ok(batch)
    }

    fn verifies(&self, format: u8, header: &[u8], body: &[u8], tag: &[u8]) -> bool {
        // verify_slice compares in constant time.
        self.secrets.iter().any(|secret| {
            self.mac(secret, format, header, body)
                .verify_slice(tag)
                .is_ok()
        })
    }

    fn tag(&self, secret: &Secret, format: u8, header: &[u8], body: &[u8]) -> [u8; TAG_LEN] {
        self.mac(secret, format, header, body)
            .finalize()
            .into_bytes()
            .into()
    }

    fn mac(&self, secret: &Secret, format: u8, header: &[u8], body: &[u8]) -> HmacSha256 {
        let mut mac = secret.mac();
        mac.update(header);
        if format >= 2 {
            // Length first, so no channel name and body can be shifted into
            // one another.
            mac.update(&(self.channel.len() as u64).to_le_bytes());
            mac.update(&self.channel);
        }
        mac.update(body);
        mac
    }
}

fn decode_exactly<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Rejection> {
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    match bincode::serde::decode_from_slice::<T, _>(body, config) {
        Ok((value, used)) if used == body.len() => Ok(value),
        _ => Err(Rejection::Malformed),
    }
}

fn values_as_invalidations(change: Change) -> Change {
    match change.op {
        Op::Put { key, .. } => Change {
            seq: change.seq,
            op: Op::Invalidate { key },
        },
        _ => change,
    }
}

/// Upper bound on what decoding one payload may claim: payloads themselves are
/// checked against the node's (smaller) `max_bytes` first, so this only stops a
/// forged length inside an accepted payload from asking for more.
const DECODE_LIMIT: usize = 80 * 1024 * 1024;

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;
    use crate::fuzz::{self, apply, edits, largest_allocation, telling_byte, Tally};
    use crate::record::Kind;

    pub(crate) fn sample() -> Batch {
        let mut record = Record::new(Kind::Marshal, vec![4, 8, 91, 0]);
        record.expires_at = Some(1_700_000_000.5);
        record.version = Some(b"v1".to_vec().into());
        Batch {
            sender: 42,
            sent_at: 1_700_000_000_000,
            changes: vec![
                Change {
                    seq: 7,
                    op: Op::Put {
                        key: b"user:1".to_vec(),
                        record,
                        keep_for: Some(60.0),
                    },
                },
                Change {
                    seq: 8,
                    op: Op::Invalidate {
                        key: b"user:2".to_vec(),
                    },
                },
                Change {
                    seq: 9,
                    op: Op::DeleteMatched {
                        glob: b"user:*".to_vec(),
                    },
                },
                Change {
                    seq: 10,
                    op: Op::Clear,
                },
                Change {
                    seq: 11,
                    op: Op::Marker,
                },
            ],
        }
    }

    pub(crate) fn signed(channel: &str, secrets: &[&[u8]]) -> Wire {
        Wire {
            secrets: secrets.iter().map(|s| Secret::new(s)).collect(),
            ..Wire::plain(channel)
        }
    }

    fn leases() -> Batch {
        Batch {
            sender: 7,
            sent_at: 1,
            changes: vec![
                Change {
                    seq: 3,
                    op: Op::Lease {
                        key: b"k".to_vec(),
                        millis: 5000,
                    },
                },
                Change {
                    seq: 4,
                    op: Op::Release { key: b"k".to_vec() },
                },
            ],
        }
    }

    #[test]
    fn leases_travel_apart_where_a_node_without_them_sees_no_message_of_ours() {
        let signing = signed("c", &[b"s3cret"]);
        let bytes = signing.encode(&leases());
        assert_eq!(signing.decode(&bytes), Ok(leases()));
        // A node of the version before leases reads "SMS" only: for it this
        // is not a message of this gem, which hides no change (its L1 stays).
        assert_ne!(&bytes[..MAGIC.len()], MAGIC);
        assert!(!Rejection::NotOurs.may_hide_a_change());
        // The other kinds keep their bytes.
        assert_eq!(&signing.encode(&sample())[..MAGIC.len()], MAGIC);
    }

    #[test]
    fn a_batch_whose_kinds_disagree_with_its_magic_is_malformed() {
        let wire = Wire::plain("c");
        let mut mixed = sample();
        mixed.changes.push(Change {
            seq: 12,
            op: Op::Release { key: b"k".to_vec() },
        });
        assert_eq!(wire.decode(&wire.encode(&mixed)), Err(Rejection::Malformed));
        let mut mixed = leases();
        mixed.changes.push(Change {
            seq: 5,
            op: Op::Clear,
        });
        assert_eq!(wire.decode(&wire.encode(&mixed)), Err(Rejection::Malformed));
    }

    #[test]
    fn round_trips_unsigned_and_signed() {
        let plain = Wire::plain("c");
        let signing = signed("c", &[b"s3cret"]);
        assert_eq!(plain.decode(&plain.encode(&sample())), Ok(sample()));
        assert_eq!(signing.decode(&signing.encode(&sample())), Ok(sample()));
        // A store without a secret reads signed messages too.
        assert_eq!(plain.decode(&signing.encode(&sample())), Ok(sample()));
    }

    #[test]
    fn with_a_secret_unsigned_forged_and_other_channel_messages_are_rejected() {
        let wire = signed("c", &[b"s3cret"]);
        assert_eq!(
            wire.decode(&Wire::plain("c").encode(&sample())),
            Err(Rejection::Unsigned)
        );
        let other_secret = signed("c", &[b"guess"]).encode(&sample());
        assert_eq!(wire.decode(&other_secret), Err(Rejection::BadSignature));
        let other_channel = signed("d", &[b"s3cret"]).encode(&sample());
        assert_eq!(wire.decode(&other_channel), Err(Rejection::BadSignature));

        let mut tampered = wire.encode(&sample());
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(wire.decode(&tampered), Err(Rejection::BadSignature));
    }

    #[test]
    fn during_a_rotation_any_listed_secret_verifies_and_the_first_signs() {
        let rotating = signed("c", &[b"new", b"old"]);
        let old = signed("c", &[b"old"]);
        let new = signed("c", &[b"new"]);
        assert_eq!(rotating.decode(&old.encode(&sample())), Ok(sample()));
        assert_eq!(new.decode(&rotating.encode(&sample())), Ok(sample()));
        assert_eq!(
            old.decode(&rotating.encode(&sample())),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn garbage_truncation_size_and_unknown_formats_are_rejected() {
        let wire = Wire::plain("c");
        let bytes = wire.encode(&sample());
        assert_eq!(wire.decode(b"hello"), Err(Rejection::NotOurs));
        assert_eq!(wire.decode(b""), Err(Rejection::NotOurs));
        let small = Wire {
            max_bytes: 10,
            ..Wire::plain("c")
        };
        assert_eq!(small.decode(&bytes), Err(Rejection::TooLarge));
        for cut in HEADER_LEN..bytes.len() {
            assert_eq!(
                wire.decode(&bytes[..cut]),
                Err(Rejection::Malformed),
                "cut at {cut}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(wire.decode(&trailing), Err(Rejection::Malformed));
        let mut future = bytes;
        future[3] = FORMAT + 1;
        assert_eq!(wire.decode(&future), Err(Rejection::UnknownFormat));
    }

    #[test]
    fn a_node_reads_its_format_and_the_one_before_and_the_next_reads_this_one() {
        let current = Wire::plain("c");
        let previous = Wire {
            format: FORMAT - 1,
            ..Wire::plain("c")
        };
        let next = Wire {
            format: FORMAT + 1,
            ..Wire::plain("c")
        };
        let from_previous = current.decode(&previous.encode(&sample())).unwrap();
        assert_eq!(from_previous.sent_at, 0);
        assert!(
            from_previous
                .changes
                .iter()
                .all(|change| !matches!(change.op, Op::Put { .. })),
            "format 1 writes arrive as invalidations"
        );
        assert_eq!(from_previous.changes.len(), sample().changes.len());
        assert_eq!(next.decode(&current.encode(&sample())), Ok(sample()));
        assert_eq!(
            current.decode(&next.encode(&sample())),
            Err(Rejection::UnknownFormat)
        );
        // Format 1 was the first: there is nothing before it to read.
        let first = Wire {
            format: 1,
            ..Wire::plain("c")
        };
        let mut format_zero = first.encode(&sample());
        format_zero[3] = 0;
        assert_eq!(first.decode(&format_zero), Err(Rejection::UnknownFormat));
    }

    #[test]
    fn forged_lengths_are_rejected() {
        // A header followed by a huge declared length for the changes vector.
        let wire = Wire::plain("c");
        let mut bytes = wire.encode(&Batch {
            sender: 1,
            sent_at: 0,
            changes: vec![],
        });
        bytes.truncate(HEADER_LEN + 2);
        bytes.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(wire.decode(&bytes), Err(Rejection::Malformed));
    }

    /// The most a payload of `len` bytes may make decoding ask for at once:
    /// every byte string is copied from the payload, and the changes vector
    /// grows as changes are read (each takes at least two bytes), never by a
    /// count the payload declares.
    fn allocation_bound(len: usize) -> usize {
        len.max(4) * std::mem::size_of::<Change>()
    }

    #[test]
    fn forged_lengths_ask_for_no_memory_beyond_the_message() {
        let wire = Wire::plain("c");
        let header = [&MAGIC[..], &[FORMAT, 0]].concat();
        // sender 0, sent_at 0, one change: seq 0, Invalidate of a key said to
        // be 64 MiB long (within DECODE_LIMIT), and no key bytes.
        let long_key = [
            &header[..],
            &[0, 0, 1, 0, 1, 0xfc],
            &(64u32 << 20).to_le_bytes(),
        ]
        .concat();
        // sender 0, sent_at 0, and 2^32 changes said to follow.
        let many_changes = [&header[..], &[0, 0, 0xfd], &(1u64 << 32).to_le_bytes()].concat();
        for bytes in [long_key, many_changes] {
            let (verdict, largest) = largest_allocation(|| wire.decode(&bytes));
            assert_eq!(verdict, Err(Rejection::Malformed));
            assert!(
                largest <= allocation_bound(bytes.len()),
                "{} bytes made decoding ask for {largest} bytes at once",
                bytes.len()
            );
        }
    }

    #[test]
    fn only_foreign_and_replayed_messages_hide_no_change() {
        use Rejection::*;
        let all = [
            NotOurs,
            TooLarge,
            UnknownFormat,
            Unsigned,
            BadSignature,
            Malformed,
            Replayed,
            BeforeHorizon,
        ];
        for why in all {
            // No wildcard: a new cause does not compile until it is listed above.
            let expected = match why {
                NotOurs | Replayed => false,
                TooLarge | UnknownFormat | Unsigned | BadSignature | Malformed | BeforeHorizon => {
                    true
                }
            };
            assert_eq!(why.may_hide_a_change(), expected, "{why:?}");
        }
    }

    // Properties over random and mutated input (see `crate::fuzz`).

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..max)
    }

    fn ops() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                bytes(24),
                crate::record::tests::records(),
                proptest::option::of(any::<f64>())
            )
                .prop_map(|(key, record, keep_for)| Op::Put {
                    key,
                    record,
                    keep_for
                }),
            bytes(24).prop_map(|key| Op::Invalidate { key }),
            Just(Op::Clear),
            bytes(24).prop_map(|glob| Op::DeleteMatched { glob }),
            Just(Op::Marker),
            (bytes(24), any::<u64>()).prop_map(|(key, millis)| Op::Lease { key, millis }),
            bytes(24).prop_map(|key| Op::Release { key }),
        ]
    }

    /// Batches of every op, with records of every kind and any numbers
    /// (expiries and keep_for include NaN and the infinities).
    fn batches() -> impl Strategy<Value = Batch> {
        (
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec((any::<u64>(), ops()), 0..6),
        )
            .prop_map(|(sender, sent_at, changes)| {
                // Of one kind, the first change's, as the outbox makes them.
                let leases = changes.first().is_some_and(|(_, op)| op.is_lease());
                Batch {
                    sender,
                    sent_at,
                    changes: changes
                        .into_iter()
                        .filter(|(_, op)| op.is_lease() == leases)
                        .map(|(seq, op)| Change { seq, op })
                        .collect(),
                }
            })
    }

    /// Names that are often prefixes of one another.
    fn channels() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(b"ab:".to_vec()), 0..6)
    }

    fn has_values(batch: &Batch) -> bool {
        batch
            .changes
            .iter()
            .any(|change| matches!(change.op, Op::Put { .. }))
    }

    /// Decodes, checking that it took little time and memory.
    fn decode_within_bounds(
        wire: &Wire,
        bytes: &[u8],
    ) -> Result<Result<Batch, Rejection>, TestCaseError> {
        let started = Instant::now();
        let (verdict, largest) = largest_allocation(|| wire.decode(bytes));
        prop_assert!(
            started.elapsed() < Duration::from_secs(1),
            "decoding {} bytes took {:?}",
            bytes.len(),
            started.elapsed()
        );
        prop_assert!(
            largest <= allocation_bound(bytes.len()),
            "decoding {} bytes asked for {largest} bytes at once",
            bytes.len()
        );
        if let Ok(batch) = &verdict {
            prop_assert!(
                bytes[MAGIC.len()] != 1 || !has_values(batch),
                "a format 1 message decoded with a value"
            );
        }
        Ok(verdict)
    }

    fn readers() -> impl Strategy<Value = Wire> {
        (
            1..=FORMAT + 1,
            any::<bool>(),
            prop_oneof![0..512usize, Just(1 << 20)],
        )
            .prop_map(|(format, signed, max_bytes)| Wire {
                format,
                max_bytes,
                secrets: if signed {
                    vec![Secret::new(b"s3cret")]
                } else {
                    Vec::new()
                },
                ..Wire::plain("c")
            })
    }

    /// Random bytes, and random bytes behind this gem's header in any format
    /// with any flags: bodies of anything, or of small numbers, varint
    /// markers and pieces of changes (bincode's layout), so that some decode.
    fn payloads() -> impl Strategy<Value = Vec<u8>> {
        let header = (0..=FORMAT + 1, prop_oneof![Just(0u8), Just(1), any::<u8>()])
            .prop_map(|(format, flags)| [&MAGIC[..], &[format, flags]].concat());
        let piece = prop_oneof![
            // seq, then Clear or Marker.
            (any::<u8>(), prop::sample::select(vec![2u8, 4])).prop_map(|(seq, op)| vec![seq, op]),
            // seq, then Invalidate or DeleteMatched of up to three bytes.
            (any::<u8>(), 1..=3u8, bytes(4)).prop_map(|(seq, op, key)| {
                [&[seq, op % 2 * 2 + 1, key.len() as u8][..], &key].concat()
            }),
            prop_oneof![0..6u8, telling_byte()].prop_map(|byte| vec![byte]),
        ];
        // sender, sent_at, a count (mostly right) and pieces.
        let body = (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(piece, 0..5),
            0..8u8,
        )
            .prop_map(|(sender, sent_at, pieces, count)| {
                let count = if count < 6 { pieces.len() as u8 } else { count };
                [vec![sender, sent_at, count], pieces.concat()].concat()
            });
        prop_oneof![
            1 => bytes(64),
            1 => (header.clone(), bytes(200)).prop_map(|(header, body)| [header, body].concat()),
            3 => (header, body).prop_map(|(header, body)| [header, body].concat()),
        ]
    }

    #[test]
    fn arbitrary_bytes_are_rejected_or_decoded_within_bounds() {
        const NAME: &str = "arbitrary_bytes_are_rejected_or_decoded_within_bounds";
        static DECODED: Tally = Tally::new();
        fuzz::check(NAME, (payloads(), readers()), |(bytes, wire)| {
            let verdict = decode_within_bounds(&wire, &bytes)?;
            DECODED.count(verdict.is_ok());
            match verdict {
                Ok(_) => prop_assert!(
                    wire.secrets.is_empty(),
                    "a store with a secret accepted random bytes"
                ),
                Err(why) => prop_assert!(
                    !matches!(why, Rejection::Replayed | Rejection::BeforeHorizon),
                    "decoding alone cannot tell {why:?}"
                ),
            }
            Ok(())
        });
        DECODED.at_least(0.01, NAME, "decoded");
    }

    #[test]
    fn batches_round_trip_in_both_formats_signed_or_not() {
        fuzz::check(
            "batches_round_trip_in_both_formats_signed_or_not",
            (batches(), 1..=FORMAT, any::<bool>(), channels()),
            |(batch, format, signed_, channel)| {
                let writer = Wire {
                    channel,
                    format,
                    ..if signed_ {
                        signed("", &[b"s3cret"])
                    } else {
                        Wire::plain("")
                    }
                };
                let reader = Wire {
                    format: FORMAT,
                    ..writer.clone()
                };
                let bytes = writer.encode(&batch);
                let decoded = reader.decode(&bytes);
                prop_assert!(decoded.is_ok(), "{:?}", decoded);
                let decoded = decoded.unwrap();
                if format == FORMAT {
                    // Bit for bit, NaNs included (NaN != NaN for PartialEq).
                    prop_assert_eq!(reader.encode(&decoded), bytes);
                    prop_assert_eq!(format!("{decoded:?}"), format!("{batch:?}"));
                } else {
                    let expected = Batch {
                        sent_at: 0,
                        changes: batch
                            .changes
                            .into_iter()
                            .map(values_as_invalidations)
                            .collect(),
                        ..batch
                    };
                    prop_assert!(!has_values(&expected));
                    prop_assert_eq!(decoded, expected);
                }
                Ok(())
            },
        );
    }

    #[test]
    fn mutated_unsigned_messages_are_rejected_or_decode() {
        const NAME: &str = "mutated_unsigned_messages_are_rejected_or_decode";
        static DECODED: Tally = Tally::new();
        fuzz::check(
            NAME,
            (batches(), 1..=FORMAT, any::<bool>(), edits()),
            |(batch, format, signed_, edits)| {
                // A store without a secret ignores tags, so a signed message
                // is as open to it as an unsigned one.
                let writer = Wire {
                    format,
                    ..if signed_ {
                        signed("c", &[b"s3cret"])
                    } else {
                        Wire::plain("c")
                    }
                };
                let bytes = apply(&writer.encode(&batch), &edits);
                // Either verdict will do; the bounds are the property.
                let verdict = decode_within_bounds(&Wire::plain("c"), &bytes)?;
                DECODED.count(verdict.is_ok());
                Ok(())
            },
        );
        DECODED.at_least(0.05, NAME, "decoded");
    }

    #[test]
    fn any_change_to_a_signed_message_is_rejected() {
        fuzz::check(
            "any_change_to_a_signed_message_is_rejected",
            (batches(), 1..=FORMAT, any::<bool>(), edits()),
            |(batch, format, rotating, edits)| {
                let writer = Wire {
                    format,
                    ..signed("c", &[b"s3cret"])
                };
                let reader = if rotating {
                    signed("c", &[b"next", b"s3cret"])
                } else {
                    signed("c", &[b"s3cret"])
                };
                let genuine = writer.encode(&batch);
                prop_assert!(reader.decode(&genuine).is_ok());
                let forged = apply(&genuine, &edits);
                if forged == genuine {
                    return Ok(());
                }
                match decode_within_bounds(&reader, &forged)? {
                    Ok(decoded) => prop_assert!(false, "accepted {forged:?} as {decoded:?}"),
                    Err(why) => {
                        use Rejection::*;
                        prop_assert!(
                            matches!(
                                why,
                                BadSignature
                                    | Unsigned
                                    | Malformed
                                    | NotOurs
                                    | UnknownFormat
                                    | TooLarge
                            ),
                            "{:?}",
                            why
                        );
                    }
                }
                Ok(())
            },
        );
    }

    /// A bincode varint claiming far more than any payload holds.
    fn huge_varints() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (251u16..).prop_map(|n| [&[0xfb][..], &n.to_le_bytes()].concat()),
            (1u32 << 16..).prop_map(|n| [&[0xfc][..], &n.to_le_bytes()].concat()),
            (1u64 << 32..).prop_map(|n| [&[0xfd][..], &n.to_le_bytes()].concat()),
            prop::sample::select(vec![DECODE_LIMIT as u64, DECODE_LIMIT as u64 + 1, 1 << 20])
                .prop_map(|n| [&[0xfd][..], &n.to_le_bytes()].concat()),
        ]
    }

    #[test]
    fn forged_lengths_are_rejected_without_allocating_for_them() {
        const NAME: &str = "forged_lengths_are_rejected_without_allocating_for_them";
        static MALFORMED: Tally = Tally::new();
        fuzz::check(
            NAME,
            (
                batches(),
                1..=FORMAT,
                any::<bool>(),
                any::<usize>(),
                huge_varints(),
            ),
            |(batch, format, signed_, at, varint)| {
                // Any byte of the body replaced by a huge varint (some of them
                // lengths), signed again as a peer holding the secret would.
                let wire = Wire {
                    format,
                    ..if signed_ {
                        signed("c", &[b"s3cret"])
                    } else {
                        Wire::plain("c")
                    }
                };
                let genuine = wire.encode(&batch);
                let body_at = HEADER_LEN + if signed_ { TAG_LEN } else { 0 };
                let header = &genuine[..HEADER_LEN];
                let mut body = genuine[body_at..].to_vec();
                let at = at % body.len();
                body.splice(at..=at, varint);
                let tag = match wire.secrets.first() {
                    Some(secret) => wire.tag(secret, format, header, &body).to_vec(),
                    None => Vec::new(),
                };
                let forged = [header, &tag, &body].concat();
                let reader = Wire {
                    format: FORMAT,
                    ..wire
                };
                // Either verdict will do (a varint may replace a number that
                // is not a length); the bounds are the property.
                let verdict = decode_within_bounds(&reader, &forged)?;
                MALFORMED.count(verdict == Err(Rejection::Malformed));
                Ok(())
            },
        );
        MALFORMED.at_least(0.5, NAME, "were malformed");
    }

    #[test]
    fn a_message_signed_for_one_channel_verifies_on_no_other() {
        fuzz::check(
            "a_message_signed_for_one_channel_verifies_on_no_other",
            (batches(), channels(), channels(), 1..=FORMAT),
            |(batch, here, there, format)| {
                if here == there {
                    return Ok(());
                }
                let writer = Wire {
                    channel: here,
                    format,
                    ..signed("", &[b"s3cret"])
                };
                let reader = Wire {
                    channel: there,
                    ..signed("", &[b"s3cret"])
                };
                let verdict = reader.decode(&writer.encode(&batch));
                if format == FORMAT {
                    prop_assert_eq!(verdict, Err(Rejection::BadSignature));
                } else {
                    // Format 1 binds no channel (see the module doc): it is
                    // read anywhere, with its writes turned into invalidations.
                    prop_assert!(verdict.is_ok_and(|batch| !has_values(&batch)));
                }
                Ok(())
            },
        );
    }
}
