# frozen_string_literal: true

require "redis"

# Fixtures for the Sentinel specs: a primary, a replica of it and three
# sentinels (quorum 2) watching it as NAME, all on loopback ports and stopped
# by pid after the example (with SyncHelpers, which an example group using
# these must include too). Queries to the sentinels and servers go through
# short-lived redis-rb connections.
module SentinelHelpers
  NAME = "mymaster"

  # How long Sentinel waits before it calls an unanswering primary down.
  DOWN_AFTER_MS = 500

  attr_reader :primary, :replica, :sentinels

  # Starts the primary, its replica and the sentinels, and waits until every
  # sentinel knows the replica and the two other sentinels (a failover needs
  # both: a replica to promote, and a quorum that agrees).
  def start_sentinel_topology
    # Either may serve a full sync (at the start, after a failover): at once,
    # not after Redis 7's default 5 s wait for more replicas.
    at_once = ["--repl-diskless-sync-delay", "0"]
    @primary = start_redis(arguments: at_once)
    @replica = start_redis(arguments: at_once + ["--replicaof", "127.0.0.1", primary.port])
    wait_until(timeout: 10, message: "the replica never synced with the primary") do
      info(replica, "replication")["master_link_status"] == "up"
    end
    @sentinels = start_sentinels
    wait_until(timeout: 15, message: "the sentinels never found each other and the replica") do
      sentinels.all? do |sentinel|
        state = sentinel_master(sentinel)
        state["num-other-sentinels"] == "2" && state["num-slaves"] == "1"
      end
    end
  end

  # Three sentinels, each told of the replica and of the others up front
  # (they would find them within 10 s by themselves).
  def start_sentinels
    ports = Array.new(3) { closed_port }
    ids = Array.new(3) { SecureRandom.hex(20) }
    ports.zip(ids).map do |port, id|
      peers = ports.zip(ids).reject { |other, _| other == port }
      sentinel = RedisSentinel.new(port: port, id: id, primary_port: primary.port, name: NAME,
                                   down_after_ms: DOWN_AFTER_MS, replica_ports: [replica.port], peers: peers)
      sync_redis_servers << sentinel
      sentinel.start
    end
  end

  # The +redis:+ option of a store that finds the primary through the sentinels.
  def sentinel_redis_option
    { sentinels: sentinels.map { |sentinel| { host: "127.0.0.1", port: sentinel.port } }, name: NAME }
  end

  # The port every sentinel gives for the primary, once they agree (else nil).
  def primary_port_by_sentinels
    answers = sentinels.map do |sentinel|
      with_redis(sentinel) { |redis| redis.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME) }
    end
    answers.uniq.size == 1 ? answers.first&.last&.to_i : nil
  end

  # SENTINEL MASTER NAME on +sentinel+, as a Hash.
  def sentinel_master(sentinel)
    with_redis(sentinel) { |r| r.call("SENTINEL", "MASTER", NAME) }.each_slice(2).to_h
  end

  # ROLE of +server+: "master" or "slave".
  def role(server)
    with_redis(server) { |r| r.call("ROLE") }.first
  end

  # INFO +section+ of +server+, as a Hash.
  def info(server, section)
    with_redis(server) { |r| r.info(section) }
  end

  def with_redis(server)
    # Generous: the machine may be busy, and a timeout here is not what is tested.
    redis = Redis.new(host: "127.0.0.1", port: server.port, timeout: 5, reconnect_attempts: 0)
    yield redis
  ensure
    redis&.close
  end
end
