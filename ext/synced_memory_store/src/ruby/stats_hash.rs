//! `Node#stats`: the node's counters, L1 sizes and bus state as a Ruby Hash.
//!
//! Its names are interned once per process ([`LazyId`]): a monitoring loop,
//! or a benchmark's reader stamping each change it sees, calls `stats` often,
//! and making each of some twenty Symbols from a new String cost most of the
//! call.

use std::sync::atomic::AtomicU64;

use magnus::value::LazyId;
use magnus::{Error, RHash, Ruby};

use crate::node::Node;
use crate::stats::Stats;

/// One of the node's counters, read from its [`Stats`].
type Counter = fn(&Stats) -> &AtomicU64;

/// The counters, each under its name.
static COUNTERS: [(LazyId, Counter); 17] = [
    (LazyId::new("l1_hits"), |stats| &stats.l1_hits),
    (LazyId::new("l1_misses"), |stats| &stats.l1_misses),
    (LazyId::new("l2_hits"), |stats| &stats.l2_hits),
    (LazyId::new("l2_misses"), |stats| &stats.l2_misses),
    (LazyId::new("published"), |stats| &stats.published),
    (LazyId::new("published_directly"), |stats| {
        &stats.published_directly
    }),
    (LazyId::new("received"), |stats| &stats.received),
    (LazyId::new("applied"), |stats| &stats.applied),
    (LazyId::new("rejected"), |stats| &stats.rejected),
    (LazyId::new("missed"), |stats| &stats.missed),
    (LazyId::new("reconnects"), |stats| &stats.reconnects),
    (LazyId::new("resumed"), |stats| &stats.resumed),
    (LazyId::new("replayed"), |stats| &stats.replayed),
    (LazyId::new("dropped"), |stats| &stats.dropped),
    (LazyId::new("conflicts"), |stats| &stats.conflicts),
    (LazyId::new("undecodable"), |stats| &stats.undecodable),
    (LazyId::new("invalidated"), |stats| &stats.invalidated),
];

static L1_ENTRIES: LazyId = LazyId::new("l1_entries");
static L1_BYTES: LazyId = LazyId::new("l1_bytes");
static L1_BUDGET: LazyId = LazyId::new("l1_budget");
static QUEUED: LazyId = LazyId::new("queued");
static PENDING: LazyId = LazyId::new("pending");
static CONNECTED: LazyId = LazyId::new("connected");
static TRUSTED: LazyId = LazyId::new("trusted");
static LAST_ERROR: LazyId = LazyId::new("last_error");
static LAST_APPLIED_AT: LazyId = LazyId::new("last_applied_at");

/// The Hash `Node#stats` returns for `node`.
pub(super) fn stats_hash(ruby: &Ruby, node: &Node) -> Result<RHash, Error> {
    let stats = &node.stats;
    let hash = ruby.hash_new();
    let name = |id: &LazyId| LazyId::get_inner_with(id, ruby);
    for (id, counter) in &COUNTERS {
        hash.aset(name(id), Stats::get(counter(stats)))?;
    }
    hash.aset(name(&L1_ENTRIES), node.l1.entry_count())?;
    hash.aset(name(&L1_BYTES), node.l1.weighted_size())?;
    hash.aset(name(&L1_BUDGET), node.l1.budget())?;
    hash.aset(
        name(&QUEUED),
        node.bus.as_ref().map_or(0, |bus| bus.outbox.len()),
    )?;
    hash.aset(name(&PENDING), node.pending_len())?;
    hash.aset(name(&CONNECTED), node.connected())?;
    hash.aset(name(&TRUSTED), node.trusted())?;
    hash.aset(
        name(&LAST_ERROR),
        node.bus.as_ref().and_then(|bus| bus.last_error()),
    )?;
    let applied_at = Stats::get(&stats.last_applied_at);
    hash.aset(
        name(&LAST_APPLIED_AT),
        (applied_at > 0).then(|| applied_at as f64 / 1e9),
    )?;
    Ok(hash)
}
