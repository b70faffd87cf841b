# frozen_string_literal: true

# Loaded by ActiveSupport::Cache.lookup_store(:synced_memory_store, ...), which
# requires "active_support/cache/<name>" and then looks up the camelized constant.
require "synced_memory_store"

module ActiveSupport
  module Cache
    SyncedMemoryStore = ::SyncedMemoryStore::Store
  end
end
