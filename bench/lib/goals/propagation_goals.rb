# frozen_string_literal: true

require_relative "../format"

module Bench
  class Goals
    # The propagation goals: latency to visible in L1 with one reader (p99 and
    # p50, tight and sleeping), no missed updates, and the p99 with
    # Propagation::READERS readers no worse than twice the p99 with one.
    module PropagationGoals
      # The p99 limit (µs) for one reader of each kind: a tight (spinning)
      # reader sees a change as soon as it lands; a sleeping one only at its
      # next read.
      P99_LIMITS = { tight: 400, sleepy: 500 }.freeze

      private

      def propagation
        series = @results[:propagation]
        return [Goal.new("Propagation", "not run", "", nil)] unless series

        one = ->(mode) { series.find { |s| s.readers == 1 && s.mode == mode } }
        many = ->(mode) { series.find { |s| s.readers > 1 && s.mode == mode } }
        %i[tight sleepy].flat_map { |mode| latency_goals(one[mode], P99_LIMITS.fetch(mode)) } +
          [missed_goal(series.select { |s| s.readers == 1 }), missed_goal(series.reject { |s| s.readers == 1 })] +
          %i[tight sleepy].map { |mode| scaling_goal(one[mode], many[mode]) }
      end

      def latency_goals(series, p99_limit)
        reader = reader_name(series)
        [[0.99, p99_limit], [0.5, 150]].map do |fraction, limit|
          value = series.percentile(fraction, of: :visible) * 1e6
          seen = series.percentile(fraction) * 1e6
          Goal.new("Propagation p#{(fraction * 100).round} to visible in L1, 1 #{reader}",
                   "#{Format.us(value)} µs (seen by the reader: #{Format.us(seen)} µs)", "≤ #{limit} µs",
                   value <= limit)
        end
      end

      def missed_goal(list)
        readers = list.first.readers
        missed = list.sum(&:missed)
        observations = list.sum(&:observations)
        in_pause = list.sum(&:missed_in_pause)
        measured = "#{missed} of #{Format.count(observations)}"
        measured += " (#{in_pause} during a pause of the reader itself)" if missed.positive?
        Goal.new("Missed updates, #{readers} reader#{"s" if readers > 1} (tight and sleeping)", measured, "0",
                 missed.zero?)
      end

      def scaling_goal(one, many)
        value = many.percentile(0.99, of: :visible) / one.percentile(0.99, of: :visible)
        seen = many.percentile(0.99) / one.percentile(0.99)
        Goal.new("Propagation p99 to visible in L1, #{many.readers} #{reader_name(many)}s vs 1",
                 "#{Format.ratio(value)} (#{Format.micros(many.percentile(0.99, of: :visible))} µs vs " \
                 "#{Format.micros(one.percentile(0.99, of: :visible))} µs; seen by the readers: " \
                 "#{Format.ratio(seen)})", "≤ 2.00×", value <= 2)
      end

      def reader_name(series)
        series.mode == :tight ? "tight reader" : "sleeping reader"
      end
    end
  end
end
