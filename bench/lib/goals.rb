# frozen_string_literal: true

require_relative "format"
require_relative "stores"
require_relative "stampede"
require_relative "goals/propagation_goals"
require_relative "goals/topology_goals"

module Bench
  # The issue's goals, judged against one run's results. Each Goal has the
  # measured value (text), the target (text) and whether it was met (nil when
  # its section did not run). The propagation goals are Goals::PropagationGoals
  # (goals/propagation_goals.rb), the topology goals Goals::TopologyGoals
  # (goals/topology_goals.rb).
  class Goals
    Goal = Struct.new(:name, :measured, :target, :met)

    # RSS counts as flat after warm-up when it grows less than this from the
    # warm-up to the last checkpoint.
    FLAT = 0.02

    include PropagationGoals
    include TopologyGoals

    def initialize(results)
      @results = results
    end

    # Every goal, in the order of the report's sections.
    def all
      micro + propagation + topologies + flood + memory + [fail_safe, stampede]
    end

    private

    def micro
      [
        micro_ratio("Read hit, small Hash, vs MemoryStore", "read hit (small Hash)", 0.2),
        micro_ratio("Read hit, 100-byte String, vs MemoryStore", "read hit (100-byte String)", 0.25),
        micro_ratio("Fetch hit vs MemoryStore", "fetch hit (small Hash)", 0.6),
        micro_ratio("read_multi of 20 keys vs MemoryStore", "read_multi (20 keys)", 0.25),
        micro_ratio("Write with a MemoryStore L2 vs a MemoryStore write", "write (small Hash)", 1.3),
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

    def flood
      result = @results[:flood]
      return [Goal.new("Apply throughput and Ruby reader slowdown", "not run", "", nil)] unless result

      [
        Goal.new("Apply throughput (a backlog applied by one process)",
                 "#{Format.count(result.capacity)} changes/s (live flood: #{Format.count(result.reading_rate)}/s, " \
                 "written #{result.pace})", "≥ 200,000 changes/s", result.capacity >= 200_000),
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

    def fail_safe
      name = "Requests that got an error during a 10 s L2 outage, raising block, keys seen before (fail_safe)"
      run = @results[:fail_safe]
      return Goal.new(name, "not run", "0", nil) unless run

      results = run[:results].to_h { |result| [result.label, result] }
      ours = results.fetch(FailSafeOutage::FAIL_SAFE)
      peers = (FailSafeOutage::LABELS - [FailSafeOutage::FAIL_SAFE]).map do |label|
        "#{label}: #{Format.count(results[label].errors)}"
      end
      Goal.new(name, "#{Format.count(ours.errors)} of #{Format.count(ours.requests)} (#{peers.join("; ")})", "0",
               ours.errors.zero?)
    end

    def stampede
      name = "Stampede: block runs, #{Stampede::PROCESSES} processes × #{Stampede::THREADS} threads, one cold key"
      results = @results[:stampede]&.select { |result| result.scenario == :cold }
      return Goal.new(name, "not run", "1", nil) unless results

      ours = results.last
      peers = results[0...-1].map { |result| "#{result.label}: #{result.median_runs}" }.join("; ")
      Goal.new(name, "#{ours.median_runs} (max #{ours.max_runs} over #{ours.runs.size} rounds; #{peers})",
               "1 in every round", ours.max_runs == 1)
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
