# frozen_string_literal: true

require "securerandom"
require "tmpdir"
require "fileutils"
require "socket"
require "redis"
require_relative "loopback_port"

# Fixtures for the cross-process sync specs (spec/integration/sync): peer
# processes and redis-server instances that are always stopped, by pid, after
# each example, whether it passed or not. Include it in an example group.
module SyncHelpers
  # How often a condition that asks peers something is polled.
  POLL = 0.005

  def self.included(group)
    group.after { |example| stop_sync_fixtures(example) }
  end

  # Starts peer processes (in parallel) and returns them in the order named.
  # With store options, each opens its :main store with them. +env+ is added
  # to their environment.
  def spawn_peers(*names, env: {}, **store_options)
    launches = names.map { |name| Peer.launch(name: name.to_s, dir: sync_dir, env: env) }
    peers = launches.map do |launch|
      launch.connect.tap { |peer| sync_peers << peer }
    rescue StandardError
      launches.each { |other| Peer.kill_pid(other.pid, child: true) }
      raise
    end
    peers.each { |peer| peer.open_store(:main, store_options) } unless store_options.empty?
    peers
  end

  def spawn_peer(name, **store_options)
    spawn_peers(name, **store_options).first
  end

  # Forks +parent+'s process; the child is a Peer (stopped after the example too).
  def fork_peer(parent, name)
    parent.fork_peer(name: name.to_s, dir: sync_dir).tap { |peer| sync_peers << peer }
  end

  # Starts a redis-server (on +port+, or a free one; with TLS only, given a
  # RedisServer::Tls; +options+ as RedisServer.new takes them), stopped after
  # the example.
  def start_redis(port: nil, tls: nil, **options)
    server = RedisServer.new(port: port, tls: tls, **options)
    sync_redis_servers << server
    server.start
  end

  # A loopback port nothing listens on (as long as nobody takes it meanwhile).
  def closed_port
    LoopbackPort.free
  end

  # The pub/sub channel of this example (every peer of the example shares it).
  def channel
    @channel ||= "sms-sync-spec-#{SecureRandom.hex(6)}"
  end

  # A RedisCacheStore namespace unique to this example.
  def l2_namespace
    @l2_namespace ||= "sms-sync-l2-#{SecureRandom.hex(6)}"
  end

  # Store options for the bus on +server+, on this example's channel.
  def bus_options(server, **options)
    { redis: server.url, channel: channel }.merge(options)
  end

  # Waits until every peer's subscription is up.
  def wait_for_connections(*peers, timeout: 10)
    peers.each { |peer| peer.wait_for_connection(timeout, within: timeout + 5) }
  end

  # Waits (polling peers, so a little slower than wait_until's default).
  def eventually(timeout: 5, message: nil, &condition)
    wait_until(timeout: timeout, interval: POLL, message: message, &condition)
  end

  # Why +store+ (in this process) is not connected: its stats[:last_error],
  # once it has one, which wait_for_connection's error ends with too.
  def why_not_connected(store)
    cause = eventually(message: "the store never said why it is not connected") { store.stats[:last_error] }
    expect { store.wait_for_connection(0.2) }.to raise_error(SyncedMemoryStore::ConnectionError) do |error|
      expect(error.message).to end_with(": #{cause}")
    end
    expect(store.stats).to include(connected: false, trusted: false)
    cause
  end

  # A barrier: +sender+ writes a fresh token under a key of its own and this
  # waits until every receiver's L1 holds it. Redis delivers one channel's
  # messages in one order, so afterwards each receiver has applied everything
  # published before the call (the sender's messages and every message whose
  # PUBLISH had returned). Needs the token to ship by value (it is small). A
  # token the protocol invalidates (the sender's write met a concurrent change,
  # or a message it could not read) is followed by a fresh one.
  def settle(sender, *receivers, store: :main, timeout: 5)
    key = "barrier:#{sender.name}:#{store}"
    deadline = monotonic + timeout
    loop do
      token = SecureRandom.hex(8)
      sender.write(key, token, store: store)
      late = receivers
      until (late = late.reject { |receiver| receiver.l1_read(key, store: store) == [:hit, token] }).empty?
        raise RSpec::Expectations::ExpectationNotMetError, "#{late.join(", ")} never saw #{sender}'s barrier" if
          monotonic > deadline
        # The sender's own L1 drops the token only when the protocol
        # invalidated it: then a fresh one goes out.
        break if sender.l1_read(key, store: store) != [:hit, token]

        sleep POLL
      end
      return if late.empty?
    end
  end

  # The raw payload of the next message on +on+ (a channel, this example's by
  # default) that contains +marker+, published on +server+ while the block runs.
  def capture_payload(server, marker, on: channel)
    captured = Queue.new
    subscriber = Redis.new(url: server.url)
    listener = Thread.new do
      subscriber.subscribe_with_timeout(10, on) do |on_event|
        on_event.subscribe { captured << :subscribed }
        on_event.message do |_channel, payload|
          next unless payload.b.include?(marker.b)

          captured << payload.b
          subscriber.unsubscribe
        end
      end
    end
    wait_until(message: "the capturing subscription never started") { !captured.empty? }
    captured.pop
    yield
    wait_until(message: "no message containing the marker was published") { !captured.empty? || !listener.alive? }
    captured.pop
  ensure
    listener&.join(5)
    subscriber&.close
  end

  # Publishes +payloads+ on +server+ (this example's channel by default), as
  # anyone who can PUBLISH could; returns how many subscribers got each.
  def publish_raw(server, *payloads, on: channel)
    publisher = Redis.new(url: server.url)
    payloads.map { |payload| publisher.publish(on, payload) }
  ensure
    publisher&.close
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # The +fraction+-quantile (0..1) of +values+, by nearest rank.
  def quantile(values, fraction)
    sorted = values.sort
    sorted[[(fraction * sorted.size).ceil - 1, 0].max]
  end

  # "p50=… p99=… max=…" in milliseconds.
  def latency_summary(seconds)
    ms = seconds.map { |s| s * 1000 }
    format("p50=%<p50>.3fms p99=%<p99>.3fms max=%<max>.3fms (n=%<n>d)",
           p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), max: ms.max, n: ms.size)
  end

  private

  def sync_dir
    @sync_dir ||= Dir.mktmpdir("sms-sync")
  end

  def sync_peers
    @sync_peers ||= []
  end

  def sync_redis_servers
    @sync_redis_servers ||= []
  end

  # The :main store's stats of a live peer, for a failure's report: why a
  # change did not arrive (rejected, missed, dropped, a reconnect) is there.
  def peer_stats(peer)
    return "(not running)" unless peer.alive?

    peer.stats(within: 2).inspect
  rescue StandardError => e
    "(unavailable: #{e.class}: #{e.message.lines.first&.chomp})"
  end

  def stop_sync_fixtures(example)
    if example.exception && !sync_peers.empty?
      logs = sync_peers.map { |peer| "--- #{peer} log:\n#{peer.log_tail(20)}--- stats: #{peer_stats(peer)}" }
      warn "\n#{example.full_description} failed; peer logs:\n#{logs.uniq.join("\n")}"
    end
    # Forked peers come after their parents: stop children first.
    sync_peers.reverse_each(&:kill)
    sync_redis_servers.each(&:stop)
  ensure
    FileUtils.rm_rf(@sync_dir) if @sync_dir
  end
end
