//! The byte format of [`crate::record::Kind::Tree`] payloads: plain data (nested
//! Hashes and Arrays of Strings, Symbols, Integers, Floats, nil, true, false and
//! Times) written so that a read rebuilds it directly, without `Marshal`.
//!
//! ```text
//! element := NIL | TRUE | FALSE
//!          | INT varint(zigzag i64) | FLOAT 8 bytes LE
//!          | UTF8|BINARY|ASCII varint(len) bytes      Strings by encoding
//!          | SYMBOL varint(len) bytes                 its name in UTF-8
//!          | ARRAY varint(n) element*n
//!          | HASH varint(n) (element element)*n       insertion order
//!          | TIME_UTC varint(zigzag seconds) varint(nanoseconds)
//!          | TIME_FIXED varint(zigzag seconds) varint(nanoseconds) varint(zigzag utc offset)
//!          | TIME_LOCAL varint(zigzag seconds) varint(nanoseconds) varint(zigzag utc offset)
//!                       varint(len) zone varint(len) marshal
//! ```
//!
//! A local time carries its zone name and its `Marshal.dump`: the reader rebuilds
//! it natively when its own time zone gives the same offset and name at that
//! instant, and loads the marshalled copy otherwise, so the result always equals
//! what `Marshal` would give. This module knows the format; the binding layer
//! walks Ruby objects to write it and builds Ruby objects when reading it.

/// `nil`.
pub const NIL: u8 = 0;
/// `true`.
pub const TRUE: u8 = 1;
/// `false`.
pub const FALSE: u8 = 2;
/// An Integer within i64.
pub const INT: u8 = 3;
/// A Float.
pub const FLOAT: u8 = 4;
/// A UTF-8 String.
pub const UTF8: u8 = 5;
/// An ASCII-8BIT String.
pub const BINARY: u8 = 6;
/// A US-ASCII String.
pub const ASCII: u8 = 7;
/// A Symbol.
pub const SYMBOL: u8 = 8;
/// An Array.
pub const ARRAY: u8 = 9;
/// A Hash.
pub const HASH: u8 = 10;
/// A UTC Time.
pub const TIME_UTC: u8 = 11;
/// A Time with a fixed offset and no zone name.
pub const TIME_FIXED: u8 = 12;
/// A local Time with a zone name.
pub const TIME_LOCAL: u8 = 13;

/// Deepest nesting written or read; deeper values fall back to Marshal, and
/// deeper payloads are rejected, so a forged payload cannot exhaust the stack.
pub const MAX_DEPTH: usize = 100;

/// Why a payload is not a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub &'static str);

/// Appends to a payload.
#[derive(Default)]
pub struct Writer {
    /// The bytes written so far.
    pub bytes: Vec<u8>,
}

impl Writer {
    /// A tag byte.
    pub fn tag(&mut self, tag: u8) {
        self.bytes.push(tag);
    }

    /// An unsigned varint (LEB128).
    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    /// A signed varint (zigzag).
    pub fn signed(&mut self, value: i64) {
        self.varint(((value << 1) ^ (value >> 63)) as u64);
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.bytes.extend_from_slice(bytes);
    }

    /// A Float's bits.
    pub fn float(&mut self, value: f64) {
        self.bytes.extend_from_slice(&value.to_bits().to_le_bytes());
    }
}

/// Reads a payload from the front.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next tag byte.
    pub fn tag(&mut self) -> Result<u8, Corrupt> {
        let (&tag, rest) = self.bytes.split_first().ok_or(Corrupt("truncated"))?;
        self.bytes = rest;
        Ok(tag)
    }

    /// An unsigned varint.
    pub fn varint(&mut self) -> Result<u64, Corrupt> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.tag()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Corrupt("varint too long"))
    }

    /// A signed (zigzag) varint.
    pub fn signed(&mut self) -> Result<i64, Corrupt> {
        let raw = self.varint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A count of elements to follow: each needs at least one more byte, so a
    /// count larger than what is left is corrupt (and never allocated for).
    pub fn count(&mut self) -> Result<usize, Corrupt> {
        let count = self.varint()?;
        usize::try_from(count)
            .ok()
            .filter(|&count| count <= self.bytes.len())
            .ok_or(Corrupt("count beyond the payload"))
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], Corrupt> {
        let len = usize::try_from(self.varint()?).map_err(|_| Corrupt("length overflow"))?;
        if len > self.bytes.len() {
            return Err(Corrupt("string beyond the payload"));
        }
        let (bytes, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(bytes)
    }

    /// A Float.
    pub fn float(&mut self) -> Result<f64, Corrupt> {
        if self.bytes.len() < 8 {
            return Err(Corrupt("truncated float"));
        }
        let (bits, rest) = self.bytes.split_at(8);
        self.bytes = rest;
        Ok(f64::from_bits(u64::from_le_bytes(
            bits.try_into().expect("eight bytes"),
        )))
    }

    /// Nanoseconds of a time (below one second).
    pub fn nanoseconds(&mut self) -> Result<u32, Corrupt> {
        u32::try_from(self.varint()?)
            .ok()
            .filter(|&nanos| nanos < 1_000_000_000)
            .ok_or(Corrupt("nanoseconds out of range"))
    }
}

/// Checks that `bytes` is exactly one well-formed element, so that a payload from
/// the bus can be rejected before anything is stored.
pub fn validate(bytes: &[u8]) -> Result<(), Corrupt> {
    let mut reader = Reader::new(bytes);
    skip(&mut reader, 0)?;
    if reader.is_empty() {
        Ok(())
    } else {
        Err(Corrupt("trailing bytes"))
    }
}

fn skip(reader: &mut Reader<'_>, depth: usize) -> Result<(), Corrupt> {
    if depth > MAX_DEPTH {
        return Err(Corrupt("nested too deeply"));
    }
    match reader.tag()? {
        NIL | TRUE | FALSE => {}
        INT => {
            reader.signed()?;
        }
        FLOAT => {
            reader.float()?;
        }
        UTF8 | BINARY | ASCII => {
            reader.bytes()?;
        }
        // A Symbol's name is UTF-8, as the binding layer writes it and
        // insists on reading it.
        SYMBOL => {
            std::str::from_utf8(reader.bytes()?).map_err(|_| Corrupt("symbol name not UTF-8"))?;
        }
        ARRAY => {
            for _ in 0..reader.count()? {
                skip(reader, depth + 1)?;
            }
        }
        HASH => {
            for _ in 0..reader.count()? {
                skip(reader, depth + 1)?;
                skip(reader, depth + 1)?;
            }
        }
        TIME_UTC => {
            reader.signed()?;
            reader.nanoseconds()?;
        }
        TIME_FIXED => {
            reader.signed()?;
            reader.nanoseconds()?;
            reader.signed()?;
        }
        TIME_LOCAL => {
            reader.signed()?;
            reader.nanoseconds()?;
            reader.signed()?;
            reader.bytes()?;
            reader.bytes()?;
        }
        _ => return Err(Corrupt("unknown tag")),
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::fuzz::{self, apply, edits, telling_byte, Tally};

    #[test]
    fn a_symbol_name_must_be_utf8_as_the_binding_layer_reads_it() {
        assert!(validate(&[SYMBOL, 2, b'o', b'k']).is_ok());
        assert_eq!(
            validate(&[SYMBOL, 1, 0xff]),
            Err(Corrupt("symbol name not UTF-8"))
        );
    }

    #[test]
    fn varints_round_trip_across_the_range() {
        for value in [0i64, 1, -1, 63, -64, 64, 300, -300, i64::MAX, i64::MIN] {
            let mut writer = Writer::default();
            writer.signed(value);
            assert_eq!(Reader::new(&writer.bytes).signed(), Ok(value));
        }
    }

    fn sample() -> Vec<u8> {
        let mut w = Writer::default();
        w.tag(HASH);
        w.varint(2);
        w.tag(UTF8);
        w.bytes(b"roles");
        w.tag(ARRAY);
        w.varint(2);
        w.tag(SYMBOL);
        w.bytes(b"admin");
        w.tag(INT);
        w.signed(-7);
        w.tag(UTF8);
        w.bytes(b"at");
        w.tag(TIME_LOCAL);
        w.signed(1_700_000_000);
        w.varint(5);
        w.signed(3600);
        w.bytes(b"CET");
        w.bytes(b"\x04\x08marshal");
        w.bytes
    }

    #[test]
    fn well_formed_payloads_validate() {
        assert_eq!(validate(&sample()), Ok(()));
    }

    #[test]
    fn truncations_trailing_bytes_and_unknown_tags_are_corrupt() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(validate(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(NIL);
        assert_eq!(validate(&trailing), Err(Corrupt("trailing bytes")));
        assert_eq!(validate(&[99]), Err(Corrupt("unknown tag")));
    }

    #[test]
    fn forged_counts_and_depths_are_refused_without_allocating() {
        let mut huge = Writer::default();
        huge.tag(ARRAY);
        huge.varint(u64::MAX / 2);
        assert!(validate(&huge.bytes).is_err());
        let deep: Vec<u8> = std::iter::repeat_n([ARRAY, 1], MAX_DEPTH + 2)
            .flatten()
            .chain([NIL])
            .collect();
        assert_eq!(validate(&deep), Err(Corrupt("nested too deeply")));
    }

    // Properties over random and mutated input (see `crate::fuzz`).

    /// A value as the format holds it, to write with [`Writer`] and compare
    /// with what a reader gets back.
    #[derive(Clone, Debug, PartialEq)]
    pub(crate) enum Element {
        Constant(u8),
        Int(i64),
        /// Bits, so that NaNs compare.
        Float(u64),
        /// A String (by encoding) or a Symbol.
        Bytes(u8, Vec<u8>),
        Array(Vec<Element>),
        Hash(Vec<(Element, Element)>),
        TimeUtc(i64, u32),
        TimeFixed(i64, u32, i64),
        TimeLocal(i64, u32, i64, Vec<u8>, Vec<u8>),
    }

    impl Element {
        pub(crate) fn write(&self, w: &mut Writer) {
            match self {
                Element::Constant(tag) => w.tag(*tag),
                Element::Int(value) => {
                    w.tag(INT);
                    w.signed(*value);
                }
                Element::Float(bits) => {
                    w.tag(FLOAT);
                    w.float(f64::from_bits(*bits));
                }
                Element::Bytes(tag, bytes) => {
                    w.tag(*tag);
                    w.bytes(bytes);
                }
                Element::Array(items) => {
                    w.tag(ARRAY);
                    w.varint(items.len() as u64);
                    items.iter().for_each(|item| item.write(w));
                }
                Element::Hash(pairs) => {
                    w.tag(HASH);
                    w.varint(pairs.len() as u64);
                    for (key, item) in pairs {
                        key.write(w);
                        item.write(w);
                    }
                }
                Element::TimeUtc(seconds, nanos) => {
                    w.tag(TIME_UTC);
                    w.signed(*seconds);
                    w.varint(u64::from(*nanos));
                }
                Element::TimeFixed(seconds, nanos, offset) => {
                    w.tag(TIME_FIXED);
                    w.signed(*seconds);
                    w.varint(u64::from(*nanos));
                    w.signed(*offset);
                }
                Element::TimeLocal(seconds, nanos, offset, zone, marshal) => {
                    w.tag(TIME_LOCAL);
                    w.signed(*seconds);
                    w.varint(u64::from(*nanos));
                    w.signed(*offset);
                    w.bytes(zone);
                    w.bytes(marshal);
                }
            }
        }

        pub(crate) fn payload(&self) -> Vec<u8> {
            let mut writer = Writer::default();
            self.write(&mut writer);
            writer.bytes
        }

        /// How deep a reader goes: the depth of the deepest element below
        /// this one (an empty container holds none).
        fn depth(&self) -> usize {
            let deepest =
                |depths: &mut dyn Iterator<Item = usize>| depths.max().map_or(0, |d| d + 1);
            match self {
                Element::Array(items) => deepest(&mut items.iter().map(Element::depth)),
                Element::Hash(pairs) => deepest(
                    &mut pairs
                        .iter()
                        .flat_map(|(key, item)| [key.depth(), item.depth()]),
                ),
                _ => 0,
            }
        }
    }

    /// Reads an element the way the binding layer does (`ruby/tree.rs`), into
    /// an [`Element`] instead of a Ruby object.
    fn read(reader: &mut Reader<'_>, depth: usize) -> Result<Element, Corrupt> {
        if depth > MAX_DEPTH {
            return Err(Corrupt("nested too deeply"));
        }
        Ok(match reader.tag()? {
            tag @ (NIL | TRUE | FALSE) => Element::Constant(tag),
            INT => Element::Int(reader.signed()?),
            FLOAT => Element::Float(reader.float()?.to_bits()),
            tag @ (UTF8 | BINARY | ASCII) => Element::Bytes(tag, reader.bytes()?.to_vec()),
            SYMBOL => {
                let name = reader.bytes()?;
                std::str::from_utf8(name).map_err(|_| Corrupt("symbol name not UTF-8"))?;
                Element::Bytes(SYMBOL, name.to_vec())
            }
            ARRAY => {
                let count = reader.count()?;
                Element::Array(
                    (0..count)
                        .map(|_| read(reader, depth + 1))
                        .collect::<Result<_, _>>()?,
                )
            }
            HASH => {
                let count = reader.count()?;
                Element::Hash(
                    (0..count)
                        .map(|_| Ok((read(reader, depth + 1)?, read(reader, depth + 1)?)))
                        .collect::<Result<_, _>>()?,
                )
            }
            TIME_UTC => Element::TimeUtc(reader.signed()?, reader.nanoseconds()?),
            TIME_FIXED => {
                Element::TimeFixed(reader.signed()?, reader.nanoseconds()?, reader.signed()?)
            }
            TIME_LOCAL => Element::TimeLocal(
                reader.signed()?,
                reader.nanoseconds()?,
                reader.signed()?,
                reader.bytes()?.to_vec(),
                reader.bytes()?.to_vec(),
            ),
            _ => return Err(Corrupt("unknown tag")),
        })
    }

    /// The element in `bytes`, which must hold nothing else.
    fn read_all(bytes: &[u8]) -> Result<Element, Corrupt> {
        let mut reader = Reader::new(bytes);
        let element = read(&mut reader, 0)?;
        if reader.is_empty() {
            Ok(element)
        } else {
            Err(Corrupt("trailing bytes"))
        }
    }

    fn leaves() -> impl Strategy<Value = Element> {
        let bytes = || prop::collection::vec(any::<u8>(), 0..12);
        let nanos = || prop_oneof![0..1_000_000_000u32, Just(999_999_999)];
        prop_oneof![
            prop::sample::select(vec![NIL, TRUE, FALSE]).prop_map(Element::Constant),
            any::<i64>().prop_map(Element::Int),
            any::<f64>().prop_map(|value| Element::Float(value.to_bits())),
            (prop::sample::select(vec![UTF8, BINARY, ASCII]), bytes())
                .prop_map(|(tag, bytes)| Element::Bytes(tag, bytes)),
            // A Symbol's name is UTF-8 (the binding layer writes it so).
            "\\PC{0,8}".prop_map(|name: String| Element::Bytes(SYMBOL, name.into_bytes())),
            (any::<i64>(), nanos()).prop_map(|(s, n)| Element::TimeUtc(s, n)),
            (any::<i64>(), nanos(), any::<i64>()).prop_map(|(s, n, o)| Element::TimeFixed(s, n, o)),
            (any::<i64>(), nanos(), any::<i64>(), bytes(), bytes())
                .prop_map(|(s, n, o, zone, marshal)| Element::TimeLocal(s, n, o, zone, marshal)),
        ]
    }

    /// Nested values of every kind, and chains nested around the depth limit.
    pub(crate) fn elements() -> impl Strategy<Value = Element> {
        let nested = leaves().prop_recursive(6, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Element::Array),
                prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Element::Hash),
            ]
        });
        let chain = (leaves(), MAX_DEPTH - 3..MAX_DEPTH + 3, any::<u64>()).prop_map(
            |(leaf, links, hashes)| {
                (0..links).fold(leaf, |inner, link| {
                    if hashes >> (link % 64) & 1 == 1 {
                        Element::Hash(vec![(Element::Constant(NIL), inner)])
                    } else {
                        Element::Array(vec![inner])
                    }
                })
            },
        );
        prop_oneof![4 => nested, 1 => chain]
    }

    /// Nesting far past the limit: a validator without one would overflow
    /// the test thread's stack.
    fn deep_payloads() -> impl Strategy<Value = Vec<u8>> {
        (MAX_DEPTH..100_000usize, any::<bool>()).prop_map(|(links, hash)| {
            let link: &[u8] = if hash { &[HASH, 1, NIL] } else { &[ARRAY, 1] };
            let mut bytes = link.repeat(links);
            bytes.push(NIL);
            bytes
        })
    }

    /// Bytes made of pieces of elements, each well-formed on its own
    /// (containers without their elements), and of stray bytes: some of them
    /// add up to one element.
    fn pieces() -> impl Strategy<Value = Vec<u8>> {
        let small = || 0..0x80u8;
        let piece = prop_oneof![
            prop::sample::select(vec![NIL, TRUE, FALSE]).prop_map(|tag| vec![tag]),
            small().prop_map(|value| vec![INT, value]),
            any::<u64>().prop_map(|bits| [&[FLOAT][..], &bits.to_le_bytes()].concat()),
            (
                prop::sample::select(vec![UTF8, BINARY, ASCII, SYMBOL]),
                0..3u8
            )
                .prop_map(|(tag, len)| [vec![tag, len], vec![b'x'; usize::from(len)]].concat()),
            (prop::sample::select(vec![ARRAY, HASH]), 0..3u8).prop_map(|(tag, n)| vec![tag, n]),
            (small(), small()).prop_map(|(seconds, nanos)| vec![TIME_UTC, seconds, nanos]),
            telling_byte().prop_map(|byte| vec![byte]),
        ];
        prop::collection::vec(piece, 1..8).prop_map(|pieces| pieces.concat())
    }

    /// Validation must agree with reading: a payload it lets through is one
    /// the binding layer can rebuild, all of it.
    fn validates_only_if_it_reads(bytes: &[u8], valid: &Tally) -> Result<(), TestCaseError> {
        let validated = validate(bytes);
        let read = read_all(bytes);
        prop_assert_eq!(
            validated.is_ok(),
            read.is_ok(),
            "validated {:?}, read {:?}",
            validated,
            read
        );
        valid.count(validated.is_ok());
        Ok(())
    }

    #[test]
    fn arbitrary_tree_payloads_are_validated_without_panicking() {
        const NAME: &str = "arbitrary_tree_payloads_are_validated_without_panicking";
        static VALID: Tally = Tally::new();
        fuzz::check(
            NAME,
            prop_oneof![
                4 => prop::collection::vec(any::<u8>(), 0..64),
                8 => pieces(),
                1 => deep_payloads(),
            ],
            |bytes| validates_only_if_it_reads(&bytes, &VALID),
        );
        VALID.at_least(0.05, NAME, "were valid");
    }

    #[test]
    fn written_trees_validate_and_read_back() {
        const NAME: &str = "written_trees_validate_and_read_back";
        static TOO_DEEP: Tally = Tally::new();
        fuzz::check(NAME, elements(), |element| {
            let bytes = element.payload();
            TOO_DEEP.count(element.depth() > MAX_DEPTH);
            if element.depth() <= MAX_DEPTH {
                prop_assert_eq!(validate(&bytes), Ok(()));
                prop_assert_eq!(read_all(&bytes), Ok(element));
            } else {
                prop_assert_eq!(validate(&bytes), Err(Corrupt("nested too deeply")));
            }
            Ok(())
        });
        TOO_DEEP.at_least(0.03, NAME, "were nested too deeply");
    }

    #[test]
    fn mutated_tree_payloads_validate_only_if_they_read() {
        const NAME: &str = "mutated_tree_payloads_validate_only_if_they_read";
        static VALID: Tally = Tally::new();
        fuzz::check(
            NAME,
            (
                prop_oneof![9 => elements().prop_map(|e| e.payload()), 1 => deep_payloads()],
                edits(),
            ),
            |(bytes, edits)| validates_only_if_it_reads(&apply(&bytes, &edits), &VALID),
        );
        VALID.at_least(0.05, NAME, "were still valid");
    }
}
