# frozen_string_literal: true

require_relative "../format"
require_relative "../stampede"

module Bench
  class Report
    # The "Stampede" section: how many times a fetch block ran when every
    # thread of every process missed one key at once, per store.
    module StampedeSection
      private

      def stampede
        results = @results[:stampede] or return
        rows = results.map do |result|
          [result.scenario == :cold ? "cold" : "just expired", result.label, result.median_runs, result.max_runs,
           result.runs.join(", "), Format.us(result.median_slowest * 1e3)]
        end
        <<~MD.chomp
          ## Stampede

          #{Stampede::PROCESSES} processes × #{Stampede::THREADS} threads call `fetch` on one key at the same moment, with a block that takes #{(Stampede::BLOCK_SECONDS * 1e3).round} ms; "runs" is how many times the block ran in all (#{Stampede::PROCESSES * Stampede::THREADS} at most, 1 is the goal), over #{results.first.runs.size} round(s), each on a new key. **cold**: no entry anywhere. **just expired**: the key was written #{Stampede::EXPIRES_IN} s before with `expires_in: #{Stampede::EXPIRES_IN}` (and the configuration's options), by one process (by each for MemoryStore, which is per process). RedisCacheStore and the SyncedMemoryStores share one L2 redis-server; the SyncedMemoryStores have a bus redis-server of their own. "Slowest fetch" is the median over rounds of the longest fetch (ms).

          #{Format.table(["Key", "Store", "Runs (median)", "Runs (max)", "Runs per round", "Slowest fetch (ms)"], rows)}
        MD
      end
    end
  end
end
