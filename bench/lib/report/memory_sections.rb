# frozen_string_literal: true

require_relative "../format"
require_relative "../l1_memory"
require_relative "../rss_growth"

module Bench
  class Report
    # The report's "L1 memory" section (bytes per entry and budget adherence,
    # from L1Memory) and its "Process RSS over many writes" section (from
    # RssGrowth).
    module MemorySections
      private

      def memory
        memory = @results[:memory] or return
        per_entry = memory[:per_entry]
        budget = memory[:budget]
        <<~MD.chomp
          ## L1 memory

          Each measured in a fresh process holding one store (sync: false, no L2); RSS is VmRSS after GC.start and GC.compact. Each figure is the median of #{@results[:memory_repetitions]} measurement(s).

          #{Format.table(%w[Figure Value], memory_rows(per_entry, budget))}
        MD
      end

      def memory_rows(per_entry, budget)
        [
          ["Bytes per entry: #{Format.count(per_entry.entry_count)} entries, " \
           "#{L1Memory::VALUE_BYTES}-byte String values",
           "RSS growth #{per_entry.rss_per_entry.round} B/entry; stats[:l1_bytes] #{per_entry.l1_per_entry.round} " \
           "B/entry (key + value + ENTRY_OVERHEAD); RSS / counted = " \
           "#{Format.ratio(per_entry.rss_per_entry / per_entry.l1_per_entry)}"],
          ["Budget adherence: budget", Format.mib(budget.budget)],
          ["Written (mixed sizes #{L1Memory::MIXED_SIZES.minmax.join("–")} B, distinct keys)",
           "#{Format.count(budget.written)} entries, ≈ #{Format.mib(budget.bytes_written)} by the weigher's count"],
          ["Kept", "#{Format.count(budget.kept)} entries"],
          ["stats[:l1_bytes]", of_budget(budget.l1_bytes, budget.budget)],
          ["Process RSS growth", of_budget(budget.rss_growth, budget.budget)]
        ]
      end

      def of_budget(bytes, budget)
        "#{Format.mib(bytes)} (#{Format.percent(bytes.fdiv(budget))} of the budget)"
      end

      def rss
        result = @results[:rss] or return
        warm = result.warm[1]
        rows = result.samples.each_with_index.map do |(writes, bytes), index|
          [Format.count(writes), Format.mib(bytes),
           index.zero? ? "warm-up" : Format.percent((bytes - warm).fdiv(warm), sign: true)]
        end
        <<~MD.chomp
          ## Process RSS over many writes

          One process, one store with sync on and a MemoryStore L2, writing #{result.value_bytes}-byte Strings round-robin over #{Format.count(result.keys)} keys (each write goes to the L2, L1 and the bus; the process applies its own echoes). RSS is VmRSS after GC.start and GC.compact, once the writes are published. Growth after warm-up: #{Format.percent(result.growth, sign: true)} (#{result.bytes_per_write.round(3)} B per write).

          #{Format.table(["Writes", "RSS", "Since warm-up"], rows)}
        MD
      end
    end
  end
end
