//! Errors of the Rust core. The binding layer maps each variant to the Ruby class
//! of the same name under `SyncedMemoryStore::Error`.

use std::fmt;

/// Something the core refused or could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An option or value given to the store is invalid; the message names it.
    Configuration(String),
    /// The bus could not be reached in time.
    Connection(String),
    /// The store was closed.
    Closed,
    /// Bytes that should hold an entry do not decode.
    Corrupt(String),
}

/// Result alias for the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Configuration(message)
            | Error::Connection(message)
            | Error::Corrupt(message) => f.write_str(message),
            Error::Closed => f.write_str("the store is closed"),
        }
    }
}

impl std::error::Error for Error {}
