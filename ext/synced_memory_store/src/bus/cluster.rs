//! The bus on a Redis Cluster: which node carries the channel, and how.
//!
//! **Why one node.** Redis delivers a channel's messages in one order only to
//! the subscribers of one server. With sharded pub/sub (Redis 7+), a channel
//! belongs to the hash slot of its name, and `SPUBLISH`/`SSUBSCRIBE` are
//! served only by the primary that owns that slot (any other node answers
//! `MOVED`). So every node of the bus publishes to, and subscribes at, that
//! one primary, and the one-order argument of a single server holds
//! unchanged. When the slot moves (a migration, a failover), the old owner
//! drops its sharded subscribers (`sunsubscribe`) or dies, and refuses
//! `SPUBLISH` with `MOVED`: the subscriber reconnects under the disconnect
//! rule (L1 untrusted meanwhile, dropped on resubscribing) and the publisher
//! requeues its batch in forms safe either way, then both find the new owner.
//!
//! **Without sharded pub/sub** (a Redis 6 cluster), classic `PUBLISH` is
//! broadcast to every node by the cluster bus, in each node's own order; the
//! bus still publishes and subscribes at the owner of the channel's slot only,
//! so every message takes one path and the order holds while that owner
//! stands. This is the fallback; Redis 7's sharded pub/sub is what the
//! guarantees are stated for.

use redis::{ErrorKind, RedisError, RedisResult, Value};

use super::cluster_settings::ClusterSettings;
use super::settings::{address_like, BusSettings};
use super::{open, Link, PubSub};

/// Connects to the primary that owns the channel's slot, in RESP3 (in which a
/// subscribed connection's replies and messages can be told apart), and finds
/// out whether it serves sharded pub/sub.
pub(crate) fn connect(settings: &BusSettings, cluster: &ClusterSettings) -> RedisResult<Link> {
    let (host, port) = owner(settings, cluster)?;
    let mut connection = open(
        settings,
        &address_like(settings.connection.addr(), host, port),
        true,
    )?;
    let pubsub = if serves_sharded_pub_sub(&mut connection)? {
        PubSub::Sharded
    } else {
        PubSub::Broadcast
    };
    Ok(Link {
        connection,
        pubsub,
        server: settings.description.clone(),
    })
}

/// Asks the seeds, then the nodes last learned, which primary owns the slot.
fn owner(settings: &BusSettings, cluster: &ClusterSettings) -> RedisResult<(String, u16)> {
    let known = cluster.known.lock().clone();
    let mut last_error = None;
    for (host, port) in cluster.seeds.iter().chain(known.iter()) {
        let answer = open(
            settings,
            &address_like(settings.connection.addr(), host.clone(), *port),
            false,
        )
        .and_then(|mut connection| redis::cmd("CLUSTER").arg("SLOTS").query(&mut connection));
        match answer.and_then(|slots| parse_slots(&slots, host)) {
            Ok(ranges) => {
                *cluster.known.lock() = ranges.iter().map(|range| range.primary.clone()).collect();
                return ranges
                    .into_iter()
                    .find(|range| (range.start..=range.end).contains(&cluster.slot))
                    .map(|range| range.primary)
                    .ok_or_else(|| {
                        RedisError::from((
                            ErrorKind::ClusterConnectionNotFound,
                            "no primary serves the channel's slot",
                            format!("slot {} (cluster down or resharding?)", cluster.slot),
                        ))
                    });
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        RedisError::from((
            ErrorKind::ClusterConnectionNotFound,
            "no cluster node to ask",
        ))
    }))
}

/// One range of `CLUSTER SLOTS`: its slots and its primary.
struct Range {
    start: u16,
    end: u16,
    primary: (String, u16),
}

/// Reads a `CLUSTER SLOTS` reply. A node whose address is empty or `?` is
/// reached as the node that answered (`asked`).
fn parse_slots(reply: &Value, asked: &str) -> RedisResult<Vec<Range>> {
    let malformed = || RedisError::from((ErrorKind::Parse, "malformed CLUSTER SLOTS reply"));
    let Value::Array(entries) = reply else {
        return Err(malformed());
    };
    entries
        .iter()
        .map(|entry| {
            let Value::Array(parts) = entry else {
                return Err(malformed());
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(node))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return Err(malformed());
            };
            let host = match node.first() {
                Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                Some(Value::SimpleString(text)) => text.clone(),
                _ => return Err(malformed()),
            };
            let host = if host.is_empty() || host == "?" {
                asked.to_string()
            } else {
                host
            };
            let Some(Value::Int(port)) = node.get(1) else {
                return Err(malformed());
            };
            Ok(Range {
                start: u16::try_from(*start).map_err(|_| malformed())?,
                end: u16::try_from(*end).map_err(|_| malformed())?,
                primary: (host, u16::try_from(*port).map_err(|_| malformed())?),
            })
        })
        .collect()
}

/// Whether the server knows `SPUBLISH` (Redis 7+). A user not allowed to ask
/// (`COMMAND INFO`) is taken to be on Redis 7: if it is not, `SSUBSCRIBE`
/// fails as an unknown command, which `stats[:last_error]` shows.
fn serves_sharded_pub_sub(connection: &mut redis::Connection) -> RedisResult<bool> {
    let info: Value = match redis::cmd("COMMAND")
        .arg("INFO")
        .arg("SPUBLISH")
        .query(connection)
    {
        Err(error) if error.code() == Some("NOPERM") => return Ok(true),
        answer => answer?,
    };
    Ok(match info {
        Value::Array(items) => items.first().is_some_and(|item| *item != Value::Nil),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_slots_replies_are_read_with_unnamed_nodes_as_the_one_asked() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("", 7001),
                node("10.0.0.3", 7003),
            ]),
        ]);
        let ranges = parse_slots(&reply, "seed.example").unwrap();
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0].primary, ("10.0.0.1".to_string(), 7000));
        assert_eq!((ranges[1].start, ranges[1].end), (5461, 16383));
        assert_eq!(ranges[1].primary, ("seed.example".to_string(), 7001));
        assert!(parse_slots(&Value::Int(1), "x").is_err());
        assert!(parse_slots(&Value::Array(vec![Value::Int(1)]), "x").is_err());
    }
}
