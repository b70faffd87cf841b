//! Errors of the Rust core. The binding layer maps each variant to the Ruby class
//! of the same name under `SyncedMemoryStore::Error`.

use std::fmt;

/// Something the core refused or could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// An option or value given to the store is invalid; the message names it.
    Configuration(String),
    /// Bytes that should hold an entry do not decode.
    Corrupt(String),
}

/// Result alias for the core.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Configuration(message) | Error::Corrupt(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}
