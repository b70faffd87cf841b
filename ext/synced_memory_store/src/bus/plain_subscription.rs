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
//! with redis-rs before subscribing). It speaks RESP2, as every link to one
//! server does whatever the URL asks (see `super::open`). The handshake is
//! what redis-rs sends (AUTH with the credentials, again without the
//! username on a server before Redis 6; SELECT for a database other than 0;
//! CLIENT SETINFO) and a refusal is reported as redis-rs reports it, so
//! `failure.rs` words it the same.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

use redis::{
    ConnectionAddr, ErrorKind, RedisConnectionInfo, RedisError, RedisResult, ServerErrorKind,
};

use super::resp::{self, Frame, Scalar};
use super::settings::BusSettings;

/// Bytes the buffer starts with, and returns to after a large message.
const BUFFER: usize = 16 * 1024;

/// How the server took the credentials.
#[derive(Debug, PartialEq, Eq)]
enum Auth {
    Accepted,
    /// It knows AUTH only with a password (before Redis 6).
    RetryWithoutUsername,
}

/// A subscribed (or subscribing) connection read without redis-rs.
pub(crate) struct PlainSubscription {
    stream: Stream,
    /// Bytes read: `buffer[start..end]` is not parsed yet; the rest of the
    /// buffer is room to read into (zeroed once, when the buffer grew).
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    /// PINGs sent and not answered yet.
    pings: usize,
}

/// What [`PlainSubscription::next_message`] read.
enum Passed {
    Message,
    Pong,
    Other,
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
                // Wildcards: redis-rs refuses them, in its words.
                ConnectionAddr::Tcp(host, _) => !matches!(host.as_str(), "0.0.0.0" | "::"),
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
            pings: 0,
        };
        subscription.set_write_timeout(settings.health.timeout)?;
        subscription.set_read_timeout(timeout)?;
        let redis = settings.connection.redis_settings();
        // As redis-rs: a server before Redis 6 knows AUTH with a password
        // alone, and the handshake is made again without the username.
        if subscription.handshake(redis, true)? == Auth::RetryWithoutUsername {
            subscription.handshake(redis, false)?;
        }
        Ok(subscription)
    }

    /// Sends what redis-rs sends as it connects, pipelined (AUTH with the
    /// credentials, SELECT for a database other than 0, CLIENT SETINFO with
    /// the library's name and version), and reads the answers as it does: a
    /// refused AUTH or SELECT is an error in its words, SETINFO's answers
    /// are ignored (older servers lack it).
    fn handshake(&mut self, redis: &RedisConnectionInfo, with_username: bool) -> RedisResult<Auth> {
        let mut commands = Vec::new();
        let auth = match redis.password() {
            Some(password) => {
                let mut auth = redis::cmd("AUTH");
                if let Some(username) = redis.username().filter(|_| with_username) {
                    auth.arg(username);
                }
                commands.extend(auth.arg(password).get_packed_command());
                true
            }
            None => false,
        };
        let select = redis.db() != 0;
        if select {
            commands.extend(redis::cmd("SELECT").arg(redis.db()).get_packed_command());
        }
        let mut ignored = 0;
        if let (false, Some(name), Some(version)) =
            (redis.skip_set_lib_name(), redis.lib_name(), redis.lib_ver())
        {
            for (field, value) in [("LIB-NAME", name), ("LIB-VER", version)] {
                let setinfo = redis::cmd("CLIENT")
                    .arg("SETINFO")
                    .arg(field)
                    .arg(value)
                    .get_packed_command();
                commands.extend(setinfo);
                ignored += 1;
            }
        }
        if commands.is_empty() {
            return Ok(Auth::Accepted);
        }
        self.send(&commands)?;
        let auth = if auth { self.answer()? } else { Ok(()) };
        let select = if select { self.answer()? } else { Ok(()) };
        for _ in 0..ignored {
            let _ = self.answer()?;
        }
        if let Err(refusal) = auth {
            let old_server = refusal.detail().is_some_and(|detail| {
                detail.contains("wrong number of arguments for 'auth' command")
            });
            if old_server && with_username && redis.username().is_some() {
                return Ok(Auth::RetryWithoutUsername);
            }
            return Err(RedisError::from((
                ErrorKind::AuthenticationFailed,
                "Password authentication failed",
            )));
        }
        select.map_err(|refusal| {
            let detail = refusal.detail().unwrap_or_default().to_string();
            RedisError::from((
                ServerErrorKind::ResponseError.into(),
                "Redis server refused to switch database",
                detail,
            ))
        })?;
        Ok(Auth::Accepted)
    }

    /// Reads the answer to a command: Ok, or the server's refusal.
    fn answer(&mut self) -> RedisResult<RedisResult<()>> {
        self.next_frame(|frame| match frame {
            Frame::Error(line) => Err(server_error(line)),
            _ => Ok(()),
        })
    }

    /// Sends SUBSCRIBE for `channel` and reads its answer: Ok once the server
    /// confirmed, its refusal otherwise.
    pub(crate) fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        self.send(&redis::cmd("SUBSCRIBE").arg(channel).get_packed_command())?;
        self.answer()?
    }

    /// Sends a PING and reads until its answer, handing the messages that
    /// come before it to `deliver` in order; returns whether the answer was
    /// that of a subscribed connection. The answers of earlier PINGs whose
    /// wait was cut short (an interrupted read) come first and are not taken
    /// for this one's.
    pub(crate) fn ping(&mut self, deliver: &mut dyn FnMut(&[u8], &[u8])) -> RedisResult<bool> {
        self.send(&redis::cmd("PING").get_packed_command())?;
        self.pings += 1;
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
                self.pings = self.pings.saturating_sub(1);
                if self.pings == 0 || answer.is_err() {
                    return answer;
                }
            }
        }
    }

    /// Waits (at most the read timeout) for the next message and hands it to
    /// `deliver`; other frames (a late confirmation, the answer of a PING
    /// whose wait was cut short) are passed over.
    pub(crate) fn next_message(
        &mut self,
        deliver: &mut dyn FnMut(&[u8], &[u8]),
    ) -> RedisResult<()> {
        loop {
            let delivered = self.next_frame(|frame| match frame {
                Frame::Error(line) => Err(server_error(line)),
                frame if frame.is_subscribed_pong() => Ok(Passed::Pong),
                frame => Ok(match frame.message() {
                    Some((channel, payload)) => {
                        deliver(channel, payload);
                        Passed::Message
                    }
                    None => Passed::Other,
                }),
            })??;
            match delivered {
                Passed::Message => return Ok(()),
                Passed::Pong => self.pings = self.pings.saturating_sub(1),
                Passed::Other => {}
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
pub(crate) mod tests {
    use std::net::TcpListener;
    use std::thread::{self, JoinHandle};

    use super::*;
    use crate::bus::failure::describe;
    use crate::bus::redis_option::RedisOption;
    use crate::bus::settings::{BusOptions, Health};

    pub(crate) fn settings(url: &str) -> BusSettings {
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
    pub(crate) fn server(
        userinfo: &str,
        path: &str,
        script: impl FnOnce(TcpStream) + Send + 'static,
    ) -> (String, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = thread::spawn(move || script(listener.accept().unwrap().0));
        (format!("redis://{userinfo}127.0.0.1:{port}{path}"), script)
    }

    fn read_line(stream: &mut TcpStream) -> String {
        let mut line = Vec::new();
        let mut byte = [0];
        while !line.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        String::from_utf8(line[..line.len() - 2].to_vec()).unwrap()
    }

    /// The next command the client sent, as its arguments.
    pub(crate) fn command(stream: &mut TcpStream) -> Vec<String> {
        let count: usize = read_line(stream)[1..].parse().unwrap();
        (0..count)
            .map(|_| {
                let len: usize = read_line(stream)[1..].parse().unwrap();
                let mut arg = vec![0; len + 2];
                stream.read_exact(&mut arg).unwrap();
                String::from_utf8_lossy(&arg[..len]).into_owned()
            })
            .collect()
    }

    /// Reads the command `args` make.
    pub(crate) fn expect(stream: &mut TcpStream, args: &[&str]) {
        assert_eq!(command(stream), args);
    }

    /// Reads the CLIENT SETINFO pair that ends the handshake (answers are
    /// the caller's).
    fn setinfo(stream: &mut TcpStream) {
        let version = env!("CARGO_PKG_VERSION");
        expect(
            stream,
            &["CLIENT", "SETINFO", "LIB-NAME", "synced_memory_store"],
        );
        expect(stream, &["CLIENT", "SETINFO", "LIB-VER", version]);
    }

    /// The handshake of a URL without credentials or database, answered as
    /// a server before Redis 7.2 does (SETINFO unknown: ignored).
    pub(crate) fn accept(stream: &mut TcpStream) {
        setinfo(stream);
        stream
            .write_all(
                b"-ERR unknown subcommand 'SETINFO'\r\n-ERR unknown subcommand 'SETINFO'\r\n",
            )
            .unwrap();
    }

    pub(crate) fn message(payload: &[u8]) -> Vec<u8> {
        let mut frame =
            format!("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n${}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        frame
    }

    pub(crate) const CONFIRMED: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    pub(crate) const PONG: &[u8] = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";

    fn subscribed(url: &str) -> PlainSubscription {
        let mut subscription = PlainSubscription::open(&settings(url)).unwrap();
        subscription.subscribe("ch").unwrap();
        subscription
    }

    fn subscribe(stream: &mut TcpStream) {
        accept(stream);
        expect(stream, &["SUBSCRIBE", "ch"]);
        stream.write_all(CONFIRMED).unwrap();
    }

    #[test]
    fn messages_arrive_whole_and_in_order_however_the_server_splits_them() {
        let big: Vec<u8> = (0..5 * BUFFER).map(|i| i as u8).collect();
        let expected = [b"one".to_vec(), big.clone(), b"three".to_vec()];
        let (url, script) = server("", "", move |mut stream| {
            subscribe(&mut stream);
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
        let mut subscription = subscribed(&url);
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
    fn unparsed_bytes_move_to_the_front_to_make_room() {
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let mut subscription = PlainSubscription {
            stream: Stream::Unix(mine),
            buffer: vec![0; 64],
            start: 0,
            end: 0,
            pings: 0,
        };
        let payloads = [
            b"p1".to_vec(),
            b"p2".to_vec(),
            vec![b'x'; 200],
            b"p4".to_vec(),
        ];
        for payload in &payloads {
            theirs.write_all(&message(payload)).unwrap();
        }
        let mut got = Vec::new();
        for _ in &payloads {
            subscription
                .next_message(&mut |_, payload| got.push(payload.to_vec()))
                .unwrap();
        }
        assert_eq!(got, payloads);
        assert_eq!(subscription.buffer.len(), 256, "grown to fit, no more");
    }

    #[test]
    fn a_read_timeout_in_the_middle_of_a_frame_loses_nothing() {
        let frame = message(b"patience");
        let (timed_out, rest) = std::sync::mpsc::channel::<()>();
        let (url, script) = server("", "", move |mut stream| {
            subscribe(&mut stream);
            stream.write_all(&frame[..20]).unwrap();
            // The rest only once the client's read has timed out.
            rest.recv().unwrap();
            stream.write_all(&frame[20..]).unwrap();
        });
        let mut subscription = subscribed(&url);
        subscription
            .set_read_timeout(Duration::from_millis(100))
            .unwrap();
        let mut got = Vec::new();
        let mut collect = |_: &[u8], payload: &[u8]| got.push(payload.to_vec());
        let error = subscription.next_message(&mut collect).unwrap_err();
        assert!(error.is_timeout(), "{error}");
        timed_out.send(()).unwrap();
        subscription
            .set_read_timeout(Duration::from_secs(5))
            .unwrap();
        subscription.next_message(&mut collect).unwrap();
        assert_eq!(got, [b"patience".to_vec()]);
        script.join().unwrap();
    }

    #[test]
    fn the_late_answer_of_an_earlier_ping_is_not_taken_for_the_next_ones() {
        let (url, script) = server("", "", |mut stream| {
            subscribe(&mut stream);
            // The first PING is answered only after the second is sent.
            expect(&mut stream, &["PING"]);
            expect(&mut stream, &["PING"]);
            let mut answers = PONG.to_vec();
            answers.extend_from_slice(&message(b"before the second PONG"));
            answers.extend_from_slice(PONG);
            stream.write_all(&answers).unwrap();
        });
        let mut subscription = subscribed(&url);
        let mut got = Vec::new();
        let mut collect = |_: &[u8], payload: &[u8]| got.push(payload.to_vec());
        subscription
            .set_read_timeout(Duration::from_millis(100))
            .unwrap();
        // The wait for the first answer is cut short (as by EINTR).
        assert!(subscription.ping(&mut collect).unwrap_err().is_timeout());
        subscription
            .set_read_timeout(Duration::from_secs(5))
            .unwrap();
        assert!(subscription.ping(&mut collect).unwrap());
        assert_eq!(
            got,
            [b"before the second PONG".to_vec()],
            "the second PING's answer proves this message here"
        );
        script.join().unwrap();
    }

    /// Why opening a connection to the scripted server at `url` failed, in
    /// `failure.rs`'s words, once the script has run.
    fn refusal(url: &str, script: JoinHandle<()>) -> String {
        let settings_ = settings(url);
        let refused = describe(
            &PlainSubscription::open(&settings_).err().unwrap(),
            &settings_,
        );
        script.join().unwrap();
        refused
    }

    #[test]
    fn refusals_read_as_redis_rs_reports_them() {
        let (url, script) = server("bus:wrong@", "", |mut stream| {
            expect(&mut stream, &["AUTH", "bus", "wrong"]);
            setinfo(&mut stream);
            stream
                .write_all(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+OK\r\n")
                .unwrap();
        });
        let refused = refusal(&url, script);
        assert!(
            refused.contains("refused the credentials (authentication failed); check the username"),
            "{refused}"
        );

        let (url, script) = server(":pw@", "/3", |mut stream| {
            expect(&mut stream, &["AUTH", "pw"]);
            expect(&mut stream, &["SELECT", "3"]);
            setinfo(&mut stream);
            stream
                .write_all(b"+OK\r\n-NOPERM User has no permissions to run the 'select' command\r\n+OK\r\n+OK\r\n")
                .unwrap();
        });
        let refused = refusal(&url, script);
        assert!(
            refused.contains("refused to switch to database 3"),
            "{refused}"
        );

        let (url, script) = server("", "", |mut stream| {
            accept(&mut stream);
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
    fn a_server_before_redis_6_is_authenticated_with_the_password_alone() {
        let (url, script) = server("bus:pw@", "/2", |mut stream| {
            expect(&mut stream, &["AUTH", "bus", "pw"]);
            expect(&mut stream, &["SELECT", "2"]);
            setinfo(&mut stream);
            stream
                .write_all(b"-ERR wrong number of arguments for 'auth' command\r\n-NOAUTH Authentication required.\r\n-ERR unknown command 'CLIENT'\r\n-ERR unknown command 'CLIENT'\r\n")
                .unwrap();
            expect(&mut stream, &["AUTH", "pw"]);
            expect(&mut stream, &["SELECT", "2"]);
            setinfo(&mut stream);
            stream
                .write_all(b"+OK\r\n+OK\r\n-ERR unknown command 'CLIENT'\r\n-ERR unknown command 'CLIENT'\r\n")
                .unwrap();
            expect(&mut stream, &["SUBSCRIBE", "ch"]);
            stream.write_all(CONFIRMED).unwrap();
        });
        subscribed(&url);
        script.join().unwrap();
    }

    #[test]
    fn what_breaks_the_protocol_or_closes_ends_the_subscription() {
        let (url, script) = server("", "", |mut stream| {
            subscribe(&mut stream);
            stream.write_all(b"?what\r\n").unwrap();
        });
        let mut subscription = subscribed(&url);
        let broken = subscription.next_message(&mut |_, _| {}).unwrap_err();
        assert!(!broken.is_timeout());
        assert!(
            broken.to_string().contains("an unknown frame type"),
            "{broken}"
        );
        script.join().unwrap();

        let (url, script) = server("", "", |mut stream| {
            subscribe(&mut stream);
            stream.write_all(&message(b"cut")[..10]).unwrap();
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
    fn a_ping_on_a_connection_not_subscribed_is_told_apart() {
        let (url, script) = server("", "", |mut stream| {
            accept(&mut stream);
            expect(&mut stream, &["PING"]);
            stream.write_all(b"+PONG\r\n").unwrap();
        });
        let mut subscription = PlainSubscription::open(&settings(&url)).unwrap();
        assert!(!subscription.ping(&mut |_, _| {}).unwrap());
        script.join().unwrap();
    }

    #[test]
    fn only_a_single_server_without_tls_or_a_log_is_subscribed_to_this_way() {
        assert!(PlainSubscription::fits(&settings("redis://127.0.0.1:6379")));
        assert!(PlainSubscription::fits(&settings("unix:///tmp/redis.sock")));
        assert!(!PlainSubscription::fits(&settings(
            "rediss://127.0.0.1:6379"
        )));
        assert!(PlainSubscription::fits(&settings(
            "redis://127.0.0.1:6379?protocol=resp3"
        )));
        let wildcard = BusSettings::new(&BusOptions {
            redis: RedisOption {
                host: Some("0.0.0.0".into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        assert!(
            !PlainSubscription::fits(&wildcard),
            "left to redis-rs to refuse"
        );
        let logged = BusSettings::new(&BusOptions {
            bus_log: Some(100),
            ..Default::default()
        })
        .unwrap();
        assert!(!PlainSubscription::fits(&logged));
    }
}
