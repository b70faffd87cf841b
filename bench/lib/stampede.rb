# frozen_string_literal: true

require "securerandom"
require_relative "fixtures"
require_relative "timing"

module Bench
  # Stampedes: PROCESSES peer processes of THREADS threads each fetch one key
  # at the same moment (CLOCK_MONOTONIC, shared by the machine's processes),
  # with a block that takes BLOCK_SECONDS; the figure is how many times the
  # block ran in all. Each store is measured in the same run, on one redis-server
  # for the L2 (RedisCacheStore, shared by all processes) and one for the bus:
  #
  # * a cold key (no entry anywhere): race_condition_ttl cannot help there;
  # * a key that has just expired (written EXPIRES_IN before, with the same
  #   options, by one process — by every process for MemoryStore, which is
  #   per process): where race_condition_ttl serves the stale value to the
  #   threads that read after the first one put it back.
  #
  # Each configuration is run ROUNDS times (fewer when scaled down) on a new key.
  class Stampede
    PROCESSES = 4
    THREADS = 8
    BLOCK_SECONDS = 0.05
    EXPIRES_IN = 1.0
    ROUNDS = 5
    # How far ahead of now the agreed moment is (every peer must be told first).
    LEAD = 0.3
    SCENARIOS = %i[cold expired].freeze

    # One configuration: a label, the peer's store name, and the fetch options.
    Config = Struct.new(:label, :store, :options)

    CONFIGS = [
      Config.new("MemoryStore", :memory, {}),
      Config.new("RedisCacheStore", :redis, {}),
      Config.new("RedisCacheStore, race_condition_ttl: 10", :redis, { race_condition_ttl: 10 }),
      Config.new("SyncedMemoryStore (Redis L2), lease: false (per-process single-flight)", :sms, { lease: false }),
      Config.new("SyncedMemoryStore (Redis L2)", :sms, {})
    ].freeze

    # One configuration's result in one scenario: the block's runs in each
    # round, and the slowest fetch of each round (seconds).
    Result = Struct.new(:label, :scenario, :runs, :slowest) do
      def median_runs = runs.sort[runs.size / 2]
      def max_runs = runs.max
      def median_slowest = slowest.sort[slowest.size / 2]
    end

    def initialize(fixtures, scale:)
      @fixtures = fixtures
      @rounds = scale < 0.1 ? 1 : ROUNDS
    end

    # [Result], by scenario then configuration.
    def run
      l2 = @fixtures.redis
      bus = @fixtures.redis
      names = (1..PROCESSES).map { |i| :"stampede#{i}" }
      @peers = @fixtures.peers(*names)
      open_stores(l2.url, bus.url)
      SCENARIOS.flat_map { |scenario| CONFIGS.map { |config| measure(config, scenario) } }
    ensure
      @fixtures.release(*@peers) if @peers
    end

    private

    def open_stores(l2_url, bus_url)
      channel = @fixtures.channel("stampede")
      @peers.each do |peer|
        peer.open_plain_store(:memory, :memory_store, {})
        peer.open_plain_store(:redis, :redis_cache_store, { url: l2_url, namespace: "stampede-redis" })
        @fixtures.open_store(peer, name: :sms, redis: bus_url, channel: channel,
                                   cache: [:redis_cache_store, { url: l2_url, namespace: "stampede-sms" }])
      end
    end

    def measure(config, scenario)
      rounds = Array.new(@rounds) do |round|
        stampede(config, scenario, "#{scenario}-#{config.store}-#{round}-#{SecureRandom.hex(4)}")
      end
      Result.new(config.label, scenario, rounds.map(&:first), rounds.map(&:last))
    end

    # [block runs in all processes, slowest fetch (seconds)].
    def stampede(config, scenario, key)
      at = @peers.first.now + LEAD
      at = expire_soon(config, key) if scenario == :expired
      @peers.each do |peer|
        peer.stampede_start(key, threads: THREADS, seconds: BLOCK_SECONDS, value: "v", at: at, store: config.store,
                                 options: config.options.merge(expires_in: 60))
      end
      results = @peers.map { |peer| peer.stampede_result(30, store: config.store) }
      errors = results.flat_map { |result| result[:results] }.reject { |outcome| outcome[0] == :ok }
      raise "stampede fetches failed: #{errors.first(3).inspect}" unless errors.empty?

      [results.sum { |result| result[:runs] }, results.flat_map { |result| result[:results].map(&:last) }.max]
    end

    # Writes +key+ to expire in EXPIRES_IN; returns a moment just after.
    def expire_soon(config, key)
      writers = config.store == :memory ? @peers : [@peers.first]
      writers.each do |peer|
        peer.write(key, "old", store: config.store, expires_in: EXPIRES_IN, **config.options)
      end
      @peers.first.flush_sync(5, store: config.store) if config.store == :sms
      @peers.first.now + EXPIRES_IN + 0.1
    end
  end
end
