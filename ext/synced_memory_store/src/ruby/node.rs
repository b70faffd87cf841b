//! `SyncedMemoryStore::Node`: the native half of one store. Its methods are small
//! and positional; `SyncedMemoryStore::Store` owns the friendly API and the
//! ActiveSupport contract and calls these.

use std::sync::Arc;

use magnus::{function, method, prelude::*, Error, Integer, RArray, RHash, RString, Ruby, Value};

use crate::config::Config;
use crate::error::Error as CoreError;
use crate::l1::{self, Ticket, L1};
use crate::node::Node;
use crate::record::{Kind, Record};
use crate::stats::Stats;

use super::{errors, value};

/// Flags in the fourth element of [`RbNode::entry`]'s answer.
const FLAG_COMPRESSED: i64 = 1;
const FLAG_CODED: i64 = 2;

#[magnus::wrap(class = "SyncedMemoryStore::Node", free_immediately, size)]
struct RbNode {
    node: Arc<Node>,
}

/// Registers the class and its methods.
pub fn define(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("SyncedMemoryStore")?;
    let class = module.define_class("Node", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("new", function!(RbNode::new, 1))?;
    class.define_method("read", method!(RbNode::read, 4))?;
    class.define_method("entry", method!(RbNode::entry, 1))?;
    class.define_method("write", method!(RbNode::write, 8))?;
    class.define_method("ticket", method!(RbNode::ticket, 0))?;
    class.define_method("fill", method!(RbNode::fill, 8))?;
    class.define_method("delete", method!(RbNode::delete, 1))?;
    class.define_method("clear", method!(RbNode::clear, 0))?;
    class.define_method("keys", method!(RbNode::keys, 0))?;
    class.define_method("purge_expired", method!(RbNode::purge_expired, 1))?;
    class.define_method("count_l2", method!(RbNode::count_l2, 1))?;
    class.define_method("stats", method!(RbNode::stats, 0))?;
    Ok(())
}

/// What a write or fill stores, as the Ruby side passes it.
struct Incoming {
    value: Value,
    coded: bool,
    version: Option<RString>,
    expires_at: Option<f64>,
    compress_threshold: Option<usize>,
}

impl Incoming {
    fn into_record(self, ruby: &Ruby) -> Result<Record, Error> {
        let mut record = if self.coded {
            let bytes = RString::try_convert(self.value)?;
            value::encode_coded(bytes)
        } else {
            value::encode(ruby, self.value, self.compress_threshold)?
        };
        record.expires_at = self.expires_at;
        // SAFETY: copied at once, with no Ruby call in between.
        record.version = self.version.map(|v| unsafe { v.as_slice() }.into());
        Ok(record)
    }
}

fn key_bytes(key: RString) -> Box<[u8]> {
    // SAFETY: copied at once, with no Ruby call in between.
    unsafe { key.as_slice() }.into()
}

impl RbNode {
    /// `Node.new(size)`: an empty L1 of `size` bytes (the store's `size:` option).
    fn new(ruby: &Ruby, size: Value) -> Result<Self, Error> {
        let size = Integer::from_value(size)
            .and_then(|size| size.to_i64().ok())
            .ok_or_else(|| {
                let message = format!(
                    "size: must be an Integer byte count (got {})",
                    size.inspect()
                );
                errors::to_ruby(ruby, CoreError::Configuration(message))
            })?;
        let config = Config::new(size).map_err(|e| errors::to_ruby(ruby, e))?;
        Ok(RbNode {
            node: Arc::new(Node::new(&config)),
        })
    }

    fn l1(&self) -> &L1 {
        &self.node.l1
    }

    /// `read(key, version, miss, count_miss)`: the value stored under `key`, or
    /// `miss` when there is none, it expired by `Time.now`, or its version differs
    /// from `version` (a String, or nil to accept any). An expired entry is
    /// removed. Hits are always counted; a miss only with `count_miss`, so a caller
    /// that hands the miss on to a path that counts it does not count it twice.
    fn read(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        version: Option<RString>,
        miss: Value,
        count_miss: bool,
    ) -> Result<Value, Error> {
        let stats = &rb_self.node.stats;
        let missed = || {
            if count_miss {
                Stats::bump(&stats.l1_misses);
            }
            Ok(miss)
        };
        // SAFETY: the borrowed bytes are only used for the lookup, before any
        // Ruby call.
        let Some(slot) = rb_self.l1().get(unsafe { key.as_slice() }) else {
            return missed();
        };
        let record = &slot.record;
        // SAFETY: as above, compared before any Ruby call.
        let mismatched =
            version.is_some_and(|v| record.is_mismatched(Some(unsafe { v.as_slice() })));
        if mismatched || record.kind == Kind::Coded {
            return missed();
        }
        if record.expires_at.is_some() && record.is_expired_at(value::ruby_now(ruby)?) {
            // SAFETY: fresh borrow after the Ruby call above, used before the next.
            rb_self.l1().remove(unsafe { key.as_slice() });
            return missed();
        }
        Stats::bump(&stats.l1_hits);
        value::decode(ruby, record)
    }

    /// `entry(key)`: nil, or `[value, version, expires_at, flags]` for building an
    /// `ActiveSupport::Cache::Entry`; flags has bit 1 for a compressed record and
    /// bit 2 when value is the bytes of a user coder. Expired entries are returned:
    /// judging them is ActiveSupport's business on this path.
    fn entry(ruby: &Ruby, rb_self: &Self, key: RString) -> Result<Option<RArray>, Error> {
        let stats = &rb_self.node.stats;
        // SAFETY: used for the lookup only, before any Ruby call.
        let Some(slot) = rb_self.l1().get(unsafe { key.as_slice() }) else {
            Stats::bump(&stats.l1_misses);
            return Ok(None);
        };
        Stats::bump(&stats.l1_hits);
        let record = &slot.record;
        let flags = if record.compressed {
            FLAG_COMPRESSED
        } else {
            0
        } | if record.kind == Kind::Coded {
            FLAG_CODED
        } else {
            0
        };
        let parts = ruby.ary_new_capa(4);
        parts.push(value::decode(ruby, record)?)?;
        parts.push(record.version.as_deref().map(|v| ruby.str_from_slice(v)))?;
        parts.push(record.expires_at)?;
        parts.push(flags)?;
        Ok(Some(parts))
    }

    /// `write(key, value, coded, version, expires_at, keep_for, compress_threshold,
    /// unless_exist)`: stores a value (or, with `coded`, the String a user coder
    /// made). Raises TypeError, storing nothing, when the value cannot be
    /// serialized. Returns false only when `unless_exist` found a live entry.
    #[allow(clippy::too_many_arguments)]
    fn write(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        value: Value,
        coded: bool,
        version: Option<RString>,
        expires_at: Option<f64>,
        keep_for: Option<f64>,
        compress_threshold: Option<usize>,
        unless_exist: bool,
    ) -> Result<bool, Error> {
        let key = key_bytes(key);
        let record = Incoming {
            value,
            coded,
            version,
            expires_at,
            compress_threshold,
        }
        .into_record(ruby)?;
        if unless_exist {
            Ok(rb_self
                .l1()
                .insert_if_absent(&key, record, l1::keep_for(keep_for)))
        } else {
            rb_self.l1().insert(&key, record, l1::keep_for(keep_for));
            Ok(true)
        }
    }

    /// `ticket`: taken before an L2 read whose result will be passed to `fill`.
    fn ticket(&self) -> Ticket {
        self.l1().ticket()
    }

    /// `fill(key, value, coded, version, expires_at, keep_for, compress_threshold,
    /// ticket)`: installs a value read from L2 unless the key changed (or L1 was
    /// cleared) since `ticket`. Returns whether it installed.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        value: Value,
        coded: bool,
        version: Option<RString>,
        expires_at: Option<f64>,
        keep_for: Option<f64>,
        compress_threshold: Option<usize>,
        ticket: Ticket,
    ) -> Result<bool, Error> {
        let key = key_bytes(key);
        let record = Incoming {
            value,
            coded,
            version,
            expires_at,
            compress_threshold,
        }
        .into_record(ruby)?;
        Ok(rb_self
            .l1()
            .fill(&key, record, l1::keep_for(keep_for), ticket))
    }

    /// `delete(key)`: removes the entry; returns whether one was there.
    fn delete(&self, key: RString) -> bool {
        self.l1().remove(&key_bytes(key))
    }

    /// `clear`: drops every entry.
    fn clear(&self) {
        self.l1().clear();
    }

    /// `keys`: the keys of live entries, as UTF-8 Strings (ActiveSupport's keys are).
    fn keys(ruby: &Ruby, rb_self: &Self) -> RArray {
        let keys = rb_self.l1().keys();
        let array = ruby.ary_new_capa(keys.len());
        for key in keys {
            // Pushing onto an Array we just made cannot fail (it is not frozen).
            let _ = array.push(ruby.enc_str_new(&**key, ruby.utf8_encoding()));
        }
        array
    }

    /// `purge_expired(now)`: removes entries whose expiry is at or before `now`
    /// (seconds since the epoch); returns how many.
    fn purge_expired(&self, now: f64) -> usize {
        self.l1().purge_expired(now)
    }

    /// `count_l2(hit)`: records the outcome of an L2 read made after an L1 miss.
    fn count_l2(&self, hit: bool) {
        let stats = &self.node.stats;
        Stats::bump(if hit {
            &stats.l2_hits
        } else {
            &stats.l2_misses
        });
    }

    /// `stats`: a Hash of counters and L1 sizes.
    fn stats(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        let stats = &rb_self.node.stats;
        let hash = ruby.hash_new();
        hash.aset(ruby.to_symbol("l1_hits"), Stats::get(&stats.l1_hits))?;
        hash.aset(ruby.to_symbol("l1_misses"), Stats::get(&stats.l1_misses))?;
        hash.aset(ruby.to_symbol("l2_hits"), Stats::get(&stats.l2_hits))?;
        hash.aset(ruby.to_symbol("l2_misses"), Stats::get(&stats.l2_misses))?;
        hash.aset(ruby.to_symbol("l1_entries"), rb_self.l1().entry_count())?;
        hash.aset(ruby.to_symbol("l1_bytes"), rb_self.l1().weighted_size())?;
        hash.aset(ruby.to_symbol("l1_budget"), rb_self.l1().budget())?;
        Ok(hash)
    }
}
