//! The one codec between Ruby values and [`Record`] payloads.
//!
//! Plain Strings (UTF-8, binary, US-ASCII, no instance variables, class exactly
//! String), Integers that fit an `i64`, Floats, nil, true and false are stored
//! natively so a hit rebuilds them with one allocation and no `Marshal`; plain
//! data made of those, Symbols and Times in Hashes and Arrays is stored as a
//! tree (ruby/tree.rs) that a hit rebuilds directly. Any other value goes
//! through `Marshal.dump`, which raises `TypeError` for what cannot be serialized
//! (a Proc, an IO) before anything is stored.

use magnus::{
    encoding::EncodingCapable,
    prelude::*,
    rb_sys::{protect, AsRawValue, FromRawValue},
    Error, Float, Integer, RString, Ruby, Value,
};
use rb_sys::{Qfalse, Qnil, Qtrue, VALUE};

use crate::record::{deflate_if_smaller, Kind, Record};

use super::errors;

/// Encodes `value` as a record without version or expiry, or None when its
/// payload is larger than `max_bytes` (the largest entry L1 accepts). With
/// `compress_threshold`, payloads at least that long are deflated when that makes
/// them smaller (ActiveSupport's `compress:`/`compress_threshold:`).
pub(super) fn encode(
    ruby: &Ruby,
    value: Value,
    compress_threshold: Option<usize>,
    max_bytes: usize,
) -> Result<Option<Record>, Error> {
    let raw = value.as_raw();
    let (kind, payload) = if raw == Qnil as VALUE {
        (Kind::Nil, Vec::new())
    } else if raw == Qtrue as VALUE {
        (Kind::True, Vec::new())
    } else if raw == Qfalse as VALUE {
        (Kind::False, Vec::new())
    } else if let Some(kind) = plain_string_kind(ruby, value) {
        let string = RString::from_value(value).expect("plain_string_kind checked the type");
        // SAFETY: the slice is copied before any other Ruby call could run GC or
        // mutate the string.
        (kind, unsafe { string.as_slice() }.to_vec())
    } else if let Some(int) = Integer::from_value(value).and_then(|int| int.to_i64().ok()) {
        (Kind::Int, int.to_le_bytes().to_vec())
    } else if let Some(float) = Float::from_value(value) {
        (Kind::Float, float.to_f64().to_bits().to_le_bytes().to_vec())
    } else if let Some(tree) = super::tree::encode(ruby, value)? {
        (Kind::Tree, tree)
    } else {
        (Kind::Marshal, marshal_dump(value)?)
    };
    if payload.len() > max_bytes {
        return Ok(None);
    }
    Ok(Some(compressed(kind, payload, compress_threshold)))
}

/// A record of kind [`Kind::Coded`] holding what a user `coder:` produced, or
/// None when it is larger than `max_bytes`.
pub(super) fn encode_coded(bytes: RString, max_bytes: usize) -> Option<Record> {
    // SAFETY: copied at once, with no Ruby call in between.
    let bytes = unsafe { bytes.as_slice() };
    (bytes.len() <= max_bytes).then(|| Record::new(Kind::Coded, bytes.to_vec()))
}

/// Rebuilds the Ruby value a record encodes, inflating it to at most
/// `max_bytes`. A [`Kind::Coded`] record yields its bytes as a binary String
/// for the Ruby side's coder to load.
pub(super) fn decode(ruby: &Ruby, record: &Record, max_bytes: usize) -> Result<Value, Error> {
    let payload = record
        .plain_payload(max_bytes)
        .map_err(|e| corrupt(ruby, format!("a compressed entry does not inflate: {e}")))?;
    let value = match record.kind {
        Kind::Nil => ruby.qnil().as_value(),
        Kind::True => ruby.qtrue().as_value(),
        Kind::False => ruby.qfalse().as_value(),
        Kind::Int => ruby
            .integer_from_i64(i64::from_le_bytes(eight_bytes(ruby, &payload)?))
            .as_value(),
        Kind::Float => ruby
            .float_from_f64(f64::from_bits(u64::from_le_bytes(eight_bytes(
                ruby, &payload,
            )?)))
            .as_value(),
        Kind::Utf8 => ruby.enc_str_new(&payload, ruby.utf8_encoding()).as_value(),
        Kind::Ascii => ruby
            .enc_str_new(&payload, ruby.usascii_encoding())
            .as_value(),
        Kind::Binary | Kind::Coded => ruby.str_from_slice(&payload).as_value(),
        Kind::Marshal => marshal_load(ruby.str_from_slice(&payload))?,
        Kind::Tree => super::tree::decode(ruby, &payload)?,
    };
    Ok(value)
}

/// `Time.now.to_f`, through method dispatch so that stubbed clocks (ActiveSupport's
/// `travel_to`, Minitest's `Time.stub`) are honoured as ActiveSupport's stores do.
pub(super) fn ruby_now(ruby: &Ruby) -> Result<f64, Error> {
    ruby.class_time()
        .funcall::<_, _, Value>("now", ())?
        .funcall("to_f", ())
}

fn plain_string_kind(ruby: &Ruby, value: Value) -> Option<Kind> {
    let string = RString::from_value(value)?;
    // SAFETY: rb_obj_class and rb_ivar_count only read the object's header; the
    // value is a live String on the stack.
    let plain = unsafe {
        rb_sys::rb_obj_class(value.as_raw()) == rb_sys::rb_cString
            && rb_sys::rb_ivar_count(value.as_raw()) == 0
    };
    if !plain {
        return None;
    }
    let encoding = string.enc_get();
    if encoding == ruby.utf8_encindex() {
        Some(Kind::Utf8)
    } else if encoding == ruby.ascii8bit_encindex() {
        Some(Kind::Binary)
    } else if encoding == ruby.usascii_encindex() {
        Some(Kind::Ascii)
    } else {
        None
    }
}

fn compressed(kind: Kind, payload: Vec<u8>, threshold: Option<usize>) -> Record {
    let compressible = matches!(
        kind,
        Kind::Marshal | Kind::Tree | Kind::Utf8 | Kind::Binary | Kind::Ascii
    );
    match threshold
        .filter(|_| compressible)
        .and_then(|t| deflate_if_smaller(&payload, t))
    {
        Some(packed) => {
            let mut record = Record::new(kind, packed);
            record.compressed = true;
            record
        }
        None => Record::new(kind, payload),
    }
}

fn marshal_dump(value: Value) -> Result<Vec<u8>, Error> {
    // SAFETY: rb_marshal_dump is called with the GVL held (we are in a method
    // called from Ruby) and wrapped in protect, so a raised TypeError comes back
    // as an Err instead of unwinding through Rust frames.
    let dumped = protect(|| unsafe { rb_sys::rb_marshal_dump(value.as_raw(), Qnil as VALUE) })?;
    let dumped = RString::from_value(ruby_value(dumped)).expect("Marshal.dump returns a String");
    // SAFETY: copied at once, with no Ruby call in between.
    Ok(unsafe { dumped.as_slice() }.to_vec())
}

fn marshal_load(bytes: RString) -> Result<Value, Error> {
    // SAFETY: as for marshal_dump; the source String is on the stack, so GC keeps
    // it alive for the duration of the call.
    let loaded = protect(|| unsafe { rb_sys::rb_marshal_load(bytes.as_raw()) })?;
    Ok(ruby_value(loaded))
}

fn ruby_value(raw: VALUE) -> Value {
    // SAFETY: `raw` was just returned by the Ruby VM and is on the stack, where
    // the conservative GC sees it.
    unsafe { Value::from_raw(raw) }
}

fn eight_bytes(ruby: &Ruby, payload: &[u8]) -> Result<[u8; 8], Error> {
    payload.try_into().map_err(|_| {
        corrupt(
            ruby,
            format!("a numeric entry holds {} bytes, not 8", payload.len()),
        )
    })
}

fn corrupt(ruby: &Ruby, message: String) -> Error {
    errors::to_ruby(ruby, crate::error::Error::Corrupt(message))
}
