# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# Fail-safe across processes: what one process may serve stale is only what
# every change left alone. A key deleted, replaced or cleared anywhere is
# never served stale; an L2 outage (its redis-server killed, the bus on
# another one) leaves every key a process had seen servable; a bus outage
# leaves L1 untrusted, and nothing is served stale from it.
RSpec.describe "Sync: fail-safe fetch" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:l2_server) { start_redis }
  let(:l2) { [:redis_cache_store, { url: l2_server.url, namespace: l2_namespace, reconnect_attempts: 0 }] }
  let(:fail_safe) { { max_stale: 60, backoff: 0 } }
  let(:store_options) do
    bus_options(bus, cache: l2, fail_safe: fail_safe, health_interval: 0.02, health_timeout: 0.15,
                     reconnect_max: 0.1)
  end

  # Writes +keys+ in +writer+, expiring in +expires_in+, and waits until
  # +reader+ has them all in L1 (by value, over the bus).
  def write_and_propagate(writer, reader, keys, expires_in: 0.3)
    keys.each { |key| writer.write(key, "value of #{key}", expires_in: expires_in) }
    eventually { keys.all? { |key| reader.l1_read(key) == [:hit, "value of #{key}"] } }
    eventually(message: "the entries never expired") { keys.all? { |key| reader.l1_read(key) == [:miss] } }
  end

  it "never serves stale a key another process deleted, replaced or cleared" do
    writer, reader = spawn_peers(:writer, :reader, **store_options)
    wait_for_connections(writer, reader)
    keys = %w[deleted replaced cleared]
    write_and_propagate(writer, reader, keys)
    keys.each { |key| expect(reader.fetch_failing(key, {})).to eq([:value, "value of #{key}"]) }

    writer.delete("deleted")
    eventually(message: "a deleted key was still served stale") do
      reader.fetch_failing("deleted", {}).first == :error
    end
    writer.write("replaced", "new", expires_in: 0.2)
    eventually(message: "a replaced key was served its old value") do
      reader.fetch_failing("replaced", {}) != [:value, "value of replaced"]
    end
    writer.clear
    eventually(message: "a cleared key was still served stale") do
      reader.fetch_failing("cleared", {}).first == :error
    end
    expect(reader.fetch_failing("deleted", {})).to eq([:error, "the backend is down"])
  end

  it "serves every key seen before through an L2 outage, which L2 keeps max_stale past the expiry" do
    writer, reader = spawn_peers(:writer, :reader, **store_options)
    plain = spawn_peer(:plain, **store_options.except(:fail_safe))
    wait_for_connections(writer, reader, plain)
    keys = Array.new(10) { |index| "key-#{index}" }
    write_and_propagate(writer, reader, keys)
    write_and_propagate(writer, plain, keys) # refreshed: the plain store has them too
    # L2's copy lives for expires_in + max_stale; the entry in it still expires after expires_in.
    ttl = l2_server.command("PTTL", "#{l2_namespace}:key-0").delete_prefix(":").to_i
    expect(ttl).to be > 59_000

    l2_server.kill
    keys.each do |key|
      expect(reader.fetch_failing(key, {})).to eq([:value, "value of #{key}"])
      expect(plain.fetch_failing(key, {})).to eq([:error, "the backend is down"])
    end
    expect(reader.stats).to include(fail_safe_hits: keys.size)
  end

  it "serves nothing stale while the bus is down, since L1 is not trusted then" do
    writer, reader = spawn_peers(:writer, :reader, **store_options)
    wait_for_connections(writer, reader)
    write_and_propagate(writer, reader, %w[k])
    expect(reader.fetch_failing("k", {})).to eq([:value, "value of k"])

    bus.kill
    eventually(message: "L1 stayed trusted with the bus gone") { reader.stats[:trusted] == false }
    expect(reader.fetch_failing("k", {})).to eq([:error, "the backend is down"])
  end
end
