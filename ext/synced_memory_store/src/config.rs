//! Validated settings of one store's native half.

use std::time::Duration;

use crate::bus::settings::BusSettings;
use crate::error::{Error, Result};

/// Default L1 byte budget: 32 MiB, like ActiveSupport's MemoryStore.
pub(crate) const DEFAULT_SIZE: u64 = 32 * 1024 * 1024;

/// Smallest budget accepted: room for a handful of entries.
pub(crate) const MIN_SIZE: u64 = 4 * 1024;

/// Settings for a [`crate::node::Node`].
#[derive(Clone)]
pub(crate) struct Config {
    /// L1 byte budget.
    pub(crate) size: u64,
    /// Longest any entry lives in L1 (`l1_expires_in:`), if capped.
    pub(crate) l1_expires_in: Option<Duration>,
    /// Whether a lookup that finds an expired entry leaves it in L1 (until
    /// its slot's `keep_for` ends) instead of removing it: the store's
    /// `fail_safe:` serves such entries when a refresh fails.
    pub(crate) keep_expired: bool,
    /// The bus, when sync is on.
    pub(crate) bus: Option<BusSettings>,
}

impl Config {
    /// Checks `size:` (bytes, at least [`MIN_SIZE`]) and `l1_expires_in:`
    /// (seconds, more than zero, or None for no cap).
    pub(crate) fn new(size: i64, l1_expires_in: Option<f64>) -> Result<Self> {
        let size = u64::try_from(size)
            .ok()
            .filter(|&size| size >= MIN_SIZE)
            .ok_or_else(|| {
                Error::Configuration(format!(
                    "size: must be a byte count of at least {MIN_SIZE} (got {size})"
                ))
            })?;
        let l1_expires_in = l1_expires_in
            .map(|seconds| {
                Duration::try_from_secs_f64(seconds)
                    .ok()
                    .filter(|cap| !cap.is_zero())
                    .ok_or_else(|| {
                        Error::Configuration(format!(
                            "l1_expires_in: must be a number of seconds greater than zero (got {seconds})"
                        ))
                    })
            })
            .transpose()?;
        Ok(Config {
            size,
            l1_expires_in,
            keep_expired: false,
            bus: None,
        })
    }

    /// The same settings, with expired entries kept in L1 by lookups when
    /// `keep` (see [`Config::keep_expired`]).
    pub(crate) fn keeping_expired(self, keep: bool) -> Self {
        Config {
            keep_expired: keep,
            ..self
        }
    }

    /// The same settings, with sync over the bus described by `bus`.
    pub(crate) fn with_bus(self, bus: BusSettings) -> Self {
        Config {
            bus: Some(bus),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_must_be_a_reasonable_byte_count() {
        assert_eq!(Config::new(1 << 20, None).unwrap().size, 1 << 20);
        for bad in [-1, 0, 100] {
            let error = Config::new(bad, None).err().expect("rejected");
            assert!(error.to_string().starts_with("size:"), "{error}");
            assert!(error.to_string().contains(&bad.to_string()), "{error}");
        }
    }

    #[test]
    fn the_l1_cap_must_be_a_positive_duration() {
        let capped = Config::new(1 << 20, Some(1.5)).unwrap();
        assert_eq!(capped.l1_expires_in, Some(Duration::from_millis(1500)));
        for bad in [0.0, -1.0, f64::NAN] {
            let error = Config::new(1 << 20, Some(bad)).err().expect("rejected");
            assert!(error.to_string().starts_with("l1_expires_in:"), "{error}");
        }
    }
}
