# frozen_string_literal: true

require_relative "../comparison"
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
      RESAMPLES = 400
      FRACTIONS = [0.5, 0.99].freeze
      SERIES = Comparison::READER_COUNTS.product(Comparison::MODES).freeze
      MANY = Propagation::READERS

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
        measured = percentiles(all)
        resampled = Array.new(RESAMPLES) { percentiles(Array.new(all.size) { all.sample(random: @random) }) }
        figures.map do |name, unit, figure|
          baseline = figure.call(measured, :baseline)
          current = figure.call(measured, :current)
          ratios = resampled.map { |sample| figure.call(sample, :current) / figure.call(sample, :baseline) }
          [name, unit.call(baseline), unit.call(current), Format.ratio(current / baseline),
           "#{Format.ratio(Timing.percentile(ratios, 0.025))} – #{Format.ratio(Timing.percentile(ratios, 0.975))}"]
        end
      end

      # [name, formatter, lambda(percentiles, build) -> value] for each figure
      # measured: the percentiles, and the goals' ratios of the eight readers'
      # p99 to one reader's.
      def figures
        micros = ->(seconds) { "#{Format.micros(seconds)} µs" }
        list = measured_series.flat_map do |readers, mode|
          FRACTIONS.map do |fraction|
            ["p#{(fraction * 100).round} #{readers} #{mode}", micros,
             ->(percentiles, build) { percentiles[[readers, mode, build, fraction]] }]
          end
        end
        Comparison::MODES.each do |mode|
          next unless measured_series.include?([MANY, mode]) && measured_series.include?([1, mode])

          list << ["p99 #{MANY} #{mode} / p99 1 #{mode}", Format.method(:ratio), lambda { |percentiles, build|
            percentiles[[MANY, mode, build, 0.99]] / percentiles[[1, mode, build, 0.99]]
          }]
        end
        list
      end

      def measured_series
        SERIES.reject { |readers, mode| @runs[[readers, mode, :baseline]].empty? }
      end

      # { [readers, mode, build, fraction] => seconds }: each series' FRACTIONS
      # percentiles over the segments at +indices+ (repeats count again),
      # pooled, for both builds.
      def percentiles(indices)
        measured_series.product(Comparison::BUILDS).each_with_object({}) do |((readers, mode), build), result|
          runs = @runs[[readers, mode, build]]
          sorted = indices.flat_map { |index| runs[index].visible }.sort!
          FRACTIONS.each do |fraction|
            result[[readers, mode, build, fraction]] = Timing.percentile_of_sorted(sorted, fraction)
          end
        end
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
