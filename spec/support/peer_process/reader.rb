# frozen_string_literal: true

class PeerProcess
  # A thread reading one key of a store over and over, until stopped or
  # +max_seconds+ pass. Without +interval+ it is a tight loop: no sleep, no IO,
  # so it holds the GVL but for Ruby's own thread switches; with one it sleeps
  # that long between reads. It records runs of equal values,
  # [value, first read's start, first read's end, last read's start, reads], in
  # CLOCK_MONOTONIC seconds (one clock for every process of the machine).
  class Reader
    # A tight reader records each time it went longer than this between two
    # reads (garbage collection, the OS running something else).
    PAUSE = 0.001

    attr_reader :runs, :last_start

    def initialize(store, key, interval:, max_seconds:)
      @store = store
      @applied_at = {}
      @key = key
      @interval = interval
      @deadline = monotonic + max_seconds
      @runs = []
      @pauses = []
      @max_gap = 0.0
      @last_start = nil
      @stop = false
      started = Queue.new
      @thread = Thread.new { run(started) }
      started.pop
    end

    # Whether the loop still runs (it ends by itself after +max_seconds+).
    def alive?
      @thread.alive?
    end

    # Stops the loop; returns { runs:, max_gap: (longest time between two read
    # starts), pauses: ([start, end] of each gap over PAUSE, plus the interval
    # for a sleeping reader), applied_at: ({ value => when this process's bus
    # thread applied the latest change, read as the value was first seen }),
    # gc_runs:, gc_ms: (garbage collection while it ran) }.
    def stop
      @stop = true
      @thread.join(10) or raise "the reader did not stop within 10 s"
      gc_count, gc_time = @gc
      { runs: @runs, max_gap: @max_gap, pauses: @pauses, applied_at: @applied_at, gc_runs: GC.count - gc_count,
        gc_ms: GC.stat(:time) - gc_time }
    end

    private

    def run(started)
      @gc = [GC.count, GC.stat(:time)]
      read_once
      started << true
      until @stop
        sleep @interval if @interval
        break unless read_once
      end
    ensure
      started << true
    end

    def read_once
      read_start = monotonic
      return false if read_start > @deadline

      value = @store.read(@key)
      record(value, read_start, monotonic)
      true
    end

    def record(value, read_start, read_end)
      run = @runs.last
      if run && run[0] == value
        run[3] = read_start
        run[4] += 1
      else
        @runs << [value, read_start, read_end, read_start, 1]
        @applied_at[value] ||= @store.stats[:last_applied_at]
      end
      note_gap(read_start)
    end

    def note_gap(read_start)
      if @last_start
        gap = read_start - @last_start
        @max_gap = gap if gap > @max_gap
        @pauses << [@last_start, read_start] if gap > PAUSE + (2 * (@interval || 0)) && @pauses.size < 10_000
      end
      @last_start = read_start
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
