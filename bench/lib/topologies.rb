# frozen_string_literal: true

require_relative "fixtures"
require_relative "propagation"
require_relative "../../spec/support/redis_cluster"

module Bench
  # Propagation (as in Propagation, one reader process, tight and sleeping)
  # over each way of deploying the bus, next to a single redis-server measured
  # in the same run: the figure each topology is judged against.
  #
  # * single: one redis-server on loopback;
  # * cluster: a Redis Cluster of 3 primaries and 3 replicas (sharded pub/sub
  #   at the primary of the channel's slot).
  class Topologies
    NAMES = %w[single cluster].freeze

    def initialize(fixtures, scale:)
      @fixtures = fixtures
      @scale = scale
    end

    # { name => [tight Series, sleepy Series] }, in NAMES order.
    def run
      NAMES.to_h { |name| [name, measure(name)] }
    end

    private

    def measure(name)
      case name
      when "single" then propagation(@fixtures.redis.url)
      when "cluster" then on_cluster { |cluster| propagation({ cluster: cluster.seeds }) }
      end
    end

    def propagation(bus)
      Propagation.new(@fixtures, bus: bus, scale: @scale, reader_counts: [1]).run
    end

    def on_cluster
      cluster = RedisCluster.new.start
      yield cluster
    ensure
      cluster&.stop
    end
  end
end
