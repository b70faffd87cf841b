//! Validated settings of the bus: where Redis is, which channel, how messages
//! are signed, how to judge the connection's health. Errors name the option at
//! fault and never show a password.

use std::path::PathBuf;
use std::time::Duration;

use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, TlsCertificates,
};

use crate::bus::message::{Secret, Wire, FORMAT};
use crate::bus::outbox::BATCH_BYTES;
use crate::bus::sentinel::{Sentinel, SentinelOption};
use crate::error::{Error, Result};

/// Default channel name, before the database number is added (Redis pub/sub
/// ignores databases, so stores on `/0` and `/1` of one server would otherwise
/// share it).
pub(crate) const DEFAULT_CHANNEL: &str = "synced_memory_store";
/// Default largest entry shipped by value; larger ones ship as invalidations.
pub(crate) const DEFAULT_BROADCAST_MAX_BYTES: usize = 64 * 1024;
/// Default bound of the publish queue; beyond it the node drops what it cannot
/// send and publishes "drop everything" instead.
pub(crate) const DEFAULT_QUEUE_CAPACITY: usize = 100_000;

/// The `redis:` option, as the Ruby side hands it over (a URL and/or parts).
#[derive(Clone, Debug, Default)]
pub(crate) struct RedisOption {
    /// `redis://`, `rediss://` or `unix://` URL.
    pub(crate) url: Option<String>,
    /// Host name (instead of a URL).
    pub(crate) host: Option<String>,
    /// Port (default 6379).
    pub(crate) port: Option<i64>,
    /// Unix socket path (instead of host and port).
    pub(crate) path: Option<String>,
    /// Database number.
    pub(crate) db: Option<i64>,
    /// ACL user name.
    pub(crate) username: Option<String>,
    /// Password.
    pub(crate) password: Option<String>,
    /// Use TLS.
    pub(crate) ssl: Option<bool>,
    /// Verify the server's certificate (default true).
    pub(crate) verify: Option<bool>,
    /// PEM of the CA(s) to trust instead of the system's roots.
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// PEM client certificate (with `key_pem`) for mutual TLS.
    pub(crate) cert_pem: Option<Vec<u8>>,
    /// PEM client key.
    pub(crate) key_pem: Option<Vec<u8>>,
    /// Sentinels to ask where the primary is (see `sentinel.rs`); the
    /// credentials, database and TLS above are then the primary's.
    pub(crate) sentinels: Option<Vec<SentinelOption>>,
    /// The name the sentinels know the primary by.
    pub(crate) name: Option<String>,
    /// `role:` (only `master` with sentinels).
    pub(crate) role: Option<String>,
    /// ACL user name on the sentinels.
    pub(crate) sentinel_username: Option<String>,
    /// Password on the sentinels.
    pub(crate) sentinel_password: Option<String>,
}

/// Timing of the bus's health checks and reconnects.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Health {
    /// How often the subscription is PINGed.
    pub(crate) interval: Duration,
    /// How long L1 stays trusted after the last answered PING was sent; past it,
    /// reads bypass L1 and the subscription is rebuilt.
    pub(crate) timeout: Duration,
    /// Longest wait between reconnect attempts (the wait doubles up to it).
    pub(crate) reconnect_max: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(2),
        }
    }
}

/// Everything the bus threads need.
#[derive(Clone)]
pub(crate) struct BusSettings {
    /// Where Redis is.
    pub(crate) connection: ConnectionInfo,
    /// TLS material beyond the system's roots, if any.
    pub(crate) tls: Option<TlsCertificates>,
    /// With Sentinel: whom to ask for the primary (`connection` is then the
    /// template of connections to it).
    pub(crate) sentinel: Option<Sentinel>,
    /// A printable address (no credentials), for errors and inspect.
    pub(crate) description: String,
    /// The pub/sub channel.
    pub(crate) channel: String,
    /// How messages are written and read (signing, format, size limit).
    pub(crate) wire: Wire,
    /// Health checks and reconnects.
    pub(crate) health: Health,
    /// Largest entry (key plus encoded value) shipped by value.
    pub(crate) broadcast_max_bytes: usize,
    /// Bound of the publish queue, in changes.
    pub(crate) queue_capacity: usize,
}

/// The bus options as the store was given them, before they are checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct BusOptions {
    /// `redis:`.
    pub(crate) redis: RedisOption,
    /// `channel:`; None for the default (which names the database).
    pub(crate) channel: Option<String>,
    /// `secret:`, one or several (the first signs, any verifies).
    pub(crate) secrets: Vec<Vec<u8>>,
    /// `health_interval:`, `health_timeout:`, `reconnect_max:`.
    pub(crate) health: Health,
    /// `broadcast_max_bytes:`; None for the default.
    pub(crate) broadcast_max_bytes: Option<i64>,
    /// `queue_capacity:`; None for the default.
    pub(crate) queue_capacity: Option<i64>,
    /// The message format to write (tests of rolling upgrades); None: current.
    pub(crate) wire_format: Option<i64>,
}

impl BusSettings {
    /// Builds the settings, checking each option.
    pub(crate) fn new(options: &BusOptions) -> Result<Self> {
        let health = options.health.clone();
        if options.secrets.iter().any(|secret| secret.is_empty()) {
            return Err(config("secret: must not be empty".into()));
        }
        check_health(&health)?;
        let broadcast_max_bytes = options
            .broadcast_max_bytes
            .unwrap_or(DEFAULT_BROADCAST_MAX_BYTES as i64);
        let queue_capacity = options
            .queue_capacity
            .unwrap_or(DEFAULT_QUEUE_CAPACITY as i64);
        let broadcast_max_bytes = usize::try_from(broadcast_max_bytes).map_err(|_| {
            config(format!(
                "broadcast_max_bytes: must be zero or more (got {broadcast_max_bytes})"
            ))
        })?;
        if broadcast_max_bytes > 64 * 1024 * 1024 {
            return Err(config(format!(
                "broadcast_max_bytes: must be at most 64 MiB (got {broadcast_max_bytes})"
            )));
        }
        let queue_capacity = usize::try_from(queue_capacity)
            .ok()
            .filter(|&capacity| capacity >= 1)
            .ok_or_else(|| {
                config(format!(
                    "queue_capacity: must be at least 1 (got {queue_capacity})"
                ))
            })?;
        let format = match options.wire_format {
            None => FORMAT,
            Some(format) => u8::try_from(format)
                .ok()
                .filter(|&format| (1..=FORMAT + 1).contains(&format))
                .ok_or_else(|| {
                    config(format!(
                        "wire_format: must be between 1 and {} (got {format})",
                        FORMAT + 1
                    ))
                })?,
        };
        let redis = &options.redis;
        let (connection, mut description) = connection_info(redis)?;
        let sentinel = Sentinel::from_option(redis, &connection)?;
        if let Some(sentinel) = &sentinel {
            description = sentinel.describe();
        }
        let channel = match &options.channel {
            Some(channel) if channel.is_empty() => {
                return Err(config("channel: must be a non-empty String".into()))
            }
            Some(channel) => channel.clone(),
            None => format!("{DEFAULT_CHANNEL}:{}", connection.redis_settings().db()),
        };
        let wire = Wire {
            channel: channel.as_bytes().to_vec(),
            secrets: options.secrets.iter().map(|s| Secret::new(s)).collect(),
            format,
            // A full batch of by-value entries up to this node's own entry
            // limit, and room for framing. A peer that ships larger entries is
            // refused as too large, which the receiver handles as a missed change.
            max_bytes: BATCH_BYTES + broadcast_max_bytes + 64 * 1024,
        };
        Ok(BusSettings {
            connection,
            tls: tls_certificates(redis)?,
            sentinel,
            description,
            channel,
            wire,
            health,
            broadcast_max_bytes,
            queue_capacity,
        })
    }
}

fn config(message: String) -> Error {
    Error::Configuration(message)
}

fn check_health(health: &Health) -> Result<()> {
    if health.interval < Duration::from_millis(1) {
        return Err(config(format!(
            "health_interval: must be at least 0.001 s (got {:?})",
            health.interval
        )));
    }
    if health.timeout <= health.interval {
        return Err(config(format!(
            "health_timeout: must be longer than health_interval ({:?} <= {:?})",
            health.timeout, health.interval
        )));
    }
    if health.reconnect_max < Duration::from_millis(1) {
        return Err(config(format!(
            "reconnect_max: must be at least 0.001 s (got {:?})",
            health.reconnect_max
        )));
    }
    Ok(())
}

fn connection_info(redis: &RedisOption) -> Result<(ConnectionInfo, String)> {
    let base = match &redis.url {
        Some(url) => url.as_str().into_connection_info().map_err(|e| {
            config(format!(
                "redis: {url_shown} is not a Redis URL ({e})",
                url_shown = redacted(url)
            ))
        })?,
        None => ConnectionAddr::Tcp("127.0.0.1".into(), 6379)
            .into_connection_info()
            .expect("a TCP address is a connection"),
    };
    let addr = address(redis, base.addr().clone())?;
    let mut settings = base.redis_settings().clone();
    if let Some(db) = redis.db {
        if db < 0 {
            return Err(config(format!("redis: db must be zero or more (got {db})")));
        }
        settings = settings.set_db(db);
    }
    if let Some(username) = &redis.username {
        settings = settings.set_username(username);
    }
    if let Some(password) = &redis.password {
        settings = settings.set_password(password);
    }
    let description = describe(&addr, &settings);
    let info = base.set_addr(addr).set_redis_settings(
        settings.set_lib_name("synced_memory_store", env!("CARGO_PKG_VERSION")),
    );
    Ok((info, description))
}

fn address(redis: &RedisOption, from_url: ConnectionAddr) -> Result<ConnectionAddr> {
    if let Some(path) = &redis.path {
        return Ok(ConnectionAddr::Unix(PathBuf::from(path)));
    }
    let (url_host, url_port, url_tls) = match &from_url {
        ConnectionAddr::Tcp(host, port) => (host.clone(), *port, false),
        ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port, true),
        ConnectionAddr::Unix(_) if redis.host.is_none() && redis.port.is_none() => {
            return Ok(from_url)
        }
        _ => ("127.0.0.1".into(), 6379, false),
    };
    let host = redis.host.clone().unwrap_or(url_host);
    let port = match redis.port {
        Some(port) => u16::try_from(port).ok().filter(|&p| p > 0).ok_or_else(|| {
            config(format!(
                "redis: port must be between 1 and 65535 (got {port})"
            ))
        })?,
        None => url_port,
    };
    let tls = redis.ssl.unwrap_or(url_tls);
    let insecure = match (&from_url, redis.verify) {
        (_, Some(verify)) => !verify,
        (ConnectionAddr::TcpTls { insecure, .. }, None) => *insecure,
        _ => false,
    };
    Ok(if tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    })
}

fn tls_certificates(redis: &RedisOption) -> Result<Option<TlsCertificates>> {
    let root_cert = redis.ca_pem.clone();
    let client_tls = match (&redis.cert_pem, &redis.key_pem) {
        (Some(client_cert), Some(client_key)) => Some(redis::ClientTlsConfig {
            client_cert: client_cert.clone(),
            client_key: client_key.clone(),
        }),
        (None, None) => None,
        _ => return Err(config("redis: ssl_params cert and key go together".into())),
    };
    Ok(
        (root_cert.is_some() || client_tls.is_some()).then_some(TlsCertificates {
            client_tls,
            root_cert,
        }),
    )
}

fn describe(addr: &ConnectionAddr, settings: &RedisConnectionInfo) -> String {
    match addr {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{}", settings.db()),
        ConnectionAddr::TcpTls { host, port, .. } => {
            format!("rediss://{host}:{port}/{}", settings.db())
        }
        ConnectionAddr::Unix(path) => format!("unix://{}?db={}", path.display(), settings.db()),
        _ => format!("redis ({:?})/{}", addr, settings.db()),
    }
}

/// `url` with any password replaced, for messages.
pub(crate) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://[credentials]@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(redis: RedisOption) -> Result<BusSettings> {
        BusSettings::new(&BusOptions {
            redis,
            ..Default::default()
        })
    }

    fn url(url: &str) -> RedisOption {
        RedisOption {
            url: Some(url.into()),
            ..Default::default()
        }
    }

    #[test]
    fn urls_of_every_scheme_are_understood() {
        let plain = settings(url("redis://user:pw@cache.internal:6380/3")).unwrap();
        assert_eq!(plain.description, "redis://cache.internal:6380/3");
        assert_eq!(plain.connection.redis_settings().username(), Some("user"));
        assert_eq!(plain.connection.redis_settings().password(), Some("pw"));

        let tls = settings(url("rediss://cache.internal:6390/0")).unwrap();
        assert!(matches!(
            tls.connection.addr(),
            ConnectionAddr::TcpTls {
                port: 6390,
                insecure: false,
                ..
            }
        ));

        let unix = settings(url("unix:///run/redis.sock?db=2")).unwrap();
        assert_eq!(unix.description, "unix:///run/redis.sock?db=2");
    }

    #[test]
    fn parts_override_the_url_and_default_to_localhost() {
        let parts = settings(RedisOption {
            url: Some("redis://a:1/0".into()),
            host: Some("b".into()),
            port: Some(2),
            db: Some(5),
            ssl: Some(true),
            verify: Some(false),
            ..Default::default()
        })
        .unwrap();
        assert!(matches!(
            parts.connection.addr(),
            ConnectionAddr::TcpTls {
                port: 2,
                insecure: true,
                ..
            }
        ));
        assert_eq!(parts.description, "rediss://b:2/5");
        assert_eq!(
            settings(RedisOption::default()).unwrap().description,
            "redis://127.0.0.1:6379/0"
        );
    }

    #[test]
    fn the_default_channel_names_the_database_since_pub_sub_ignores_it() {
        assert_eq!(
            settings(url("redis://h/0")).unwrap().channel,
            "synced_memory_store:0"
        );
        assert_eq!(
            settings(url("redis://h/1")).unwrap().channel,
            "synced_memory_store:1"
        );
        let named = BusSettings::new(&BusOptions {
            redis: url("redis://h/1"),
            channel: Some("mine".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(named.channel, "mine");
        assert_eq!(named.wire.channel, b"mine");
    }

    #[test]
    fn bad_values_name_their_option() {
        let error = |redis, channel: &str, health: Health, broadcast: i64| {
            BusSettings::new(&BusOptions {
                redis,
                channel: Some(channel.into()),
                health,
                broadcast_max_bytes: Some(broadcast),
                queue_capacity: Some(10),
                ..Default::default()
            })
            .err()
            .unwrap()
            .to_string()
        };
        let ok = Health::default();
        assert!(error(url("http://nope"), "c", ok.clone(), 1).starts_with("redis:"));
        assert!(!error(url("redis://u:hunter2@[::1"), "c", ok.clone(), 1).contains("hunter2"));
        let port = RedisOption {
            port: Some(70000),
            ..Default::default()
        };
        assert!(error(port, "c", ok.clone(), 1).contains("port"));
        assert!(error(RedisOption::default(), "", ok.clone(), 1).starts_with("channel:"));
        assert!(
            error(RedisOption::default(), "c", ok.clone(), -1).starts_with("broadcast_max_bytes:")
        );
        let slow = Health {
            timeout: Duration::from_millis(50),
            ..Health::default()
        };
        assert!(error(RedisOption::default(), "c", slow, 1).starts_with("health_timeout:"));
        let half_tls = RedisOption {
            cert_pem: Some(b"pem".to_vec()),
            ..Default::default()
        };
        assert!(error(half_tls, "c", ok, 1).contains("cert and key go together"));
        let future = BusSettings::new(&BusOptions {
            wire_format: Some(i64::from(FORMAT) + 2),
            ..Default::default()
        });
        assert!(future
            .err()
            .unwrap()
            .to_string()
            .starts_with("wire_format:"));
        let empty_secret = BusSettings::new(&BusOptions {
            secrets: vec![b"ok".to_vec(), Vec::new()],
            ..Default::default()
        });
        assert!(empty_secret
            .err()
            .unwrap()
            .to_string()
            .starts_with("secret:"));
    }
}
