//! Validated settings of the bus: where Redis is, which channel, how messages
//! are signed, how to judge the connection's health. Errors name the option at
//! fault and never show a password.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, TlsCertificates,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::bus::cluster_settings::ClusterSettings;
use crate::bus::log_settings::{LogSettings, MAX_LENGTH};
use crate::bus::message::{Secret, Wire, FORMAT};
use crate::bus::outbox::BATCH_BYTES;
pub(crate) use crate::bus::redis_option::{redacted, RedisOption};
use crate::bus::sentinel_settings::Sentinel;
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
    /// Where Redis is (on a cluster: the credentials and TLS settings of
    /// every node, with the first seed's address).
    pub(crate) connection: ConnectionInfo,
    /// The cluster carrying the channel, if the bus is on one.
    pub(crate) cluster: Option<ClusterSettings>,
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
    /// The channel's log (`bus_log:`), if on.
    pub(crate) log: Option<LogSettings>,
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
    /// `bus_log:` as a length in entries; None: off.
    pub(crate) bus_log: Option<i64>,
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
        let (mut connection, mut description) = connection_info(redis)?;
        let seeds = cluster_seeds(redis)?;
        if seeds.is_some() && connection.redis_settings().db() != 0 {
            return Err(config(
                "redis: db must be 0 with cluster: (a Redis Cluster has one database)".into(),
            ));
        }
        let sentinel = Sentinel::from_option(redis, &connection)?;
        if let Some(sentinel) = &sentinel {
            if seeds.is_some() {
                return Err(config(
                    "redis: sentinels: and cluster: exclude each other".into(),
                ));
            }
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
        let cluster = seeds.map(|seeds| {
            if let Some((host, port)) = seeds.first() {
                connection = connection.clone().set_addr(address_like(
                    connection.addr(),
                    host.clone(),
                    *port,
                ));
            }
            description = format!(
                "the cluster at {}",
                seeds
                    .iter()
                    .map(|(host, port)| format!("{host}:{port}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            ClusterSettings::new(seeds, channel.as_bytes())
        });
        let log = options
            .bus_log
            .map(|length| {
                u64::try_from(length)
                    .ok()
                    .filter(|length| (1..=MAX_LENGTH).contains(length))
                    .map(|length| LogSettings::new(&channel, length))
                    .ok_or_else(|| {
                        config(format!(
                            "bus_log: must be true, false or a length from 1 to {MAX_LENGTH} (got {length})"
                        ))
                    })
            })
            .transpose()?;
        Ok(BusSettings {
            connection,
            cluster,
            tls: tls_certificates(redis)?,
            sentinel,
            description,
            channel,
            wire,
            health,
            broadcast_max_bytes,
            queue_capacity,
            log,
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

/// `host:port` reached the way `template` is (plain TCP, or TLS with its
/// settings): a cluster node or a primary named by a sentinel.
pub(crate) fn address_like(template: &ConnectionAddr, host: String, port: u16) -> ConnectionAddr {
    match template {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host, port),
    }
}

/// The `cluster:` seeds as (host, port), checked; None without `cluster:`.
fn cluster_seeds(redis: &RedisOption) -> Result<Option<Vec<(String, u16)>>> {
    let Some(nodes) = &redis.cluster else {
        return Ok(None);
    };
    if nodes.is_empty() {
        return Err(config("redis: cluster: needs at least one node".into()));
    }
    if redis.path.is_some() {
        return Err(config(
            "redis: cluster: nodes are reached over TCP, not a path".into(),
        ));
    }
    nodes
        .iter()
        .map(|node| {
            node.rsplit_once(':')
                .and_then(|(host, port)| {
                    let port = port.parse::<u16>().ok().filter(|&port| port > 0)?;
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    (!host.is_empty()).then(|| (host.to_string(), port))
                })
                .ok_or_else(|| {
                    config(format!(
                        "redis: cluster: nodes are host:port (got {})",
                        redacted(node)
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
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
    if let Some(ca) = &root_cert {
        check_ca(ca)?;
    }
    if let Some(client) = &client_tls {
        check_client_certificate(client)?;
    }
    Ok(
        (root_cert.is_some() || client_tls.is_some()).then_some(TlsCertificates {
            client_tls,
            root_cert,
        }),
    )
}

// The TLS material is checked as the store is made, as the TLS library will
// read it on every connection: a file that is not what its option says then
// fails here, naming the option, rather than every connection later, in words
// that point elsewhere (a CA file without a certificate reads as "the server's
// certificate is not signed by a CA this process trusts"). Nothing from the
// files is shown: a key is a secret.

fn check_ca(pem: &[u8]) -> Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates(pem, "ca_file")? {
        roots.add(certificate).map_err(|e| {
            config(format!(
                "redis: ssl_params ca_file holds a certificate that cannot be a trust anchor ({e})"
            ))
        })?;
    }
    Ok(())
}

fn check_client_certificate(client: &redis::ClientTlsConfig) -> Result<()> {
    let chain = certificates(&client.client_cert, "cert")?;
    let key = private_key(&client.client_key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config(format!("redis: ssl_params: TLS is unavailable ({e})")))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(chain, key)
        .map(drop)
        .map_err(|e| {
            config(format!(
                "redis: ssl_params key does not go with cert, or cannot be used ({e})"
            ))
        })
}

/// The certificates in `pem`, which must hold at least one.
fn certificates(pem: &[u8], option: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config(format!("redis: ssl_params {option} is not valid PEM ({e})")))?;
    if certificates.is_empty() {
        return Err(config(format!(
            "redis: ssl_params {option} holds no certificate (a PEM block \
             -----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certificates)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    let encrypted = |marker: &[u8]| pem.windows(marker.len()).any(|window| window == marker);
    if encrypted(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || encrypted(b"Proc-Type: 4,ENCRYPTED") {
        return Err(config(
            "redis: ssl_params key is encrypted; give it decrypted, e.g. as \
             OpenSSL::PKey.read(File.read(path), passphrase)"
                .into(),
        ));
    }
    // The parser's own error is not shown: it may quote the key.
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
        config(
            "redis: ssl_params key holds no private key (a PEM block -----BEGIN PRIVATE KEY-----, \
             RSA PRIVATE KEY or EC PRIVATE KEY)"
                .into(),
        )
    })
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

    /// A self-signed certificate (public; its key is not kept).
    const CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----
MIIBdzCCAR6gAwIBAgIUZA4HmPGdzr1it/4h3OTsRgE6QsYwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHZml4dHVyZTAgFw0yNjExMzAwOTA3MDVaGA8yMTI2MTEwNjA5
MDcwNVowEjEQMA4GA1UEAwwHZml4dHVyZTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABKRo90Dan45gRL686CL/sN168FmcS0XBZNO2qquKbVFRy+/YnIRKiCUw7Uip
J2R8eWVOnyiJyzksQb4JwPVmJl6jUDBOMB0GA1UdDgQWBBRCHZBcptlRglNMShtz
nvy7in222DAfBgNVHSMEGDAWgBRCHZBcptlRglNMShtznvy7in222DAMBgNVHRMB
Af8EAjAAMAoGCCqGSM49BAMCA0cAMEQCIAKY1Rk14mzg5YyXNDDzYzr1ACY17z0r
X3x0immiX/KVAiBziraAS6HQfSewUEYe7PGcdDin5/sXpU+NQ1ooyfwKOA==
-----END CERTIFICATE-----
";

    #[test]
    fn tls_material_that_is_not_what_its_option_says_is_refused_by_name() {
        let error = |ca: &[u8], cert: &[u8], key: &[u8]| {
            settings(RedisOption {
                url: Some("rediss://h:6390/0".into()),
                ca_pem: (!ca.is_empty()).then(|| ca.to_vec()),
                cert_pem: (!cert.is_empty()).then(|| cert.to_vec()),
                key_pem: (!key.is_empty()).then(|| key.to_vec()),
                ..Default::default()
            })
            .err()
            .map(|e| e.to_string())
        };
        assert_eq!(error(CERTIFICATE, b"", b""), None);
        let no_ca = error(b"not PEM\n", b"", b"").unwrap();
        assert!(
            no_ca.contains("ssl_params ca_file holds no certificate"),
            "{no_ca}"
        );
        let no_cert = error(b"", b"not PEM\n", b"a key").unwrap();
        assert!(
            no_cert.contains("ssl_params cert holds no certificate"),
            "{no_cert}"
        );
        let no_key = error(b"", CERTIFICATE, b"secret-material\n").unwrap();
        assert!(
            no_key.contains("ssl_params key holds no private key"),
            "{no_key}"
        );
        assert!(!no_key.contains("secret-material"), "{no_key}");
        let encrypted = error(
            b"",
            CERTIFICATE,
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nc2VjcmV0\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(encrypted.contains("key is encrypted"), "{encrypted}");
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

    #[test]
    fn cluster_seeds_carry_the_channel_slot_and_the_shared_credentials() {
        let redis = RedisOption {
            url: Some("rediss://bus:pw@10.0.0.1:7000".into()),
            cluster: Some(vec!["10.0.0.1:7000".into(), "[::1]:7001".into()]),
            ..Default::default()
        };
        let settings = settings(redis).unwrap();
        let cluster = settings.cluster.as_ref().unwrap();
        assert_eq!(
            cluster.seeds,
            [("10.0.0.1".to_string(), 7000), ("::1".to_string(), 7001)]
        );
        assert_eq!(
            cluster.slot,
            crate::bus::cluster_settings::slot(b"synced_memory_store:0")
        );
        assert_eq!(settings.channel, "synced_memory_store:0");
        assert_eq!(settings.connection.redis_settings().username(), Some("bus"));
        assert!(matches!(
            settings.connection.addr(),
            ConnectionAddr::TcpTls { .. }
        ));
        assert!(settings.description.contains("10.0.0.1:7000,::1:7001"));
        assert!(!settings.description.contains("pw"));
    }

    #[test]
    fn cluster_options_that_cannot_work_are_refused() {
        let refused = |cluster: Vec<&str>, url: &str| {
            settings(RedisOption {
                url: Some(url.into()),
                cluster: Some(cluster.into_iter().map(String::from).collect()),
                ..Default::default()
            })
            .err()
            .unwrap()
            .to_string()
        };
        assert!(refused(vec![], "redis://h:1").contains("at least one node"));
        assert!(refused(vec!["h"], "redis://h:1").contains("host:port"));
        assert!(refused(vec!["h:0"], "redis://h:1").contains("host:port"));
        assert!(refused(vec!["h:1"], "redis://h:1/2").contains("db must be 0"));
    }
}
