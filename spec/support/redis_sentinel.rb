# frozen_string_literal: true

require "securerandom"
require_relative "redis_server"

# A redis-sentinel (Debian's redis-sentinel, or REDIS_SENTINEL) on a loopback
# port, watching one primary under +name+, with failover timings short enough
# for specs. Its configuration file lives in its own directory, since Sentinel
# rewrites it as it learns about replicas, other sentinels and failovers.
# Started, stopped and reaped by pid like any RedisServer.
#
# Sentinels find each other through hello messages every 2 s and a primary's
# replicas through its INFO every 10 s; a setup that names them in each
# configuration (+replica_ports+, +peers+: [port, id] of the other sentinels)
# is ready at once.
class RedisSentinel < RedisServer
  attr_reader :id

  def initialize(primary_port:, name: "mymaster", quorum: 2, down_after_ms: 500, failover_timeout_ms: 2000,
                 replica_ports: [], peers: [], id: SecureRandom.hex(20), **options)
    super(executable: ENV.fetch("REDIS_SENTINEL", "redis-sentinel"), **options)
    @id = id
    @monitor = { name: name, primary_port: primary_port, quorum: quorum, down_after_ms: down_after_ms,
                 failover_timeout_ms: failover_timeout_ms, replica_ports: replica_ports, peers: peers }
  end

  private

  def command_line
    write_config unless File.exist?(config_path)
    [@executable, config_path]
  end

  def config_path
    File.join(@dir, "sentinel.conf")
  end

  # Everything on 127.0.0.1: the sentinels announce that address to each
  # other, and the primary and replicas are known by it.
  def write_config
    name = @monitor[:name]
    File.write(config_path, <<~CONFIG)
      port #{port}
      bind 127.0.0.1
      daemonize no
      dir #{@dir}
      logfile #{log_path}
      sentinel announce-ip 127.0.0.1
      sentinel monitor #{name} 127.0.0.1 #{@monitor[:primary_port]} #{@monitor[:quorum]}
      sentinel down-after-milliseconds #{name} #{@monitor[:down_after_ms]}
      sentinel failover-timeout #{name} #{@monitor[:failover_timeout_ms]}
      sentinel parallel-syncs #{name} 1
      sentinel myid #{id}
    CONFIG
    known = @monitor[:replica_ports].map { |replica| "sentinel known-replica #{name} 127.0.0.1 #{replica}\n" } +
            @monitor[:peers].map { |peer, peer_id| "sentinel known-sentinel #{name} 127.0.0.1 #{peer} #{peer_id}\n" }
    File.write(config_path, known.join, mode: "a")
  end
end
