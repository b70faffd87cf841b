//! Plain Ruby data to and from [`crate::tree`] payloads.
//!
//! The encoder accepts only what it can give back exactly as `Marshal` would:
//! Hashes and Arrays of exactly those classes, without instance variables,
//! default values or identity comparison; Strings in UTF-8, ASCII-8BIT or
//! US-ASCII without instance variables; Symbols; Integers within i64; Floats;
//! nil, true, false; Times without instance variables. A mutable String, Array or
//! Hash reached twice (Marshal would keep the two references one object) or a
//! cycle makes it give up, and the caller uses Marshal for the whole value.

use std::collections::HashSet;

use magnus::{
    encoding::EncodingCapable,
    prelude::*,
    r_hash::ForEach,
    rb_sys::{protect, AsRawValue, FromRawValue},
    Error, Float, Integer, RArray, RHash, RString, Ruby, Symbol, Value,
};
use rb_sys::{Qfalse, Qnil, Qtrue, VALUE};

use crate::tree::{self, Corrupt, Reader, Writer, MAX_DEPTH};

use super::errors;

/// The payload for `value`, or None when it is not plain data.
pub(super) fn encode(ruby: &Ruby, value: Value) -> Result<Option<Vec<u8>>, Error> {
    let mut encoder = Encoder {
        writer: Writer::default(),
        seen: HashSet::new(),
    };
    Ok(encoder
        .element(ruby, value, 0)?
        .then_some(encoder.writer.bytes))
}

/// Rebuilds the value a payload holds.
pub(super) fn decode(ruby: &Ruby, bytes: &[u8]) -> Result<Value, Error> {
    let mut reader = Reader::new(bytes);
    let value = element(ruby, &mut reader, 0)?;
    if !reader.is_empty() {
        return Err(corrupt(ruby, Corrupt("trailing bytes")));
    }
    Ok(value)
}

struct Encoder {
    writer: Writer,
    /// Mutable objects written so far (by address), to notice shared references.
    seen: HashSet<VALUE>,
}

fn class_is(value: Value, class: VALUE) -> bool {
    // SAFETY: rb_obj_class only reads the object's header.
    unsafe { rb_sys::rb_obj_class(value.as_raw()) == class }
}

fn has_ivars(value: Value) -> bool {
    // SAFETY: as above.
    unsafe { rb_sys::rb_ivar_count(value.as_raw()) != 0 }
}

impl Encoder {
    fn first_sighting(&mut self, value: Value) -> bool {
        self.seen.insert(value.as_raw())
    }

    /// Writes `value`; false when it is not plain data.
    fn element(&mut self, ruby: &Ruby, value: Value, depth: usize) -> Result<bool, Error> {
        if depth > MAX_DEPTH {
            return Ok(false);
        }
        let raw = value.as_raw();
        let w = &mut self.writer;
        if raw == Qnil as VALUE {
            w.tag(tree::NIL);
        } else if raw == Qtrue as VALUE {
            w.tag(tree::TRUE);
        } else if raw == Qfalse as VALUE {
            w.tag(tree::FALSE);
        } else if let Some(int) = Integer::from_value(value) {
            let Ok(int) = int.to_i64() else {
                return Ok(false);
            };
            w.tag(tree::INT);
            w.signed(int);
        } else if let Some(float) = Float::from_value(value) {
            w.tag(tree::FLOAT);
            w.float(float.to_f64());
        } else if let Some(symbol) = Symbol::from_value(value) {
            let Ok(name) = symbol.name() else {
                return Ok(false);
            };
            w.tag(tree::SYMBOL);
            w.bytes(name.as_bytes());
        } else if let Some(string) = RString::from_value(value) {
            return self.string(ruby, string);
        } else if let Some(array) = RArray::from_value(value) {
            return self.array(ruby, array, depth);
        } else if let Some(hash) = RHash::from_value(value) {
            return self.hash(ruby, hash, depth);
        } else {
            // SAFETY: reading the rb_cTime global.
            if class_is(value, unsafe { rb_sys::rb_cTime }) && !has_ivars(value) {
                return self.time(ruby, value);
            }
            return Ok(false);
        }
        Ok(true)
    }

    fn string(&mut self, ruby: &Ruby, string: RString) -> Result<bool, Error> {
        let value = string.as_value();
        // SAFETY: reading the rb_cString global.
        if !class_is(value, unsafe { rb_sys::rb_cString }) || has_ivars(value) {
            return Ok(false);
        }
        // A frozen String reached twice (a frozen literal, say) cannot be told
        // from two equal copies by mutating it, so only mutable ones must be unique.
        if !string.is_frozen() && !self.first_sighting(value) {
            return Ok(false);
        }
        let encoding = string.enc_get();
        let tag = if encoding == ruby.utf8_encindex() {
            tree::UTF8
        } else if encoding == ruby.ascii8bit_encindex() {
            tree::BINARY
        } else if encoding == ruby.usascii_encindex() {
            tree::ASCII
        } else {
            return Ok(false);
        };
        self.writer.tag(tag);
        // SAFETY: copied at once, with no Ruby call in between.
        self.writer.bytes(unsafe { string.as_slice() });
        Ok(true)
    }

    fn array(&mut self, ruby: &Ruby, array: RArray, depth: usize) -> Result<bool, Error> {
        let value = array.as_value();
        // SAFETY: reading the rb_cArray global.
        if !class_is(value, unsafe { rb_sys::rb_cArray })
            || has_ivars(value)
            || !self.first_sighting(value)
        {
            return Ok(false);
        }
        let len = array.len();
        self.writer.tag(tree::ARRAY);
        self.writer.varint(len as u64);
        for index in 0..len {
            // Indexes past a length changed meanwhile read as nil, but nothing
            // here runs Ruby code that could change it.
            let item: Value = array.entry(index as isize)?;
            if !self.element(ruby, item, depth + 1)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn hash(&mut self, ruby: &Ruby, hash: RHash, depth: usize) -> Result<bool, Error> {
        let value = hash.as_value();
        // SAFETY: reading the rb_cHash global.
        if !class_is(value, unsafe { rb_sys::rb_cHash })
            || has_ivars(value)
            || !self.first_sighting(value)
        {
            return Ok(false);
        }
        let plain = value.funcall::<_, _, Value>("default", ())?.is_nil()
            && value.funcall::<_, _, Value>("default_proc", ())?.is_nil()
            && !value.funcall::<_, _, bool>("compare_by_identity?", ())?;
        if !plain {
            return Ok(false);
        }
        self.writer.tag(tree::HASH);
        self.writer.varint(hash.len() as u64);
        let mut supported = true;
        hash.foreach(|key: Value, item: Value| {
            if self.element(ruby, key, depth + 1)? && self.element(ruby, item, depth + 1)? {
                Ok(ForEach::Continue)
            } else {
                supported = false;
                Ok(ForEach::Stop)
            }
        })?;
        Ok(supported)
    }

    fn time(&mut self, ruby: &Ruby, time: Value) -> Result<bool, Error> {
        // SAFETY: `time` is a Time (checked by the caller); rb_time_timespec reads it.
        let spec = unsafe { rb_sys::rb_time_timespec(time.as_raw()) };
        let (seconds, nanos) = (spec.tv_sec, spec.tv_nsec as u64);
        if time.funcall::<_, _, bool>("utc?", ())? {
            self.writer.tag(tree::TIME_UTC);
            self.writer.signed(seconds);
            self.writer.varint(nanos);
            return Ok(true);
        }
        let Some(offset) =
            Integer::from_value(time.funcall("utc_offset", ())?).and_then(|o| o.to_i64().ok())
        else {
            return Ok(false);
        };
        let zone: Option<RString> = time.funcall("zone", ())?;
        match zone {
            None => {
                self.writer.tag(tree::TIME_FIXED);
                self.writer.signed(seconds);
                self.writer.varint(nanos);
                self.writer.signed(offset);
            }
            Some(zone) => {
                let zone = zone.to_string()?;
                let marshalled = marshal_dump(ruby, time)?;
                self.writer.tag(tree::TIME_LOCAL);
                self.writer.signed(seconds);
                self.writer.varint(nanos);
                self.writer.signed(offset);
                self.writer.bytes(zone.as_bytes());
                self.writer.bytes(&marshalled);
            }
        }
        Ok(true)
    }
}

fn marshal_dump(_ruby: &Ruby, value: Value) -> Result<Vec<u8>, Error> {
    // SAFETY: called with the GVL held, wrapped in protect so an exception comes
    // back as an Err.
    let dumped = protect(|| unsafe { rb_sys::rb_marshal_dump(value.as_raw(), Qnil as VALUE) })?;
    // SAFETY: just returned by the VM, on the stack.
    let dumped = RString::from_value(unsafe { Value::from_raw(dumped) })
        .expect("Marshal.dump returns a String");
    // SAFETY: copied at once.
    Ok(unsafe { dumped.as_slice() }.to_vec())
}

fn corrupt(ruby: &Ruby, error: Corrupt) -> Error {
    errors::to_ruby(
        ruby,
        crate::error::Error::Corrupt(format!("a cached entry is corrupt ({})", error.0)),
    )
}

fn element(ruby: &Ruby, reader: &mut Reader<'_>, depth: usize) -> Result<Value, Error> {
    let bad = |error: Corrupt| corrupt(ruby, error);
    if depth > MAX_DEPTH {
        return Err(bad(Corrupt("nested too deeply")));
    }
    let value = match reader.tag().map_err(bad)? {
        tree::NIL => ruby.qnil().as_value(),
        tree::TRUE => ruby.qtrue().as_value(),
        tree::FALSE => ruby.qfalse().as_value(),
        tree::INT => ruby
            .integer_from_i64(reader.signed().map_err(bad)?)
            .as_value(),
        tree::FLOAT => ruby.float_from_f64(reader.float().map_err(bad)?).as_value(),
        tree::UTF8 => ruby
            .enc_str_new(reader.bytes().map_err(bad)?, ruby.utf8_encoding())
            .as_value(),
        tree::BINARY => ruby.str_from_slice(reader.bytes().map_err(bad)?).as_value(),
        tree::ASCII => ruby
            .enc_str_new(reader.bytes().map_err(bad)?, ruby.usascii_encoding())
            .as_value(),
        tree::SYMBOL => {
            let name = std::str::from_utf8(reader.bytes().map_err(bad)?)
                .map_err(|_| bad(Corrupt("symbol name")))?;
            ruby.to_symbol(name).as_value()
        }
        tree::ARRAY => {
            let count = reader.count().map_err(bad)?;
            let array = ruby.ary_new_capa(count);
            for _ in 0..count {
                array.push(element(ruby, reader, depth + 1)?)?;
            }
            array.as_value()
        }
        tree::HASH => {
            let count = reader.count().map_err(bad)?;
            let hash = ruby.hash_new();
            for _ in 0..count {
                let key = element(ruby, reader, depth + 1)?;
                let item = element(ruby, reader, depth + 1)?;
                hash.aset(key, item)?;
            }
            hash.as_value()
        }
        tree::TIME_UTC => {
            let time = new_time(reader).map_err(bad)?;
            time.funcall::<_, _, Value>("utc", ())?;
            time
        }
        tree::TIME_FIXED => {
            let time = new_time(reader).map_err(bad)?;
            let offset = reader.signed().map_err(bad)?;
            time.funcall::<_, _, Value>("localtime", (offset,))?;
            time
        }
        tree::TIME_LOCAL => local_time(ruby, reader).map_err(|e| e.unwrap_or_else(&bad))?,
        _ => return Err(bad(Corrupt("unknown tag"))),
    };
    Ok(value)
}

fn new_time(reader: &mut Reader<'_>) -> Result<Value, Corrupt> {
    let seconds = reader.signed()?;
    let nanos = reader.nanoseconds()?;
    // SAFETY: builds a new Time (local); cannot raise for in-range values, which
    // the reader checked (nanoseconds below one second).
    Ok(unsafe {
        Value::from_raw(rb_sys::rb_time_nano_new(
            seconds as _,
            i64::from(nanos) as _,
        ))
    })
}

/// A local time: native when this process's time zone gives the same offset and
/// zone name at that instant, else the marshalled copy.
fn local_time(ruby: &Ruby, reader: &mut Reader<'_>) -> Result<Value, Result<Error, Corrupt>> {
    let time = new_time(reader).map_err(Err)?;
    let offset = reader.signed().map_err(Err)?;
    let zone = reader.bytes().map_err(Err)?;
    let marshalled = reader.bytes().map_err(Err)?;
    let same_offset = time.funcall::<_, _, i64>("utc_offset", ()).map_err(Ok)? == offset;
    let same_zone = same_offset
        && time
            .funcall::<_, _, Option<RString>>("zone", ())
            .map_err(Ok)?
            // SAFETY: compared at once.
            .is_some_and(|name| unsafe { name.as_slice() } == zone);
    if same_zone {
        return Ok(time);
    }
    let source = ruby.str_from_slice(marshalled);
    // SAFETY: with the GVL, protected; the source String is on the stack.
    let loaded = protect(|| unsafe { rb_sys::rb_marshal_load(source.as_raw()) }).map_err(Ok)?;
    // SAFETY: just returned by the VM, on the stack.
    Ok(unsafe { Value::from_raw(loaded) })
}
