//! Turns the Ruby side's option Hashes into core settings, checking each value's
//! type and naming the option when one is wrong.

use std::time::Duration;

use magnus::{prelude::*, Error, Float, Integer, RHash, RString, Ruby, Symbol, Value};

use crate::bus::settings::{
    BusSettings, Health, RedisOption, DEFAULT_BROADCAST_MAX_BYTES, DEFAULT_CHANNEL,
    DEFAULT_QUEUE_CAPACITY,
};
use crate::error::Error as CoreError;

use super::errors;

fn configuration(ruby: &Ruby, message: String) -> Error {
    errors::to_ruby(ruby, CoreError::Configuration(message))
}

fn fetch(ruby: &Ruby, hash: RHash, key: &str) -> Option<Value> {
    hash.get(ruby.to_symbol(key))
        .filter(|value| !value.is_nil())
}

fn string(ruby: &Ruby, hash: RHash, key: &str, option: &str) -> Result<Option<String>, Error> {
    fetch(ruby, hash, key)
        .map(|value| {
            let text = RString::from_value(value)
                .map(|s| s.to_string())
                .or_else(|| {
                    Symbol::from_value(value).and_then(|s| s.name().ok().map(|n| Ok(n.to_string())))
                });
            match text {
                Some(Ok(text)) => Ok(text),
                Some(Err(_)) | None => Err(configuration(
                    ruby,
                    format!("{option} must be a String (got {})", value.inspect()),
                )),
            }
        })
        .transpose()
}

fn bytes(ruby: &Ruby, hash: RHash, key: &str, option: &str) -> Result<Option<Vec<u8>>, Error> {
    fetch(ruby, hash, key)
        .map(|value| {
            RString::from_value(value)
                // SAFETY: copied at once, with no Ruby call in between.
                .map(|s| unsafe { s.as_slice() }.to_vec())
                .ok_or_else(|| {
                    configuration(
                        ruby,
                        format!("{option} must be a String (got {})", value.inspect()),
                    )
                })
        })
        .transpose()
}

fn integer(ruby: &Ruby, hash: RHash, key: &str, option: &str) -> Result<Option<i64>, Error> {
    fetch(ruby, hash, key)
        .map(|value| {
            Integer::from_value(value)
                .and_then(|i| i.to_i64().ok())
                .ok_or_else(|| {
                    configuration(
                        ruby,
                        format!("{option} must be an Integer (got {})", value.inspect()),
                    )
                })
        })
        .transpose()
}

fn boolean(ruby: &Ruby, hash: RHash, key: &str, option: &str) -> Result<Option<bool>, Error> {
    fetch(ruby, hash, key)
        .map(|value| {
            if value.equal(ruby.qtrue())? {
                Ok(true)
            } else if value.equal(ruby.qfalse())? {
                Ok(false)
            } else {
                Err(configuration(
                    ruby,
                    format!("{option} must be true or false (got {})", value.inspect()),
                ))
            }
        })
        .transpose()
}

fn seconds(ruby: &Ruby, hash: RHash, key: &str, default: Duration) -> Result<Duration, Error> {
    let Some(value) = fetch(ruby, hash, key) else {
        return Ok(default);
    };
    let number = Float::from_value(value).map(|f| f.to_f64()).or_else(|| {
        Integer::from_value(value)
            .and_then(|i| i.to_i64().ok())
            .map(|i| i as f64)
    });
    number
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            configuration(
                ruby,
                format!(
                    "{key}: must be a number of seconds, zero or more (got {})",
                    value.inspect()
                ),
            )
        })
}

fn redis_option(ruby: &Ruby, hash: RHash) -> Result<RedisOption, Error> {
    Ok(RedisOption {
        url: string(ruby, hash, "url", "redis: url")?,
        host: string(ruby, hash, "host", "redis: host")?,
        port: integer(ruby, hash, "port", "redis: port")?,
        path: string(ruby, hash, "path", "redis: path")?,
        db: integer(ruby, hash, "db", "redis: db")?,
        username: string(ruby, hash, "username", "redis: username")?,
        password: string(ruby, hash, "password", "redis: password")?,
        ssl: boolean(ruby, hash, "ssl", "redis: ssl")?,
        verify: boolean(ruby, hash, "verify", "redis: ssl_params verify_mode")?,
        ca_pem: bytes(ruby, hash, "ca_pem", "redis: ssl_params ca_file")?,
        cert_pem: bytes(ruby, hash, "cert_pem", "redis: ssl_params cert")?,
        key_pem: bytes(ruby, hash, "key_pem", "redis: ssl_params key")?,
    })
}

/// The bus settings for the Hash the Ruby store builds from its options:
/// `redis:` (a Hash of connection parts), `channel:`, `secret:`,
/// `broadcast_max_bytes:`, `queue_capacity:`, `health_interval:`,
/// `health_timeout:`, `reconnect_max:`.
pub fn bus_settings(ruby: &Ruby, options: RHash) -> Result<BusSettings, Error> {
    let redis = match fetch(ruby, options, "redis") {
        Some(value) => RHash::from_value(value).ok_or_else(|| {
            configuration(
                ruby,
                format!("redis: must be a Hash here (got {})", value.inspect()),
            )
        })?,
        None => ruby.hash_new(),
    };
    let redis = redis_option(ruby, redis)?;
    let channel =
        string(ruby, options, "channel", "channel:")?.unwrap_or_else(|| DEFAULT_CHANNEL.into());
    let secret = bytes(ruby, options, "secret", "secret:")?;
    let defaults = Health::default();
    let health = Health {
        interval: seconds(ruby, options, "health_interval", defaults.interval)?,
        timeout: seconds(ruby, options, "health_timeout", defaults.timeout)?,
        reconnect_max: seconds(ruby, options, "reconnect_max", defaults.reconnect_max)?,
    };
    let broadcast_max_bytes =
        integer(ruby, options, "broadcast_max_bytes", "broadcast_max_bytes:")?
            .unwrap_or(DEFAULT_BROADCAST_MAX_BYTES as i64);
    let queue_capacity = integer(ruby, options, "queue_capacity", "queue_capacity:")?
        .unwrap_or(DEFAULT_QUEUE_CAPACITY as i64);
    BusSettings::new(
        &redis,
        &channel,
        secret.as_deref(),
        health,
        broadcast_max_bytes,
        queue_capacity,
    )
    .map_err(|e| errors::to_ruby(ruby, e))
}
