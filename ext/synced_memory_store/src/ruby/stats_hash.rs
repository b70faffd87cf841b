//! `Node#stats`: the node's counters, L1 sizes and bus state as a Ruby Hash.
//!
//! Its names are interned once per process ([`LazyId`]): a monitoring loop,
//! or a benchmark's reader stamping each change it sees, calls `stats` often,
//! and making each of some twenty Symbols from a new String cost most of the
//! call.

use magnus::value::LazyId;
use magnus::{Error, RHash, Ruby};

use crate::node::Node;
use crate::stats::Stats;

static L1_HITS: LazyId = LazyId::new("l1_hits");
static L1_MISSES: LazyId = LazyId::new("l1_misses");
static L2_HITS: LazyId = LazyId::new("l2_hits");
static L2_MISSES: LazyId = LazyId::new("l2_misses");
static PUBLISHED: LazyId = LazyId::new("published");
static RECEIVED: LazyId = LazyId::new("received");
static APPLIED: LazyId = LazyId::new("applied");
static REJECTED: LazyId = LazyId::new("rejected");
static MISSED: LazyId = LazyId::new("missed");
static RECONNECTS: LazyId = LazyId::new("reconnects");
static RESUMED: LazyId = LazyId::new("resumed");
static REPLAYED: LazyId = LazyId::new("replayed");
static DROPPED: LazyId = LazyId::new("dropped");
static CONFLICTS: LazyId = LazyId::new("conflicts");
static UNDECODABLE: LazyId = LazyId::new("undecodable");
static INVALIDATED: LazyId = LazyId::new("invalidated");
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
    let counters = [
        (&L1_HITS, &stats.l1_hits),
        (&L1_MISSES, &stats.l1_misses),
        (&L2_HITS, &stats.l2_hits),
        (&L2_MISSES, &stats.l2_misses),
        (&PUBLISHED, &stats.published),
        (&RECEIVED, &stats.received),
        (&APPLIED, &stats.applied),
        (&REJECTED, &stats.rejected),
        (&MISSED, &stats.missed),
        (&RECONNECTS, &stats.reconnects),
        (&RESUMED, &stats.resumed),
        (&REPLAYED, &stats.replayed),
        (&DROPPED, &stats.dropped),
        (&CONFLICTS, &stats.conflicts),
        (&UNDECODABLE, &stats.undecodable),
        (&INVALIDATED, &stats.invalidated),
    ];
    for (id, counter) in counters {
        hash.aset(name(id), Stats::get(counter))?;
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
