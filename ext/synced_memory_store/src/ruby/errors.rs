//! The one mapping from core errors to Ruby exceptions. The classes are declared
//! in Ruby (`lib/synced_memory_store/errors.rb`) and looked up on first use.

use magnus::{exception::ExceptionClass, prelude::*, value::Lazy, Error, RModule, Ruby};

use crate::error::Error as CoreError;

fn error_class(ruby: &Ruby, name: &str) -> ExceptionClass {
    ruby.class_object()
        .const_get::<_, RModule>("SyncedMemoryStore")
        .and_then(|module| module.const_get::<_, ExceptionClass>(name))
        .unwrap_or_else(|_| ruby.exception_runtime_error())
}

static CONFIGURATION_ERROR: Lazy<ExceptionClass> =
    Lazy::new(|ruby| error_class(ruby, "ConfigurationError"));
static CORRUPT_ENTRY_ERROR: Lazy<ExceptionClass> =
    Lazy::new(|ruby| error_class(ruby, "CorruptEntryError"));

/// The Ruby exception for a core error.
pub(super) fn to_ruby(ruby: &Ruby, error: CoreError) -> Error {
    let class = match error {
        CoreError::Configuration(_) => &CONFIGURATION_ERROR,
        CoreError::Corrupt(_) => &CORRUPT_ENTRY_ERROR,
    };
    Error::new(ruby.get_inner(class), error.to_string())
}
