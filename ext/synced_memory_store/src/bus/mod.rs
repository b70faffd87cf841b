//! The bus: Redis pub/sub carrying every node's changes to every other node.
//! Two native threads per node do the network work, so no Ruby thread ever waits
//! on it and no message needs the GVL to be applied.

pub mod message;
pub mod outbox;
pub mod publisher;
pub mod settings;
pub mod subscriber;
pub mod thread;

use std::time::Duration;

use redis::{Client, Connection, RedisResult};

use settings::BusSettings;

/// Opens a connection as the settings describe, within the health timeout.
pub fn connect(settings: &BusSettings) -> RedisResult<Connection> {
    // rustls needs a process-wide crypto provider before the first TLS
    // handshake; installing it twice is harmless (the second call fails quietly).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match &settings.tls {
        Some(certificates) => {
            Client::build_with_tls(settings.connection.clone(), certificates.clone())?
        }
        None => Client::open(settings.connection.clone())?,
    };
    let connection = client
        .get_connection_with_timeout(settings.health.timeout.max(Duration::from_millis(100)))?;
    connection.set_write_timeout(Some(settings.health.timeout))?;
    Ok(connection)
}

/// Sleeps `duration` in short steps, returning early (false) once `closing` says so.
pub fn pause(duration: Duration, closing: impl Fn() -> bool) -> bool {
    let step = Duration::from_millis(10);
    let mut left = duration;
    while !left.is_zero() {
        if closing() {
            return false;
        }
        let now = left.min(step);
        std::thread::sleep(now);
        left -= now;
    }
    !closing()
}
