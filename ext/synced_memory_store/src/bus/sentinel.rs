//! A bus behind Redis Sentinel: which server is the primary is asked of the
//! sentinels on every connect, the publisher's and the subscriber's, the first
//! and every reconnect, so a failover is followed by reconnecting.
//!
//! Why everything goes to the primary, and what keeps it there:
//!
//! - **One order.** Publishing and subscribing on the primary keeps one total
//!   order for the channel. A PUBLISH on a replica reaches only that replica's
//!   subscribers, while a replica's subscribers hear what is published on its
//!   primary (pub/sub messages replicate). So the publisher must never use a
//!   replica; a subscriber on one still hears everything, late.
//! - **Checked, not believed.** A sentinel's answer can be out of date (it has
//!   not heard of a failover yet), so the address it gives is used only if
//!   `ROLE` there says `master`; if not, the next sentinel is asked.
//! - **Demotions end connections.** When Sentinel turns an instance into a
//!   replica it kills that instance's normal and pub/sub clients, so the
//!   threads reconnect and resolve afresh; the subscriber drops L1 on
//!   resubscribing, as after any lost subscription. In case a publisher's
//!   connection outlives a demotion (an operator's `REPLICAOF`, a kill that
//!   did not happen), each PUBLISH is followed by `ROLE` in the same round
//!   trip, and a batch that went to a replica counts as failed
//!   ([`publish`]). A primary that stops answering is left after the health
//!   timeout, like a stalled subscription.
//! - **Changes left behind.** Between a failover and the old primary's
//!   demotion, a publisher still on the old primary reaches only the
//!   subscribers still there. When it then publishes to another server, the
//!   publisher first sends a Clear (see `publisher.rs`): every L1 that may
//!   have missed those changes is dropped.

use std::sync::atomic::Ordering;

use redis::{ConnectionInfo, Value};

use super::failure;
use super::sentinel_settings::Sentinel;
use super::settings::{address_like, BusSettings};
use super::{Link, PubSub};
use crate::error::Result;

impl Sentinel {
    /// Asks the sentinels in turn for the primary, connects to it and checks
    /// that it is a master; or says why no sentinel led to one.
    pub(crate) fn connect(&self, settings: &BusSettings) -> Result<Link, String> {
        let mut failures: Vec<String> = Vec::new();
        let mut tried: Vec<(String, u16)> = Vec::new();
        for index in self.order() {
            let sentinel = &self.sentinels[index];
            let shown = sentinel.addr().to_string();
            let (host, port) = match self.primary_address(settings, sentinel) {
                Ok(Some(address)) => address,
                Ok(None) => {
                    failures.push(format!("{shown} knows no primary named {}", self.name));
                    continue;
                }
                Err(error) => {
                    failures.push(failure::describe_at(&error, &shown, settings));
                    continue;
                }
            };
            // Several sentinels usually name the same server: try it once.
            if tried.contains(&(host.clone(), port)) {
                continue;
            }
            tried.push((host.clone(), port));
            match self.open_primary(settings, &host, port, &shown) {
                Ok(connection) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    let server = format!("{host}:{port} (primary of {})", self.name);
                    return Ok(Link {
                        connection,
                        pubsub: PubSub::Classic,
                        server,
                    });
                }
                Err(why) => failures.push(why),
            }
        }
        Err(format!(
            "{}: no sentinel led to a reachable primary ({})",
            settings.description,
            failures.join("; ")
        ))
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME` on one sentinel: the primary's
    /// address, or None if it does not know the name.
    fn primary_address(
        &self,
        settings: &BusSettings,
        sentinel: &ConnectionInfo,
    ) -> redis::RedisResult<Option<(String, u16)>> {
        let mut connection = super::open_info(settings, sentinel.clone())?;
        connection.set_read_timeout(Some(settings.health.timeout))?;
        let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.name)
            .query(&mut connection)?;
        Ok(reply)
    }

    /// A connection to `host:port` (named by the sentinel `shown`) with the
    /// node's settings, if `ROLE` there says master; else why not, naming no
    /// credentials.
    fn open_primary(
        &self,
        settings: &BusSettings,
        host: &str,
        port: u16,
        shown: &str,
    ) -> Result<redis::Connection, String> {
        let who = format!("{host}:{port} (named by {shown})");
        let described = |error: redis::RedisError| failure::describe_at(&error, &who, settings);
        let addr = address_like(settings.connection.addr(), host.to_owned(), port);
        let mut connection = super::open(settings, &addr, false).map_err(described)?;
        // The publisher keeps this timeout: a primary that stops answering
        // for longer may be being replaced, and is left (its batch requeued).
        connection
            .set_read_timeout(Some(settings.health.timeout))
            .map_err(described)?;
        let role: Value = redis::cmd("ROLE")
            .query(&mut connection)
            .map_err(described)?;
        match role_of(&role) {
            Some(role) if role == "master" => Ok(connection),
            Some(role) => Err(format!(
                "{who} is a {role}, not a master (a failover under way?)"
            )),
            None => Err(format!("{who} answered ROLE with {role:?}")),
        }
    }
}

/// PUBLISHes `payload` on `channel` and, in the same round trip, asks `ROLE`:
/// a server that is no longer a master (demoted while this connection stayed
/// open) fails the publish, so that the batch is requeued and sent to the
/// primary instead, where every subscriber hears it.
pub(crate) fn publish(
    connection: &mut redis::Connection,
    channel: &str,
    payload: &[u8],
) -> redis::RedisResult<()> {
    let (_receivers, role): (i64, Value) = redis::pipe()
        .cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .cmd("ROLE")
        .query(connection)?;
    check_master(&role)
}

/// Fails unless a `ROLE` reply says `master`: a publish that reached a
/// demoted server must be sent again to the primary.
pub(crate) fn check_master(role: &Value) -> redis::RedisResult<()> {
    match role_of(role) {
        Some(role) if role == "master" => Ok(()),
        other => Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "no longer the primary",
            format!(
                "ROLE says {} after a PUBLISH",
                other.unwrap_or_else(|| format!("{role:?}"))
            ),
        ))),
    }
}

/// The first element of a `ROLE` reply (`master`, `slave`, `sentinel`).
fn role_of(reply: &Value) -> Option<String> {
    match reply {
        Value::Array(items) => match items.first() {
            Some(Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Some(Value::SimpleString(text)) => Some(text.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;
    use std::sync::atomic::AtomicUsize;

    use redis::ConnectionAddr;
    use std::sync::Arc;

    use crate::bus::redis_option::{RedisOption, SentinelOption};
    use crate::bus::settings::{BusOptions, Health};

    fn sentinels(addresses: &[&str]) -> Vec<SentinelOption> {
        addresses
            .iter()
            .map(|url| SentinelOption {
                url: Some((*url).into()),
                ..Default::default()
            })
            .collect()
    }

    fn settings(redis: RedisOption) -> Result<BusSettings> {
        BusSettings::new(&BusOptions {
            redis,
            health: Health {
                interval: Duration::from_millis(50),
                timeout: Duration::from_millis(300),
                reconnect_max: Duration::from_millis(100),
            },
            ..Default::default()
        })
    }

    fn option(addresses: &[&str]) -> RedisOption {
        RedisOption {
            sentinels: Some(sentinels(addresses)),
            name: Some("mymaster".into()),
            ..Default::default()
        }
    }

    fn error(redis: RedisOption) -> String {
        settings(redis).err().expect("refused").to_string()
    }

    #[test]
    fn the_description_names_the_primary_and_the_sentinels_without_passwords() {
        let bus = settings(RedisOption {
            sentinel_password: Some("sentinel-secret".into()),
            password: Some("node-secret".into()),
            db: Some(3),
            ..option(&["redis://127.0.0.1:26379", "redis://:pw@10.0.0.2:26380"])
        })
        .unwrap();
        assert_eq!(
            bus.description,
            "sentinel mymaster via 127.0.0.1:26379,10.0.0.2:26380"
        );
        // The default channel still names the database.
        assert_eq!(bus.channel, "synced_memory_store:3");
        let sentinel = bus.sentinel.as_ref().unwrap();
        let first = sentinel.sentinels[0].redis_settings();
        assert_eq!(first.password(), Some("sentinel-secret"));
        assert_eq!(first.db(), 0);
        // A sentinel's own credentials win over sentinel_password:.
        assert_eq!(
            sentinel.sentinels[1].redis_settings().password(),
            Some("pw")
        );
        // The node's credentials are for the primary, not the sentinels.
        assert_eq!(
            bus.connection.redis_settings().password(),
            Some("node-secret")
        );
        assert_eq!(bus.connection.redis_settings().db(), 3);
    }

    #[test]
    fn hosts_without_a_port_use_the_sentinel_port() {
        let bus = settings(RedisOption {
            sentinels: Some(vec![
                SentinelOption {
                    host: Some("s1".into()),
                    ..Default::default()
                },
                SentinelOption {
                    url: Some("redis://s2".into()),
                    ..Default::default()
                },
                SentinelOption {
                    host: Some("s3".into()),
                    port: Some(5000),
                    ..Default::default()
                },
            ]),
            name: Some("m".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(bus.description, "sentinel m via s1:26379,s2:26379,s3:5000");
    }

    #[test]
    fn the_primary_name_may_be_the_url_host_as_in_redis_rb_4() {
        let bus = settings(RedisOption {
            url: Some("redis://:pw@mymaster/2".into()),
            sentinels: Some(sentinels(&["redis://127.0.0.1:26379"])),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(bus.sentinel.as_ref().unwrap().name, "mymaster");
        assert_eq!(bus.channel, "synced_memory_store:2");
        assert_eq!(bus.connection.redis_settings().password(), Some("pw"));
    }

    #[test]
    fn tls_for_the_bus_is_tls_for_the_sentinels_too() {
        let bus = settings(RedisOption {
            ssl: Some(true),
            verify: Some(false),
            ..option(&["redis://127.0.0.1:26379"])
        })
        .unwrap();
        let sentinel = &bus.sentinel.as_ref().unwrap().sentinels[0];
        assert!(matches!(
            sentinel.addr(),
            ConnectionAddr::TcpTls { insecure: true, .. }
        ));
        assert!(matches!(
            address_like(bus.connection.addr(), "10.0.0.9".into(), 6380),
            ConnectionAddr::TcpTls {
                port: 6380,
                insecure: true,
                ..
            }
        ));
    }

    #[test]
    fn bad_sentinel_settings_name_the_option_and_hide_passwords() {
        assert!(error(option(&[])).contains("at least one sentinel"));
        assert!(error(RedisOption {
            role: Some("replica".into()),
            ..option(&["redis://s:1"])
        })
        .starts_with("redis: role: must be :master with sentinels"));
        assert!(error(RedisOption {
            role: Some("nope".into()),
            ..option(&["redis://s:1"])
        })
        .starts_with("redis: role:"));
        assert!(error(RedisOption {
            name: None,
            ..option(&["redis://s:1"])
        })
        .contains("needs name:"));
        assert!(error(RedisOption {
            path: Some("/tmp/redis.sock".into()),
            ..option(&["redis://s:1"])
        })
        .contains("path: and sentinels:"));
        let bad_url = error(option(&["redis://s:1", "http://:hunter2@s:2"]));
        assert!(bad_url.starts_with("redis: sentinels[1]"), "{bad_url}");
        assert!(!bad_url.contains("hunter2"), "{bad_url}");
        let bad_port = error(RedisOption {
            sentinels: Some(vec![SentinelOption {
                host: Some("s".into()),
                port: Some(0),
                ..Default::default()
            }]),
            ..option(&[])
        });
        assert!(
            bad_port.starts_with("redis: sentinels[0] port"),
            "{bad_port}"
        );
        let no_host = error(RedisOption {
            sentinels: Some(vec![SentinelOption::default()]),
            ..option(&[])
        });
        assert!(no_host.contains("sentinels[0] needs a host"), "{no_host}");
    }

    #[test]
    fn without_sentinels_role_and_name_change_nothing() {
        let bus = settings(RedisOption {
            url: Some("redis://h:1/0".into()),
            name: Some("ignored".into()),
            role: Some("replica".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(bus.sentinel.is_none());
        assert_eq!(bus.description, "redis://h:1/0");
    }

    /// A stand-in for a sentinel or a Redis server on a loopback port: it
    /// answers each command with `reply(args)`, "+OK" to what that leaves out
    /// (the connection handshake), and counts the commands it was sent.
    struct FakeServer {
        port: u16,
        commands: Arc<AtomicUsize>,
    }

    impl FakeServer {
        fn start(reply: impl Fn(&[String]) -> Option<String> + Send + Sync + 'static) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let reply = Arc::new(reply);
            let commands = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&commands);
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let reply = Arc::clone(&reply);
                    let counter = Arc::clone(&counter);
                    std::thread::spawn(move || serve(stream, &*reply, &counter));
                }
            });
            FakeServer { port, commands }
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    fn serve(stream: TcpStream, reply: &dyn Fn(&[String]) -> Option<String>, count: &AtomicUsize) {
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Some(count_text) = line.trim_end().strip_prefix('*') else {
                return;
            };
            let mut args = Vec::new();
            for _ in 0..count_text.parse::<usize>().unwrap_or(0) {
                let mut length = String::new();
                reader.read_line(&mut length).unwrap();
                let length: usize = length.trim_end()[1..].parse().unwrap();
                let mut bytes = vec![0; length + 2];
                std::io::Read::read_exact(&mut reader, &mut bytes).unwrap();
                args.push(String::from_utf8_lossy(&bytes[..length]).to_uppercase());
            }
            count.fetch_add(1, Ordering::Relaxed);
            let answer = reply(&args).unwrap_or_else(|| "+OK\r\n".into());
            if writer.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn bulk(text: &str) -> String {
        format!("${}\r\n{text}\r\n", text.len())
    }

    /// A server whose ROLE says `role`.
    fn node(role: &'static str) -> FakeServer {
        FakeServer::start(move |args| match args.first().map(String::as_str) {
            Some("ROLE") => Some(format!("*3\r\n{}:0\r\n*0\r\n", bulk(role))),
            Some("PUBLISH") => Some(":1\r\n".into()),
            _ => None,
        })
    }

    /// A sentinel that names `primary` (None: it knows no such name).
    fn sentinel(primary: Option<u16>) -> FakeServer {
        FakeServer::start(move |args| {
            (args.first().map(String::as_str) == Some("SENTINEL")).then(|| match primary {
                Some(port) => format!("*2\r\n{}{}", bulk("127.0.0.1"), bulk(&port.to_string())),
                None => "*-1\r\n".into(),
            })
        })
    }

    fn closed_port() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("redis://127.0.0.1:{port}")
    }

    fn resolve(urls: &[&str]) -> (BusSettings, Result<Link, String>) {
        let bus = settings(option(urls)).unwrap();
        let link = bus.sentinel.as_ref().unwrap().connect(&bus);
        (bus, link)
    }

    #[test]
    fn the_sentinels_are_asked_in_turn_and_the_one_that_answered_is_asked_first_next_time() {
        let primary = node("master");
        let unaware = sentinel(None);
        let knowing = sentinel(Some(primary.port));
        let down = closed_port();
        let (bus, link) = resolve(&[&down, &unaware.url(), &knowing.url()]);
        let link = link.expect("the third sentinel leads to the primary");
        assert_eq!(
            link.server,
            format!("127.0.0.1:{} (primary of mymaster)", primary.port)
        );

        let asked = unaware.commands.load(Ordering::Relaxed);
        let again = bus.sentinel.as_ref().unwrap().connect(&bus).unwrap();
        assert_eq!(again.server, link.server);
        assert_eq!(
            unaware.commands.load(Ordering::Relaxed),
            asked,
            "the sentinel that answered is asked first"
        );
    }

    #[test]
    fn a_primary_that_is_not_a_master_is_not_used_and_the_next_sentinel_is_asked() {
        let demoted = node("slave");
        let promoted = node("master");
        let behind = sentinel(Some(demoted.port));
        let current = sentinel(Some(promoted.port));
        let (_, link) = resolve(&[&behind.url(), &current.url()]);
        assert_eq!(
            link.expect("the second sentinel knows better").server,
            format!("127.0.0.1:{} (primary of mymaster)", promoted.port)
        );
    }

    #[test]
    fn when_no_sentinel_leads_to_a_master_the_cause_says_why_for_each() {
        let demoted = node("slave");
        let behind = sentinel(Some(demoted.port));
        let unaware = sentinel(None);
        let down = closed_port();
        let (_, link) = resolve(&[&behind.url(), &unaware.url(), &down]);
        let cause = link.err().expect("no master anywhere");
        assert!(
            cause.starts_with("sentinel mymaster via 127.0.0.1:"),
            "{cause}"
        );
        assert!(
            cause.contains("no sentinel led to a reachable primary"),
            "{cause}"
        );
        assert!(
            cause.contains(&format!("127.0.0.1:{} (named by", demoted.port)),
            "{cause}"
        );
        assert!(cause.contains("is a slave, not a master"), "{cause}");
        assert!(cause.contains("knows no primary named mymaster"), "{cause}");
        assert!(cause.contains("refused the connection"), "{cause}");
    }

    #[test]
    fn a_primary_named_by_every_sentinel_is_tried_once() {
        let gone = closed_port();
        let gone_port: u16 = gone.rsplit(':').next().unwrap().parse().unwrap();
        let first = sentinel(Some(gone_port));
        let second = sentinel(Some(gone_port));
        let (_, link) = resolve(&[&first.url(), &second.url()]);
        let cause = link.err().unwrap();
        assert_eq!(cause.matches("(named by").count(), 1, "{cause}");
    }

    #[test]
    fn a_publish_answered_by_a_replica_fails() {
        let replica = node("slave");
        let master = node("master");
        let open = |port: u16| {
            redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .unwrap()
                .get_connection()
                .unwrap()
        };
        assert!(publish(&mut open(master.port), "c", b"x").is_ok());
        let refused = publish(&mut open(replica.port), "c", b"x").unwrap_err();
        assert!(
            refused.to_string().contains("no longer the primary"),
            "{refused}"
        );
    }
}
