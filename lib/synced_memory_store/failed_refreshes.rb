# frozen_string_literal: true

module SyncedMemoryStore
  # The keys of this process whose refresh failed recently, each with the
  # time (monotonic) before which its block is not tried again, and the
  # fail-safe counters for Store#stats. One lock guards both; it is taken
  # only on the paths where a fetch is about to run its block or has served
  # a stale value, never on a hit.
  class FailedRefreshes
    # Past this many keys, the keys whose back-off has ended are dropped
    # when another is added, so a long outage over many keys does not grow
    # the table without bound.
    PRUNE_AT = 1024
    private_constant :PRUNE_AT

    def initialize
      @lock = Mutex.new
      @retry_at = {}
      @hits = 0
      @backoffs = 0
    end

    # Notes that refreshing +key+ failed: it is not tried again for
    # +seconds+.
    def failed(key, seconds)
      now = monotonic
      @lock.synchronize do
        @retry_at.delete_if { |_, at| at <= now } if @retry_at.size >= PRUNE_AT
        @retry_at[key] = now + seconds
      end
    end

    # Notes that refreshing +key+ succeeded: the next failure starts a new
    # back-off.
    def succeeded(key)
      return if @retry_at.empty?

      @lock.synchronize { @retry_at.delete(key) }
    end

    # Whether +key+ failed less than its back-off ago.
    def backing_off?(key)
      return false if @retry_at.empty?

      at = @lock.synchronize { @retry_at[key] }
      !at.nil? && monotonic < at
    end

    # Counts a stale value served (+backed_off+: without trying the block).
    def served(backed_off:)
      @lock.synchronize do
        @hits += 1
        @backoffs += 1 if backed_off
      end
    end

    # Adds the counters for Store#stats to the Hash +stats+ (returned):
    # fetches answered with a stale value, and of those the ones answered
    # without running the block (backing off).
    def add_stats(stats)
      stats[:fail_safe_hits] = @hits
      stats[:fail_safe_backoffs] = @backoffs
      stats
    end

    private

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
