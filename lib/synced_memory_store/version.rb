# frozen_string_literal: true

module SyncedMemoryStore
  VERSION = "0.1.0"
end
