//! Validated settings of one store's native half.

use crate::bus::settings::BusSettings;
use crate::error::{Error, Result};

/// Default L1 byte budget: 32 MiB, like ActiveSupport's MemoryStore.
pub const DEFAULT_SIZE: u64 = 32 * 1024 * 1024;

/// Smallest budget accepted: room for a handful of entries.
pub const MIN_SIZE: u64 = 4 * 1024;

/// Settings for a [`crate::node::Node`].
#[derive(Clone)]
pub struct Config {
    /// L1 byte budget.
    pub size: u64,
    /// The bus, when sync is on.
    pub bus: Option<BusSettings>,
}

impl Config {
    /// Checks `size:` (bytes, an Integer of at least [`MIN_SIZE`]).
    pub fn new(size: i64) -> Result<Self> {
        let size = u64::try_from(size)
            .ok()
            .filter(|&size| size >= MIN_SIZE)
            .ok_or_else(|| {
                Error::Configuration(format!(
                    "size: must be a byte count of at least {MIN_SIZE} (got {size})"
                ))
            })?;
        Ok(Config { size, bus: None })
    }

    /// The same settings, with sync over the bus described by `bus`.
    pub fn with_bus(self, bus: BusSettings) -> Self {
        Config {
            bus: Some(bus),
            ..self
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            size: DEFAULT_SIZE,
            bus: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_must_be_a_reasonable_byte_count() {
        assert_eq!(Config::new(1 << 20).unwrap().size, 1 << 20);
        for bad in [-1, 0, 100] {
            let error = Config::new(bad).err().expect("rejected");
            assert!(error.to_string().starts_with("size:"), "{error}");
            assert!(error.to_string().contains(&bad.to_string()), "{error}");
        }
    }
}
