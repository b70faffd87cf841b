//! The binding layer: the only module that touches Ruby. It converts between Ruby
//! values and the core's bytes and exposes `SyncedMemoryStore::Node`.

mod errors;
mod node;
mod nogvl;
mod options;
mod tree;
mod value;

use magnus::{Error, Ruby};

/// Defines the native classes under `SyncedMemoryStore`.
pub(crate) fn init(ruby: &Ruby) -> Result<(), Error> {
    crate::fork::watch();
    node::define(ruby)
}
