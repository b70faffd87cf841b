//! Why the bus could not connect, or lost its connection, in words a user can
//! act on: `wait_for_connection`'s error and `stats[:last_error]` show them.
//! They name the server (never its credentials) and, where there is one, the
//! fix.

use std::error::Error as _;
use std::io;

use redis::{ErrorKind, RedisError};

use super::settings::BusSettings;

/// A sentence for `error`, which happened talking to the bus `settings` name.
pub(crate) fn describe(error: &RedisError, settings: &BusSettings) -> String {
    describe_at(error, &settings.description, settings)
}

/// A sentence for `error`, which happened talking to `server` (one of the
/// servers of the bus `settings` name: a sentinel, the primary it named).
pub(crate) fn describe_at(error: &RedisError, server: &str, settings: &BusSettings) -> String {
    if error.code() == Some("NOPERM") {
        let detail = error.detail().unwrap_or("").trim();
        return format!(
            "{server} refused a command the bus needs (NOPERM {detail}); the user needs the \
             channel {channel} and SUBSCRIBE, PUBLISH and PING (README: deploying the bus)",
            channel = settings.channel
        );
    }
    if let Some(code) = error
        .code()
        .filter(|code| matches!(*code, "WRONGPASS" | "NOAUTH"))
    {
        let detail = error.detail().unwrap_or("").trim();
        return format!(
            "{server} refused the credentials ({code} {detail}); check the username and password in redis:"
        );
    }
    if error.kind() == ErrorKind::AuthenticationFailed {
        return format!(
            "{server} refused the credentials (authentication failed); check the username and password in redis:"
        );
    }
    if let Some(tls) = tls_problem(error) {
        return format!("{server}: {tls}");
    }
    match io_error(error) {
        Some(io)
            if matches!(
                io.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            format!("{server} closed the connection ({io})")
        }
        Some(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            format!("{server} refused the connection (is Redis listening there?)")
        }
        Some(io) if io.to_string().contains("lookup address") => {
            format!("{server}: unknown host ({io})")
        }
        Some(io)
            if matches!(
                io.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            format!(
                "{server} did not answer within {:?}",
                settings.health.timeout
            )
        }
        _ => format!("{server}: {error}"),
    }
}

/// The I/O error under `error`, if that is what it is.
pub(crate) fn io_error(error: &RedisError) -> Option<&io::Error> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let source = error.source()?;
    // redis-rs keeps the io::Error behind an Arc, which is what source() gives.
    match source.downcast_ref::<Shared>() {
        Some(shared) => shared.downcast_ref::<io::Error>(),
        None => source.downcast_ref::<io::Error>(),
    }
}

/// What went wrong with TLS, if that is what failed.
fn tls_problem(error: &RedisError) -> Option<String> {
    let io = io_error(error)?;
    let inner = io.get_ref()?;
    let tls = inner.downcast_ref::<rustls::Error>()?;
    let text = format!("{tls:?}");
    Some(if text.contains("CaUsedAsEndEntity") {
        "TLS: the server's certificate is a CA certificate serving as its own \
         (a one-file self-signed setup). redis-cli accepts that; the TLS library \
         here refuses it. Make a CA and a server certificate signed by it, and \
         give the CA as ssl_params: { ca_file: }"
            .to_string()
    } else if text.contains("UnknownIssuer") {
        "TLS: the server's certificate is not signed by a CA this process trusts; \
         give the CA as ssl_params: { ca_file: }"
            .to_string()
    } else if text.contains("NotValidForName") {
        format!("TLS: the server's certificate is not for this host name ({tls})")
    } else if text.contains("Expired") {
        format!("TLS: the server's certificate has expired ({tls})")
    } else {
        format!("TLS: {tls}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::settings::BusOptions;
    use rustls::CertificateError;

    fn settings() -> BusSettings {
        BusSettings::new(&BusOptions::default()).expect("valid settings")
    }

    fn io(kind: io::ErrorKind, message: &str) -> RedisError {
        RedisError::from(io::Error::new(kind, message.to_string()))
    }

    fn tls(error: rustls::Error) -> RedisError {
        RedisError::from(io::Error::new(io::ErrorKind::InvalidData, error))
    }

    #[test]
    fn connection_failures_name_the_server_and_the_cause() {
        let refused = describe(
            &io(io::ErrorKind::ConnectionRefused, "refused"),
            &settings(),
        );
        assert_eq!(
            refused,
            "redis://127.0.0.1:6379/0 refused the connection (is Redis listening there?)"
        );
        let unknown = describe(
            &io(
                io::ErrorKind::Other,
                "failed to lookup address information: Name or service not known",
            ),
            &settings(),
        );
        assert!(unknown.contains("unknown host"), "{unknown}");
        let slow = describe(&io(io::ErrorKind::TimedOut, "timed out"), &settings());
        assert!(slow.contains("did not answer within 500ms"), "{slow}");
        let gone = describe(
            &RedisError::from(io::Error::from(io::ErrorKind::UnexpectedEof)),
            &settings(),
        );
        assert!(gone.contains("closed the connection"), "{gone}");
    }

    #[test]
    fn tls_rejections_say_what_to_do() {
        let self_signed = describe(
            &tls(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(std::sync::Arc::new(webpki_like("CaUsedAsEndEntity"))),
            ))),
            &settings(),
        );
        assert!(
            self_signed.contains("a CA certificate serving as its own"),
            "{self_signed}"
        );
        let unknown = describe(
            &tls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            &settings(),
        );
        assert!(unknown.contains("ssl_params: { ca_file: }"), "{unknown}");
    }

    #[derive(Debug)]
    struct WebpkiLike(&'static str);

    impl std::fmt::Display for WebpkiLike {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for WebpkiLike {}

    fn webpki_like(name: &'static str) -> WebpkiLike {
        WebpkiLike(name)
    }
}
