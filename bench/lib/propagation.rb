# frozen_string_literal: true

require_relative "timing"
require_relative "fixtures"
require_relative "propagation/series"

module Bench
  # Propagation latency: how long after a write BEGAN in one process the new
  # value is first seen by readers in other processes. A writer process
  # writes 1, 2, 3 … to one key, 2–5 ms apart (random), while reader processes
  # read that key in a loop (the Peer harness's Reader): a tight loop, or one
  # sleeping SLEEPY_INTERVAL between reads. Every process's store has its own
  # MemoryStore L2, so a value can only reach a reader over the bus. One reader
  # process, then READERS of them at once; each series REPETITIONS times. All
  # times are CLOCK_MONOTONIC, one clock for every process of the machine.
  # What a configuration measured is a Propagation::Series (propagation/series.rb).
  class Propagation
    SLEEPY_INTERVAL = 0.0001
    READERS = 8
    WRITES = 1000
    WARM_UP = 20
    REPETITIONS = 3

    # +bus+ is the stores' redis: option; +reader_counts+ the numbers of
    # reader processes measured (each tight and sleeping).
    # +repetitions+: runs of each series (REPETITIONS, or 1 for a smoke run).
    def initialize(fixtures, bus:, scale:, reader_counts: [1, READERS], repetitions: nil)
      @fixtures = fixtures
      @bus = bus
      @reader_counts = reader_counts
      @writes = [(WRITES * scale).round, 50].max
      @repetitions = repetitions || Propagation.repetitions(scale)
      @rng = Random.new(42)
    end

    # The series: for each number of readers, a tight and a sleeping reader.
    def run
      options = { redis: @bus, channel: @fixtures.channel("propagation"), cache: :memory_store }
      peers = @fixtures.peers(:writer, *(1..@reader_counts.max).map { |i| "reader-#{i}" })
      @writer, *readers = peers
      @fixtures.open_store(@writer, **options)
      opened = 0
      @reader_counts.flat_map do |count|
        readers[opened...count].each { |peer| @fixtures.open_store(peer, **options) }
        opened = count
        %i[tight sleepy].map { |mode| series(readers.first(count), mode) }
      end
    ensure
      @fixtures.release(*peers) if peers
    end

    # How many times each series runs at +scale+.
    def self.repetitions(scale)
      scale < 0.1 ? 1 : REPETITIONS
    end

    # One run: +writer+ (a Peer with its store open) writes 1, 2, 3 … to +key+
    # while +readers+ read it in +mode+ (:tight or :sleepy); returns the Run.
    # (bench/compare runs it for two builds in turn.)
    def run_once(writer, readers, mode, key)
      max_seconds = (@writes * 0.02) + 60
      readers.each do |reader|
        reader.start_reader(key, mode: mode, interval: SLEEPY_INTERVAL, max_seconds: max_seconds)
      end
      writer.write_series(key, (-WARM_UP..-1).to_a, Array.new(WARM_UP, 0.002)) # loads the code paths; not counted
      gaps = Array.new(@writes) { 0.002 + (@rng.rand * 0.003) }
      writes = writer.write_series(key, (1..@writes).to_a, gaps, within: max_seconds)
      readers.each { |reader| Fixtures.wait_until(5) { reader.l1_read(key) == [:hit, @writes] } }
      analyse(writes, readers.map(&:stop_reader))
    end

    private

    def series(readers, mode)
      runs = Array.new(@repetitions) do |repetition|
        run_once(@writer, readers, mode, "propagation-#{mode}-#{readers.size}-#{repetition}")
      end
      Series.new(readers: readers.size, mode: mode, writes: @writes, runs: runs)
    end

    def analyse(writes, records)
      latencies = []
      visible = []
      after_return = []
      missed = missed_in_pause = 0
      records.each do |record|
        seen = first_seen(record[:runs])
        writes.each_with_index do |(value, started, returned), index|
          if (at = seen[value])
            latencies << (at - started)
            applied = record[:applied_at][value]
            # A stamp from before the write belongs to an earlier change: the
            # reader saw this one between its apply and its stamp.
            visible_at = applied && applied >= started ? [applied, at].min : at
            visible << (visible_at - started)
            after_return << (visible_at - returned)
          else
            missed += 1
            missed_in_pause += 1 if paused_meanwhile?(record[:pauses], writes, index, seen)
          end
        end
      end
      Run.new(latencies: latencies, visible: visible, after_return: after_return,
              write_calls: writes.map { |_value, started, returned| returned - started },
              missed: missed, missed_in_pause: missed_in_pause,
              read_periods: records.map { |record| read_period(record) }, max_gap: records.map { |r| r[:max_gap] }.max)
    end

    # { value => end of the first read that returned it }.
    def first_seen(runs)
      runs.each_with_object({}) { |(value, _start, first_end, _last, _reads), seen| seen[value] ||= first_end }
    end

    # Whether the reader paused (gaps over 1 ms, plus twice the interval of a
    # sleeping reader) between
    # the write returning and the reader seeing a later value: the update may
    # have come and gone meanwhile.
    def paused_meanwhile?(pauses, writes, index, seen)
      returned = writes[index][2]
      later = writes[(index + 1)..].lazy.filter_map { |value, _, _| seen[value] }.first || Float::INFINITY
      pauses.any? { |from, to| from < later && to > returned }
    end

    def read_period(record)
      runs = record[:runs]
      reads = runs.sum(&:last)
      reads > 1 ? (runs.last[3] - runs.first[1]) / (reads - 1) : Float::NAN
    end
  end
end
