//! Rust core of synced_memory_store: L1 memory, the entry record and its codec,
//! and (with sync on) the Redis bus. Only the `ruby` module touches Ruby.

pub mod bus;
pub mod config;
pub mod error;
pub mod fork;
pub mod glob;
pub mod l1;
pub mod node;
pub mod pending;
pub mod record;
pub mod stats;
pub mod tree;

#[cfg(feature = "ruby")]
mod ruby;

#[cfg(feature = "ruby")]
#[magnus::init]
fn init(ruby: &magnus::Ruby) -> Result<(), magnus::Error> {
    ruby::init(ruby)
}
