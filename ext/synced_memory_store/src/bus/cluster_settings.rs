//! Where a bus on a Redis Cluster starts asking, and which hash slot carries
//! its channel (the asking is `cluster.rs`).

use std::sync::Arc;

use crate::sync::Mutex;

/// Number of hash slots in a Redis Cluster.
const SLOTS: u16 = 16_384;

/// Where the cluster is and which slot carries the channel.
#[derive(Debug)]
pub(crate) struct ClusterSettings {
    /// The nodes given in `cluster:`, asked in turn where the slot lives.
    pub(crate) seeds: Vec<(String, u16)>,
    /// The hash slot of the channel's name.
    pub(crate) slot: u16,
    /// Nodes learned from the last answer (tried after the seeds, so the bus
    /// finds the cluster again when every seed is down).
    pub(crate) known: Arc<Mutex<Vec<(String, u16)>>>,
}

impl ClusterSettings {
    /// Settings for `seeds` carrying `channel`.
    pub(crate) fn new(seeds: Vec<(String, u16)>, channel: &[u8]) -> ClusterSettings {
        ClusterSettings {
            seeds,
            slot: slot(channel),
            known: Arc::default(),
        }
    }
}

/// A copy starts with nothing learned: every bus (a forked child's too) learns
/// for itself, and never takes a lock that a thread of another bus, or of a
/// parent process that forked meanwhile, may hold.
impl Clone for ClusterSettings {
    fn clone(&self) -> Self {
        ClusterSettings {
            seeds: self.seeds.clone(),
            slot: self.slot,
            known: Arc::default(),
        }
    }
}

/// The hash slot of `key`, as Redis Cluster computes it: CRC16 (XMODEM) of the
/// key, or of the part between the first `{` and the next `}` when that part
/// is not empty, modulo 16384.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&byte| byte == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&byte| byte == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ (u16::from(byte) << 8), |crc, _| {
            if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_shares_nothing_learned() {
        let settings = ClusterSettings::new(vec![("127.0.0.1".into(), 7000)], b"c");
        settings.known.lock().push(("127.0.0.1".into(), 7001));
        let copy = settings.clone();
        assert!(copy.known.lock().is_empty());
        assert_eq!(
            (copy.seeds, copy.slot),
            (settings.seeds.clone(), settings.slot)
        );
        assert!(!Arc::ptr_eq(&copy.known, &settings.known));
    }

    #[test]
    fn slots_are_those_of_redis_cluster() {
        // Values from CLUSTER KEYSLOT on a Redis 7 server.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b""), 0);
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(
            slot(b"synced_memory_store:0"),
            slot(b"synced_memory_store:0")
        );
    }

    #[test]
    fn a_hash_tag_decides_the_slot_unless_it_is_empty() {
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }
}
