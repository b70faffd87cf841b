# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # Single-flight fetch: when threads of this process miss the same key in
    # #fetch or #fetch_multi at once, one runs the block and the others wait
    # for its value (each gets a copy) instead of running it again; see
    # Flights for the table and its waiting. Keys are the normalized key and
    # version, so namespaces and versions never share a value.
    #
    # Only a miss (the block is about to run) touches the table: hits never
    # take its lock. A waiter waits at most +lock_timeout+ seconds (the
    # store's, or the call's; nil or false turn single-flight off), then runs
    # the block itself. A block that raises fails its own thread only: one
    # waiter then runs the block, and a failure is never handed to another
    # thread. A forced fetch (+force:+, +force_miss:+) never takes another
    # thread's value: it runs its own block, leading a flight only when no
    # other thread is computing the key.
    #
    # A waiter's #fetch reports <tt>cache_read</tt> as the miss it was, then
    # <tt>cache_fetch_hit</tt> with <tt>source: :flight</tt> (not
    # <tt>cache_generate</tt>, nor a write: the runner wrote the value).
    # #fetch_multi writes only the values its own thread computed.
    module SingleFlight
      # Default +lock_timeout+ (seconds).
      DEFAULT_LOCK_TIMEOUT = 5.0

      # Where a #fetch_multi keeps, for its own write_multi, the values it took
      # from other threads' flights (fiber-local: [store, { name => value }]).
      TAKEN = :__synced_memory_store_taken
      private_constant :TAKEN

      # Fetches +names+, running the block once per name missing from the
      # cache; see ActiveSupport::Cache::Store#fetch_multi. A name another
      # thread is computing is waited for (see SingleFlight); with several
      # threads missing overlapping names, each name's block runs once.
      def fetch_multi(*names, &block)
        return super unless block

        call_options = names.last if names.last.is_a?(Hash) && names.last.extractable_options?
        multi = nil
        super do |name|
          multi ||= multi_fetch(call_options)
          multi.value(name, &block)
        end
      ensure
        multi&.finish
      end

      private

      # ActiveSupport's hook for a fetch whose read missed:
      # (name, options) before 7.2, (name, key, options) since.
      def save_block_result_to_cache(name, *key_and_options)
        options = key_and_options.last
        timeout = lock_timeout(options)
        return super unless timeout

        key = [key_and_options.size > 1 ? key_and_options.first : normalize_key(name, options),
               normalize_version(name, options)]
        flights = current_flights
        seat = flights.board(key, options[:force] ? nil : monotonic + timeout)
        case seat
        when Flights::Flight
          run_flight(flights, key, seat) do
            found = left_in_l1(key, options)
            if MISS.equal?(found)
              computed_once(name, key, options) { super }
            else
              fetch_hit_from_flight(name, found, options)
            end
          end
        when Flights::Copy then fetch_hit_from_flight(name, seat.value, options)
        else super
        end
      end

      # Runs +flight+ (the block gives its value) and ends it, landed with the
      # value, or unlanded (one waiter then runs the block) however the block
      # ends.
      def run_flight(flights, key, flight)
        value = yield
        flights.finish(key, flight, value)
        value
      ensure
        flights.finish!(key, flight)
      end

      # What L1 holds for +key+ now, or MISS, for a fetch about to run its
      # block: a runner that finished after this fetch's read missed has left
      # its value there, which is not computed again. Not for a forced fetch
      # (it computes its own value), nor with race_condition_ttl (L1 holds the
      # stale value the fetch itself just put back), nor with a coder (whose
      # entries are judged in Ruby, where this look would count a second
      # miss). Counts a hit only: the fetch's read counted its miss.
      def left_in_l1(key, options)
        return MISS if @entry_coder || options[:force] || options[:race_condition_ttl]

        untagged(@node.read_hit(key[0], key[1], MISS))
      end

      # A fetch that got its value from another thread's computation (waited
      # for, or found in L1 just after): a fetch hit, <tt>source: :flight</tt>
      # (<tt>:lease</tt> for another process's, see FetchLease).
      def fetch_hit_from_flight(name, value, options, source: :flight)
        instrument(:fetch_hit, name, options.merge(source: source)) { nil }
        value
      end

      # The call's +lock_timeout+ in seconds, or nil when single-flight is off.
      def lock_timeout(options)
        return @lock_timeout unless options.key?(:lock_timeout)

        seconds_or_off(options[:lock_timeout], ArgumentError)
      end

      # +lock_timeout+ as seconds (a Float), or nil for nil and false.
      def seconds_or_off(timeout, error)
        return unless timeout
        return timeout.to_f if timeout.is_a?(Numeric) && timeout >= 0

        raise error, "lock_timeout: must be a number of seconds (0 or more), nil or false (got #{timeout.inspect})"
      end

      # The flights of this process (a forked child gets its own first: the
      # parent's runners do not exist there).
      def current_flights
        after_fork if inherited?
        @flights
      end

      # +hash+ without the values a #fetch_multi under way took from other
      # threads' flights (their runners write them): what ActiveSupport's
      # fetch_multi passes to #write_multi.
      def unflown(hash)
        store, taken = Thread.current[TAKEN]
        return hash unless store.equal?(self) && !taken.empty?

        hash.reject { |name, value| taken.key?(name) && taken[name].equal?(value) }
      end

      # The part in the flights of a #fetch_multi that missed (none with
      # single-flight off).
      def multi_fetch(call_options)
        options = merged_options(call_options)
        timeout = lock_timeout(options)
        return MultiFetch.new(self, nil) unless timeout

        key_for = ->(name) { [normalize_key(name, options), normalize_version(name, options)] }
        found = ->(key) { left_in_l1(key, options) }
        MultiFetch.new(self, current_flights, options[:force] ? nil : monotonic + timeout, key_for, found)
      end

      # One #fetch_multi's part in the flights: the keys it runs, landed as each
      # value is computed (so it never waits while holding a key others wait
      # for) and finished once the call has written them; one deadline for all
      # its waits. The values it takes from other threads' flights (or finds
      # they left in L1, see #left_in_l1) are kept, fiber-locally while it
      # lasts, out of its write_multi.
      class MultiFetch
        def initialize(store, flights, deadline = nil, key_for = nil, found = nil)
          @store = store
          @flights = flights
          @deadline = deadline
          @key_for = key_for
          @found = found
          @running = []
          @taken = {}
          @outer = Thread.current[TAKEN]
          Thread.current[TAKEN] = [store, @taken] if flights
        end

        # The value for +name+: computed by the block, or taken from another
        # thread's flight.
        def value(name, &)
          return yield(name) unless @flights

          key = @key_for.call(name)
          seat = @flights.board(key, @deadline)
          case seat
          when Flights::Flight then run(key, seat, name, &)
          when Flights::Copy then @taken[name] = seat.value
          else user_block(name, &)
          end
        end

        # Ends every flight this call ran (after its write, or its failure).
        def finish
          return unless @flights

          Thread.current[TAKEN] = @outer
          @running.each { |key, flight| @flights.finish!(key, flight) }
        end

        private

        def run(key, flight, name, &)
          @running << [key, flight]
          value = @found.call(key)
          if MISS.equal?(value)
            value = user_block(name, &)
          else
            @taken[name] = value
          end
          @flights.land(flight, value)
          value
        end

        # Runs the caller's block with the taken values out of sight, so that a
        # write_multi inside it is written whole.
        def user_block(name)
          Thread.current[TAKEN] = @outer
          yield(name)
        ensure
          Thread.current[TAKEN] = [@store, @taken]
        end
      end
      private_constant :MultiFetch
    end
  end
end
