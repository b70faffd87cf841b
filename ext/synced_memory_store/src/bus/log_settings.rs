//! The settings of the channel's log (`bus_log:`, see `log.rs`): how long
//! it is and the stream's key, which must share the channel's hash slot.

use super::cluster_settings::slot;

/// Entries kept by `bus_log: true`.
pub(crate) const DEFAULT_LENGTH: u64 = 10_000;

/// Longest `bus_log:` length accepted.
pub(crate) const MAX_LENGTH: u64 = 10_000_000;

/// The log of one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogSettings {
    /// The stream's key (in the channel's hash slot, see [`key_for`]).
    pub(crate) key: String,
    /// About how many entries the stream keeps (`MAXLEN ~`).
    pub(crate) length: u64,
}

impl LogSettings {
    /// The log of `channel`, about `length` entries long.
    pub(crate) fn new(channel: &str, length: u64) -> LogSettings {
        LogSettings {
            key: key_for(channel),
            length,
        }
    }
}

/// The stream's key for `channel`: `<channel>:log` when that is in the
/// channel's hash slot (the channel has a hash tag), else `{<channel>}:log`
/// (the channel is the tag), else, for names whose braces defeat both,
/// `<channel>:log:<n>` for the first `n` that lands in the slot. On a Redis
/// Cluster a script may only touch keys of the node it runs on, and sharded
/// pub/sub runs there too, so the key must share the channel's slot.
pub(crate) fn key_for(channel: &str) -> String {
    let wanted = slot(channel.as_bytes());
    let plain = format!("{channel}:log");
    if slot(plain.as_bytes()) == wanted {
        return plain;
    }
    let tagged = format!("{{{channel}}}:log");
    if slot(tagged.as_bytes()) == wanted {
        return tagged;
    }
    (0u32..)
        .map(|n| format!("{channel}:log:{n}"))
        .find(|key| slot(key.as_bytes()) == wanted)
        .expect("some suffix lands in every slot")
}
