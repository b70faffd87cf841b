# frozen_string_literal: true

require_relative "../format"
require_relative "../timing"

module Bench
  class Report
    # bench/compare's report: the propagation goals' figures for the baseline
    # and this checkout, each pooled over every segment of a build (all its
    # latencies together), their ratio, and how far the ratio can be trusted:
    # a 95% interval from resampling the segments (the same segment indices
    # for both builds, so that each resample keeps the pairs measured side by
    # side).
    class ComparisonTable
      RESAMPLES = 1000
      SERIES = [[1, :tight], [1, :sleepy], [8, :tight], [8, :sleepy]].freeze

      # +runs+: Comparison#runs, of +writes+ writes each; +baseline+ and
      # +current+ name the two builds.
      def initialize(runs, writes:, baseline:, current:, seed: 1)
        @runs = runs
        @writes = writes
        @baseline = baseline
        @current = current
        @random = Random.new(seed)
      end

      def to_s
        <<~MD.chomp
          ## Propagation, #{@current} against #{@baseline}, in interleaved segments

          #{segments_line}
          Latencies are from a write's start until the value is in the reader's L1 (`visible`, the figure the goals judge), pooled over every segment of a build. Ratio: this checkout / baseline; below 1 is faster. 95% interval: of the ratio over #{RESAMPLES} resamples of the segments.

          #{Format.table(["Figure", @baseline, @current, "Ratio", "95% interval"], figure_rows)}

          #{Format.table(["Series", "Updates missed, #{@baseline}", "Updates missed, #{@current}", "Segments with a higher p50 here"], missed_rows)}
        MD
      end

      private

      def segments_line
        counts = SERIES.filter_map do |readers, mode|
          runs = @runs[[readers, mode, :baseline]]
          "#{runs.size} × #{readers} #{mode}" unless runs.empty?
        end
        "Segments per build: #{counts.join(", ")}; #{@writes} writes in each."
      end

      def figure_rows
        all = (0...@runs.values.first.size).to_a
        figures.map do |name, unit, figure|
          baseline = figure.call(all, :baseline)
          current = figure.call(all, :current)
          low, high = interval(figure, all)
          [name, unit.call(baseline), unit.call(current), Format.ratio(current / baseline),
           "#{Format.ratio(low)} – #{Format.ratio(high)}"]
        end
      end

      # [name, formatter, lambda(segment indices, build) -> value] for each
      # figure measured: the percentiles, and the goals' ratios of the eight
      # readers' p99 to one reader's.
      def figures
        micros = ->(seconds) { "#{Format.micros(seconds)} µs" }
        list = SERIES.flat_map do |readers, mode|
          next [] if @runs[[readers, mode, :baseline]].empty?

          [0.5, 0.99].map do |fraction|
            ["p#{(fraction * 100).round} #{readers} #{mode}", micros,
             ->(indices, build) { pooled(readers, mode, indices, build, fraction) }]
          end
        end
        %i[tight sleepy].each do |mode|
          next if @runs[[8, mode, :baseline]].empty? || @runs[[1, mode, :baseline]].empty?

          list << ["p99 8 #{mode} / p99 1 #{mode}", Format.method(:ratio), lambda { |indices, build|
            pooled(8, mode, indices, build, 0.99) / pooled(1, mode, indices, build, 0.99)
          }]
        end
        list
      end

      def pooled(readers, mode, indices, build, fraction)
        runs = @runs[[readers, mode, build]]
        Timing.percentile(indices.flat_map { |index| runs[index].visible }, fraction)
      end

      # The 2.5th and 97.5th percentiles of the figure's ratio over resamples.
      def interval(figure, all)
        ratios = Array.new(RESAMPLES) do
          indices = Array.new(all.size) { all.sample(random: @random) }
          figure.call(indices, :current) / figure.call(indices, :baseline)
        end
        [Timing.percentile(ratios, 0.025), Timing.percentile(ratios, 0.975)]
      end

      def missed_rows
        SERIES.filter_map do |readers, mode|
          baseline = @runs[[readers, mode, :baseline]]
          current = @runs[[readers, mode, :current]]
          next if baseline.empty?

          higher = baseline.zip(current).count { |old, new| p50(new) > p50(old) }
          ["#{readers} #{mode}", Format.count(baseline.sum(&:missed)), Format.count(current.sum(&:missed)),
           "#{higher} of #{baseline.size}"]
        end
      end

      def p50(run)
        Timing.percentile(run.visible, 0.5)
      end
    end
  end
end
