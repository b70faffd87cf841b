# frozen_string_literal: true

require_relative "fixtures"
require_relative "propagation"

module Bench
  # The propagation section's series for two builds of the gem, this checkout
  # and a +baseline+ checkout (built, with its own peer harness), measured in
  # turns: each segment is one short run of each build, in ABBA order, so that
  # both meet the same machine in the same minutes. On a shared 2-core VM whose
  # speed drifts by tens of percent between minutes, sequential runs of the
  # full section compare the drift as much as the builds; short interleaved
  # segments, pooled, compare the builds.
  #
  # Each build gets what the section gives it: its own redis-server, a writer
  # and eight reader processes, the readers beyond the first without a store
  # until the eight-reader series (as in Propagation#run). Every segment of a
  # build draws the same write gaps as the other build's.
  class Comparison
    BUILDS = %i[baseline current].freeze
    MODES = %i[tight sleepy].freeze
    READER_COUNTS = [1, Propagation::READERS].freeze

    # { [readers, mode, build] => [Propagation::Run, …] }, one Run per segment.
    attr_reader :runs

    def initialize(fixtures, baseline:, segments:, writes:, reader_counts: READER_COUNTS, progress: nil)
      @fixtures = fixtures
      @checkouts = { baseline: baseline, current: nil }
      @segments = segments
      @writes = writes
      @reader_counts = reader_counts
      @progress = progress
      @runs = Hash.new { |hash, key| hash[key] = [] }
    end

    def run
      builds = BUILDS.to_h { |build| [build, start(build)] }
      opened = 1
      @reader_counts.each do |count|
        builds.each_value { |build| build[:readers][opened...count].each { |peer| open_store(build, peer) } }
        opened = [opened, count].max
        @segments.times { |segment| measure_segment(builds, count, segment) }
      end
      self
    ensure
      @fixtures.stop_all
    end

    private

    # A build's redis-server and processes; the writer and the first reader
    # with their stores open.
    def start(build)
      bus = @fixtures.redis
      names = [:"#{build}-writer", *(1..Propagation::READERS).map { |i| :"#{build}-reader-#{i}" }]
      writer, *readers = @fixtures.peers(*names, checkout: @checkouts.fetch(build))
      options = { redis: bus.url, channel: @fixtures.channel("compare-#{build}"), cache: :memory_store }
      propagation = Propagation.new(@fixtures, bus: bus.url, scale: @writes.fdiv(Propagation::WRITES), repetitions: 1)
      started = { propagation: propagation, writer: writer, readers: readers, options: options }
      [writer, readers.first].each { |peer| open_store(started, peer) }
      started
    end

    def open_store(build, peer)
      @fixtures.open_store(peer, **build[:options])
    end

    def measure_segment(builds, count, segment)
      order = segment.even? ? BUILDS : BUILDS.reverse
      MODES.each do |mode|
        order.each do |name|
          build = builds.fetch(name)
          key = "compare-#{count}-#{mode}-#{segment}"
          @runs[[count, mode, name]] << build[:propagation].run_once(build[:writer], build[:readers].first(count), mode,
                                                                     key)
        end
      end
      @progress&.call(count, segment + 1, @segments)
    end
  end
end
