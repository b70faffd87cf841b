//! The subscriber's connection to a single server over plain TCP or a unix
//! socket, read without redis-rs: the subscriber's share of every change's
//! delivery, made cheap.
//!
//! Every change wakes the subscriber thread of every process on the channel,
//! and on a busy host those threads queue for the same cores, so what each
//! spends per message is paid once per process before the last one has the
//! change. redis-rs's reader zeroes up to 8 KB of buffer before every read
//! and parses through a general combinator parser into owned values; here a
//! buffer is zeroed once, read into directly, and each message is handed to
//! the bus as a slice of it (`resp.rs`), about a quarter less CPU per message
//! on the subscriber thread.
//!
//! Only where redis-rs adds nothing the subscriber needs: one server (not
//! Sentinel, not a cluster), no TLS, no channel log (whose epoch is asked
//! with redis-rs before subscribing). The handshake is what redis-rs sends:
//! AUTH with the URL's credentials, SELECT for a database other than 0; a
//! refusal is reported as redis-rs would report it, so `failure.rs` words it
//! the same.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

use redis::{ConnectionAddr, RedisError, RedisResult, ServerErrorKind};

use super::resp::{self, Frame, Scalar};
use super::settings::BusSettings;

/// Bytes the buffer starts with, and returns to after a large message.
const BUFFER: usize = 16 * 1024;

/// A subscribed (or subscribing) connection read without redis-rs.
pub(crate) struct PlainSubscription {
    stream: Stream,
    /// Bytes read: `buffer[start..end]` is not parsed yet; the rest of the
    /// buffer is room to read into (zeroed once, when the buffer grew).
    buffer: Vec<u8>,
    start: usize,
    end: usize,
}

enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl PlainSubscription {
    /// Whether the bus `settings` describe can be subscribed to this way.
    pub(crate) fn fits(settings: &BusSettings) -> bool {
        settings.sentinel.is_none()
            && settings.cluster.is_none()
            && settings.tls.is_none()
            && settings.log.is_none()
            && match settings.connection.addr() {
                ConnectionAddr::Tcp(..) => true,
                #[cfg(unix)]
                ConnectionAddr::Unix(_) => true,
                _ => false,
            }
    }

    /// Connects and authenticates as the `settings` say (see [`Self::fits`]),
    /// within the health timeout.
    pub(crate) fn open(settings: &BusSettings) -> RedisResult<Self> {
        let timeout = settings.health.timeout.max(Duration::from_millis(100));
        let stream = match settings.connection.addr() {
            ConnectionAddr::Tcp(host, port) => Stream::Tcp(connect_tcp(host, *port, timeout)?),
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("not a plain address: {other}"),
                )
                .into())
            }
        };
        let mut subscription = PlainSubscription {
            stream,
            buffer: vec![0; BUFFER],
            start: 0,
            end: 0,
        };
        subscription.set_write_timeout(settings.health.timeout)?;
        subscription.set_read_timeout(timeout)?;
        let redis = settings.connection.redis_settings();
        if let Some(password) = redis.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(username) = redis.username() {
                auth.arg(username);
            }
            subscription.send(&auth.arg(password).get_packed_command())?;
            subscription.expect_ok()?;
        }
        if redis.db() != 0 {
            subscription.send(&redis::cmd("SELECT").arg(redis.db()).get_packed_command())?;
            subscription.expect_ok().map_err(|error| {
                let detail = error.detail().unwrap_or_default().to_string();
                RedisError::from((
                    ServerErrorKind::ResponseError.into(),
                    "Redis server refused to switch database",
                    detail,
                ))
            })?;
        }
        Ok(subscription)
    }

    /// Sends SUBSCRIBE for `channel` and reads its answer: Ok once the server
    /// confirmed, its refusal otherwise.
    pub(crate) fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        self.send(&redis::cmd("SUBSCRIBE").arg(channel).get_packed_command())?;
        self.next_frame(|frame| match frame {
            Frame::Error(line) => Err(server_error(line)),
            _ => Ok(()),
        })?
    }

    /// Sends a PING and reads until its answer, handing the messages that
    /// come before it to `deliver` in order; returns whether the answer was
    /// that of a subscribed connection.
    pub(crate) fn ping(&mut self, deliver: &mut dyn FnMut(&[u8], &[u8])) -> RedisResult<bool> {
        self.send(&redis::cmd("PING").get_packed_command())?;
        loop {
            let answer = self.next_frame(|frame| match frame {
                Frame::Error(line) => Some(Err(server_error(line))),
                frame if frame.is_subscribed_pong() => Some(Ok(true)),
                Frame::Scalar(Scalar::Simple(_)) => Some(Ok(false)),
                frame => {
                    if let Some((channel, payload)) = frame.message() {
                        deliver(channel, payload);
                    }
                    None
                }
            })?;
            if let Some(answer) = answer {
                return answer;
            }
        }
    }

    /// Waits (at most the read timeout) for the next message and hands it to
    /// `deliver`; other frames (a late confirmation) are passed over.
    pub(crate) fn next_message(
        &mut self,
        deliver: &mut dyn FnMut(&[u8], &[u8]),
    ) -> RedisResult<()> {
        loop {
            let done = self.next_frame(|frame| match frame {
                Frame::Error(line) => Some(Err(server_error(line))),
                frame => frame.message().map(|(channel, payload)| {
                    deliver(channel, payload);
                    Ok(())
                }),
            })?;
            if let Some(done) = done {
                return done;
            }
        }
    }

    pub(crate) fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match &self.stream {
            Stream::Tcp(stream) => stream.set_read_timeout(Some(timeout)),
            #[cfg(unix)]
            Stream::Unix(stream) => stream.set_read_timeout(Some(timeout)),
        }
    }

    fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match &self.stream {
            Stream::Tcp(stream) => stream.set_write_timeout(Some(timeout)),
            #[cfg(unix)]
            Stream::Unix(stream) => stream.set_write_timeout(Some(timeout)),
        }
    }

    fn send(&mut self, command: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Stream::Tcp(stream) => stream.write_all(command),
            #[cfg(unix)]
            Stream::Unix(stream) => stream.write_all(command),
        }
    }

    /// Reads the answer to a command that answers OK.
    fn expect_ok(&mut self) -> RedisResult<()> {
        self.next_frame(|frame| match frame {
            Frame::Error(line) => Err(server_error(line)),
            _ => Ok(()),
        })?
    }

    /// Reads until a whole frame is buffered and returns what `handle` makes
    /// of it; the frame's bytes are then consumed.
    fn next_frame<T>(&mut self, handle: impl FnOnce(Frame<'_>) -> T) -> RedisResult<T> {
        loop {
            match resp::parse(&self.buffer[self.start..self.end]) {
                Ok(Some((frame, used))) => {
                    let answer = handle(frame);
                    self.consumed(used);
                    return Ok(answer);
                }
                Ok(None) => {}
                Err(resp::Malformed(what)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the server sent {what}"),
                    )
                    .into())
                }
            }
            self.fill()?;
        }
    }

    fn consumed(&mut self, used: usize) {
        self.start += used;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // A large message grew the buffer; let it go.
            if self.buffer.len() > 4 * BUFFER {
                self.buffer = vec![0; BUFFER];
            }
        }
    }

    /// Reads more bytes behind the unparsed ones, making room first.
    fn fill(&mut self) -> io::Result<()> {
        if self.end == self.buffer.len() {
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buffer.len() < resp::MAX_BULK + BUFFER {
                // Grown only as bytes arrive: a forged length costs nothing.
                let len = (self.buffer.len() * 2).min(resp::MAX_BULK + BUFFER);
                self.buffer.resize(len, 0);
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server sent a frame over the size limit",
                ));
            }
        }
        let room = &mut self.buffer[self.end..];
        let read = match &mut self.stream {
            Stream::Tcp(stream) => stream.read(room),
            #[cfg(unix)]
            Stream::Unix(stream) => stream.read(room),
        }?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += read;
        Ok(())
    }
}

/// Connects to the first address of `host` that answers, each within `timeout`.
fn connect_tcp(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                // A PING is one small write that should leave at once.
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("failed to lookup address information for {host}"),
        )
    }))
}

/// The error an error line stands for, as redis-rs makes it (with the
/// server's code, which `failure.rs` reads).
fn server_error(line: &[u8]) -> RedisError {
    let mut raw = Vec::with_capacity(line.len() + 3);
    raw.push(b'-');
    raw.extend_from_slice(line);
    raw.extend_from_slice(b"\r\n");
    match redis::parse_redis_value(&raw).and_then(|value| value.extract_error()) {
        Err(error) => error,
        Ok(_) => io::Error::new(io::ErrorKind::InvalidData, "an unreadable error line").into(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread::{self, JoinHandle};

    use super::*;
    use crate::bus::failure::describe;
    use crate::bus::redis_option::RedisOption;
    use crate::bus::settings::{BusOptions, Health};

    fn settings(url: &str) -> BusSettings {
        BusSettings::new(&BusOptions {
            redis: RedisOption {
                url: Some(url.into()),
                ..Default::default()
            },
            channel: Some("ch".into()),
            health: Health {
                timeout: Duration::from_millis(400),
                ..Health::default()
            },
            ..Default::default()
        })
        .unwrap()
    }

    /// A server on loopback that runs `script` on the first connection;
    /// returns its URL (with `userinfo` and `path`) and the script's thread.
    fn server(
        userinfo: &str,
        path: &str,
        script: impl FnOnce(TcpStream) + Send + 'static,
    ) -> (String, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = thread::spawn(move || script(listener.accept().unwrap().0));
        (format!("redis://{userinfo}127.0.0.1:{port}{path}"), script)
    }

    /// Reads exactly the command `args` make, as the client sends it.
    fn expect(stream: &mut TcpStream, args: &[&str]) {
        let mut command = redis::cmd(args[0]);
        args[1..].iter().for_each(|arg| {
            command.arg(*arg);
        });
        let wanted = command.get_packed_command();
        let mut got = vec![0; wanted.len()];
        stream.read_exact(&mut got).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&wanted)
        );
    }

    fn message(payload: &[u8]) -> Vec<u8> {
        let mut frame =
            format!("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n${}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        frame
    }

    const CONFIRMED: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    const PONG: &[u8] = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";

    #[test]
    fn messages_arrive_whole_and_in_order_however_the_server_splits_them() {
        let big: Vec<u8> = (0..5 * BUFFER).map(|i| i as u8).collect();
        let expected = [b"one".to_vec(), big.clone(), b"three".to_vec()];
        let (url, script) = server("", "", move |mut stream| {
            expect(&mut stream, &["SUBSCRIBE", "ch"]);
            stream.write_all(CONFIRMED).unwrap();
            expect(&mut stream, &["PING"]);
            // Byte by byte, then in uneven pieces, then the PONG behind them.
            for byte in message(b"one") {
                stream.write_all(&[byte]).unwrap();
            }
            for piece in message(&big).chunks(7_777) {
                stream.write_all(piece).unwrap();
            }
            stream.write_all(PONG).unwrap();
            // A confirmation is not a message: passed over.
            let mut last = CONFIRMED.to_vec();
            last.extend_from_slice(&message(b"three"));
            stream.write_all(&last).unwrap();
        });
        let mut subscription = PlainSubscription::open(&settings(&url)).unwrap();
        subscription.subscribe("ch").unwrap();
        let mut got = Vec::new();
        let mut collect = |channel: &[u8], payload: &[u8]| {
            assert_eq!(channel, b"ch");
            got.push(payload.to_vec());
        };
        assert!(
            subscription.ping(&mut collect).unwrap(),
            "a subscribed PONG"
        );
        subscription.next_message(&mut collect).unwrap();
        assert_eq!(got, expected);
        assert_eq!(
            subscription.buffer.len(),
            BUFFER,
            "grown for the large message, then let go"
        );
        script.join().unwrap();
    }

    #[test]
    fn a_read_timeout_in_the_middle_of_a_frame_loses_nothing() {
        let frame = message(b"patience");
        let (url, script) = server("", "", move |mut stream| {
            expect(&mut stream, &["SUBSCRIBE", "ch"]);
            stream.write_all(CONFIRMED).unwrap();
            stream.write_all(&frame[..20]).unwrap();
            thread::sleep(Duration::from_millis(300));
            stream.write_all(&frame[20..]).unwrap();
        });
        let mut subscription = PlainSubscription::open(&settings(&url)).unwrap();
        subscription.subscribe("ch").unwrap();
        subscription
            .set_read_timeout(Duration::from_millis(100))
            .unwrap();
        let mut got = Vec::new();
        let mut collect = |_: &[u8], payload: &[u8]| got.push(payload.to_vec());
        let timed_out = subscription.next_message(&mut collect).unwrap_err();
        assert!(timed_out.is_timeout(), "{timed_out}");
        subscription
            .set_read_timeout(Duration::from_secs(5))
            .unwrap();
        subscription.next_message(&mut collect).unwrap();
        assert_eq!(got, [b"patience".to_vec()]);
        script.join().unwrap();
    }

    #[test]
    fn refusals_read_as_redis_rs_reports_them() {
        let (url, script) = server("bus:wrong@", "", |mut stream| {
            expect(&mut stream, &["AUTH", "bus", "wrong"]);
            stream
                .write_all(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
                .unwrap();
        });
        let settings_ = settings(&url);
        let refused = PlainSubscription::open(&settings_).err().unwrap();
        assert!(
            describe(&refused, &settings_).contains("refused the credentials (WRONGPASS"),
            "{}",
            describe(&refused, &settings_)
        );
        script.join().unwrap();

        let (url, script) = server(":pw@", "/3", |mut stream| {
            expect(&mut stream, &["AUTH", "pw"]);
            stream.write_all(b"+OK\r\n").unwrap();
            expect(&mut stream, &["SELECT", "3"]);
            stream
                .write_all(b"-NOPERM User has no permissions to run the 'select' command\r\n")
                .unwrap();
        });
        let settings_ = settings(&url);
        let refused = describe(
            &PlainSubscription::open(&settings_).err().unwrap(),
            &settings_,
        );
        assert!(
            refused.contains("refused to switch to database 3"),
            "{refused}"
        );
        script.join().unwrap();

        let (url, script) = server("", "", |mut stream| {
            expect(&mut stream, &["SUBSCRIBE", "ch"]);
            stream
                .write_all(b"-NOPERM No permissions to access a channel\r\n")
                .unwrap();
        });
        let settings_ = settings(&url);
        let mut subscription = PlainSubscription::open(&settings_).unwrap();
        let refused = describe(&subscription.subscribe("ch").unwrap_err(), &settings_);
        assert!(refused.contains("(NOPERM No permissions"), "{refused}");
        script.join().unwrap();
    }

    #[test]
    fn what_breaks_the_protocol_or_closes_ends_the_subscription() {
        let (url, script) = server("", "", |mut stream| {
            expect(&mut stream, &["SUBSCRIBE", "ch"]);
            stream.write_all(CONFIRMED).unwrap();
            stream.write_all(b"?what\r\n").unwrap();
        });
        let mut subscription = PlainSubscription::open(&settings(&url)).unwrap();
        subscription.subscribe("ch").unwrap();
        let broken = subscription.next_message(&mut |_, _| {}).unwrap_err();
        assert!(!broken.is_timeout());
        assert!(
            broken.to_string().contains("an unknown frame type"),
            "{broken}"
        );
        script.join().unwrap();

        let (url, script) = server("", "", |mut stream| {
            expect(&mut stream, &["SUBSCRIBE", "ch"]);
            stream.write_all(CONFIRMED).unwrap();
        });
        let settings_ = settings(&url);
        let mut subscription = PlainSubscription::open(&settings_).unwrap();
        subscription.subscribe("ch").unwrap();
        script.join().unwrap();
        let closed = describe(
            &subscription.next_message(&mut |_, _| {}).unwrap_err(),
            &settings_,
        );
        assert!(closed.contains("closed the connection"), "{closed}");
    }

    #[test]
    fn only_a_single_server_without_tls_or_a_log_is_subscribed_to_this_way() {
        assert!(PlainSubscription::fits(&settings("redis://127.0.0.1:6379")));
        assert!(PlainSubscription::fits(&settings("unix:///tmp/redis.sock")));
        assert!(!PlainSubscription::fits(&settings(
            "rediss://127.0.0.1:6379"
        )));
        let logged = BusSettings::new(&BusOptions {
            bus_log: Some(100),
            ..Default::default()
        })
        .unwrap();
        assert!(!PlainSubscription::fits(&logged));
    }
}
