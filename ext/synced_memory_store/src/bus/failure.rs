//! Why the bus could not connect, or lost its connection, in words a user can
//! act on: `wait_for_connection`'s error and `stats[:last_error]` show them.
//! They name the server (never its credentials) and, where there is one, the
//! fix.

use std::error::Error as _;
use std::io;

use redis::{ErrorKind, RedisError};
use rustls::{AlertDescription, CertificateError};

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
    // redis-rs sends SELECT as it connects, for a database other than 0, and
    // reports a refusal in its own words, without the server's code.
    if error.to_string().contains("refused to switch database") {
        let detail = error.detail().unwrap_or("").trim();
        return format!(
            "{server} refused to switch to database {db} ({detail}); the user needs SELECT \
             for a database other than 0 (README: deploying the bus)",
            db = settings.connection.redis_settings().db()
        );
    }
    if error.kind() == ErrorKind::AuthenticationFailed {
        return format!(
            "{server} refused the credentials (authentication failed); check the username and password in redis:"
        );
    }
    if let Some(tls) = tls_problem(error, settings) {
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

/// Whether a read failed with EINTR. On Linux a `recv` on a socket with a read
/// timeout fails so after the process was stopped and continued (SIGSTOP,
/// SIGCONT), even with every signal blocked (signal(7)). Nothing was lost in
/// the common case, a wait between messages; should it strike in the middle of
/// a reply, the next read fails to parse and the subscription is rebuilt.
pub(crate) fn interrupted(error: &redis::RedisError) -> bool {
    io_error(error).is_some_and(|io| io.kind() == std::io::ErrorKind::Interrupted)
}

/// What went wrong with TLS, if that is what failed.
fn tls_problem(error: &RedisError, settings: &BusSettings) -> Option<String> {
    let io = io_error(error)?;
    let inner = io.get_ref()?;
    let tls = inner.downcast_ref::<rustls::Error>()?;
    Some(match tls {
        rustls::Error::InvalidCertificate(refused) => server_certificate(refused, settings),
        // An alert from the server about a certificate is about this
        // process's: the server has none of ours to judge otherwise.
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "TLS: the server requires a client certificate (tls-auth-clients); give one \
             as ssl_params: { cert:, key: }"
                .to_string()
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied),
        ) => format!(
            "TLS: the server refused this process's client certificate ({alert:?}); it must \
             be signed by a CA the server trusts (its tls-ca-cert-file) and be valid now"
        ),
        other => format!("TLS: {other}"),
    })
}

/// Why the server's certificate was refused, and what to do about it.
fn server_certificate(refused: &CertificateError, settings: &BusSettings) -> String {
    let given_ca = settings
        .tls
        .as_ref()
        .is_some_and(|tls| tls.root_cert.is_some());
    match refused {
        // webpki's own error, which rustls passes on as Other.
        CertificateError::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            "TLS: the server's certificate is a CA certificate serving as its own \
             (a one-file self-signed setup). redis-cli accepts that; the TLS library \
             here refuses it. Make a CA and a server certificate signed by it, and \
             give the CA as ssl_params: { ca_file: }"
                .to_string()
        }
        CertificateError::UnknownIssuer if given_ca => {
            "TLS: the server's certificate is not signed by the CA in ssl_params ca_file; \
             give the CA that signed it"
                .to_string()
        }
        CertificateError::UnknownIssuer => "TLS: the server's certificate is not signed by a \
             CA this process trusts (the system's); give the CA as ssl_params: { ca_file: }"
            .to_string(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "TLS: the server's certificate is not for {expected} (it is for {presented}); \
             connect by a name it is for, or give the server a certificate whose \
             subjectAltName has {expected}",
            expected = expected.to_str(),
            presented = presented.join(", ")
        ),
        CertificateError::NotValidForName => {
            "TLS: the server's certificate is not for this host name; connect by a name it \
             is for, or give the server a certificate whose subjectAltName has this one"
                .to_string()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
            "TLS: the server's certificate has expired ({})",
            rustls::Error::InvalidCertificate(refused.clone())
        ),
        other => format!(
            "TLS: the server's certificate was refused ({})",
            rustls::Error::InvalidCertificate(other.clone())
        ),
    }
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

    #[test]
    fn an_unknown_issuer_says_whether_a_ca_was_given() {
        let unknown = || {
            tls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        };
        let mut given = settings();
        given.tls = Some(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(b"the CA".to_vec()),
        });
        let with_ca = describe(&unknown(), &given);
        assert!(
            with_ca.contains("not signed by the CA in ssl_params ca_file"),
            "{with_ca}"
        );
        let without = describe(&unknown(), &settings());
        assert!(without.contains("(the system's)"), "{without}");
    }

    #[test]
    fn a_certificate_for_another_name_names_both() {
        let expected = rustls::pki_types::ServerName::try_from("127.0.0.1")
            .expect("an IP address is a server name")
            .to_owned();
        let other_name = describe(
            &tls(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForNameContext {
                    expected,
                    presented: vec!["DnsName(\"redis.example.com\")".into()],
                },
            )),
            &settings(),
        );
        assert!(
            other_name.contains("is not for 127.0.0.1 (it is for DnsName(\"redis.example.com\"))"),
            "{other_name}"
        );
        assert!(other_name.contains("subjectAltName"), "{other_name}");
    }

    #[test]
    fn the_servers_alerts_about_our_certificate_say_so() {
        let required = describe(
            &tls(rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired,
            )),
            &settings(),
        );
        assert!(
            required.contains("requires a client certificate")
                && required.contains("ssl_params: { cert:, key: }"),
            "{required}"
        );
        let refused = describe(
            &tls(rustls::Error::AlertReceived(AlertDescription::UnknownCA)),
            &settings(),
        );
        assert!(
            refused.contains("refused this process's client certificate (UnknownCA)"),
            "{refused}"
        );
    }

    #[test]
    fn a_refused_select_names_the_database_and_the_permission() {
        let select = RedisError::from((
            ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "Redis server refused to switch database",
            "this user has no permissions to run the 'select' command".to_string(),
        ));
        let mut on_one = settings();
        on_one.connection = on_one
            .connection
            .clone()
            .set_redis_settings(on_one.connection.redis_settings().clone().set_db(1));
        let message = describe(&select, &on_one);
        assert!(
            message.contains("refused to switch to database 1") && message.contains("needs SELECT"),
            "{message}"
        );
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
