//! What travels on the bus, and the one place that turns it into bytes and back.
//!
//! Wire layout of one Redis pub/sub payload:
//!
//! ```text
//! "SMS" | format (1 byte) | flags (1 byte) | [HMAC-SHA256 tag, 32 bytes, if flag SIGNED] | bincode(Batch)
//! ```
//!
//! The tag covers every byte except itself. A store with a `secret:` signs what
//! it sends and rejects anything unsigned or signed with another secret; a store
//! without one ignores tags. Bytes that do not decode, are too large, come in an
//! unknown format or fail the signature are rejected before anything is applied:
//! values inside a batch are only ever bytes to the receiver.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::record::Record;

/// Format of the payload after the header. Bump it when `Batch` changes shape.
pub const FORMAT: u8 = 1;

const MAGIC: &[u8; 3] = b"SMS";
const FLAG_SIGNED: u8 = 1;
const TAG_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + 2;

type HmacSha256 = Hmac<Sha256>;

/// One change to the cache, as peers apply it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `key` now holds `record` (a write shipped by value); receivers keep it in
    /// memory for `keep_for` seconds (None: until evicted for space).
    Put {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        record: Record,
        keep_for: Option<f64>,
    },
    /// `key` changed or was deleted; drop it (peers refill from L2).
    Invalidate {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// Drop every entry (a clear, or the sender may have lost track of changes).
    Clear,
    /// Drop every key matching a Redis-style glob (`delete_matched`).
    DeleteMatched {
        #[serde(with = "serde_bytes")]
        glob: Vec<u8>,
    },
    /// Changes nothing; its echo tells the sender which of its earlier changes
    /// the subscription saw (sent after each (re)subscription).
    Marker,
}

impl Op {
    /// The key this op touches, if it touches exactly one.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Op::Put { key, .. } | Op::Invalidate { key } => Some(key),
            _ => None,
        }
    }
}

/// An op and its place in the sender's sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The sender's sequence number for this change (strictly increasing per sender).
    pub seq: u64,
    /// What changed.
    pub op: Op,
}

/// What one PUBLISH carries: consecutive changes from one sender.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The sending node's id (random per process, new after fork).
    pub sender: u64,
    /// The changes, in the sender's order.
    pub changes: Vec<Change>,
}

/// Why bytes from the bus were not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Larger than the configured maximum.
    TooLarge,
    /// Does not start with the magic bytes, or is too short.
    NotOurs,
    /// A format this version does not read.
    UnknownFormat,
    /// A secret is configured and the message carries no tag.
    Unsigned,
    /// A secret is configured and the tag does not match.
    BadSignature,
    /// The body does not decode.
    Malformed,
}

/// The HMAC key of a store's `secret:`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A key from the secret's bytes.
    pub fn new(bytes: &[u8]) -> Self {
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

/// Upper bound on what decoding one payload may claim: payloads themselves are
/// checked against the node's (smaller) `max_bytes` first, so this only stops a
/// forged length inside an accepted payload from asking for more.
const DECODE_LIMIT: usize = 80 * 1024 * 1024;

/// The payload for `batch`, signed when `secret` is given.
pub fn encode(batch: &Batch, secret: Option<&Secret>) -> Vec<u8> {
    let body = bincode::serde::encode_to_vec(batch, bincode::config::standard())
        .expect("a batch always encodes");
    let mut bytes = Vec::with_capacity(HEADER_LEN + TAG_LEN + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.push(FORMAT);
    match secret {
        Some(secret) => {
            bytes.push(FLAG_SIGNED);
            let mut mac = secret.mac();
            mac.update(&bytes);
            mac.update(&body);
            bytes.extend_from_slice(&mac.finalize().into_bytes());
        }
        None => bytes.push(0),
    }
    bytes.extend_from_slice(&body);
    bytes
}

/// The batch in `bytes`, or why it was rejected. `max_bytes` bounds the whole
/// payload and so every allocation decoding makes.
pub fn decode(bytes: &[u8], secret: Option<&Secret>, max_bytes: usize) -> Result<Batch, Rejection> {
    if bytes.len() > max_bytes {
        return Err(Rejection::TooLarge);
    }
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Rejection::NotOurs);
    }
    if bytes[MAGIC.len()] != FORMAT {
        return Err(Rejection::UnknownFormat);
    }
    let signed = bytes[MAGIC.len() + 1] & FLAG_SIGNED != 0;
    let body = if signed {
        let tagged = bytes
            .get(HEADER_LEN..HEADER_LEN + TAG_LEN)
            .ok_or(Rejection::Malformed)?;
        let body = &bytes[HEADER_LEN + TAG_LEN..];
        if let Some(secret) = secret {
            let mut mac = secret.mac();
            mac.update(&bytes[..HEADER_LEN]);
            mac.update(body);
            mac.verify_slice(tagged)
                .map_err(|_| Rejection::BadSignature)?;
        }
        body
    } else {
        if secret.is_some() {
            return Err(Rejection::Unsigned);
        }
        &bytes[HEADER_LEN..]
    };
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    match bincode::serde::decode_from_slice::<Batch, _>(body, config) {
        Ok((batch, used)) if used == body.len() => Ok(batch),
        _ => Err(Rejection::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Kind;

    fn sample() -> Batch {
        let mut record = Record::new(Kind::Marshal, vec![4, 8, 91, 0]);
        record.expires_at = Some(1_700_000_000.5);
        record.version = Some(b"v1".to_vec().into());
        Batch {
            sender: 42,
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

    #[test]
    fn round_trips_unsigned_and_signed() {
        let secret = Secret::new(b"s3cret");
        assert_eq!(
            decode(&encode(&sample(), None), None, 1 << 20),
            Ok(sample())
        );
        assert_eq!(
            decode(&encode(&sample(), Some(&secret)), Some(&secret), 1 << 20),
            Ok(sample())
        );
        // A store without a secret reads signed messages too.
        assert_eq!(
            decode(&encode(&sample(), Some(&secret)), None, 1 << 20),
            Ok(sample())
        );
    }

    #[test]
    fn with_a_secret_unsigned_and_forged_messages_are_rejected() {
        let secret = Secret::new(b"s3cret");
        assert_eq!(
            decode(&encode(&sample(), None), Some(&secret), 1 << 20),
            Err(Rejection::Unsigned)
        );
        let other = encode(&sample(), Some(&Secret::new(b"guess")));
        assert_eq!(
            decode(&other, Some(&secret), 1 << 20),
            Err(Rejection::BadSignature)
        );

        let mut tampered = encode(&sample(), Some(&secret));
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            decode(&tampered, Some(&secret), 1 << 20),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn garbage_truncation_size_and_unknown_formats_are_rejected() {
        let bytes = encode(&sample(), None);
        assert_eq!(decode(b"hello", None, 1 << 20), Err(Rejection::NotOurs));
        assert_eq!(decode(b"", None, 1 << 20), Err(Rejection::NotOurs));
        assert_eq!(decode(&bytes, None, 10), Err(Rejection::TooLarge));
        for cut in HEADER_LEN..bytes.len() {
            assert_eq!(
                decode(&bytes[..cut], None, 1 << 20),
                Err(Rejection::Malformed),
                "cut at {cut}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing, None, 1 << 20), Err(Rejection::Malformed));
        let mut future = bytes;
        future[3] = FORMAT + 1;
        assert_eq!(
            decode(&future, None, 1 << 20),
            Err(Rejection::UnknownFormat)
        );
    }

    #[test]
    fn forged_lengths_are_rejected() {
        // A header followed by a huge declared length for the changes vector.
        let mut bytes = encode(
            &Batch {
                sender: 1,
                changes: vec![],
            },
            None,
        );
        bytes.truncate(HEADER_LEN + 1);
        bytes.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(decode(&bytes, None, 1 << 20), Err(Rejection::Malformed));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let template = encode(&sample(), None);
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = template.clone();
            let at = (state as usize) % bytes.len();
            bytes[at] = (state >> 32) as u8;
            bytes.truncate(((state >> 40) as usize) % (bytes.len() + 1));
            let _ = decode(&bytes, None, 1 << 20);
        }
    }
}
