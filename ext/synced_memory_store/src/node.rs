//! A node: this process's L1 and counters, shared by the Ruby binding and, with
//! sync on, the bus threads.

use crate::config::Config;
use crate::l1::L1;
use crate::stats::Stats;

/// One store's native state.
pub struct Node {
    /// The in-process entries.
    pub l1: L1,
    /// Event counters.
    pub stats: Stats,
}

impl Node {
    /// A node with an empty L1 sized by `config`.
    pub fn new(config: &Config) -> Self {
        Node {
            l1: L1::new(config.size),
            stats: Stats::default(),
        }
    }
}
