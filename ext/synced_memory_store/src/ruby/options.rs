//! Turns the Ruby side's option Hashes into core settings, checking each value's
//! type and naming the option when one is wrong.

use std::time::Duration;

use magnus::{prelude::*, Error, Float, Integer, RArray, RHash, RString, Ruby, Symbol, Value};

use crate::bus::redis_option::SentinelOption;
use crate::bus::settings::{BusOptions, BusSettings, Health, RedisOption};
use crate::config::Config;
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
            // A password's value is never shown, only what kind of thing it is.
            let shown = if key.ends_with("password") {
                // SAFETY: copied at once, with no Ruby call in between.
                format!("a {}", unsafe { value.classname() }.into_owned())
            } else {
                value.inspect()
            };
            match text {
                Some(Ok(text)) => Ok(text),
                Some(Err(_)) | None => Err(configuration(
                    ruby,
                    format!("{option} must be a String (got {shown})"),
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

/// A number of seconds (Integer or Float, or anything with `to_f` such as an
/// ActiveSupport::Duration), or None when absent.
fn number(ruby: &Ruby, hash: RHash, key: &str) -> Result<Option<f64>, Error> {
    let Some(value) = fetch(ruby, hash, key) else {
        return Ok(None);
    };
    let number = Float::from_value(value)
        .map(|f| f.to_f64())
        .or_else(|| {
            Integer::from_value(value)
                .and_then(|i| i.to_i64().ok())
                .map(|i| i as f64)
        })
        .or_else(|| {
            value
                .respond_to("to_f", false)
                .ok()
                .filter(|&responds| responds && !value.is_kind_of(ruby.class_string()))
                .and_then(|_| value.funcall::<_, _, f64>("to_f", ()).ok())
        });
    number.map(Some).ok_or_else(|| {
        configuration(
            ruby,
            format!(
                "{key}: must be a number of seconds (got {})",
                value.inspect()
            ),
        )
    })
}

fn seconds(ruby: &Ruby, hash: RHash, key: &str, default: Duration) -> Result<Duration, Error> {
    let Some(seconds) = number(ruby, hash, key)? else {
        return Ok(default);
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        configuration(
            ruby,
            format!("{key}: must be a number of seconds, zero or more (got {seconds})"),
        )
    })
}

/// `secret:`: one String, or an Array of them (the first signs, any verifies).
fn secrets(ruby: &Ruby, hash: RHash) -> Result<Vec<Vec<u8>>, Error> {
    let Some(value) = fetch(ruby, hash, "secret") else {
        return Ok(Vec::new());
    };
    let list: Vec<Value> = match RArray::from_value(value) {
        Some(array) => array.into_iter().collect(),
        None => vec![value],
    };
    list.into_iter()
        .map(|secret| {
            RString::from_value(secret)
                // SAFETY: copied at once, with no Ruby call in between.
                .map(|s| unsafe { s.as_slice() }.to_vec())
                .ok_or_else(|| {
                    configuration(
                        ruby,
                        format!(
                            "secret: must be a String or an Array of Strings (got {})",
                            value.inspect()
                        ),
                    )
                })
        })
        .collect()
}

/// An Array of Strings under `key`, if present.
fn strings(ruby: &Ruby, hash: RHash, key: &str, name: &str) -> Result<Option<Vec<String>>, Error> {
    let Some(value) = fetch(ruby, hash, key) else {
        return Ok(None);
    };
    let invalid = || {
        configuration(
            ruby,
            format!(
                "{name}: must be an Array of Strings (got {})",
                value.inspect()
            ),
        )
    };
    let array = RArray::from_value(value).ok_or_else(invalid)?;
    array
        .into_iter()
        .map(|item| {
            RString::from_value(item)
                .and_then(|string| string.to_string().ok())
                .ok_or_else(invalid)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
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
        cluster: strings(ruby, hash, "cluster", "redis: cluster")?,
        sentinels: sentinels(ruby, hash)?,
        name: string(ruby, hash, "name", "redis: name")?,
        role: string(ruby, hash, "role", "redis: role")?,
        sentinel_username: string(ruby, hash, "sentinel_username", "redis: sentinel_username")?,
        sentinel_password: string(ruby, hash, "sentinel_password", "redis: sentinel_password")?,
    })
}

/// `sentinels:`: an Array of Hashes (`url:` or `host:` and `port:`, with
/// `username:` and `password:` if the sentinel has its own), as the Ruby side
/// hands them over.
fn sentinels(ruby: &Ruby, hash: RHash) -> Result<Option<Vec<SentinelOption>>, Error> {
    let Some(value) = fetch(ruby, hash, "sentinels") else {
        return Ok(None);
    };
    let list = RArray::from_value(value).ok_or_else(|| {
        configuration(
            ruby,
            format!(
                "redis: sentinels: must be an Array (got {})",
                value.inspect()
            ),
        )
    })?;
    list.into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let option = format!("redis: sentinels[{index}]");
            let entry = RHash::from_value(entry).ok_or_else(|| {
                configuration(ruby, format!("{option} must be a Hash or a URL String"))
            })?;
            Ok(SentinelOption {
                url: string(ruby, entry, "url", &format!("{option} url"))?,
                host: string(ruby, entry, "host", &format!("{option} host"))?,
                port: integer(ruby, entry, "port", &format!("{option} port"))?,
                username: string(ruby, entry, "username", &format!("{option} username"))?,
                password: string(ruby, entry, "password", &format!("{option} password"))?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()
        .map(Some)
}

/// The node's configuration from the Hash the Ruby store builds: `size:`
/// (bytes), `l1_expires_in:` (seconds or nil), `keep_expired:` (true with the
/// store's `fail_safe:`) and `bus:` (nil with sync off,
/// else the bus options: `redis:` as a Hash of connection parts, `channel:`,
/// `secret:`, `broadcast_max_bytes:`, `queue_capacity:`, `health_interval:`,
/// `health_timeout:`, `reconnect_max:`, `wire_format:`).
pub(super) fn config(ruby: &Ruby, options: RHash) -> Result<Config, Error> {
    let size = match fetch(ruby, options, "size") {
        Some(value) => Integer::from_value(value)
            .and_then(|size| size.to_i64().ok())
            .ok_or_else(|| {
                configuration(
                    ruby,
                    format!(
                        "size: must be an Integer byte count (got {})",
                        value.inspect()
                    ),
                )
            })?,
        None => crate::config::DEFAULT_SIZE as i64,
    };
    let l1_expires_in = number(ruby, options, "l1_expires_in")?;
    let keep_expired = boolean(ruby, options, "keep_expired", "keep_expired")?.unwrap_or(false);
    let config = Config::new(size, l1_expires_in)
        .map_err(|e| errors::to_ruby(ruby, e))?
        .keeping_expired(keep_expired);
    match fetch(ruby, options, "bus") {
        None => Ok(config),
        Some(bus) => {
            let bus = RHash::from_value(bus).ok_or_else(|| {
                configuration(
                    ruby,
                    format!("bus options must be a Hash (got {})", bus.inspect()),
                )
            })?;
            Ok(config.with_bus(bus_settings(ruby, bus)?))
        }
    }
}

/// `bus_log:` as a length in entries: nil or false for none, true for the
/// default length, or an Integer (checked by the core).
fn bus_log(ruby: &Ruby, options: RHash) -> Result<Option<i64>, Error> {
    let Some(value) = fetch(ruby, options, "bus_log") else {
        return Ok(None);
    };
    if value.equal(ruby.qtrue())? {
        return Ok(Some(crate::bus::log_settings::DEFAULT_LENGTH as i64));
    }
    if value.equal(ruby.qfalse())? {
        return Ok(None);
    }
    Integer::from_value(value)
        .and_then(|length| length.to_i64().ok())
        .map(Some)
        .ok_or_else(|| {
            configuration(
                ruby,
                format!(
                    "bus_log: must be true, false or a length in entries (got {})",
                    value.inspect()
                ),
            )
        })
}

fn bus_settings(ruby: &Ruby, options: RHash) -> Result<BusSettings, Error> {
    let redis = match fetch(ruby, options, "redis") {
        Some(value) => RHash::from_value(value).ok_or_else(|| {
            configuration(
                ruby,
                format!("redis: must be a Hash here (got {})", value.inspect()),
            )
        })?,
        None => ruby.hash_new(),
    };
    let defaults = Health::default();
    let options = BusOptions {
        redis: redis_option(ruby, redis)?,
        channel: string(ruby, options, "channel", "channel:")?,
        secrets: secrets(ruby, options)?,
        health: Health {
            interval: seconds(ruby, options, "health_interval", defaults.interval)?,
            timeout: seconds(ruby, options, "health_timeout", defaults.timeout)?,
            reconnect_max: seconds(ruby, options, "reconnect_max", defaults.reconnect_max)?,
        },
        broadcast_max_bytes: integer(ruby, options, "broadcast_max_bytes", "broadcast_max_bytes:")?,
        queue_capacity: integer(ruby, options, "queue_capacity", "queue_capacity:")?,
        wire_format: integer(ruby, options, "wire_format", "wire_format:")?,
        bus_log: bus_log(ruby, options)?,
    };
    BusSettings::new(&options).map_err(|e| errors::to_ruby(ruby, e))
}
