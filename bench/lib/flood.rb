# frozen_string_literal: true

require_relative "fixtures"
require_relative "micro"
require_relative "flood/result"
require_relative "flood/capacity"

module Bench
  # Bus apply throughput, and what applying costs the Ruby threads of the
  # process that applies. Two peer processes on a bus redis-server of their
  # own, each with an L1-only synced store: the flooder writes as fast as one
  # Ruby thread can, or at a fixed rate (bench/run --flood-rate), single
  # writes, which flood harder than write_multi, over KEYS keys,
  # VALUE_BYTES-byte values; the applier applies every change on its native
  # subscriber thread. A fixed rate compares two builds under the same load,
  # whichever writes faster.
  #
  # Each figure is the median of REPETITIONS rounds.
  #
  # * Live: the flooder floods; the applier's stats[:applied] increase is
  #   taken over a window with the applier idle and over a window while one of
  #   its Ruby threads reads one cached key (the bench's small Hash) in a loop,
  #   timing each read. The same reads are timed without a flood first, and
  #   during the same flood on another channel (the same load on the machine's
  #   CPUs from the flooder and Redis, but nothing for the applier to apply),
  #   which separates what applying costs the reader from what sharing two
  #   cores with the flooder costs it. The live rate cannot exceed the
  #   flooder's.
  # * Capacity: the applier is stopped (SIGSTOP) while the flooder floods a
  #   channel of their own, so a backlog waits in Redis (the bus server's
  #   pub/sub output buffer limit is lifted) and in the applier's socket;
  #   capacity = changes / time from continuing the applier (SIGCONT) until
  #   its stats[:applied] shows all of them (polled every millisecond).
  #
  # The capacity half is Flood::Capacity (flood/capacity.rb); the figures are
  # a Flood::Result (flood/result.rb).
  class Flood
    KEYS = 10_000
    VALUE_BYTES = 32
    WINDOW = 2.0
    REPETITIONS = 3
    BACKLOG_SECONDS = 2.0
    RAMP = 0.5
    HOT_KEY = "hot"

    include Capacity

    # +rate+: changes per second of the live floods (nil: as fast as the
    # flooder can); the capacity's backlog is always written as fast as it can.
    def initialize(fixtures, scale:, rate: nil)
      @fixtures = fixtures
      @rate = rate
      @window = [WINDOW * scale, 0.5].max
      @backlog_seconds = [BACKLOG_SECONDS * scale, 0.5].max
      @repetitions = scale < 0.1 ? 1 : REPETITIONS
    end

    # Measures the live figures, then the capacity; returns a Result.
    def run
      @bus = @fixtures.redis
      @bus.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0")
      @flooder, @applier = @fixtures.peers(:flooder, :applier, redis: @bus.url, channel: @fixtures.channel("flood"))
      @fixtures.open_store(@flooder, name: :elsewhere, redis: @bus.url, channel: @fixtures.channel("flood-elsewhere"))
      live.merge(capacity).then do |figures|
        Result.new(window: @window, rounds: @repetitions, fixed_rate: @rate, **figures)
      end
    ensure
      @fixtures.release(*[@flooder, @applier].compact)
    end

    private

    # REPETITIONS rounds of: reads timed without a flood, then a flood with
    # a window of the applier idle and one of it reading, then reads timed
    # during a flood on another channel. Medians of the rounds.
    def live
      @applier.write(HOT_KEY, Micro::HASH)
      @applier.flush_sync
      read_latency(0.2) # warm-up
      rounds = Array.new(@repetitions) { live_round }
      figures = rounds.first.keys.to_h { |name| [name, median_of(rounds.map { |round| round[name] })] }
      figures.merge(caught_up: caught_up?, applier_stats: @applier.stats)
    end

    def live_round
      quiet = read_latency(@window)
      flood_seconds = RAMP + (2 * @window) + RAMP
      @flooder.call_async(:flood, seconds: flood_seconds, keys: KEYS, value_bytes: VALUE_BYTES, rate: @rate)
      sleep RAMP
      idle_rate = applied_per_second { sleep @window }
      flooded = read_latency(@window)
      flood = @flooder.await(flood_seconds + 60)
      { flood_rate: flood[:changes] / flood[:seconds], flood_holds: flood[:holds], idle_rate: idle_rate, quiet: quiet,
        flooded: flooded, reading_rate: flooded[:applied] / flooded[:seconds], elsewhere: flooded_elsewhere }
    end

    # Reads timed while the flooder floods a channel the applier does not
    # listen to.
    def flooded_elsewhere
      flood_seconds = RAMP + @window + RAMP
      @flooder.call_async(:flood, seconds: flood_seconds, keys: KEYS, value_bytes: VALUE_BYTES, rate: @rate,
                                  store: :elsewhere)
      sleep RAMP
      read_latency(@window).tap do |figures|
        @flooder.await(flood_seconds + 60)
        raise "the applier applied changes from another channel" unless figures[:applied].zero?
      end
    end

    # The median of numbers, or of each figure of Hashes of numbers.
    def median_of(values)
      return Timing.median(values) unless values.first.is_a?(Hash)

      values.first.keys.to_h { |name| [name, Timing.median(values.map { |value| value[name] })] }
    end

    def read_latency(seconds)
      @applier.read_latency(HOT_KEY, seconds: seconds, within: seconds + 60).tap do |figures|
        raise "the applier's reads of #{HOT_KEY} missed L1" unless figures[:l1_hits] == figures[:reads]
      end
    end

    def applied_per_second
      before = @applier.stats[:applied]
      started = Timing.now
      yield
      (@applier.stats[:applied] - before) / (Timing.now - started)
    end

    # Whether the applier applied every change the flooder published, within 30 s.
    def caught_up?
      @flooder.flush_sync(30, within: 40)
      published = @flooder.stats[:published]
      Fixtures.wait_until(30) { @applier.stats[:applied] >= published }
    end
  end
end
