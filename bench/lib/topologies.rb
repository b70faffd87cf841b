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
  # in turns with it: while the topology's own processes run, the single
  # server and the topology take one repetition each, in turn, so both share
  # the machine's state (those processes included) and its drift, and the
  # ratio is what the topology's path itself costs.
  #
  # * tls: one redis-server speaking TLS only (a certificate from a CA made
  #   for the run; server authentication);
  # * sentinel: a primary and its replica found through a redis-sentinel (the
  #   sentinel is asked on connecting; messages go through the primary, each
  #   PUBLISH followed by ROLE in the same round trip);
  # * cluster: a Redis Cluster of 3 primaries and 3 replicas (sharded pub/sub
  #   at the primary of the channel's slot).
  class Topologies
    NAMES = %w[tls sentinel cluster].freeze

    # A topology's [tight, sleepy] Series and the single server's, measured in turns.
    Pair = Struct.new(:topology, :single, keyword_init: true)

    def initialize(fixtures, scale:)
      @fixtures = fixtures
      @scale = scale
    end

    # { name => Pair }, in NAMES order.
    def run
      NAMES.to_h { |name| [name, measure(name)] }
    end

    private

    def measure(name)
      case name
      when "tls" then over_tls { |server, ca| in_turns({ url: server.url, ssl_params: { ca_file: ca } }) }
      when "sentinel" then through_sentinel { |option| in_turns(option) }
      when "cluster" then on_cluster { |cluster| in_turns({ cluster: cluster.seeds }) }
      end
    end

    def in_turns(bus)
      single = @fixtures.redis.url
      turns = Array.new(Propagation.repetitions(@scale)) { [propagation(single), propagation(bus)] }
      Pair.new(single: merged(turns.map(&:first)), topology: merged(turns.map(&:last)))
    end

    # One repetition's [tight, sleepy] Series, of each turn, as one [tight, sleepy].
    def merged(turns)
      turns.transpose.map do |same_mode|
        first = same_mode.first
        Propagation::Series.new(readers: first.readers, mode: first.mode, writes: first.writes,
                                runs: same_mode.flat_map(&:runs))
      end
    end

    def propagation(bus)
      Propagation.new(@fixtures, bus: bus, scale: @scale, reader_counts: [1], repetitions: 1).run
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
