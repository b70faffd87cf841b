# frozen_string_literal: true

module SyncedMemoryStore
  # Counters of the fetch leases (see Store::FetchLease) for Store#stats,
  # bumped by any thread.
  class LeaseCounts
    # :lease_claims (leases announced on the bus), :lease_won (claims that
    # came back first: this process computed the value), :lease_waits
    # (fetches that waited for another process's computation),
    # :lease_taken (of those, the ones that got its value),
    # :lease_wait_timeouts (waits that ran out: the fetch computed the value
    # itself) and :lease_undecided (claims the bus could not settle in time —
    # it went down or stalled — so the fetch computed without a lease).
    NAMES = %i[lease_claims lease_won lease_waits lease_taken lease_wait_timeouts lease_undecided].freeze

    def initialize
      @lock = Mutex.new
      @counts = NAMES.to_h { |name| [name, 0] }
    end

    # Adds one to +name+ (one of NAMES).
    def bump(name)
      @lock.synchronize { @counts[name] += 1 }
    end

    # Adds the counters to the Hash +stats+; returns it.
    def add_stats(stats)
      @lock.synchronize { stats.update(@counts) }
    end
  end
end
