# frozen_string_literal: true

require_relative "fixtures"

module Bench
  # L1 memory, each measurement in a fresh peer process holding one store with
  # sync: false and no L2 (so the process holds nothing else of note). RSS is
  # VmRSS after GC.start and GC.compact (the peer's rss command).
  #
  # * Bytes per entry: RSS growth over ENTRIES writes of VALUE_BYTES-byte
  #   Strings under distinct keys ("entry-<i>"), in a store whose budget holds
  #   them all, divided by the entries; next to stats[:l1_bytes] per entry, the
  #   weigher's count (key + payload + ENTRY_OVERHEAD).
  # * Budget adherence: a store with a BUDGET byte budget is written
  #   FILL_FACTOR times its budget (by the weigher's count) in Strings of
  #   MIXED_SIZES under distinct keys; then stats[:l1_bytes] and the RSS growth
  #   are compared with the budget.
  class L1Memory
    ENTRIES = 100_000
    VALUE_BYTES = 100
    BUDGET = 64 * 1024 * 1024
    FILL_FACTOR = 3.5
    MIXED_SIZES = [100, 400, 1_000, 3_000, 200, 8_000, 50, 1_500].freeze
    REPETITIONS = 3

    PerEntry = Struct.new(:entry_count, :rss_growth, :l1_bytes, keyword_init: true) do
      def rss_per_entry
        rss_growth.fdiv(entry_count)
      end

      def l1_per_entry
        l1_bytes.fdiv(entry_count)
      end
    end

    Budget = Struct.new(:budget, :written, :bytes_written, :kept, :l1_bytes, :rss_growth, keyword_init: true)

    def initialize(fixtures, scale:)
      @fixtures = fixtures
      @entries = [(ENTRIES * scale).round, 20_000].max
      @budget = [(BUDGET * scale).round, 16 * 1024 * 1024].max
      @repetitions = scale < 0.1 ? 1 : REPETITIONS
    end

    attr_reader :repetitions

    def run
      { per_entry: median(Array.new(@repetitions) { per_entry }),
        budget: median(Array.new(@repetitions) { budget }) }
    end

    private

    def per_entry
      in_peer(size: 1 << 30) do |peer|
        peer.write_many(prefix: "warm-", count: 1_000, sizes: [VALUE_BYTES]) # loads the code paths
        rss = peer.rss
        l1_bytes = peer.stats[:l1_bytes]
        peer.write_many(prefix: "entry-", count: @entries, sizes: [VALUE_BYTES], within: 300)
        PerEntry.new(entry_count: @entries, rss_growth: peer.rss - rss, l1_bytes: peer.stats[:l1_bytes] - l1_bytes)
      end
    end

    def budget
      in_peer(size: @budget) do |peer|
        overhead = weigher_overhead(peer)
        rss = peer.rss
        average = MIXED_SIZES.sum.fdiv(MIXED_SIZES.size) + overhead + "entry-#{@budget / 1000}".bytesize
        count = (@budget * FILL_FACTOR / average).ceil
        peer.write_many(prefix: "entry-", count: count, sizes: MIXED_SIZES, within: 300)
        stats = peer.stats
        Budget.new(budget: @budget, written: count, bytes_written: (count * average).round,
                   kept: stats[:l1_entries], l1_bytes: stats[:l1_bytes], rss_growth: peer.rss - rss)
      end
    end

    # What the weigher counts for an entry beyond its key and value bytes
    # (ENTRY_OVERHEAD and the record's own bytes), from one entry written to
    # the empty store.
    def weigher_overhead(peer)
      peer.write_many(prefix: "probe-", count: 1, sizes: [VALUE_BYTES])
      peer.stats[:l1_bytes] - "probe-0".bytesize - VALUE_BYTES
    end

    # A struct of the same kind whose every member is the median over +results+.
    def median(results)
      results.first.class.new(**results.first.to_h.keys.to_h do |member|
        [member, Timing.median(results.map { |result| result[member] })]
      end)
    end

    def in_peer(size:)
      peer = @fixtures.peers(:memory, sync: false, size: size).first
      yield peer
    ensure
      @fixtures.release(peer) if peer
    end
  end
end
