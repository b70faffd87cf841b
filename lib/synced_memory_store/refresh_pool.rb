# frozen_string_literal: true

module SyncedMemoryStore
  # The background work of refresh-ahead (see Store::RefreshAhead): a bounded
  # queue of refreshes, run by at most THREADS threads, one refresh per key
  # at a time.
  #
  # Bounds: nothing here ever blocks the thread that offers a refresh, and the
  # work is bounded. A key already queued or running is not queued again; a
  # full queue turns the offer down. Either way the offer is counted as
  # skipped, and the next hit on the key offers again. Threads are started on
  # the first offer (a store whose entries never enter their refresh window
  # starts none) and stay for the store's life.
  #
  # Lifecycle: #stop (from Store#close) closes the queue, drops what has not
  # started and waits, within its timeout, for the refreshes under way. A
  # forked child does not inherit threads: the store makes a new pool there
  # (Store#after_fork), and the parent's queue, its keys and its counters
  # stay behind with the parent.
  class RefreshPool
    # Threads that run refreshes. Two: one slow block does not hold up every
    # other key, and the work a hit can cause stays small.
    THREADS = 2

    # Refreshes that may wait for a thread.
    CAPACITY = 64

    # Counters for Store#stats: refreshes_ahead (blocks run and written),
    # refresh_ahead_skipped (refreshes not run: the key was queued or running
    # already, the queue was full, another process holds the key's lease, or
    # the entry had been refreshed or removed by the time its turn came) and
    # refresh_ahead_errors (blocks, or writes, that raised).
    COUNTERS = %i[refreshes_ahead refresh_ahead_skipped refresh_ahead_errors].freeze

    def initialize
      @lock = Mutex.new
      @queue = Thread::SizedQueue.new(CAPACITY)
      @keys = {}
      @threads = []
      @counts = COUNTERS.to_h { |name| [name, 0] }
    end

    # Queues the block as the refresh of +key+ unless one is queued or
    # running for it, the queue is full, or the pool is stopped; returns
    # whether it was queued. The block returns a counter name of COUNTERS
    # (what became of the refresh) and may raise (counted as an error).
    def offer(key, &refresh)
      @lock.synchronize do
        return skipped if @keys.key?(key) || @queue.closed?

        begin
          @queue.push([key, refresh], true)
        rescue ThreadError, ClosedQueueError
          return skipped
        end
        @keys[key] = true
        start_thread if @threads.size < THREADS && @queue.num_waiting.zero?
        true
      end
    end

    # Adds one to the counter +name+ (one of COUNTERS).
    def count(name)
      @lock.synchronize { @counts[name] += 1 }
    end

    # Adds the counters, and refreshes_in_flight (refreshes queued or
    # running now), to the Hash +stats+; returns it.
    def add_stats(stats)
      @lock.synchronize do
        stats.update(@counts)
        stats[:refreshes_in_flight] = @keys.size
      end
      stats
    end

    # Whether #stop was called.
    def stopped?
      @queue.closed?
    end

    # +compute+ (a refresh's block) made to throw +tag+ (with +tag+ as the
    # value) when it returns after #stop: a value computed then (the store
    # closing, the process exiting) is not written, since its change could
    # come after the store's last settle.
    def guard(compute, tag)
      proc { |*arguments| compute.call(*arguments).tap { throw tag, tag if stopped? } }
    end

    # Stops taking refreshes, drops the queued ones and waits up to
    # +timeout+ seconds for those under way. Idempotent.
    def stop(timeout)
      threads = @lock.synchronize do
        @queue.close
        @queue.clear
        @threads.dup
      end
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout.to_f
      threads.each { |thread| thread.join([deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max) }
      nil
    end

    private

    def skipped
      @counts[:refresh_ahead_skipped] += 1
      false
    end

    # Called with the lock held.
    def start_thread
      thread = Thread.new { work }
      thread.name = "synced_memory_store refresh-ahead"
      # A refresh's error is counted, never printed as a thread's death.
      thread.report_on_exception = false
      @threads << thread
    end

    def work
      while (job = @queue.pop)
        key, refresh = job
        begin
          run(refresh)
        ensure
          @lock.synchronize { @keys.delete(key) }
        end
      end
    end

    def run(refresh)
      count(refresh.call)
    rescue StandardError
      count(:refresh_ahead_errors)
    end
  end
end
