//! Rust core of synced_memory_store: L1 memory, the entry record and its codec,
//! and (with sync on) the Redis bus. Only the `ruby` module touches Ruby.
//!
//! Layers point one way: `ruby` → `node` → `bus`, `l1`, `record` → `clock`,
//! `stats`, `error`. The bus threads see a node only through `bus::Member`.

// Without the binding layer nothing outside the tests calls into the core.
#![cfg_attr(not(feature = "ruby"), allow(dead_code, unused_imports))]

// Not in unit tests, which count allocations with an allocator of their own.
#[cfg(all(feature = "ruby", not(test)))]
mod allocator;
pub(crate) mod bus;
pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod error;
pub(crate) mod fork;
#[cfg(test)]
mod fuzz;
pub(crate) mod glob;
pub mod l1;
pub(crate) mod node;
pub mod record;
pub(crate) mod stats;
pub(crate) mod sync;
pub(crate) mod tree;

#[cfg(feature = "ruby")]
mod ruby;

#[cfg(feature = "ruby")]
#[magnus::init]
fn init(ruby: &magnus::Ruby) -> Result<(), magnus::Error> {
    ruby::init(ruby)
}
