# frozen_string_literal: true

module SyncedMemoryStore
  # Base class of every error this gem raises. The native core raises these
  # classes too (looked up by name), so they are declared before it loads.
  Error = Class.new(StandardError)

  # An option or value given to the store is invalid; the message names it.
  ConfigurationError = Class.new(Error)

  # The bus could not be reached within the time asked for.
  ConnectionError = Class.new(Error)

  # The store was closed with #close and can no longer be used.
  ClosedError = Class.new(Error)

  # Bytes that should hold a cache entry do not decode.
  CorruptEntryError = Class.new(Error)
end
