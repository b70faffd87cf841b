//! `SyncedMemoryStore::Node`: the native half of one store. Its methods are small
//! and positional; `SyncedMemoryStore::Store` owns the friendly API and the
//! ActiveSupport contract and calls these.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use magnus::{function, method, prelude::*, Error, Integer, RArray, RHash, RString, Ruby, Value};

use crate::config::Config;
use crate::error::Error as CoreError;
use crate::l1::Ticket;
use crate::node::{Node, Write};
use crate::record::{Kind, Record};
use crate::stats::Stats;

use super::{errors, nogvl::nogvl, options, value};

/// Flags in the fourth element of [`RbNode::entry`]'s answer.
const FLAG_COMPRESSED: i64 = 1;
const FLAG_CODED: i64 = 2;

#[magnus::wrap(class = "SyncedMemoryStore::Node", free_immediately, size)]
struct RbNode {
    node: ManuallyDrop<Arc<Node>>,
    /// Set in a forked child for the node inherited from the parent: its locks
    /// may have been held by parent threads that do not exist here, so it is
    /// never touched again, not even to be dropped.
    abandoned: AtomicBool,
}

impl Drop for RbNode {
    fn drop(&mut self) {
        if self.abandoned.load(Ordering::Acquire) {
            return;
        }
        // Tell the bus threads to finish (they hold their own references and
        // exit on their own); never wait for them inside the garbage collector.
        self.node.close(Duration::ZERO);
        // SAFETY: dropped exactly once, here, and never used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.node) };
    }
}

/// Registers the class and its methods.
pub fn define(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("SyncedMemoryStore")?;
    let class = module.define_class("Node", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("new", function!(RbNode::new, 2))?;
    class.define_singleton_method("forks", function!(crate::fork::count, 0))?;
    class.define_method("read", method!(RbNode::read, 4))?;
    class.define_method("entry", method!(RbNode::entry, 1))?;
    class.define_method("write", method!(RbNode::write, 10))?;
    class.define_method("ticket", method!(RbNode::ticket, 0))?;
    class.define_method("fill", method!(RbNode::fill, 8))?;
    class.define_method("begin", method!(RbNode::begin, 1))?;
    class.define_method("abandon", method!(RbNode::abandon, 1))?;
    class.define_method("delete", method!(RbNode::delete, 3))?;
    class.define_method("clear", method!(RbNode::clear, 1))?;
    class.define_method("delete_matched", method!(RbNode::delete_matched, 3))?;
    class.define_method("keys", method!(RbNode::keys, 0))?;
    class.define_method("purge_expired", method!(RbNode::purge_expired, 1))?;
    class.define_method("count_l2", method!(RbNode::count_l2, 1))?;
    class.define_method("stats", method!(RbNode::stats, 0))?;
    class.define_method("id", method!(RbNode::id, 0))?;
    class.define_method("sync?", method!(RbNode::sync, 0))?;
    class.define_method("bus_description", method!(RbNode::bus_description, 0))?;
    class.define_method("signed?", method!(RbNode::signed, 0))?;
    class.define_method("connected?", method!(RbNode::connected, 0))?;
    class.define_method(
        "wait_for_connection",
        method!(RbNode::wait_for_connection, 1),
    )?;
    class.define_method("flush", method!(RbNode::flush, 1))?;
    class.define_method("close", method!(RbNode::close, 1))?;
    class.define_method("closed?", method!(RbNode::closed, 0))?;
    class.define_method("respawn", method!(RbNode::respawn, 0))?;
    class.define_method("abandon_after_fork", method!(RbNode::abandon_after_fork, 0))?;
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
            value::encode_coded(RString::try_convert(self.value)?)
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

fn seconds(timeout: f64) -> Duration {
    Duration::try_from_secs_f64(timeout).unwrap_or(Duration::ZERO)
}

impl RbNode {
    fn wrap(node: Arc<Node>) -> Self {
        RbNode {
            node: ManuallyDrop::new(node),
            abandoned: AtomicBool::new(false),
        }
    }

    /// `Node.new(size, bus)`: an empty L1 of `size` bytes (the store's `size:`);
    /// `bus` is nil (no sync) or a Hash of bus options (see `ruby/options.rs`).
    fn new(ruby: &Ruby, size: Value, bus: Option<RHash>) -> Result<Self, Error> {
        let size = Integer::from_value(size)
            .and_then(|size| size.to_i64().ok())
            .ok_or_else(|| {
                let message = format!(
                    "size: must be an Integer byte count (got {})",
                    size.inspect()
                );
                errors::to_ruby(ruby, CoreError::Configuration(message))
            })?;
        let mut config = Config::new(size).map_err(|e| errors::to_ruby(ruby, e))?;
        if let Some(bus) = bus {
            config = config.with_bus(options::bus_settings(ruby, bus)?);
        }
        Ok(RbNode::wrap(Node::start(config)))
    }

    /// `read(key, version, miss, count_miss)`: the value stored under `key`, or
    /// `miss` when there is none, L1 is not trusted (the bus is down), it expired
    /// by `Time.now`, or its version differs from `version` (a String, or nil to
    /// accept any). An expired entry is removed. Hits are always counted; a miss
    /// only with `count_miss`, so a caller that hands the miss on to a path that
    /// counts it does not count it twice.
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
        let Some(slot) = rb_self.node.get(unsafe { key.as_slice() }) else {
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
            rb_self.node.l1.remove(unsafe { key.as_slice() });
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
        let Some(slot) = rb_self.node.get(unsafe { key.as_slice() }) else {
            Stats::bump(&stats.l1_misses);
            return Ok(None);
        };
        Stats::bump(&stats.l1_hits);
        let record = &slot.record;
        let mut flags = 0;
        if record.compressed {
            flags |= FLAG_COMPRESSED;
        }
        if record.kind == Kind::Coded {
            flags |= FLAG_CODED;
        }
        let parts = ruby.ary_new_capa(4);
        parts.push(value::decode(ruby, record)?)?;
        parts.push(record.version.as_deref().map(|v| ruby.str_from_slice(v)))?;
        parts.push(record.expires_at)?;
        parts.push(flags)?;
        Ok(Some(parts))
    }

    /// `write(key, value, coded, version, expires_at, keep_for, compress_threshold,
    /// unless_exist, publish, begun)`: stores a value (or, with `coded`, the String
    /// a user coder made) and, with `publish`, sends it to every other node.
    /// `begun`: `begin(key)` was called before the L2 write. Raises TypeError,
    /// storing nothing, when the value cannot be serialized. Returns false only
    /// when `unless_exist` found a live entry.
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
        publish: bool,
        begun: bool,
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
        let mode = if unless_exist {
            Write::UnlessExist
        } else {
            Write::Replace
        };
        Ok(rb_self
            .node
            .put(&key, record, keep_for, mode, publish, begun))
    }

    /// `ticket`: taken before an L2 read whose result will be passed to `fill`.
    fn ticket(&self) -> Ticket {
        self.node.ticket()
    }

    /// `fill(key, value, coded, version, expires_at, keep_for, compress_threshold,
    /// ticket)`: installs a value read from L2 unless the key changed (or L1 was
    /// cleared, or is not trusted) since `ticket`. Returns whether it installed.
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
        Ok(rb_self.node.fill(&key, record, keep_for, ticket))
    }

    /// `begin(key)`: registers a change to `key` before its L2 write, so that a
    /// concurrent change from another node is detected (see pending.rs).
    fn begin(&self, key: RString) {
        self.node.begin(&key_bytes(key));
    }

    /// `abandon(key)`: a begun change ended without reaching L1 (it raised).
    fn abandon(&self, key: RString) {
        self.node.abandon(&key_bytes(key));
    }

    /// `delete(key, publish, begun)`: removes the entry here and, with
    /// `publish`, in every other node; returns whether one was here.
    fn delete(&self, key: RString, publish: bool, begun: bool) -> bool {
        self.node.remove(&key_bytes(key), publish, begun)
    }

    /// `clear(publish)`: drops every entry here and, with `publish`, everywhere.
    fn clear(&self, publish: bool) {
        self.node.clear(publish);
    }

    /// `delete_matched(keys, glob, publish)`: removes `keys` here; with
    /// `publish`, other nodes drop the keys matching `glob` (a String), or
    /// everything when `glob` is nil. Returns how many were removed here.
    fn delete_matched(
        &self,
        keys: RArray,
        glob: Option<RString>,
        publish: bool,
    ) -> Result<usize, Error> {
        let keys = keys
            .into_iter()
            .map(|key| RString::try_convert(key).map(key_bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .node
            .delete_matched(&keys, glob.map(key_bytes).as_deref(), publish))
    }

    /// `keys`: the keys of live entries, as UTF-8 Strings (ActiveSupport's keys are).
    fn keys(ruby: &Ruby, rb_self: &Self) -> RArray {
        let keys = rb_self.node.l1.keys();
        let array = ruby.ary_new_capa(keys.len());
        for key in keys {
            // Pushing onto an Array we just made cannot fail (it is not frozen).
            let _ = array.push(ruby.enc_str_new(&**key, ruby.utf8_encoding()));
        }
        array
    }

    /// `purge_expired(now)`: removes entries whose expiry is at or before `now`
    /// (seconds since the epoch); returns how many. Each node expires entries by
    /// its own clock, so nothing is published.
    fn purge_expired(&self, now: f64) -> usize {
        self.node.l1.purge_expired(now)
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

    /// `stats`: a Hash of counters, L1 sizes and the bus state.
    fn stats(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        let node = &rb_self.node;
        let stats = &node.stats;
        let hash = ruby.hash_new();
        let counters = [
            ("l1_hits", &stats.l1_hits),
            ("l1_misses", &stats.l1_misses),
            ("l2_hits", &stats.l2_hits),
            ("l2_misses", &stats.l2_misses),
            ("published", &stats.published),
            ("received", &stats.received),
            ("applied", &stats.applied),
            ("rejected", &stats.rejected),
            ("reconnects", &stats.reconnects),
            ("dropped", &stats.dropped),
            ("conflicts", &stats.conflicts),
        ];
        for (name, counter) in counters {
            hash.aset(ruby.to_symbol(name), Stats::get(counter))?;
        }
        hash.aset(ruby.to_symbol("l1_entries"), node.l1.entry_count())?;
        hash.aset(ruby.to_symbol("l1_bytes"), node.l1.weighted_size())?;
        hash.aset(ruby.to_symbol("l1_budget"), node.l1.budget())?;
        hash.aset(
            ruby.to_symbol("queued"),
            node.bus.as_ref().map_or(0, |bus| bus.outbox.len()),
        )?;
        hash.aset(ruby.to_symbol("pending"), node.pending_len())?;
        hash.aset(ruby.to_symbol("connected"), node.connected())?;
        hash.aset(
            ruby.to_symbol("trusted"),
            node.bus.is_none() || node.trusted(),
        )?;
        let applied_at = Stats::get(&stats.last_applied_at);
        hash.aset(
            ruby.to_symbol("last_applied_at"),
            (applied_at > 0).then(|| applied_at as f64 / 1e9),
        )?;
        Ok(hash)
    }

    /// `id`: this node's random id (new in a forked child).
    fn id(&self) -> u64 {
        self.node.id
    }

    /// `sync?`: whether this node is on a bus.
    fn sync(&self) -> bool {
        self.node.bus.is_some()
    }

    /// `bus_description`: the bus's address without credentials, or nil.
    fn bus_description(&self) -> Option<String> {
        self.node
            .bus
            .as_ref()
            .map(|bus| bus.settings.description.clone())
    }

    /// `signed?`: whether bus messages are signed (the store has a `secret:`).
    fn signed(&self) -> bool {
        self.node
            .bus
            .as_ref()
            .is_some_and(|bus| bus.settings.secret.is_some())
    }

    /// `connected?`: whether the subscription is up.
    fn connected(&self) -> bool {
        self.node.connected()
    }

    /// `wait_for_connection(seconds)`: waits (without the GVL) up to `seconds` for
    /// the subscription; returns whether it is up. Keep waits short: the Ruby
    /// side calls this in slices so that interrupts are served between them.
    fn wait_for_connection(ruby: &Ruby, rb_self: &Self, timeout: f64) -> Result<bool, Error> {
        let node = Arc::clone(&rb_self.node);
        nogvl(ruby, move || node.wait_for_connection(seconds(timeout)))
    }

    /// `flush(seconds)`: waits (without the GVL) up to `seconds` until everything
    /// this node queued has been published; returns whether it has.
    fn flush(ruby: &Ruby, rb_self: &Self, timeout: f64) -> Result<bool, Error> {
        let node = Arc::clone(&rb_self.node);
        nogvl(ruby, move || node.flush(seconds(timeout)))
    }

    /// `close(seconds)`: stops the bus threads, waiting (without the GVL) up to
    /// `seconds` for them; returns whether they ended. Idempotent.
    fn close(ruby: &Ruby, rb_self: &Self, timeout: f64) -> Result<bool, Error> {
        let node = Arc::clone(&rb_self.node);
        nogvl(ruby, move || node.close(seconds(timeout)))
    }

    /// `closed?`: whether close was called.
    fn closed(&self) -> bool {
        self.node.is_closed()
    }

    /// `respawn`: a new node with the same settings, its own threads and id.
    fn respawn(&self) -> Self {
        RbNode::wrap(self.node.respawn())
    }

    /// `abandon_after_fork`: in a forked child, stop using this node for good;
    /// its memory is leaked rather than freed (see the `abandoned` field).
    fn abandon_after_fork(&self) {
        self.abandoned.store(true, Ordering::Release);
    }
}
