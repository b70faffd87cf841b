# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # The store's life around its native node: the bus's state, waiting for
    # it, settling what this process changed, closing, forks, and the thread
    # that publishes the bus's events (BusEvents).
    module Lifecycle
      # How long #wait_for_connection, #flush_sync, #settle and #close wait in
      # one native call: short, so that Ruby can deliver interrupts (Ctrl-C,
      # Thread#raise) between calls.
      WAIT_SLICE = 0.05

      # Share of #settle's time spent waiting for echoes; the rest publishes
      # the invalidations of what did not come back.
      ECHO_SHARE = 0.8

      # Share of a close's or exit's time given to refreshes-ahead under way.
      REFRESH_SHARE = 0.2

      # Stands in for the node of a closed store: every use raises.
      class ClosedNode
        def method_missing(*)
          raise ClosedError, "this SyncedMemoryStore::Store was closed"
        end

        def respond_to_missing?(*)
          true
        end
      end
      private_constant :ClosedNode

      # Counters and state: :l1_hits, :l1_misses, :l2_hits, :l2_misses,
      # :l1_entries, :l1_bytes, :l1_budget; and for the bus :published (changes
      # sent), :published_directly (of those, the ones the thread that made
      # them sent, the publisher thread being idle), :received (messages, own
      # echoes included), :applied (changes), :rejected (messages not applied:
      # garbage, forged, replayed, unreadable),
      # :missed (times L1 was dropped because a message that may have carried
      # a change could not be read), :reconnects, :resumed (of those, the ones
      # that kept L1, the channel's log holding what was missed), :replayed
      # (messages applied from that log), :dropped (changes lost to a
      # full queue, replaced by a clear), :conflicts (concurrent writes
      # invalidated everywhere), :undecodable (entries this process could not
      # decode, read as misses), :invalidated (keys invalidated because a
      # change ended unfinished or unsettled), :queued, :pending, :connected,
      # :trusted (whether reads may use L1 now) and :last_applied_at; and for
      # single-flight fetches (see SingleFlight) :fetch_waits (fetches that
      # found another thread computing their key), :fetch_wait_timeouts (of
      # those, the ones that ran their block after lock_timeout) and
      # :fetches_in_flight (keys being computed now); and for the leases that
      # settle which process computes a key (see FetchLease) the counters of
      # LeaseCounts.
      def stats
        @lease_counts.add_stats(@flights.add_stats(@node.stats))
      end

      # Whether the subscription to the bus is up (always false with sync off).
      def connected?
        @node.connected?
      end

      # Waits up to +timeout+ seconds for the subscription to the bus; true, or
      # raises SyncedMemoryStore::ConnectionError. Construction never waits: the
      # store works as a two-level store until the bus is up.
      def wait_for_connection(timeout = 5)
        raise ConnectionError, "this store has sync: false, so it has no bus to connect to" unless @node.sync?
        return true if wait_in_slices(timeout) { |slice| @node.wait_for_connection(slice) }

        cause = @node.stats[:last_error]
        raise ConnectionError, "not subscribed to #{@node.bus_description} within #{timeout}s#{": #{cause}" if cause}"
      end

      # Waits up to +timeout+ seconds until every change this process queued for
      # the bus has been published; true, or raises SyncedMemoryStore::ConnectionError.
      def flush_sync(timeout = 5)
        return true if wait_in_slices(timeout) { |slice| @node.flush(slice) }

        raise ConnectionError, "queued changes not published to #{@node.bus_description} within #{timeout}s"
      end

      # Waits up to +timeout+ seconds until every change this store made has
      # been published and has come back over the bus (the moment a conflict
      # with another writer is noticed and its invalidation sent). The keys
      # of changes that have not (the bus is down, or time ran out) are
      # invalidated in every process instead. Returns whether everything
      # settled. Called for every open store at exit, and by #close.
      def settle(timeout = 5)
        node = bus_node
        settle_node(node, timeout)
      end

      # Settles (see #settle), stops the bus threads and makes the store
      # unusable: any later call raises SyncedMemoryStore::ClosedError.
      # Changes still under way in other threads are waited for, within
      # +timeout+. Idempotent.
      def close(timeout = 5)
        return if @closed

        deadline = monotonic + timeout.to_f
        # Refreshes under way write through the node: they end (or are given
        # up on: one that finishes later writes nothing) while it is still
        # open, so that their leases are released and their changes settle.
        stop_refreshes(timeout) unless inherited?
        @closed = true
        node = @node
        @node = ClosedNode.new
        bus_events = @bus_events
        # A node inherited through a fork that bypassed Process._fork has no
        # threads here, and its locks may be held by threads that are gone.
        return if inherited?

        settle_node(node, deadline - monotonic)
        wait_in_slices(deadline - monotonic) { |slice| node.close(slice) }
        bus_events&.stop
        nil
      end

      # Stops the background refreshes (refresh_ahead:): queued ones are
      # dropped, those under way are waited for up to REFRESH_SHARE of
      # +timeout+ seconds (the time a close or exit has), and one that
      # finishes later writes nothing. Called by #close and at exit
      # (SyncedMemoryStore.settle_all); the store is not refreshed ahead
      # after it.
      def stop_refreshes(timeout)
        @refresh_pool.stop([timeout.to_f * REFRESH_SHARE, 0].max)
      end

      # Whether #close was called.
      def closed?
        @closed ? true : false
      end

      # A summary with sizes; never shows connection credentials or secrets.
      def inspect
        return "#<#{self.class.name} closed>" if @closed

        stats = @node.stats
        signed = " signed" if @node.signed?
        bus = @node.sync? ? "#{@node.bus_description}#{signed} connected=#{stats[:connected]}" : "off"
        "#<#{self.class.name} entries=#{stats[:l1_entries]} size=#{stats[:l1_bytes]} " \
          "budget=#{stats[:l1_budget]} l2=#{@l2 ? @l2.description : "none"} sync=#{bus} options=#{@options.inspect}>"
      end

      # Whether this store was created in another process (a parent) and has not
      # been given its own node here yet. (The native side counts every fork(),
      # including forks that bypass Process._fork, so this costs no system call.)
      def inherited?
        @forks != Node.forks
      end

      # In a forked child: a new node (threads, connections, id) replaces the one
      # inherited from the parent, whose threads did not survive the fork. Called
      # by the Process._fork hook, and before any change when the fork count
      # moved.
      def after_fork
        return if @closed || !inherited?

        inherited = @node
        @node = inherited.respawn
        inherited.abandon_after_fork
        @forks = Node.forks
        @counter_lock = Mutex.new
        # The parent's runners did not survive the fork: a child that waited
        # for them would wait for nothing.
        @flights = Flights.new
        # Counted afresh, as the new node's counters are (and the parent's
        # back-offs are its own).
        @lease_counts = LeaseCounts.new
        @refreshes = FailedRefreshes.new
        # The parent's refresh threads did not survive the fork, nor may the
        # child run the refreshes its parent queued.
        @refresh_pool = RefreshPool.new
        # The parent's event thread did not survive the fork.
        start_bus_events
      end

      private

      # The node, after making sure the store is open (before L2 is touched) and
      # that the node belongs to this process: a fork that bypassed Process._fork
      # is caught here, before anything is published.
      def bus_node
        raise ClosedError, "this SyncedMemoryStore::Store was closed" if @closed

        after_fork if inherited?
        @node
      end

      def settle_node(node, timeout)
        deadline = monotonic + timeout.to_f
        settled = wait_in_slices(timeout.to_f * ECHO_SHARE) { |slice| !node.wait_settled(slice).equal?(false) }
        settled &&= node.wait_settled(0)
        node.invalidate_unsettled unless settled
        wait_in_slices(deadline - monotonic) { |slice| node.flush(slice) }
        settled ? true : false
      end

      # Publishes the node's bus events (see BusEvents), with sync on.
      def start_bus_events
        @bus_events = (BusEvents.new(@node, @node.bus_description) if @node.sync?)
      end

      # Calls the block with short timeouts until it returns true or +timeout+
      # seconds have passed; returns whether it returned true.
      def wait_in_slices(timeout)
        deadline = monotonic + timeout.to_f
        loop do
          left = deadline - monotonic
          return true if yield(left.clamp(0, WAIT_SLICE))
          return false if left <= 0
        end
      end

      def monotonic
        Process.clock_gettime(Process::CLOCK_MONOTONIC)
      end
    end
  end
end
