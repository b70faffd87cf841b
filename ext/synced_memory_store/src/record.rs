//! The byte form of one cache entry: what L1 holds and what the bus ships.
//!
//! A record never holds a Ruby object. The binding layer turns a Ruby value into
//! a [`Kind`] plus payload bytes; simple values (Strings in the common encodings,
//! Integers, Floats, nil, true, false) get a native encoding so a hit can rebuild
//! them without `Marshal`, everything else carries `Marshal.dump` bytes.

use std::io::{Read, Write};

use flate2::{read::ZlibDecoder, write::ZlibEncoder, Compression};
use serde::{Deserialize, Serialize};

/// How a record's payload encodes its value.
///
/// The discriminants are part of the bus format: never renumber them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Kind {
    /// `nil`; empty payload.
    Nil = 0,
    /// `true`; empty payload.
    True = 1,
    /// `false`; empty payload.
    False = 2,
    /// An Integer that fits in an `i64`; 8 little-endian bytes.
    Int = 3,
    /// A Float; its IEEE-754 bits as 8 little-endian bytes.
    Float = 4,
    /// A plain UTF-8 String without instance variables; its bytes.
    Utf8 = 5,
    /// A plain ASCII-8BIT (binary) String; its bytes.
    Binary = 6,
    /// A plain US-ASCII String; its bytes.
    Ascii = 7,
    /// Any other value; `Marshal.dump` bytes.
    Marshal = 8,
    /// A whole `ActiveSupport::Cache::Entry` dumped by a user-supplied `coder:`.
    Coded = 9,
    /// Plain data (Hashes, Arrays, Strings, Symbols, numbers, Times) in the
    /// format of [`crate::tree`].
    Tree = 10,
}

/// One cache entry in byte form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// How `payload` encodes the value.
    pub kind: Kind,
    /// `payload` is zlib-deflated (only ever set for [`Kind::Marshal`] and the String kinds).
    pub compressed: bool,
    /// Absolute expiry in seconds since the Unix epoch; `None` never expires.
    pub expires_at: Option<f64>,
    /// The entry's normalized version (ActiveSupport's `version:`), if any.
    #[serde(with = "received_bytes::option")]
    pub version: Option<Box<[u8]>>,
    /// The encoded value.
    #[serde(with = "received_bytes")]
    pub payload: Box<[u8]>,
    /// When this process stored the entry (seconds since the epoch), for an
    /// entry that expires: its life runs from here to `expires_at`, and
    /// refresh-ahead judges how much of it has passed. Set by the binding
    /// layer from Ruby's clock for this process's writes and fills (so
    /// `travel_to` moves it as it moves `expires_at`), and by L1 from the wall
    /// clock for what arrives over the bus. Never on the bus: `None` in
    /// flight, so the wire format is unchanged.
    #[serde(skip)]
    pub stored_at: Option<f64>,
}

impl Record {
    /// A record for `kind` with `payload`, no version and no expiry.
    pub fn new(kind: Kind, payload: impl Into<Box<[u8]>>) -> Self {
        Record {
            kind,
            compressed: false,
            expires_at: None,
            version: None,
            payload: payload.into(),
            stored_at: None,
        }
    }

    /// Bytes this record keeps on the heap, the part of its weight that varies.
    pub fn heap_bytes(&self) -> usize {
        self.payload.len() + self.version.as_ref().map_or(0, |v| v.len())
    }

    /// True when the record's logical expiry is at or before `now` (seconds since the epoch).
    pub fn is_expired_at(&self, now: f64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// True when `now` is at least `fraction` of the way through the entry's
    /// life, from `stored_at` to `expires_at` (refresh-ahead). Never for an
    /// entry that does not expire, has no stamp, or has no life left to
    /// divide (stored at or after its expiry).
    pub fn is_due_at(&self, now: f64, fraction: f64) -> bool {
        match (self.stored_at, self.expires_at) {
            (Some(stored), Some(expires)) if expires > stored => {
                now >= stored + fraction * (expires - stored)
            }
            _ => false,
        }
    }

    /// True when both the record and the reader name a version and they differ
    /// (ActiveSupport's `Entry#mismatched?`).
    pub fn is_mismatched(&self, version: Option<&[u8]>) -> bool {
        match (self.version.as_deref(), version) {
            (Some(mine), Some(theirs)) => mine != theirs,
            _ => false,
        }
    }

    /// Checks what a record from the bus must satisfy before it is stored:
    /// its payload inflates to at most `max_bytes`, numbers hold eight bytes,
    /// nil/true/false none, and a tree parses.
    pub fn check(&self, max_bytes: usize) -> Result<(), &'static str> {
        let payload = self
            .plain_payload(max_bytes)
            .map_err(|_| "compressed payload does not inflate within the largest entry accepted")?;
        match self.kind {
            Kind::Nil | Kind::True | Kind::False if !payload.is_empty() => {
                Err("constant with a payload")
            }
            Kind::Int | Kind::Float if payload.len() != 8 => Err("number not eight bytes"),
            Kind::Tree => crate::tree::validate(&payload).map_err(|corrupt| corrupt.0),
            _ => Ok(()),
        }
    }

    /// The payload with compression undone, refusing to inflate past `max_bytes`.
    pub fn plain_payload(&self, max_bytes: usize) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        if self.compressed {
            inflate(&self.payload, max_bytes).map(std::borrow::Cow::Owned)
        } else {
            Ok(std::borrow::Cow::Borrowed(&self.payload))
        }
    }
}

/// serde `with` modules for the byte strings of bus messages: written as
/// `serde_bytes` writes them, and read by borrowing from the message, so that
/// a length the message declares is checked against the bytes it holds before
/// anything is allocated. (Reading through `serde_bytes` asks the decoder for
/// an owned buffer, which bincode allocates at the declared length, up to its
/// limit, before it finds the bytes missing: a 15-byte message could claim
/// 64 MiB.) Only decoders that can lend bytes avoid the allocation; the bus
/// decodes from a slice.
pub(crate) mod received_bytes {
    use std::borrow::Cow;

    use serde::Deserializer;
    pub(crate) use serde_bytes::serialize;

    /// A byte string, copied out of the message.
    pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: From<Vec<u8>>,
    {
        let bytes: Cow<'de, [u8]> = serde_bytes::deserialize(deserializer)?;
        Ok(bytes.into_owned().into())
    }

    /// For an optional byte string.
    pub(crate) mod option {
        use std::borrow::Cow;

        use serde::Deserializer;
        pub(crate) use serde_bytes::serialize;

        /// An optional byte string, copied out of the message.
        pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
        where
            D: Deserializer<'de>,
            T: From<Vec<u8>>,
        {
            let bytes: Option<Cow<'de, [u8]>> = serde_bytes::deserialize(deserializer)?;
            Ok(bytes.map(|bytes| bytes.into_owned().into()))
        }
    }
}

/// Compresses `bytes` when they are at least `threshold` long and compression makes
/// them smaller, as ActiveSupport's Entry does. Returns `None` when the bytes should
/// stay as they are.
pub fn deflate_if_smaller(bytes: &[u8], threshold: usize) -> Option<Vec<u8>> {
    if bytes.is_empty() || bytes.len() < threshold {
        return None;
    }
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::default());
    encoder.write_all(bytes).ok()?;
    let compressed = encoder.finish().ok()?;
    (compressed.len() < bytes.len()).then_some(compressed)
}

/// Undoes [`deflate_if_smaller`], failing (without allocating more) once the
/// output would pass `max_bytes`: a few hundred kilobytes of deflate can
/// claim gigabytes.
pub fn inflate(bytes: &[u8], max_bytes: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(3).min(max_bytes));
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    ZlibDecoder::new(bytes).take(limit).read_to_end(&mut out)?;
    if out.len() > max_bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("inflates past {max_bytes} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;
    use crate::fuzz::{self, apply, edits, largest_allocation, Tally};

    #[test]
    fn an_entry_is_due_once_the_fraction_of_its_life_has_passed() {
        let mut record = Record::new(Kind::Utf8, b"v".to_vec());
        assert!(!record.is_due_at(1e12, 0.5), "no expiry: never due");
        record.expires_at = Some(110.0);
        assert!(!record.is_due_at(1e12, 0.5), "no stamp: never due");
        record.stored_at = Some(100.0);
        assert!(!record.is_due_at(107.9, 0.8));
        assert!(record.is_due_at(108.0, 0.8));
        record.stored_at = Some(110.0);
        assert!(!record.is_due_at(1e12, 0.8), "no life to divide");
    }

    #[test]
    fn the_stamp_never_travels_on_the_bus() {
        let mut record = Record::new(Kind::Utf8, b"v".to_vec());
        record.expires_at = Some(110.0);
        let plain = bincode::serde::encode_to_vec(&record, bincode::config::standard()).unwrap();
        record.stored_at = Some(100.0);
        let stamped = bincode::serde::encode_to_vec(&record, bincode::config::standard()).unwrap();
        assert_eq!(plain, stamped);
        let (decoded, _): (Record, usize) =
            bincode::serde::decode_from_slice(&stamped, bincode::config::standard()).unwrap();
        assert_eq!(decoded.stored_at, None);
    }

    #[test]
    fn compression_round_trips_and_only_when_it_pays() {
        let text = vec![b'0'; 2048];
        let packed = deflate_if_smaller(&text, 1024).expect("repetitive bytes compress");
        assert!(packed.len() < text.len());
        assert_eq!(inflate(&packed, 1 << 20).unwrap(), text);

        assert_eq!(deflate_if_smaller(&text, 4096), None, "below the threshold");
        let noise: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        assert_eq!(
            deflate_if_smaller(&noise, 1),
            None,
            "incompressible bytes stay as they are"
        );
    }

    #[test]
    fn mismatch_needs_two_versions_that_differ() {
        let mut record = Record::new(Kind::Nil, Vec::new());
        assert!(!record.is_mismatched(Some(b"1")));
        record.version = Some(b"1".to_vec().into());
        assert!(!record.is_mismatched(None));
        assert!(!record.is_mismatched(Some(b"1")));
        assert!(record.is_mismatched(Some(b"2")));
    }

    #[test]
    fn expiry_is_inclusive_like_active_support() {
        let mut record = Record::new(Kind::True, Vec::new());
        assert!(!record.is_expired_at(f64::MAX));
        record.expires_at = Some(100.0);
        assert!(!record.is_expired_at(99.9));
        assert!(record.is_expired_at(100.0));
    }

    #[test]
    fn checks_reject_malformed_records() {
        let limit = 1 << 20;
        assert!(Record::new(Kind::Int, vec![0; 8]).check(limit).is_ok());
        assert!(Record::new(Kind::Int, vec![0; 3]).check(limit).is_err());
        assert!(Record::new(Kind::Nil, vec![1]).check(limit).is_err());
        assert!(Record::new(Kind::Tree, vec![crate::tree::NIL])
            .check(limit)
            .is_ok());
        assert!(Record::new(Kind::Tree, vec![crate::tree::ARRAY, 5])
            .check(limit)
            .is_err());
        let mut garbage = Record::new(Kind::Utf8, vec![1, 2, 3]);
        garbage.compressed = true;
        assert!(garbage.check(limit).is_err());
    }

    #[test]
    fn inflation_stops_at_the_largest_entry_accepted() {
        let bomb = deflate_if_smaller(&vec![0u8; 8 << 20], 1).unwrap();
        assert!(
            bomb.len() < 64 * 1024,
            "8 MiB of zeros deflate to {} bytes",
            bomb.len()
        );
        let mut record = Record::new(Kind::Binary, bomb);
        record.compressed = true;
        assert!(record.check(1 << 20).is_err(), "past 1 MiB");
        assert!(record.plain_payload(1 << 20).is_err());
        assert_eq!(record.plain_payload(8 << 20).unwrap().len(), 8 << 20);
    }

    #[test]
    fn plain_payload_inflates_compressed_records() {
        let bytes = vec![b'x'; 4000];
        let mut record = Record::new(Kind::Utf8, deflate_if_smaller(&bytes, 1).unwrap());
        record.compressed = true;
        assert_eq!(&*record.plain_payload(bytes.len()).unwrap(), &bytes[..]);
    }

    // Properties over random and mutated input (see `crate::fuzz`).

    const KINDS: [Kind; 11] = [
        Kind::Nil,
        Kind::True,
        Kind::False,
        Kind::Int,
        Kind::Float,
        Kind::Utf8,
        Kind::Binary,
        Kind::Ascii,
        Kind::Marshal,
        Kind::Coded,
        Kind::Tree,
    ];

    /// Bytes that compress well: a short pattern repeated, with a few changes.
    fn compressible(max: usize) -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(any::<u8>(), 1..16),
            0..max,
            prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        )
            .prop_map(|(pattern, len, changes)| {
                let mut bytes: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
                for (at, byte) in changes {
                    if !bytes.is_empty() {
                        let at = at % bytes.len();
                        bytes[at] = byte;
                    }
                }
                bytes
            })
    }

    fn deflated(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).expect("writes to a Vec");
        encoder.finish().expect("writes to a Vec")
    }

    /// Payloads a record may carry: random bytes, what each kind expects
    /// (none, eight bytes, a tree), and deflated bytes, whole or damaged.
    fn payloads() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..48),
            Just(Vec::new()),
            prop::collection::vec(any::<u8>(), 8..=8),
            crate::tree::tests::elements().prop_map(|element| element.payload()),
            compressible(4096).prop_map(|bytes| deflated(&bytes)),
            (compressible(4096), edits())
                .prop_map(|(bytes, edits)| apply(&deflated(&bytes), &edits)),
        ]
    }

    /// Records of every kind, compressed or not, with any expiry (NaN and the
    /// infinities included) and version.
    pub(crate) fn records() -> impl Strategy<Value = Record> {
        (
            prop::sample::select(KINDS.to_vec()),
            any::<bool>(),
            proptest::option::of(any::<f64>()),
            proptest::option::of(prop::collection::vec(any::<u8>(), 0..8)),
            payloads(),
        )
            .prop_map(|(kind, compressed, expires_at, version, payload)| Record {
                kind,
                compressed,
                expires_at,
                version: version.map(Into::into),
                payload: payload.into(),
                stored_at: None,
            })
    }

    /// What inflating may ask for at once, whatever the payload claims: the
    /// output grows to `max_bytes + 1` at most (by doubling), plus the
    /// decoder's own state (a 32 KiB window, buffers).
    fn inflation_bound(max_bytes: usize) -> usize {
        2 * (max_bytes + 1) + 128 * 1024
    }

    #[test]
    fn records_from_the_bus_are_checked_without_panicking() {
        const NAME: &str = "records_from_the_bus_are_checked_without_panicking";
        static ACCEPTED: Tally = Tally::new();
        static REFUSED: Tally = Tally::new();
        fuzz::check(
            NAME,
            (records(), prop_oneof![0..64usize, 0..8192usize]),
            |(record, max_bytes)| {
                let (checked, largest) = largest_allocation(|| record.check(max_bytes));
                prop_assert!(
                    largest <= inflation_bound(max_bytes),
                    "asked for {largest} bytes"
                );
                // The rule, stated once more: inflates within the limit, and
                // the kind's shape.
                let expected = match record.plain_payload(max_bytes) {
                    Err(_) => false,
                    Ok(payload) => {
                        prop_assert!(!record.compressed || payload.len() <= max_bytes);
                        match record.kind {
                            Kind::Nil | Kind::True | Kind::False => payload.is_empty(),
                            Kind::Int | Kind::Float => payload.len() == 8,
                            Kind::Tree => crate::tree::validate(&payload).is_ok(),
                            _ => true,
                        }
                    }
                };
                prop_assert_eq!(checked.is_ok(), expected, "{:?}", checked);
                ACCEPTED.count(checked.is_ok());
                REFUSED.count(checked.is_err());
                Ok(())
            },
        );
        ACCEPTED.at_least(0.2, NAME, "were accepted");
        REFUSED.at_least(0.2, NAME, "were refused");
    }

    /// Deflated bytes that claim a thousand times what they weigh (computed
    /// once): zeros, a two-byte pattern, and a kilobyte of noise repeated.
    fn bombs() -> &'static [(usize, Vec<u8>)] {
        static BOMBS: OnceLock<Vec<(usize, Vec<u8>)>> = OnceLock::new();
        BOMBS.get_or_init(|| {
            let noise: Vec<u8> = (0..1024u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
                .collect();
            [
                vec![0u8; 1 << 20],
                b"ab".repeat(1 << 19),
                noise.repeat(1 << 10),
            ]
            .iter()
            .map(|plain| (plain.len(), deflated(plain)))
            .collect()
        })
    }

    #[test]
    fn compressed_payloads_never_inflate_past_the_limit() {
        const NAME: &str = "compressed_payloads_never_inflate_past_the_limit";
        static WHOLE: Tally = Tally::new();
        // Limits mostly far below what the bomb claims, some around it (the
        // bomb inflates whole or not at all); bombs whole or damaged.
        let limits = prop_oneof![
            6 => 0..4096usize,
            3 => 0..128usize << 10,
            1 => (-1..=1isize).prop_map(|off| (1usize << 20).saturating_add_signed(off)),
        ];
        fuzz::check(
            NAME,
            (any::<usize>(), limits, proptest::option::of(edits())),
            |(pick, max_bytes, edits)| {
                let (plain_len, bomb) = &bombs()[pick % bombs().len()];
                let payload = match &edits {
                    Some(edits) => apply(bomb, edits),
                    None => bomb.clone(),
                };
                let (inflated, largest) = largest_allocation(|| inflate(&payload, max_bytes));
                prop_assert!(
                    largest <= inflation_bound(max_bytes),
                    "inflating to at most {max_bytes} asked for {largest} bytes"
                );
                match inflated {
                    Ok(plain) => {
                        prop_assert!(plain.len() <= max_bytes);
                        if edits.is_none() {
                            prop_assert_eq!(plain.len(), *plain_len);
                        }
                        WHOLE.count(plain.len() == *plain_len);
                    }
                    Err(_) => prop_assert!(edits.is_some() || *plain_len > max_bytes),
                }
                Ok(())
            },
        );
        WHOLE.at_least(0.01, NAME, "inflated whole");
    }

    #[test]
    fn deflate_and_inflate_round_trip() {
        fuzz::check(
            "deflate_and_inflate_round_trip",
            (
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..512),
                    compressible(16 << 10)
                ],
                0..2048usize,
            ),
            |(bytes, threshold)| {
                match deflate_if_smaller(&bytes, threshold) {
                    Some(packed) => {
                        prop_assert!(!bytes.is_empty() && bytes.len() >= threshold);
                        prop_assert!(packed.len() < bytes.len());
                        prop_assert_eq!(&inflate(&packed, bytes.len()).unwrap(), &bytes);
                        prop_assert!(inflate(&packed, bytes.len() - 1).is_err());
                    }
                    None => prop_assert!(
                        bytes.is_empty()
                            || bytes.len() < threshold
                            || deflated(&bytes).len() >= bytes.len()
                    ),
                }
                Ok(())
            },
        );
    }
}
