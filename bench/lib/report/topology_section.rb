# frozen_string_literal: true

require_relative "../format"
require_relative "../propagation"

module Bench
  class Report
    # The "Propagation by bus topology" section: each topology's one-reader
    # propagation, with its ratio to the single server measured in turns with it.
    module TopologySection
      private

      def topologies
        results = @results[:topologies] or return
        rows = results.flat_map do |name, pair|
          pair.single.map { |s| topology_row("single (in turns with #{name})", s, s) } +
            pair.topology.map { |s| topology_row(name, s, pair.single.find { |base| base.mode == s.mode }) }
        end
        <<~MD.chomp
          ## Propagation by bus topology

          As in "Propagation latency", with one reader process, over each way of deploying the bus; each ratio is against a single redis-server measured in turns with the topology (one repetition each, alternating, while the topology's own processes run, so both share the machine's state and its drift). #{TOPOLOGY_NOTES.values_at("single", *results.keys).join(" ")}

          #{Format.table(["Topology", "Reader", "visible p50 (µs)", "visible p99 (µs)", "seen p99 (µs)", "p50 vs single", "p99 vs single", "Missed"], rows)}
        MD
      end

      TOPOLOGY_NOTES = {
        "single" => "**single**: one redis-server on loopback.",
        "tls" => "**tls**: one redis-server speaking TLS only, its certificate from a CA made for the run.",
        "sentinel" => "**sentinel**: a primary and its replica, found through a redis-sentinel; each PUBLISH is " \
                      "followed by ROLE in the same round trip, so a batch sent to a demoted primary is sent again.",
        "cluster" => "**cluster**: a Redis Cluster of 3 primaries and 3 replicas on loopback; the bus uses sharded " \
                     "pub/sub at the primary that owns the channel's slot."
      }.freeze
      private_constant :TOPOLOGY_NOTES

      def topology_row(name, series, single)
        p50, p99 = [0.5, 0.99].map { |fraction| series.percentile(fraction, of: :visible) }
        [name, series.mode == :tight ? "tight loop" : "sleeps #{(Propagation::SLEEPY_INTERVAL * 1e6).round} µs",
         Format.micros(p50), Format.micros(p99), Format.micros(series.percentile(0.99)),
         Format.ratio(p50 / single.percentile(0.5, of: :visible)),
         Format.ratio(p99 / single.percentile(0.99, of: :visible)),
         "#{series.missed} of #{Format.count(series.observations)}"]
      end
    end
  end
end
