# frozen_string_literal: true

module SyncedMemoryStore
  # The values being computed in this process after a cache miss, one Flight
  # per key: the first thread to miss a key runs the fetch block (the flight's
  # runner); the threads that miss the same key meanwhile board its flight and
  # wait for the value, each then taking a copy of it, instead of running the
  # block again. Store::SingleFlight decides which fetches fly; this class is
  # the table and its waiting.
  #
  # Invariants:
  # - The table holds a flight only while its runner's call is under way: the
  #   runner removes it (#finish, #finish! in an +ensure+) whatever ends the
  #   call (its block raised, its thread was killed). A flight whose runner thread died
  #   anyway (killed between its block and its +ensure+) is replaced by the next
  #   thread that finds it.
  # - A waiter never waits past its deadline; nobody waits while running a
  #   flight that has not landed (fetch_multi lands each key before computing
  #   the next), so waits cannot form a cycle within the table.
  # - One lock guards the table and every flight's state. It is held for
  #   bookkeeping only, never while a block runs, so a slow key does not hold
  #   up another; a read hit never takes it.
  # - A landed value is copied once, and only if some thread takes it: under
  #   the lock, before #finish, so before the runner's caller can change it.
  class Flights
    # A copy of a flight's value for the threads that take it: a new object on
    # every #value, as a cache read returns (values that cannot change —
    # nil, true, false, Integers, Floats, Symbols — are shared).
    class Copy
      SHARED = [NilClass, TrueClass, FalseClass, Integer, Float, Symbol].freeze
      private_constant :SHARED

      # A copy of +value+, or nil when Marshal cannot copy it (a value only a
      # user coder or a raw L2 write could store): then the waiters run the
      # block themselves, as they would without single-flight.
      def self.of(value)
        SHARED.include?(value.class) ? new(value, nil) : new(nil, Marshal.dump(value))
      rescue StandardError
        nil
      end

      def initialize(value, bytes)
        @value = value
        @bytes = bytes
      end

      # The value, as a new object.
      def value
        # Bytes this process dumped a moment ago, never bytes from outside.
        @bytes ? Marshal.load(@bytes) : @value # rubocop:disable Security/MarshalLoad
      end
    end

    # One key's computation by one thread (its runner). Its state changes
    # under the table's lock only.
    class Flight
      attr_reader :runner, :waiters

      def initialize
        @runner = Fiber.current
        @thread = Thread.current
        @landed = false
        @finished = false
        @waiters = 0
      end

      def landed?
        @landed
      end

      # Whether #finish removed it from the table.
      def finished?
        @finished
      end

      # Whether the runner's thread ended without finishing the flight.
      def stranded?
        !@thread.alive?
      end

      # Waits, +lock+ released meanwhile, until the flight lands or ends, or
      # +seconds+ pass.
      def wait(lock, seconds)
        @waiters += 1
        # Made by the first waiter: most flights have none.
        (@changed ||= ConditionVariable.new).wait(lock, seconds)
      ensure
        @waiters -= 1
      end

      # Lands +value+ (with its +copy+ when one was made already).
      def land(value, copy)
        @landed = true
        @value = value
        @copy = copy
        @changed&.broadcast
      end

      # The copy every taker of the landed value gets (nil: not copyable).
      def copy
        @copy ||= Copy.of(@value) || false
        @copy || nil
      end

      # Ends the flight once it left the table: a landed value is copied for
      # the waiters woken but not yet running, then let go of (the runner's
      # caller gets it next, and nobody else can board); the waiters of a
      # flight that did not land are woken, and one of them runs the block.
      def finish
        @finished = true
        if @landed
          copy if @waiters.positive?
          @copy ||= false
          @value = nil
        else
          @changed&.broadcast
        end
      end

      # Wakes the waiters of a flight replaced because its runner is gone.
      def abandon
        @changed&.broadcast
      end
    end

    def initialize
      @lock = Mutex.new
      @table = {}
      @waits = 0
      @wait_timeouts = 0
    end

    # Takes a seat on +key+'s flight. Returns a new Flight when there was none
    # (the caller runs the block, then calls #finish, always); a Copy of the
    # value when the flight landed before +deadline+ (a monotonic time); or nil
    # when the caller must run the block itself without a flight: the deadline
    # passed (the runner is slow), the value cannot be copied, the caller is
    # the runner (a block that fetches its own key), or +deadline+ is nil (a
    # forced fetch: it computes its own value, and leads only when nobody else
    # is computing one).
    def board(key, deadline)
      boarded = false
      @lock.synchronize do
        loop do
          flight = @table[key]
          return lead(key, flight) if flight.nil? || flight.stranded?
          return (flight.copy if flight.landed?) if flight.runner.equal?(Fiber.current)
          return if deadline.nil?

          @waits += 1 unless boarded
          boarded = true
          return flight.copy if flight.landed?
          return timed_out unless wait(flight, deadline)
          return flight.copy if flight.landed?
          # Woken without a value: the runner failed (board again: one waiter
          # leads) or nothing happened yet (wait again).
        end
      end
    end

    # Lands +flight+ with +value+ while its runner goes on (fetch_multi, which
    # writes every key at the end): its waiters, and every thread that boards
    # it until #finish, take a copy.
    def land(flight, value)
      # Copying can take a while for a large value: outside the lock when
      # somebody already waits.
      copy = Copy.of(value) if flight.waiters.positive?
      @lock.synchronize { flight.land(value, copy) }
    end

    # Removes +flight+ from the table, landing it with +value+ when one is
    # given. Without a value, a flight that has not landed ends unlanded: one
    # waiter runs the block next. Idempotent.
    def finish(key, flight, *value)
      landing = !value.empty? && !flight.landed?
      copy = Copy.of(value.first) if landing && flight.waiters.positive?
      @lock.synchronize do
        next if flight.finished?

        @table.delete(key) if @table[key].equal?(flight)
        flight.land(value.first, copy) if landing
        flight.finish
      end
    end

    # #finish for an +ensure+: a no-op when the flight was finished already,
    # else safe from a second interrupt (a Timeout, Thread#kill) arriving
    # while it runs, which would leave the key's flight in the table.
    def finish!(key, flight)
      return if flight.finished?

      Thread.handle_interrupt(Object => :never) { finish(key, flight) }
    end

    # Adds the counters for Store#stats to the Hash +stats+ (returned):
    # fetches that found another thread computing their key (and waited for
    # it, or took its value), waits that ran out (the fetch then ran its
    # block itself), and keys being computed now.
    def add_stats(stats)
      stats[:fetch_waits] = @waits
      stats[:fetch_wait_timeouts] = @wait_timeouts
      stats[:fetches_in_flight] = @table.size
      stats
    end

    private

    # A new flight for +key+, replacing one whose runner thread is gone (its
    # waiters are woken to board the new one).
    def lead(key, stranded)
      stranded&.abandon
      @table[key] = Flight.new
    end

    # Waits (the lock released meanwhile) until +flight+ changes or +deadline+
    # (monotonic) comes; false if it had already come.
    def wait(flight, deadline)
      left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      return false if left <= 0

      flight.wait(@lock, left)
      true
    end

    def timed_out
      @wait_timeouts += 1
      nil
    end
  end
end
