# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# The bus behind Redis Sentinel: a primary, one replica and three sentinels
# (quorum 2, down-after 500 ms), and two processes that find the primary
# through the sentinels and share an L2 on a plain redis-server of its own.
#
# While a writer writes 1, 2, 3 … to a key across a failover and a reader
# reads it in a loop, no read returns a value older than L2's for longer than
# the README's bound: a read that starts later than health_timeout +
# reconnect_max (+ a margin for scheduling) after a write returned returns
# that write's value or a newer one. Reads go to L2 while the bus is away, the
# reader drops L1 when it resubscribes on the new primary, and a writer whose
# publisher is not back yet is back within reconnect_max.
RSpec.describe "Sync: the bus behind Redis Sentinel, across a failover", :sentinel do
  include SyncHelpers
  include SentinelHelpers

  let(:health_timeout) { 0.15 }
  let(:reconnect_max) { 0.1 }
  # Slack for scheduling on a busy 2-core machine.
  let(:margin) { 0.15 }
  let(:bound) { health_timeout + reconnect_max + margin }
  let(:bus_log) { false }

  let(:l2_server) { start_redis }
  let(:l2) { ActiveSupport::Cache::RedisCacheStore.new(url: l2_server.url, namespace: l2_namespace) }
  let(:peers) do
    start_sentinel_topology
    # The default channel (synced_memory_store:0): it names the database
    # whether the primary comes from a URL or from the sentinels.
    spawn_peers(:writer, :reader,
                redis: sentinel_redis_option,
                cache: [:redis_cache_store, { url: l2_server.url, namespace: l2_namespace }],
                health_interval: 0.02, health_timeout: health_timeout, reconnect_max: reconnect_max,
                bus_log: bus_log)
  end
  let(:writer) { peers.first }
  let(:reader) { peers.last }

  before do
    wait_for_connections(writer, reader)
    expect(primary_port_by_sentinels).to eq(primary.port)
    writer.write("static", "before the failover")
    writer.write("k", 0)
    eventually { reader.l1_read("static") == [:hit, "before the failover"] && reader.l1_read("k") == [:hit, 0] }
  end

  # Writes 1..count to k in the writer (a write every 30 ms) while the reader
  # reads k in a loop; yields once L2 holds 10 (the failover goes there), then
  # waits for the series to end. Returns [the series, the reader's record].
  def write_across(count)
    reader.start_reader("k", mode: :sleepy, interval: 0.002)
    writer.call_async(:write_series, "k", (1..count).to_a, [0.03] * count)
    wait_until(message: "the writer never got going") { l2.read("k").to_i >= 10 }
    yield
    series = writer.await(60)
    [series, reader.stop_reader]
  end

  # After the failover: a short series through the new primary, read by the
  # reader as it arrives, so the bound is also checked once both are back.
  def write_after(first, count)
    reader.start_reader("k", mode: :sleepy, interval: 0.002)
    series = writer.write_series("k", (first...(first + count)).to_a, [0.02] * count)
    [series, reader.stop_reader]
  end

  # The latest a read returned a value older than one whose write had
  # returned, in seconds after that write returned (0 if never).
  def latest_stale_read(series, record)
    returned = series.to_h { |value, _started, returned_at| [value, returned_at] }
    record[:runs].map do |value, _first_start, _first_end, last_start, _reads|
      newer = returned[value.to_i + 1]
      newer ? last_start - newer : 0
    end.max
  end

  def expect_the_bound(label, *recordings)
    late = recordings.map { |series, record| latest_stale_read(series, record) }.max
    puts "\n[sentinel] #{label}: the latest read returning a value older than L2's started #{(late * 1000).round(1)} " \
         "ms after the newer write returned (bound: health_timeout #{health_timeout * 1000} ms + reconnect_max " \
         "#{reconnect_max * 1000} ms + margin #{margin * 1000} ms)"
    expect(late).to be <= bound
  end

  # Resubscribed: L1 was dropped, so what was in it before comes from L2.
  def expect_l1_dropped
    expect(reader.stats[:reconnects]).to be >= 1
    expect(writer.stats[:reconnects]).to be >= 1
    expect(reader.l1_read("static")).to eq([:miss])
    expect(reader.read("static")).to eq("before the failover")
  end

  def expect_sync_on_the_new_primary(last)
    expect_l1_dropped
    # A write through the new primary reaches the writer (settle writes a
    # fresh token again if the protocol invalidated one: a publisher that
    # finds a new server first drops every L1, and a write in flight across
    # that moment is judged conflicted).
    settle(reader, writer)
    settle(writer, reader)
    expect([writer.read("k"), reader.read("k"), l2.read("k")]).to eq([last, last, last])
  end

  it "follows the promoted replica when the primary is killed, within the stated bound" do
    killed_at = promoted_at = back_at = nil
    across = write_across(150) do
      primary.kill
      killed_at = monotonic
      # (While the killed process goes, a connection may be reset rather
      # than refused: the error follows the latest attempt.)
      eventually(timeout: 5, message: "stats[:last_error] never said why the bus was away") do
        error = reader.stats[:last_error].to_s
        error.include?("no sentinel led to a reachable primary") && error.include?("refused")
      end
      expect(reader.stats[:last_error]).to include("sentinel mymaster via 127.0.0.1:")
      wait_until(timeout: 30, interval: 0.01, message: "no replica was promoted") do
        primary_port_by_sentinels == replica.port && role(replica) == "master"
      end
      promoted_at = monotonic
      eventually(timeout: 10, message: "the reader never resubscribed") { reader.connected? }
      back_at = monotonic
    end
    puts "\n[sentinel] primary killed: replica promoted after #{(promoted_at - killed_at).round(2)} s, " \
         "the reader resubscribed #{((back_at - promoted_at) * 1000).round} ms later"
    after = write_after(151, 20)

    expect_the_bound("primary killed", across, after)
    expect_sync_on_the_new_primary(170)
  end

  # The promoted replica holds the stream as far as it had replicated it:
  # the log cannot prove that it holds every message, so L1 goes.
  context "with the channel's log on (bus_log:)" do
    let(:bus_log) { true }

    it "publishes through the log (each batch followed by ROLE) and drops L1 on the promoted replica" do
      expect(with_redis(primary) { |redis| redis.xlen("{synced_memory_store:0}:log") }).to be_positive
      primary.kill
      wait_until(timeout: 30, interval: 0.01, message: "no replica was promoted") do
        primary_port_by_sentinels == replica.port && role(replica) == "master"
      end
      eventually(timeout: 10, message: "the stores never resubscribed") { reader.connected? && writer.connected? }

      expect(reader.stats[:resumed]).to eq(0)
      expect_sync_on_the_new_primary(0)
      expect(with_redis(replica) { |redis| redis.xlen("{synced_memory_store:0}:log") }).to be_positive
    end
  end

  it "follows a manual failover: Sentinel disconnects the demoted primary's clients, within the stated bound" do
    # Two plain clients of the primary, named so CLIENT LIST shows them: one
    # subscribed (like the bus's subscriber), one not (like its publisher).
    # Neither reconnects by itself, so a killed one stays gone.
    plain = Redis.new(port: primary.port, id: "spec-plain", reconnect_attempts: 0)
    plain.ping
    subscriber = Redis.new(port: primary.port, id: "spec-subscriber", reconnect_attempts: 0)
    subscribed = Queue.new
    listener = Thread.new do
      subscriber.subscribe("spec-watch") { |on| on.subscribe { subscribed << true } }
      :unsubscribed
    rescue Redis::BaseConnectionError => e
      e
    end
    subscribed.pop
    expect(with_redis(primary) { |redis| redis.call("CLIENT", "LIST") }).to include("name=spec-plain")
      .and include("name=spec-subscriber")

    across = write_across(120) do
      with_redis(sentinels.first) { |redis| redis.call("SENTINEL", "FAILOVER", SentinelHelpers::NAME) }
      wait_until(timeout: 30, interval: 0.01, message: "the failover never completed") do
        primary_port_by_sentinels == replica.port && role(primary) == "slave"
      end
      expect(listener.join(10)&.value).to be_a(Redis::BaseConnectionError)
      clients = with_redis(primary) { |redis| redis.call("CLIENT", "LIST") }
      expect(clients).not_to include("name=spec-plain")
      expect(clients).not_to include("name=spec-subscriber")
      eventually(timeout: 10, message: "the reader never resubscribed") { reader.connected? }
    end
    after = write_after(121, 20)

    expect_the_bound("manual failover", across, after)
    expect_sync_on_the_new_primary(140)
  ensure
    plain&.close
    subscriber&.close
  end
end

RSpec.describe "Sync: a bus whose sentinels lead nowhere" do
  include SyncHelpers

  it "says, sentinel by sentinel, why it is not connected" do
    ports = [closed_port, closed_port]
    store = SyncedMemoryStore::Store.new(
      redis: { sentinels: ports.map { |port| "redis://127.0.0.1:#{port}" }, name: "mymaster",
               sentinel_password: "hunter2-sentinel", password: "hunter2-node" },
      health_timeout: 0.3, health_interval: 0.1
    )

    expect { store.wait_for_connection(1) }.to raise_error(SyncedMemoryStore::ConnectionError) { |error|
      expect(error.message).to include("sentinel mymaster via 127.0.0.1:#{ports[0]},127.0.0.1:#{ports[1]}")
        .and include("no sentinel led to a reachable primary")
        .and include("127.0.0.1:#{ports[1]} refused the connection")
      expect(error.message).not_to include("hunter2")
    }
    expect(store.inspect).to include("sync=sentinel mymaster via").and include("channel synced_memory_store:0")
  ensure
    store&.close
  end
end
