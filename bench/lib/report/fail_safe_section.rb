# frozen_string_literal: true

module Bench
  class Report
    # The fail-safe section: requests that raised during an L2 outage, per store.
    module FailSafeSection
      private

      def fail_safe
        run = @results[:fail_safe] or return
        rows = run[:results].map do |result|
          [result.label, Format.count(result.requests), Format.count(result.errors),
           Format.percent(result.error_share), result.stale ? Format.count(result.stale) : ""]
        end
        <<~MD.chomp
          ## Fail-safe during an L2 outage

          Each store first serves #{run[:keys]} keys (fetched with `expires_in: #{run[:expires_in]}` s); then the L2's redis-server is killed, and for #{format("%.1f", run[:outage])} s every key is asked for in turn, through every store, with a `fetch` whose block raises (the backend behind the cache is down too). MemoryStore has no L2 to lose, but its entries expire; RedisCacheStore and both SyncedMemoryStores use the killed server as L2, the SyncedMemoryStores with the bus on a redis-server of its own, which stays up. "Errors" are requests whose `fetch` raised; "stale" the fetches fail-safe answered with an expired value (`stats[:fail_safe_hits]`).

          #{Format.table(["Store", "Requests", "Errors", "Error share", "Stale values served"], rows)}
        MD
      end
    end
  end
end
