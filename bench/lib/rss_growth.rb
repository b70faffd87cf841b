# frozen_string_literal: true

require_relative "fixtures"

module Bench
  # Process RSS over WRITES writes to a fixed key space, in a fresh peer process
  # holding one store with sync on and a MemoryStore L2 (the usual setup: each
  # write goes to the L2, to L1 and to the bus, and the process applies its own
  # echoes). The store writes VALUE_BYTES-byte Strings round-robin over KEYS
  # keys; RSS (VmRSS after GC.start and GC.compact) is read after the warm-up
  # and at each checkpoint, once the writes are published.
  class RssGrowth
    WRITES = 1_000_000
    KEYS = 10_000
    VALUE_BYTES = 200
    WARM_UP = 0.1
    WARM_UP_PASSES = 3
    CHECKPOINTS = [0.25, 0.5, 0.75, 1.0].freeze

    Result = Struct.new(:samples, :keys, :value_bytes, keyword_init: true) do
      # [writes, RSS bytes] after the warm-up.
      def warm
        samples.first
      end

      def growth
        (samples.last[1] - warm[1]).fdiv(warm[1])
      end

      def bytes_per_write
        (samples.last[1] - warm[1]).fdiv(samples.last[0] - warm[0])
      end
    end

    def initialize(fixtures, bus_url:, scale:)
      @fixtures = fixtures
      @bus_url = bus_url
      @writes = [(WRITES * scale).round, 100_000].max
    end

    def run
      peer = @fixtures.peers(:rss, redis: @bus_url, channel: @fixtures.channel("rss"), cache: :memory_store).first
      written = 0
      samples = checkpoints.map do |target|
        peer.write_many(prefix: "rss-", count: target - written, sizes: [VALUE_BYTES], keys: KEYS, offset: written,
                        within: 600)
        peer.flush_sync(30, within: 40)
        written = target
        [written, peer.rss]
      end
      Result.new(samples: samples, keys: KEYS, value_bytes: VALUE_BYTES)
    ensure
      @fixtures.release(peer) if peer
    end

    private

    # Write counts at which RSS is read: the warm-up (WARM_UP of the writes,
    # and at least WARM_UP_PASSES passes over the key space), then CHECKPOINTS.
    def checkpoints
      warm = [(@writes * WARM_UP).round, KEYS * WARM_UP_PASSES].max
      [warm, *CHECKPOINTS.map { |fraction| (@writes * fraction).round }.select { |count| count > warm }]
    end
  end
end
