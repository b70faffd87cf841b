//! Which sentinels a bus behind Redis Sentinel asks, and for which primary:
//! the `redis:` option's Sentinel parts, checked (the asking is `sentinel.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use super::redis_option::{redacted, RedisOption, SentinelOption};
use crate::error::{Error, Result};

/// The port a sentinel listens on unless told otherwise.
pub(crate) const DEFAULT_PORT: u16 = 26379;

/// The validated Sentinel settings of a bus.
#[derive(Clone, Debug)]
pub(crate) struct Sentinel {
    /// The name the sentinels know the primary by (`name:`).
    pub(crate) name: String,
    /// How to reach each sentinel, in the order given.
    pub(crate) sentinels: Vec<ConnectionInfo>,
    /// The sentinel that answered last, asked first next time (shared by the
    /// threads and by clones of the settings).
    pub(crate) preferred: Arc<AtomicUsize>,
}

impl Sentinel {
    /// The Sentinel settings the `redis:` option asks for (None without
    /// `sentinels:`), with `node` as the template of connections to the
    /// primary (its credentials, database and TLS; its address is replaced).
    pub(crate) fn from_option(redis: &RedisOption, node: &ConnectionInfo) -> Result<Option<Self>> {
        let Some(entries) = &redis.sentinels else {
            return Ok(None);
        };
        if entries.is_empty() {
            return Err(config(
                "redis: sentinels: must list at least one sentinel".into(),
            ));
        }
        if redis.path.is_some() {
            return Err(config(
                "redis: path: and sentinels: exclude each other (the sentinels say where the primary is)"
                    .into(),
            ));
        }
        match redis.role.as_deref() {
            None | Some("master") => {}
            Some("replica" | "slave") => {
                return Err(config(
                    "redis: role: must be :master with sentinels: the bus publishes and subscribes \
                     on the primary (a PUBLISH on a replica reaches only that replica's subscribers)"
                        .into(),
                ))
            }
            Some(other) => {
                return Err(config(format!(
                    "redis: role: must be :master (got {other:?})"
                )))
            }
        }
        let name =
            match (&redis.name, node.addr()) {
                (Some(name), _) => name.clone(),
                // redis-rb 4 names the primary as the URL's host (redis://mymaster).
                (None, ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. })
                    if redis.host.is_some() || redis.url.is_some() =>
                {
                    host.clone()
                }
                _ => return Err(config(
                    "redis: sentinels: needs name: (the name the sentinels monitor the primary by)"
                        .into(),
                )),
            };
        if name.is_empty() {
            return Err(config("redis: name: must not be empty".into()));
        }
        let tls = matches!(node.addr(), ConnectionAddr::TcpTls { .. });
        let sentinels = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| sentinel_info(redis, entry, index, tls))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Sentinel {
            name,
            sentinels,
            preferred: Arc::new(AtomicUsize::new(0)),
        }))
    }

    /// A printable description (no credentials): `sentinel NAME via HOST:PORT,…`.
    pub(crate) fn describe(&self) -> String {
        let addresses: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| sentinel.addr().to_string())
            .collect();
        format!("sentinel {} via {}", self.name, addresses.join(","))
    }

    /// The sentinels in the order to ask them: the one that answered last
    /// first, then the others as given.
    pub(crate) fn order(&self) -> impl Iterator<Item = usize> + '_ {
        let first = self.preferred.load(Ordering::Relaxed) % self.sentinels.len();
        std::iter::once(first).chain((0..self.sentinels.len()).filter(move |&i| i != first))
    }
}

/// How to reach sentinel `entry` (the `index`-th): its URL or host and port,
/// its own credentials or `sentinel_username:`/`sentinel_password:`, TLS if
/// its URL is `rediss://` or the bus uses TLS. Sentinels have no databases.
fn sentinel_info(
    redis: &RedisOption,
    entry: &SentinelOption,
    index: usize,
    tls: bool,
) -> Result<ConnectionInfo> {
    let option = format!("redis: sentinels[{index}]");
    let from_url = match &entry.url {
        Some(url) => {
            let info = url.as_str().into_connection_info().map_err(|e| {
                config(format!(
                    "{option} {} is not a redis:// URL ({e})",
                    redacted(url)
                ))
            })?;
            match info.addr() {
                ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. } => Some(info),
                _ => {
                    return Err(config(format!(
                        "{option} must be a host and port (got {})",
                        redacted(url)
                    )))
                }
            }
        }
        None => None,
    };
    let (url_host, url_port, url_tls) = match from_url.as_ref().map(ConnectionInfo::addr) {
        Some(ConnectionAddr::Tcp(host, port)) => (Some(host.clone()), Some(*port), false),
        Some(ConnectionAddr::TcpTls { host, port, .. }) => (Some(host.clone()), Some(*port), true),
        _ => (None, None, false),
    };
    let host = entry
        .host
        .clone()
        .or(url_host)
        .filter(|host| !host.is_empty())
        .ok_or_else(|| config(format!("{option} needs a host")))?;
    let port = match entry.port {
        Some(port) => u16::try_from(port).ok().filter(|&p| p > 0).ok_or_else(|| {
            config(format!(
                "{option} port must be between 1 and 65535 (got {port})"
            ))
        })?,
        None if entry.url.as_deref().is_some_and(names_a_port) => url_port.unwrap_or(DEFAULT_PORT),
        None => DEFAULT_PORT,
    };
    let from_url_settings = from_url.as_ref().map(ConnectionInfo::redis_settings);
    let username = entry
        .username
        .clone()
        .or_else(|| from_url_settings.and_then(|s| s.username().map(str::to_owned)))
        .or_else(|| redis.sentinel_username.clone());
    let password = entry
        .password
        .clone()
        .or_else(|| from_url_settings.and_then(|s| s.password().map(str::to_owned)))
        .or_else(|| redis.sentinel_password.clone());
    let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(username) = username {
        settings = settings.set_username(username);
    }
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    let addr = if tls || url_tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: redis.verify == Some(false),
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    };
    Ok(addr
        .into_connection_info()
        .expect("a TCP address is a connection")
        .set_redis_settings(settings))
}

/// Whether `url` gives a port (redis-rs reads a missing one as 6379, a
/// server's port, not a sentinel's).
fn names_a_port(url: &str) -> bool {
    let authority = url.split("://").nth(1).unwrap_or("");
    let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    // An IPv6 host is bracketed; a port follows the closing bracket.
    let after_host = host_port.rsplit(']').next().unwrap_or(host_port);
    after_host.contains(':')
}

fn config(message: String) -> Error {
    Error::Configuration(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_url_with_a_port_names_one() {
        assert!(names_a_port("redis://h:1"));
        assert!(names_a_port("redis://u:p@h:1/0"));
        assert!(names_a_port("redis://[::1]:1"));
        assert!(!names_a_port("redis://h"));
        assert!(!names_a_port("redis://u:p@h/0"));
        assert!(!names_a_port("redis://[::1]"));
    }
}
