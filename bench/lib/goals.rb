# frozen_string_literal: true

require_relative "format"
require_relative "stores"

module Bench
  # The issue's goals, judged against one run's results. Each Goal has the
  # measured value (text), the target (text) and whether it was met (nil when
  # its section did not run).
  class Goals
    Goal = Struct.new(:name, :measured, :target, :met)

    # RSS counts as flat after warm-up when it grows less than this from the
    # warm-up to the last checkpoint.
    FLAT = 0.02

    def initialize(results)
      @results = results
    end

    def all
      micro + propagation + flood + memory
    end

    private

    def micro
      [
        micro_ratio("Read hit, small Hash, vs MemoryStore", "read hit (small Hash)", 0.5),
        micro_ratio("Read hit, 100-byte String, vs MemoryStore", "read hit (100-byte String)", 1.0),
        micro_ratio("Fetch hit vs MemoryStore", "fetch hit (small Hash)", 0.6),
        micro_ratio("read_multi of 20 keys vs MemoryStore", "read_multi (20 keys)", 0.6),
        micro_ratio("Write with a MemoryStore L2 vs a MemoryStore write", "write (small Hash)", 1.5),
        micro_ratio("Read hit, small Hash, vs RedisCacheStore's read", "read hit (small Hash)", 0.05,
                    Stores::SMS_REDIS, Stores::REDIS),
        micro_ratio("Read hit, 100-byte String, vs RedisCacheStore's read", "read hit (100-byte String)", 0.05,
                    Stores::SMS_REDIS, Stores::REDIS)
      ]
    end

    def micro_ratio(name, figure, limit, store = Stores::SMS_MEMORY, peer = Stores::MEMORY)
      target = "≤ #{format("%.2f", limit)}× (#{store} / #{peer})"
      found = @results[:micro]&.find { |candidate| candidate.name == figure }
      return Goal.new(name, "not run", target, nil) unless found

      value = found.microseconds[store] / found.microseconds[peer]
      Goal.new(name, "#{Format.ratio(value)} (#{Format.us(found.microseconds[store])} µs vs " \
                     "#{Format.us(found.microseconds[peer])} µs)", target, value <= limit)
    end

    def propagation
      series = @results[:propagation]
      return [Goal.new("Propagation", "not run", "", nil)] unless series

      one = ->(mode) { series.find { |s| s.readers == 1 && s.mode == mode } }
      many = ->(mode) { series.find { |s| s.readers > 1 && s.mode == mode } }
      %i[tight sleepy].flat_map { |mode| latency_goals(one[mode]) } +
        [missed_goal(series.select { |s| s.readers == 1 }), missed_goal(series.reject { |s| s.readers == 1 })] +
        %i[tight sleepy].map { |mode| scaling_goal(one[mode], many[mode]) }
    end

    def latency_goals(series)
      reader = reader_name(series)
      [[0.99, 500], [0.5, 150]].map do |fraction, limit|
        value = series.percentile(fraction, of: :visible) * 1e6
        seen = series.percentile(fraction) * 1e6
        Goal.new("Propagation p#{(fraction * 100).round} to visible in L1, 1 #{reader}",
                 "#{Format.us(value)} µs (seen by the reader: #{Format.us(seen)} µs)", "≤ #{limit} µs", value <= limit)
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

    def flood
      result = @results[:flood]
      return [Goal.new("Apply throughput and Ruby reader slowdown", "not run", "", nil)] unless result

      [
        Goal.new("Apply throughput (backlog replayed to one process)",
                 "#{Format.count(result.capacity)} changes/s (live flood: #{Format.count(result.reading_rate)}/s, " \
                 "as fast as one Ruby process wrote)", "≥ 200,000 changes/s", result.capacity >= 200_000),
        Goal.new("Ruby reader slowed during the flood: median read latency",
                 Format.percent(result.slowdown, sign: true), "≤ +20%", result.slowdown <= 0.2),
        Goal.new("Ruby reader slowed during the flood: reads per second",
                 "#{Format.percent(result.read_rate_loss)} fewer (against the same flood on another channel, " \
                 "nothing to apply: #{Format.percent(result.read_rate_loss(against: :elsewhere))} fewer)",
                 "≤ 20% fewer", result.read_rate_loss <= 0.2)
      ]
    end

    def memory
      [budget_goal, rss_goal]
    end

    def budget_goal
      budget = @results[:memory]&.fetch(:budget)
      return Goal.new("L1 within 5% of its byte budget", "not run", "", nil) unless budget

      real = budget.rss_growth.fdiv(budget.budget)
      counted = budget.l1_bytes.fdiv(budget.budget)
      Goal.new("L1 within 5% of its byte budget (process RSS growth)",
               "#{Format.percent(real)} of the budget (stats[:l1_bytes]: #{Format.percent(counted)})",
               "≤ 105%", real <= 1.05 && counted <= 1.05)
    end

    def rss_goal
      rss = @results[:rss]
      return Goal.new("RSS flat after warm-up", "not run", "", nil) unless rss

      Goal.new("RSS flat after warm-up (#{Format.count(rss.samples.last[0] - rss.warm[0])} writes)",
               "#{Format.percent(rss.growth, sign: true)} (#{Format.mib(rss.samples.last[1] - rss.warm[1])})",
               "< +#{Format.percent(FLAT)}", rss.growth < FLAT)
    end
  end
end
