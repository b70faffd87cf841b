//! The `redis:` option as the Ruby side hands it over, before it is checked
//! (see `settings.rs`), and how a URL from it is shown in messages.

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
    /// Redis Cluster nodes (`host:port`) to ask where the channel lives; the
    /// other parts (credentials, TLS) apply to every node.
    pub(crate) cluster: Option<Vec<String>>,
    /// Sentinels to ask where the primary is (see `sentinel_settings.rs`); the
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

/// One sentinel as the `redis:` option gives it: a `redis://host:port` URL or
/// host and port, with credentials of its own if they differ from
/// `sentinel_username:`/`sentinel_password:`.
#[derive(Clone, Debug, Default)]
pub(crate) struct SentinelOption {
    /// `redis://` or `rediss://` URL of the sentinel.
    pub(crate) url: Option<String>,
    /// Host name (instead of a URL).
    pub(crate) host: Option<String>,
    /// Port (default 26379).
    pub(crate) port: Option<i64>,
    /// ACL user name on this sentinel.
    pub(crate) username: Option<String>,
    /// Password on this sentinel.
    pub(crate) password: Option<String>,
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
