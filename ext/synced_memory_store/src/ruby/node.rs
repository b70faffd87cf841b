//! `SyncedMemoryStore::Node`: the native half of one store.
//!
//! Its methods are small and positional; those that take more than a few
//! arguments are named with a leading underscore and called through the
//! keyword methods of `lib/synced_memory_store/node.rb`, so a call in the store
//! reads as what it does. `SyncedMemoryStore::Store` owns the friendly API and
//! the ActiveSupport contract and calls these.

use std::collections::HashSet;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use magnus::{function, method, prelude::*, Error, RArray, RHash, RString, Ruby, Symbol, Value};

use super::stats_hash::stats_hash;
use crate::bus::events::Event;
use crate::l1::{Slot, Ticket};
use crate::node::{ChangeId, Matcher, Node, Settling, Standing, Write};
use crate::record::{Kind, Record};
use crate::stats::Stats;

use super::{nogvl::nogvl, options, value};

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
        // Never wait inside the garbage collector: what has not settled is
        // invalidated everywhere, and the bus threads (which hold their own
        // references) publish it and exit on their own.
        self.node.invalidate_unsettled();
        self.node.close(Duration::ZERO);
        // SAFETY: dropped exactly once, here, and never used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.node) };
    }
}

/// Registers the class and its methods.
pub(super) fn define(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("SyncedMemoryStore")?;
    let class = module.define_class("Node", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("new", function!(RbNode::new, 1))?;
    class.define_singleton_method("forks", function!(crate::fork::count, 0))?;
    class.define_method("read", method!(RbNode::read, 3))?;
    class.define_method("read_hit", method!(RbNode::read_hit, 3))?;
    class.define_method(
        "read_hit_unless_due",
        method!(RbNode::read_hit_unless_due, 5),
    )?;
    class.define_method("refresh_due?", method!(RbNode::refresh_due, 3))?;
    class.define_method("entry", method!(RbNode::entry, 1))?;
    class.define_method("_write", method!(RbNode::write, 9))?;
    class.define_method("_write_coded", method!(RbNode::write_coded, 7))?;
    class.define_method("ticket", method!(RbNode::ticket, 0))?;
    class.define_method("_fill", method!(RbNode::fill, 7))?;
    class.define_method("_fill_coded", method!(RbNode::fill_coded, 6))?;
    class.define_method("_begin_change", method!(RbNode::begin_change, 2))?;
    class.define_method("end_change", method!(RbNode::end_change, 1))?;
    class.define_method("_delete", method!(RbNode::delete, 3))?;
    class.define_method("forget", method!(RbNode::forget, 1))?;
    class.define_method("discard", method!(RbNode::discard, 1))?;
    class.define_method("_clear", method!(RbNode::clear, 1))?;
    class.define_method("_delete_glob", method!(RbNode::delete_glob, 2))?;
    class.define_method("fence_fills", method!(RbNode::fence_fills, 0))?;
    class.define_method("_delete_listed", method!(RbNode::delete_listed, 2))?;
    class.define_method("keys", method!(RbNode::keys, 0))?;
    class.define_method("purge_expired", method!(RbNode::purge_expired, 1))?;
    class.define_method("count_l2", method!(RbNode::count_l2, 1))?;
    class.define_method("stats", method!(RbNode::stats, 0))?;
    class.define_method("wait_events", method!(RbNode::wait_events, 1))?;
    class.define_method("id", method!(RbNode::id, 0))?;
    class.define_method("sync?", method!(RbNode::sync, 0))?;
    class.define_method("bus_description", method!(RbNode::bus_description, 0))?;
    class.define_method("signed?", method!(RbNode::signed, 0))?;
    class.define_method("connected?", method!(RbNode::connected, 0))?;
    class.define_method(
        "wait_for_connection",
        method!(RbNode::wait_for_connection, 1),
    )?;
    class.define_method("wait_settled", method!(RbNode::wait_settled, 1))?;
    class.define_method(
        "invalidate_unsettled",
        method!(RbNode::invalidate_unsettled, 0),
    )?;
    class.define_method("claim_lease", method!(RbNode::claim_lease, 2))?;
    class.define_method("lease_standing", method!(RbNode::lease_standing, 3))?;
    class.define_method("lease_decision", method!(RbNode::lease_decision, 3))?;
    class.define_method("release_lease", method!(RbNode::release_lease, 2))?;
    class.define_method("flush", method!(RbNode::flush, 1))?;
    class.define_method("close", method!(RbNode::close, 1))?;
    class.define_method("closed?", method!(RbNode::closed, 0))?;
    class.define_method("respawn", method!(RbNode::respawn, 0))?;
    class.define_method("abandon_after_fork", method!(RbNode::abandon_after_fork, 0))?;
    Ok(())
}

/// The attributes of a stored value, as the Ruby side passes them.
struct Attributes {
    version: Option<RString>,
    expires_at: Option<f64>,
}

impl Attributes {
    /// Sets the record's version and expiry and, for an entry that expires,
    /// stamps it with Ruby's clock (the clock its expiry was computed by) as
    /// stored now: see `Record::stored_at`.
    fn apply(self, ruby: &Ruby, record: &mut Record) -> Result<(), Error> {
        record.expires_at = self.expires_at;
        // SAFETY: copied at once, with no Ruby call in between.
        record.version = self.version.map(|v| unsafe { v.as_slice() }.into());
        if record.expires_at.is_some() {
            record.stored_at = Some(value::ruby_now(ruby)?);
        }
        Ok(())
    }

    /// As `apply`, for what an encode gave: None (a value too large for L1)
    /// stays None.
    fn apply_to_any(self, ruby: &Ruby, record: Option<Record>) -> Result<Option<Record>, Error> {
        record
            .map(|mut record| self.apply(ruby, &mut record).map(|()| record))
            .transpose()
    }
}

fn key_bytes(key: RString) -> Box<[u8]> {
    // SAFETY: copied at once, with no Ruby call in between.
    unsafe { key.as_slice() }.into()
}

/// A slot a read may answer from, with the `Time.now` it was judged by (None
/// for an entry that never expires).
type Live = (Arc<Slot>, Option<f64>);

/// Where `claim` on `key` stands, waiting (without the GVL) up to `timeout`
/// seconds while it waits; with `behind`, `:behind` at once when another
/// process holds the key (see `node/leases.rs`).
fn standing_of(
    ruby: &Ruby,
    rb_self: &RbNode,
    key: RString,
    claim: u64,
    timeout: f64,
    behind: bool,
) -> Result<Symbol, Error> {
    let node = Arc::clone(&rb_self.node);
    let key = key_bytes(key);
    let standing = nogvl(ruby, move || {
        node.standing(&key, claim, seconds(timeout), behind)
    })?;
    Ok(standing_symbol(ruby, standing))
}

fn standing_symbol(ruby: &Ruby, standing: Standing) -> Symbol {
    ruby.to_symbol(match standing {
        Standing::Won => "won",
        Standing::Waiting => "waiting",
        Standing::Free => "free",
        Standing::Undecided => "undecided",
        Standing::Behind => "behind",
    })
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

    /// `Node.new(options)`: an empty L1 and, with `bus:` options, the bus
    /// threads (see `ruby/options.rs` for the Hash).
    fn new(ruby: &Ruby, options: RHash) -> Result<Self, Error> {
        Ok(RbNode::wrap(Node::start(options::config(ruby, options)?)))
    }

    /// `read(key, version, miss)`: the value stored under `key`, or `miss` when
    /// there is none, L1 is not trusted (the bus is down), it expired by
    /// `Time.now`, its version differs from `version` (a String, or nil to
    /// accept any), or it cannot be decoded here. Hits and misses are counted.
    fn read(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        version: Option<RString>,
        miss: Value,
    ) -> Result<Value, Error> {
        let value = rb_self.lookup(ruby, key, version)?;
        if value.is_none() {
            Stats::bump(&rb_self.node.stats.l1_misses);
        }
        Ok(value.unwrap_or(miss))
    }

    /// `read_hit(key, version, miss)`: as `read`, counting only hits: the
    /// caller hands a miss on to the general path, which counts it, or looks
    /// again after a miss that was counted (a fetch about to run its block).
    fn read_hit(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        version: Option<RString>,
        miss: Value,
    ) -> Result<Value, Error> {
        Ok(rb_self.lookup(ruby, key, version)?.unwrap_or(miss))
    }

    /// `read_hit_unless_due(key, version, miss, due, fraction)`: as
    /// `read_hit`, but `due` (nothing decoded, nothing counted) for an entry
    /// at least `fraction` of the way through its life (see
    /// `Record::is_due_at`): the caller schedules its refresh-ahead, then
    /// reads it with `read_hit`. Judged on the `Time.now` the expiry check
    /// reads anyway, so a hit outside the window costs one comparison more.
    fn read_hit_unless_due(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        version: Option<RString>,
        miss: Value,
        due: Value,
        fraction: f64,
    ) -> Result<Value, Error> {
        let Some((slot, now)) = rb_self.live(ruby, key, version, false)? else {
            return Ok(miss);
        };
        if now.is_some_and(|now| slot.record.is_due_at(now, fraction)) {
            return Ok(due);
        }
        Ok(rb_self.decoded(ruby, key, &slot)?.unwrap_or(miss))
    }

    /// `refresh_due?(key, version, fraction)`: whether L1 holds a live entry
    /// for `key` (trusted, not expired, of `version` when one is given; a
    /// coder's too) at least `fraction` of the way through its life. Counts
    /// nothing.
    fn refresh_due(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        version: Option<RString>,
        fraction: f64,
    ) -> Result<bool, Error> {
        Ok(rb_self
            .live(ruby, key, version, true)?
            .is_some_and(|(slot, now)| now.is_some_and(|now| slot.record.is_due_at(now, fraction))))
    }

    fn lookup(
        &self,
        ruby: &Ruby,
        key: RString,
        version: Option<RString>,
    ) -> Result<Option<Value>, Error> {
        match self.live(ruby, key, version, false)? {
            Some((slot, _)) => self.decoded(ruby, key, &slot),
            None => Ok(None),
        }
    }

    /// The slot under `key` a read may answer from — trusted, of `version`
    /// when one is given, not expired by `Time.now`, and not a coder's unless
    /// `coded` (a coder's entry is decoded in Ruby) — with the `Time.now` it
    /// was judged by (None for an entry that never expires). An expired
    /// entry is forgotten here, unless fail-safe keeps it.
    fn live(
        &self,
        ruby: &Ruby,
        key: RString,
        version: Option<RString>,
        coded: bool,
    ) -> Result<Option<Live>, Error> {
        // SAFETY: the borrowed bytes are only used for the lookup, before any
        // Ruby call.
        let Some(slot) = self.node.get(unsafe { key.as_slice() }) else {
            return Ok(None);
        };
        let record = &slot.record;
        // SAFETY: as above, compared before any Ruby call.
        let mismatched =
            version.is_some_and(|v| record.is_mismatched(Some(unsafe { v.as_slice() })));
        if mismatched || (record.kind == Kind::Coded && !coded) {
            return Ok(None);
        }
        let mut now = None;
        if record.expires_at.is_some() {
            let time = value::ruby_now(ruby)?;
            if record.is_expired_at(time) {
                // With fail_safe: the expired entry is the stale copy a failed
                // refresh may serve, so it stays until its slot's keep_for ends.
                if !self.node.keeps_expired() {
                    self.node.forget(&key_bytes(key));
                }
                return Ok(None);
            }
            now = Some(time);
        }
        Ok(Some((slot, now)))
    }

    /// The value of a live slot, counted as a hit, or None when it cannot be
    /// decoded here (see `decode`).
    fn decoded(&self, ruby: &Ruby, key: RString, slot: &Slot) -> Result<Option<Value>, Error> {
        let value = self.decode(ruby, key, &slot.record)?;
        if value.is_some() {
            Stats::bump(&self.node.stats.l1_hits);
        }
        Ok(value)
    }

    /// The value `record` holds, or None (the entry discarded and counted)
    /// when this node cannot decode it: a class it does not have, bytes
    /// another coder made, a payload that inflates past the largest entry.
    /// Exceptions other than StandardError (an interrupt) are raised.
    fn decode(&self, ruby: &Ruby, key: RString, record: &Record) -> Result<Option<Value>, Error> {
        match value::decode(ruby, record, self.node.l1.max_entry_bytes()) {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.is_kind_of(ruby.exception_standard_error()) => {
                self.discard(key);
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// `entry(key)`: nil, or `[value, version, expires_at, form]` for building
    /// an `ActiveSupport::Cache::Entry`, where form is `:plain`, `:compressed`
    /// (the record was stored deflated) or `:coded` (value is the bytes a
    /// user coder made). Expired entries are returned: judging them is
    /// ActiveSupport's business on this path. Counts the hit or miss.
    fn entry(ruby: &Ruby, rb_self: &Self, key: RString) -> Result<Option<RArray>, Error> {
        let stats = &rb_self.node.stats;
        // SAFETY: used for the lookup only, before any Ruby call.
        let slot = rb_self.node.get(unsafe { key.as_slice() });
        let Some(value) = slot
            .as_ref()
            .map(|slot| rb_self.decode(ruby, key, &slot.record))
            .transpose()?
            .flatten()
        else {
            Stats::bump(&stats.l1_misses);
            return Ok(None);
        };
        let record = &slot.expect("decoded from it").record;
        Stats::bump(&stats.l1_hits);
        let form = if record.kind == Kind::Coded {
            "coded"
        } else if record.compressed {
            "compressed"
        } else {
            "plain"
        };
        let parts = ruby.ary_new_capa(4);
        parts.push(value)?;
        parts.push(record.version.as_deref().map(|v| ruby.str_from_slice(v)))?;
        parts.push(record.expires_at)?;
        parts.push(ruby.to_symbol(form))?;
        Ok(Some(parts))
    }

    /// `_write(key, value, version, expires_at, keep_for, compress_threshold,
    /// unless_exist, publish, change)`: see `Node#write` in node.rb. Raises
    /// TypeError, storing nothing, when the value cannot be serialized.
    #[allow(clippy::too_many_arguments)]
    fn write(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        value: Value,
        version: Option<RString>,
        expires_at: Option<f64>,
        keep_for: Option<f64>,
        compress_threshold: Option<usize>,
        unless_exist: bool,
        publish: bool,
        change: Option<ChangeId>,
    ) -> Result<bool, Error> {
        let node = &rb_self.node;
        let record = value::encode(ruby, value, compress_threshold, node.l1.max_entry_bytes())?;
        let mode = if unless_exist {
            Write::UnlessExist
        } else {
            Write::Replace
        };
        let record = Attributes {
            version,
            expires_at,
        }
        .apply_to_any(ruby, record)?;
        Ok(node.write(&key_bytes(key), record, keep_for, mode, publish, change))
    }

    /// `_write_coded(key, bytes, version, expires_at, keep_for, publish,
    /// change)`: as `_write`, for the String a user coder made of the entry.
    #[allow(clippy::too_many_arguments)]
    fn write_coded(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        bytes: RString,
        version: Option<RString>,
        expires_at: Option<f64>,
        keep_for: Option<f64>,
        publish: bool,
        change: Option<ChangeId>,
    ) -> Result<bool, Error> {
        let record = Attributes {
            version,
            expires_at,
        }
        .apply_to_any(
            ruby,
            value::encode_coded(bytes, rb_self.node.l1.max_entry_bytes()),
        )?;
        Ok(rb_self.node.write(
            &key_bytes(key),
            record,
            keep_for,
            Write::Replace,
            publish,
            change,
        ))
    }

    /// `ticket`: taken before an L2 read whose result will be passed to `_fill`.
    fn ticket(&self) -> Ticket {
        self.node.ticket()
    }

    /// `_fill(key, value, version, expires_at, keep_for, compress_threshold,
    /// ticket)`: see `Node#fill` in node.rb.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        value: Value,
        version: Option<RString>,
        expires_at: Option<f64>,
        keep_for: Option<f64>,
        compress_threshold: Option<usize>,
        ticket: Ticket,
    ) -> Result<bool, Error> {
        let node = &rb_self.node;
        let Some(mut record) =
            value::encode(ruby, value, compress_threshold, node.l1.max_entry_bytes())?
        else {
            return Ok(false);
        };
        Attributes {
            version,
            expires_at,
        }
        .apply(ruby, &mut record)?;
        Ok(node.fill(&key_bytes(key), record, keep_for, ticket))
    }

    /// `_fill_coded(key, bytes, version, expires_at, keep_for, ticket)`: as
    /// `_fill`, for the String a user coder made of the entry.
    #[allow(clippy::too_many_arguments)]
    fn fill_coded(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        bytes: RString,
        version: Option<RString>,
        expires_at: Option<f64>,
        keep_for: Option<f64>,
        ticket: Ticket,
    ) -> Result<bool, Error> {
        let Some(mut record) = value::encode_coded(bytes, rb_self.node.l1.max_entry_bytes()) else {
            return Ok(false);
        };
        Attributes {
            version,
            expires_at,
        }
        .apply(ruby, &mut record)?;
        Ok(rb_self.node.fill(&key_bytes(key), record, keep_for, ticket))
    }

    /// `_begin_change(keys, publish)`: registers a change to `keys` (an Array
    /// of Strings, or one String) before its L2 call; returns its id for
    /// `_write`, `_delete` and `end_change`.
    fn begin_change(&self, keys: Value, publish: bool) -> Result<ChangeId, Error> {
        let keys = match RString::from_value(keys) {
            Some(key) => vec![key_bytes(key)],
            None => RArray::try_convert(keys)?
                .into_iter()
                .map(|key| RString::try_convert(key).map(key_bytes))
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(self.node.begin(keys, publish))
    }

    /// `end_change(change)`: ends a change; each of its keys not written or
    /// deleted meanwhile is dropped here and invalidated everywhere (its L2
    /// call may have changed L2 before it raised). Returns how many.
    fn end_change(&self, change: ChangeId) -> usize {
        self.node.end(change)
    }

    /// `_delete(key, publish, change)`: see `Node#delete` in node.rb.
    fn delete(&self, key: RString, publish: bool, change: Option<ChangeId>) -> bool {
        self.node.delete(&key_bytes(key), publish, change)
    }

    /// `forget(key)`: removes `key` from this node's L1 only (an entry found
    /// expired here); returns whether it was there.
    fn forget(&self, key: RString) -> bool {
        self.node.forget(&key_bytes(key))
    }

    /// `discard(key)`: removes an entry this node cannot decode (another coder,
    /// a class it lacks), counting it in `stats[:undecodable]`.
    fn discard(&self, key: RString) {
        Stats::bump(&self.node.stats.undecodable);
        self.node.forget(&key_bytes(key));
    }

    /// `_clear(publish)`: see `Node#clear` in node.rb.
    fn clear(&self, publish: bool) {
        self.node.clear(publish);
    }

    /// `_delete_glob(glob, publish)`: removes the keys matching a Redis-style
    /// glob here and, with `publish`, in every other node; returns how many
    /// were removed here.
    fn delete_glob(&self, glob: RString, publish: bool) -> usize {
        self.node
            .delete_matched(Matcher::Glob(&key_bytes(glob)), publish)
    }

    /// `fence_fills`: refuses every fill in flight; call it before picking
    /// the keys for `_delete_listed`.
    fn fence_fills(&self) {
        self.node.fence_fills();
    }

    /// `_delete_listed(keys, publish)`: removes `keys` (picked by a Ruby
    /// matcher after `fence_fills`) here; with `publish`, every other node
    /// drops everything (it cannot run the matcher). Returns how many were
    /// removed here.
    fn delete_listed(&self, keys: RArray, publish: bool) -> Result<usize, Error> {
        let keys = keys
            .into_iter()
            .map(|key| RString::try_convert(key).map(key_bytes))
            .collect::<Result<HashSet<_>, _>>()?;
        Ok(self.node.delete_matched(Matcher::Listed(&keys), publish))
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

    /// `count_l2(found)`: records the outcome of an L2 read made after an L1 miss.
    fn count_l2(&self, found: bool) {
        let stats = &self.node.stats;
        Stats::bump(if found {
            &stats.l2_hits
        } else {
            &stats.l2_misses
        });
    }

    /// `stats`: a Hash of counters, L1 sizes and the bus state.
    fn stats(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        stats_hash(ruby, &rb_self.node)
    }

    /// `wait_events(seconds)`: waits (without the GVL) up to `seconds` for
    /// the bus's state changes and rejections (see bus/events.rs) and returns
    /// them as `[[name, payload], ...]`: `[:connected, {}]`,
    /// `[:resubscribed, { reconnects:, l1_dropped: }]` (false when the
    /// channel's log held what was missed),
    /// `[:disconnected, { cause: }]`, `[:rejected, { cause:, description:,
    /// missed:, count: }]`. Empty after the timeout, at once without a bus,
    /// and once the node is closed.
    fn wait_events(ruby: &Ruby, rb_self: &Self, timeout: f64) -> Result<RArray, Error> {
        let node = Arc::clone(&rb_self.node);
        let events = nogvl(ruby, move || {
            node.bus
                .as_ref()
                .map(|bus| bus.events.wait(seconds(timeout)))
                .unwrap_or_default()
        })?;
        let array = ruby.ary_new_capa(events.len());
        for event in events {
            let payload = ruby.hash_new();
            let name = match event {
                Event::Connected => "connected",
                Event::Resubscribed {
                    reconnects,
                    l1_dropped,
                } => {
                    payload.aset(ruby.to_symbol("reconnects"), reconnects)?;
                    payload.aset(ruby.to_symbol("l1_dropped"), l1_dropped)?;
                    "resubscribed"
                }
                Event::Disconnected { cause } => {
                    payload.aset(ruby.to_symbol("cause"), cause)?;
                    "disconnected"
                }
                Event::Rejected {
                    cause,
                    description,
                    missed,
                    count,
                } => {
                    payload.aset(ruby.to_symbol("cause"), ruby.to_symbol(cause))?;
                    payload.aset(ruby.to_symbol("description"), description)?;
                    payload.aset(ruby.to_symbol("missed"), missed)?;
                    payload.aset(ruby.to_symbol("count"), count)?;
                    "rejected"
                }
                Event::Unpublished { cause, waited } => {
                    payload.aset(ruby.to_symbol("cause"), cause)?;
                    payload.aset(ruby.to_symbol("waited"), waited.as_secs_f64())?;
                    "unpublished"
                }
            };
            array.push((ruby.to_symbol(name), payload))?;
        }
        Ok(array)
    }

    /// `id`: this node's random id (new in a forked child).
    fn id(&self) -> u64 {
        self.node.id
    }

    /// `sync?`: whether this node is on a bus.
    fn sync(&self) -> bool {
        self.node.bus.is_some()
    }

    /// `bus_description`: the bus's address and channel, without credentials,
    /// or nil.
    fn bus_description(&self) -> Option<String> {
        self.node.bus.as_ref().map(|bus| {
            format!(
                "{} channel {}",
                bus.settings.description, bus.settings.channel
            )
        })
    }

    /// `signed?`: whether bus messages are signed (the store has a `secret:`).
    fn signed(&self) -> bool {
        self.node
            .bus
            .as_ref()
            .is_some_and(|bus| !bus.settings.wire.secrets.is_empty())
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

    /// `wait_settled(seconds)`: waits (without the GVL) up to `seconds` until
    /// every local change has been published and has come back: true; false
    /// while some have not; nil when they cannot (the subscription is down).
    fn wait_settled(ruby: &Ruby, rb_self: &Self, timeout: f64) -> Result<Option<bool>, Error> {
        let node = Arc::clone(&rb_self.node);
        let settling = nogvl(ruby, move || node.wait_settled(seconds(timeout)))?;
        Ok(match settling {
            Settling::Settled => Some(true),
            Settling::Waiting => Some(false),
            Settling::Stuck => None,
        })
    }

    /// `claim_lease(key, seconds)`: announces that this process computes `key`
    /// for up to `seconds`; the claim's id, or nil when there is no bus to
    /// settle it (sync off, the bus down or stalled).
    fn claim_lease(&self, key: RString, lease: f64) -> Option<u64> {
        self.node.claim(&key_bytes(key), seconds(lease))
    }

    /// `lease_standing(key, claim, seconds)`: waits (without the GVL) up to
    /// `seconds` while the claim waits; then `:won`, `:waiting`, `:free` or
    /// `:undecided` (see `node/leases.rs`). Keep waits short: the Ruby side
    /// calls this in slices so that interrupts are served between them.
    fn lease_standing(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        claim: u64,
        timeout: f64,
    ) -> Result<Symbol, Error> {
        standing_of(ruby, rb_self, key, claim, timeout, false)
    }

    /// `lease_decision(key, claim, seconds)`: as `lease_standing`, for a
    /// claimer that does not wait for another process's lease (a
    /// refresh-ahead): `:behind` at once when one holds the key.
    fn lease_decision(
        ruby: &Ruby,
        rb_self: &Self,
        key: RString,
        claim: u64,
        timeout: f64,
    ) -> Result<Symbol, Error> {
        standing_of(ruby, rb_self, key, claim, timeout, true)
    }

    /// `release_lease(key, claim)`: ends the claim; every process applies the
    /// release after this process's earlier changes (the value's write).
    fn release_lease(&self, key: RString, claim: u64) {
        self.node.release_claim(&key_bytes(key), claim);
    }

    /// `invalidate_unsettled`: invalidates everywhere the keys of local changes
    /// that have not come back; returns how many.
    fn invalidate_unsettled(&self) -> usize {
        self.node.invalidate_unsettled()
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
