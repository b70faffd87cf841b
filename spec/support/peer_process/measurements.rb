# frozen_string_literal: true

class PeerProcess
  # What this process measures of itself: its monotonic clock (now), its
  # native sms- threads (sms_threads), its resident set size (rss, peak_rss),
  # the latency of a read loop on one key (read_latency) and how the L1 hits
  # of a read loop over many keys go over time (hit_samples).
  module Measurements
    private

    def command_now
      monotonic
    end

    # Native threads of this process whose name starts with "sms-" (the bus
    # threads of every store).
    def command_sms_threads
      Dir.glob("/proc/self/task/*/comm").count do |comm|
        File.read(comm).start_with?("sms-")
      rescue Errno::ENOENT, Errno::ESRCH
        false
      end
    end

    # This process's resident set size (VmRSS, bytes) after a full garbage
    # collection (and, with compact: true, GC.compact), so that Ruby's garbage
    # counts as little as it can.
    def command_rss(compact: true)
      GC.start
      if compact
        GC.compact
        GC.start
      end
      File.read("/proc/self/status")[/^VmRSS:\s+(\d+) kB/, 1].to_i * 1024
    end

    # The largest resident set size this process has had (VmHWM, bytes).
    def command_peak_rss
      File.read("/proc/self/status")[/^VmHWM:\s+(\d+) kB/, 1].to_i * 1024
    end

    # Reads +key+ over and over on this thread for +seconds+, timing each read.
    # Returns { reads:, seconds:, p50:, p99:, max: (seconds per read), and the
    # increase of the store's l1_hits, applied and received counters meanwhile }.
    def command_read_latency(key, seconds:)
      before = store.stats
      samples = []
      started = monotonic
      deadline = started + seconds
      while (read_start = monotonic) < deadline
        store.read(key)
        samples << (monotonic - read_start)
      end
      elapsed = monotonic - started
      after = store.stats
      samples.sort!
      { reads: samples.size, seconds: elapsed, p50: samples[samples.size / 2],
        p99: samples[(samples.size * 0.99).ceil - 1], max: samples.last,
        **%i[l1_hits applied received].to_h { |counter| [counter, after[counter] - before[counter]] } }
    end

    # Reads +keys+ at random, sleeping +interval+ between reads, for +seconds+;
    # returns [[monotonic time, l1_hits, l1_misses], ...] taken every +every+
    # seconds (and at the end), from which a window's hit rate is the
    # difference of two samples.
    def command_hit_samples(keys, seconds:, interval:, every: 0.01)
      rng = Random.new(7)
      samples = []
      deadline = monotonic + seconds
      next_sample = 0
      while (now = monotonic) < deadline
        if now >= next_sample
          samples << [now, *store.stats.values_at(:l1_hits, :l1_misses)]
          next_sample = now + every
        end
        store.read(keys[rng.rand(keys.size)])
        sleep interval
      end
      samples << [monotonic, *store.stats.values_at(:l1_hits, :l1_misses)]
    end
  end
end
