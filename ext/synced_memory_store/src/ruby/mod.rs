//! The binding layer: the only module that touches Ruby. It converts between Ruby
//! values and the core's bytes and exposes `SyncedMemoryStore::Node` and the
//! native methods of `SyncedMemoryStore::Glob`.

mod errors;
mod glob;
mod node;
mod nogvl;
mod options;
mod stats_hash;
mod tree;
mod value;

use magnus::{Error, Ruby};

/// Defines the native classes and methods under `SyncedMemoryStore`.
pub(crate) fn init(ruby: &Ruby) -> Result<(), Error> {
    crate::fork::watch();
    glob::define(ruby)?;
    node::define(ruby)
}
