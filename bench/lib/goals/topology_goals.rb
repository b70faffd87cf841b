# frozen_string_literal: true

require_relative "../format"

module Bench
  class Goals
    # The topology goals: on every topology, propagation p50 and p99 (to
    # visible in L1, one reader, tight and sleeping) within LIMIT times the
    # single server's, measured in turns with it (see Topologies).
    module TopologyGoals
      LIMIT = 1.5

      private

      def topologies
        results = @results[:topologies]
        return [Goal.new("Propagation by bus topology", "not run", "", nil)] unless results

        results.flat_map do |name, pair|
          pair.topology.flat_map do |series|
            base = pair.single.find { |s| s.mode == series.mode }
            [0.5, 0.99].map { |fraction| topology_goal(name, series, base, fraction) }
          end
        end
      end

      def topology_goal(name, series, base, fraction)
        value = series.percentile(fraction, of: :visible)
        single = base.percentile(fraction, of: :visible)
        reader = series.mode == :tight ? "tight reader" : "sleeping reader"
        Goal.new("Propagation p#{(fraction * 100).round} on #{name} vs a single server, 1 #{reader}",
                 "#{Format.ratio(value / single)} (#{Format.micros(value)} µs vs #{Format.micros(single)} µs)",
                 "≤ #{Format.ratio(LIMIT)}", value <= single * LIMIT)
      end
    end
  end
end
