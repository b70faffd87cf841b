# frozen_string_literal: true

require "active_support/cache/redis_cache_store"
require_relative "timing"

module Bench
  # Fail-safe during an L2 outage: every store has served KEYS keys (expiring
  # after EXPIRES_IN) when the L2's redis-server is killed; for OUTAGE seconds
  # (scaled, at least 1) each store is asked for every key in turn with a
  # fetch whose block raises (the backend behind the cache is down as well),
  # and the requests that raised are counted. The bus runs on a redis-server
  # of its own, which stays up. Peers, measured in the same run: MemoryStore
  # (no L2 to lose; its entries expire), RedisCacheStore on the same L2 server,
  # and this store on that L2 without fail-safe and with
  # <tt>fail_safe: { max_stale: 1.hour }</tt>.
  class FailSafeOutage
    KEYS = 100
    EXPIRES_IN = 1.0
    OUTAGE = 10.0

    Result = Struct.new(:label, :requests, :errors, :stale, keyword_init: true) do
      def error_share
        requests.zero? ? 0.0 : errors.fdiv(requests)
      end
    end

    FAIL_SAFE = "SyncedMemoryStore (Redis L2, fail_safe)"
    PLAIN = "SyncedMemoryStore (Redis L2)"
    LABELS = ["MemoryStore", "RedisCacheStore", PLAIN, FAIL_SAFE].freeze

    def initialize(fixtures, bus_url:, scale:)
      @fixtures = fixtures
      @bus_url = bus_url
      @outage = [OUTAGE * scale, 1.0].max
    end

    # { results: [Result per store], outage: seconds }.
    def run
      l2 = @fixtures.redis
      stores = build(l2.url)
      warm(stores)
      l2.kill
      results = outage(stores)
      { results: results, outage: @outage, keys: KEYS, expires_in: EXPIRES_IN }
    ensure
      stores&.each_value { |store| store.close if store.is_a?(SyncedMemoryStore::Store) }
    end

    private

    def build(l2_url)
      channel = @fixtures.channel("fail-safe")
      redis = ->(namespace) { ActiveSupport::Cache::RedisCacheStore.new(url: l2_url, namespace: namespace) }
      stores = {
        LABELS[0] => ActiveSupport::Cache::MemoryStore.new,
        LABELS[1] => redis.call("bench-outage-redis"),
        PLAIN => SyncedMemoryStore::Store.new(cache: redis.call("bench-outage-plain"), redis: @bus_url,
                                              channel: "#{channel}-plain"),
        FAIL_SAFE => SyncedMemoryStore::Store.new(cache: redis.call("bench-outage-fail-safe"), redis: @bus_url,
                                                  channel: "#{channel}-fail-safe", fail_safe: { max_stale: 3600 })
      }
      stores.each_value { |store| store.wait_for_connection(10) if store.is_a?(SyncedMemoryStore::Store) }
      stores
    end

    # Every key fetched once through every store while everything is up.
    def warm(stores)
      stores.each_value do |store|
        KEYS.times { |index| store.fetch("key-#{index}", expires_in: EXPIRES_IN) { { "id" => index } } }
      end
    end

    def outage(stores)
      tallies = stores.keys.to_h { |label| [label, Result.new(label: label, requests: 0, errors: 0, stale: 0)] }
      deadline = Timing.now + @outage
      while Timing.now < deadline
        KEYS.times do |index|
          stores.each { |label, store| request(store, "key-#{index}", tallies[label]) }
        end
      end
      stores.each { |label, store| tallies[label].stale = store.stats[:fail_safe_hits] if store.respond_to?(:stats) }
      tallies.values
    end

    def request(store, key, tally)
      tally.requests += 1
      store.fetch(key, expires_in: EXPIRES_IN) { raise IOError, "the backend is down too" }
    rescue IOError
      tally.errors += 1
    end
  end
end
