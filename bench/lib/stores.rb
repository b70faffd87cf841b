# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

module Bench
  # The four stores of the single-process figures, by label. Both
  # SyncedMemoryStores run with sync on (the bus is part of a write's cost), on
  # a bus redis-server of their own, apart from the L2 redis-server, each on its
  # own channel (so neither applies the other's writes).
  module Stores
    MEMORY = "MemoryStore"
    REDIS = "RedisCacheStore"
    SMS_MEMORY = "SyncedMemoryStore (MemoryStore L2)"
    SMS_REDIS = "SyncedMemoryStore (Redis L2)"
    LABELS = [MEMORY, REDIS, SMS_MEMORY, SMS_REDIS].freeze

    module_function

    def build(l2_url:, bus_url:, channel:)
      stores = {
        MEMORY => ActiveSupport::Cache::MemoryStore.new,
        REDIS => ActiveSupport::Cache::RedisCacheStore.new(url: l2_url, namespace: "bench-redis"),
        SMS_MEMORY => SyncedMemoryStore::Store.new(cache: ActiveSupport::Cache::MemoryStore.new,
                                                   redis: bus_url, channel: "#{channel}-memory"),
        SMS_REDIS => SyncedMemoryStore::Store.new(
          cache: ActiveSupport::Cache::RedisCacheStore.new(url: l2_url, namespace: "bench-sms"),
          redis: bus_url, channel: "#{channel}-redis"
        )
      }
      stores.each_value { |store| store.wait_for_connection(10) if store.is_a?(SyncedMemoryStore::Store) }
      stores
    end

    def close(stores)
      stores.each_value { |store| store.close if store.is_a?(SyncedMemoryStore::Store) && !store.closed? }
    end
  end
end
