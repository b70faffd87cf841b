# frozen_string_literal: true

require "securerandom"
require_relative "timing"
require_relative "fixtures"

module Bench
  # L1 across a bus blip, with the channel's log off (every release before
  # bus_log:) and on. A writer and a reader process share a RedisCacheStore
  # L2 and a bus redis-server of their own (health_timeout 0.1 s, so a
  # 200 ms stall is noticed). The reader holds KEYS keys in L1 and reads them
  # at random, a read every READ_INTERVAL; the bus's server is stopped
  # (SIGSTOP) for OUTAGE seconds while the writer changes CHANGED of the keys,
  # then continued. Figures: the reader's L1 hit rate in the WINDOW before the
  # stop and in the WINDOW after the SIGCONT, and how many of the changes it
  # then reads (from L1, or at all). Each mode is run REPETITIONS times;
  # figures are medians.
  class Blip
    KEYS = 1000
    CHANGED = 50
    OUTAGE = 0.2
    WINDOW = 1.0
    READ_INTERVAL = 0.0002
    REPETITIONS = 3
    MODES = { "off" => false, "on" => true }.freeze

    Run = Struct.new(:before, :after, :applied, :applied_from_l1, :resumed, keyword_init: true)

    def initialize(fixtures, scale:)
      @fixtures = fixtures
      @repetitions = scale < 0.1 ? 1 : REPETITIONS
      @l2 = fixtures.redis
    end

    # { "off" => [Run, ...], "on" => [Run, ...] }, the modes' runs alternating.
    def run
      runs = MODES.keys.to_h { |mode| [mode, []] }
      @repetitions.times do
        MODES.each { |mode, log| runs[mode] << measure(log) }
      end
      runs
    end

    private

    def measure(log)
      bus = @fixtures.redis
      options = { redis: bus.url, channel: @fixtures.channel("blip"), bus_log: log,
                  cache: [:redis_cache_store, { url: @l2.url, namespace: "blip-#{SecureRandom.hex(4)}" }],
                  health_interval: 0.02, health_timeout: 0.1, reconnect_max: 0.05 }
      writer, reader = @fixtures.peers(:writer, :reader, **options)
      keys = (0...KEYS).map { |i| "blip:#{i}" }
      warm(writer, reader, keys)
      samples, paused, resumed = blip(bus, writer, reader, keys)
      outcome(reader, keys.first(CHANGED)).merge(before: hit_rate(samples, paused - WINDOW, paused),
                                                 after: hit_rate(samples, resumed, resumed + WINDOW))
                                          .then { |figures| Run.new(**figures) }
    ensure
      @fixtures.release(*[writer, reader].compact)
    end

    def warm(writer, reader, keys)
      writer.write_multi(keys.to_h { |key| [key, "v1"] })
      warm = Fixtures.wait_until(10) { keys.all? { |key| reader.l1_read(key) == [:hit, "v1"] } }
      raise "the reader's L1 never held every key" unless warm
    end

    # Reads while the bus is stopped for OUTAGE seconds and the writer changes
    # CHANGED keys; returns the reader's samples, when the stop began and
    # when it ended.
    def blip(bus, writer, reader, keys)
      reader.call_async(:hit_samples, keys, seconds: (2 * WINDOW) + OUTAGE + 0.3, interval: READ_INTERVAL)
      sleep WINDOW + 0.1 # the window measured before the stop
      paused = Timing.now
      bus.pause
      begin
        writer.write_multi(keys.first(CHANGED).to_h { |key| [key, "v2"] })
        Fixtures.wait_until(OUTAGE) { Timing.now - paused >= OUTAGE }
      ensure
        bus.resume
      end
      resumed = Timing.now
      [reader.await(WINDOW + 30), paused, resumed]
    end

    def outcome(reader, changed)
      stats = reader.stats
      { applied_from_l1: changed.count { |key| reader.l1_read(key) == [:hit, "v2"] },
        applied: changed.count { |key| reader.read(key) == "v2" }, resumed: stats[:resumed] }
    end

    # The share of reads between +from+ and +to+ answered from L1, from the
    # samples nearest inside the window.
    def hit_rate(samples, from, to)
      first = samples.find { |at, *| at >= from } or return Float::NAN
      last = samples.reverse.find { |at, *| at <= to } or return Float::NAN
      hits = last[1] - first[1]
      misses = last[2] - first[2]
      (hits + misses).positive? ? hits.fdiv(hits + misses) : Float::NAN
    end
  end
end
