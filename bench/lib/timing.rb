# frozen_string_literal: true

module Bench
  # Timing helpers. Every figure is the median of several repetitions, and the
  # stores compared in one figure are measured interleaved (A, B, C, A, B, C …)
  # so that drift on a noisy machine hits them alike.
  module Timing
    module_function

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # Seconds per call of the block: the median over +repetitions+ runs of
    # +iterations+ calls each.
    def per_call(iterations:, repetitions:, &block)
      samples = Array.new(repetitions) do
        started = now
        iterations.times { block.call }
        (now - started) / iterations
      end
      median(samples)
    end

    # How many calls of +block+ take about +seconds+ (at least 10).
    def calibrate(seconds, &block)
      calls = 0
      started = now
      while now - started < seconds / 10
        block.call
        calls += 1
      end
      [(calls * 10), 10].max
    end

    # Runs each labelled block as one repetition in turn, +repetitions+ times,
    # each repetition about +seconds+ long, and returns { label => median
    # seconds per call }.
    def interleaved(cases, seconds:, repetitions:)
      counts = cases.transform_values { |block| calibrate(seconds, &block) }
      samples = Hash.new { |hash, label| hash[label] = [] }
      repetitions.times do
        cases.each do |label, block|
          GC.start
          count = counts[label]
          started = now
          count.times { block.call }
          samples[label] << ((now - started) / count)
        end
      end
      samples.transform_values { |values| median(values) }
    end

    def median(values)
      sorted = values.sort
      mid = sorted.size / 2
      sorted.size.odd? ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2.0
    end

    # The +fraction+ percentile of +values+ (nearest rank).
    def percentile(values, fraction)
      percentile_of_sorted(values.sort, fraction)
    end

    # As #percentile, for values already sorted.
    def percentile_of_sorted(sorted, fraction)
      sorted[((sorted.size * fraction).ceil - 1).clamp(0, sorted.size - 1)]
    end
  end
end
