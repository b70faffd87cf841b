# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # Stampede protection across processes. The thread of a process that is
    # about to run a #fetch block (the runner of the key's flight, see
    # SingleFlight: the other threads of the process wait for it) first
    # announces on the bus a lease on the key, and waits for it to come back.
    # Every process sees the channel's messages in one order, so all of them
    # agree on which lease came first: that process runs the block; the others
    # wait until its lease ends — it releases the lease after its write, so
    # the value has reached their L1 by then (or, shipped as an invalidation,
    # L2) — and take the value instead of computing it. See
    # ext/synced_memory_store/src/node/leases.rs for the table every process
    # keeps.
    #
    # Bounds: a waiter waits at most +lease+ and +lock_timeout+ (whichever is
    # shorter), then runs the block itself. A runner that raises, or whose
    # thread is killed, releases its lease (an +ensure+); one whose process
    # dies holds it until +lease+ has passed. When the bus cannot settle the
    # claim (sync off, the bus down or stalled, no echo within
    # +health_timeout+) the fetch runs its block, as without leases. A lease
    # that is released without a value (the block raised, or +skip_nil+ kept
    # a nil out) lets the next claim win.
    module FetchLease
      # Default +lease+ (seconds): longer than +lock_timeout+'s default, so a
      # process that misses a key late in a slow computation still waits for
      # it (up to its own lock_timeout) rather than computing it again.
      DEFAULT_LEASE = 10.0

      private

      # The value of +name+ (+key+ is its [normalized key, version]): the
      # block's (it computes and writes it) when this process's lease wins or
      # no lease can be had, else another process's, read once its lease ends.
      def computed_once(name, key, options, &)
        seconds = lease_seconds(options)
        claim = claim_lease(key, seconds) if seconds && !options[:force]
        return yield unless claim

        deadline = monotonic + [seconds, lock_timeout(options)].min
        waited = false
        loop do
          standing = lease_standing(key, claim, deadline)
          waited = count_standing(standing, waited)
          return computed_after_winning(name, key, options, &) if standing == :won
          # Undecided, or the wait ran out: computed here.
          return yield unless standing == :free

          found = value_after_lease(key, options)
          return taken_from_lease(name, found, options) unless MISS.equal?(found)

          # Released with no value (its block raised): claim again.
          @node.release_lease(key[0], claim)
          claim = claim_lease(key, seconds)
          return yield unless claim
        end
      ensure
        @node.release_lease(key[0], claim) if claim
      end

      # The block's value for a claim that won, unless a value arrived from
      # another process between this fetch's miss and its lease's echo (its
      # release came before this lease on the bus, so its write did too).
      def computed_after_winning(name, key, options)
        found = left_in_l1(key, options)
        MISS.equal?(found) ? yield : fetch_hit_from_flight(name, found, options, source: :lease)
      end

      # A value another process computed, read once its lease ended.
      def taken_from_lease(name, value, options)
        @lease_counts.bump(:lease_taken)
        fetch_hit_from_flight(name, value, options, source: :lease)
      end

      # Counts what +standing+ says of a fetch's lease; returns whether the
      # fetch has waited for another process (+waited+: it had already).
      def count_standing(standing, waited)
        case standing
        when :won then @lease_counts.bump(:lease_won)
        when :undecided then @lease_counts.bump(:lease_undecided)
        when :waiting then @lease_counts.bump(:lease_wait_timeouts)
        end
        return waited if waited || %i[won undecided].include?(standing)

        @lease_counts.bump(:lease_waits)
        true
      end

      # Announces a lease on +key+ for +seconds+; its claim id, or nil when
      # the bus cannot settle one.
      def claim_lease(key, seconds)
        claim = @node.claim_lease(key[0], seconds)
        @lease_counts.bump(:lease_claims) if claim
        claim
      end

      # Where +claim+ stands (:won, :free, :undecided), waiting in short
      # slices (so that interrupts are served) until it stops waiting or
      # +deadline+ (monotonic) passes: then :waiting.
      def lease_standing(key, claim, deadline)
        loop do
          left = deadline - monotonic
          standing = @node.lease_standing(key[0], claim, left.clamp(0, Lifecycle::WAIT_SLICE))
          return standing unless standing == :waiting && left.positive?
        end
      end

      # What the process whose lease ended left for +key+: L1 (its write
      # arrived by value), else L2 (the write shipped as an invalidation, or
      # L1 cannot be used for it), else MISS.
      def value_after_lease(key, options)
        found = left_in_l1(key, options)
        return found unless MISS.equal?(found)

        entry = entry_from_l2(key[0], options)
        return MISS if entry.nil? || entry.expired? || entry.mismatched?(key[1])

        # A tagged value whose tags were invalidated since is not taken (MISS).
        untagged(entry.value)
      end

      # The call's +lease+ in seconds, or nil when leases are off.
      def lease_seconds(options)
        return @lease unless options.key?(:lease)

        lease_or_off(options[:lease], ArgumentError)
      end

      # +lease+ as seconds (a Float), or nil for nil and false.
      def lease_or_off(lease, error)
        return unless lease
        return lease.to_f if lease.is_a?(Numeric) && lease.positive?

        raise error, "lease: must be a number of seconds (more than 0), nil or false (got #{lease.inspect})"
      end
    end
  end
end
