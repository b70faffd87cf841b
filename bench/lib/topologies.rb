# frozen_string_literal: true

require_relative "fixtures"
require_relative "propagation"
require_relative "../../spec/support/redis_cluster"
require_relative "../../spec/support/redis_server/tls"
require_relative "../../spec/support/redis_sentinel"
require_relative "../../spec/support/tls_certificates"

module Bench
  # Propagation (as in Propagation, one reader process, tight and sleeping)
  # over each way of deploying the bus, next to a single redis-server measured
  # in the same run: the figure each topology is judged against.
  #
  # * single: one redis-server on loopback;
  # * tls: one redis-server speaking TLS only (a certificate from a CA made
  #   for the run; server authentication);
  # * sentinel: a primary and its replica found through a redis-sentinel (the
  #   sentinel is asked on connecting; messages go through the primary, each
  #   PUBLISH followed by ROLE in the same round trip);
  # * cluster: a Redis Cluster of 3 primaries and 3 replicas (sharded pub/sub
  #   at the primary of the channel's slot).
  class Topologies
    NAMES = %w[single tls sentinel cluster].freeze

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
      when "tls" then over_tls { |server, ca| propagation({ url: server.url, ssl_params: { ca_file: ca } }) }
      when "sentinel" then through_sentinel { |option| propagation(option) }
      when "cluster" then on_cluster { |cluster| propagation({ cluster: cluster.seeds }) }
      end
    end

    def propagation(bus)
      Propagation.new(@fixtures, bus: bus, scale: @scale, reader_counts: [1]).run
    end

    def over_tls
      certificates = TlsCertificates.new
      ca = certificates.authority("bench-ca")
      pair = certificates.issue("bench-server", by: ca)
      server = RedisServer.new(tls: RedisServer::Tls.new(cert: pair.cert, key: pair.key, ca: ca.cert)).start
      yield server, ca.cert
    ensure
      server&.stop
      certificates&.remove
    end

    def through_sentinel
      primary = RedisServer.new.start
      replica = RedisServer.new(arguments: ["--replicaof", "127.0.0.1", primary.port.to_s]).start
      sentinel = RedisSentinel.new(primary_port: primary.port, quorum: 1, replica_ports: [replica.port]).start
      yield({ sentinels: [{ host: "127.0.0.1", port: sentinel.port }], name: "mymaster" })
    ensure
      [sentinel, replica, primary].compact.each(&:stop)
    end

    def on_cluster
      cluster = RedisCluster.new.start
      yield cluster
    ensure
      cluster&.stop
    end
  end
end
