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
        UTF8 | BINARY | ASCII | SYMBOL => {
            reader.bytes()?;
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
mod tests {
    use super::*;

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
}
