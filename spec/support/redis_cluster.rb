# frozen_string_literal: true

require "redis"
require_relative "redis_server"

# A private Redis Cluster on loopback, for the cluster specs and bench/run:
# PRIMARIES primaries, each with one replica, every node a RedisServer (so
# started and stopped by pid), joined by `redis-cli --cluster create`. It
# answers where a channel's slot lives, kills a primary and waits for its
# replica to take over, and moves a slot from one primary to another.
class RedisCluster
  PRIMARIES = 3
  # Milliseconds before a silent node is judged failed (and its replica promoted).
  NODE_TIMEOUT = 1000

  attr_reader :servers

  def initialize
    @servers = Array.new(PRIMARIES * 2) do
      RedisServer.new(arguments: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                  "--cluster-node-timeout", NODE_TIMEOUT.to_s,
                                  # A replica takes over however long ago it last heard its primary.
                                  "--cluster-replica-validity-factor", "0"])
    end
  end

  # Starts the nodes, joins them and waits until every node sees every slot served.
  def start
    @servers.each(&:start)
    addresses = @servers.map { |server| "127.0.0.1:#{server.port}" }
    created = system("redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes",
                     out: File::NULL, err: File::NULL)
    raise "redis-cli --cluster create failed" unless created

    wait_until_healthy
    self
  end

  def stop
    @servers.each(&:stop)
  end

  # The nodes as `cluster:` takes them.
  def seeds
    @servers.map { |server| "redis://127.0.0.1:#{server.port}" }
  end

  def slot_of(key)
    call(live_servers.first, "CLUSTER", "KEYSLOT", key)
  end

  # The server of the primary that serves +slot+, as a live node sees it.
  def owner_of(slot)
    port = call(live_servers.first, "CLUSTER", "SLOTS").find { |first, last, *| (first..last).cover?(slot) }[2][1]
    @servers.find { |server| server.port == port }
  end

  # Kills +primary+ (SIGKILL) and waits until another node serves its slots.
  def fail_over(primary, slot)
    primary.kill
    await(timeout: 30, message: "no replica took over slot #{slot}") do
      owner = owner_of(slot)
      owner != primary && cluster_ok?(owner)
    rescue Redis::BaseError
      false
    end
  end

  # Moves +slot+ (which holds no keys) from its owner to another primary, as a
  # resharding does, and waits until every live node agrees.
  def move_slot(slot)
    source = owner_of(slot)
    target = primaries.find { |server| server != source }
    source_id, target_id = [source, target].map { |server| call(server, "CLUSTER", "MYID") }
    call(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    call(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    [target, source, *(primaries - [source, target])].each do |server|
      call(server, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
    end
    await(timeout: 30, message: "the cluster did not agree that slot #{slot} moved") do
      live_servers.all? { |server| owner_on(server, slot) == target.port }
    end
    target
  end

  private

  def primaries
    live_servers.select { |server| call(server, "ROLE").first == "master" }
  end

  def live_servers
    @servers.select(&:running?)
  end

  def owner_on(server, slot)
    call(server, "CLUSTER", "SLOTS").find { |first, last, *| (first..last).cover?(slot) }&.dig(2, 1)
  end

  def wait_until_healthy
    await(timeout: 30, message: "the cluster did not become healthy") do
      live_servers.all? { |server| cluster_ok?(server) }
    end
  end

  def cluster_ok?(server)
    call(server, "CLUSTER", "INFO").include?("cluster_state:ok")
  rescue Redis::BaseError
    false
  end

  # Polls the block every 50 ms until it holds; raises +message+ after +timeout+ seconds.
  def await(timeout:, message:)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    until yield
      raise message if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.05
    end
  end

  def call(server, *command)
    redis = Redis.new(host: "127.0.0.1", port: server.port, timeout: 1)
    redis.call(*command)
  ensure
    redis&.close
  end
end
