# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# A writer that closes its store, or exits, right after a write still settles
# that write: two overlapping writes to one key can reach L2 in one order and
# the bus in the other (A writes L2, B writes L2, B publishes, A publishes: L2
# holds B's value, every L1 A's), and only A can tell, when its own message
# comes back after B's. So close and exit wait for that echo (within a bound)
# and send the invalidation it calls for; what does not come back in time is
# invalidated anyway.
#
# The race is made deterministic with GatedRedisCacheStore: A's L2 write
# reaches Redis and is then held; B writes and publishes; A applies B's
# message; A's write is released, publishes, and A leaves at once.
RSpec.describe "Sync: a writer that leaves right after a write" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:l2_server) { start_redis }
  let(:l2_options) { { url: l2_server.url, namespace: l2_namespace } }
  let(:leaver) { spawn_peer(:leaver, **bus_options(bus, cache: [:gated_redis_cache_store, l2_options])) }
  let(:other) { spawn_peer(:other, **bus_options(bus, cache: [:redis_cache_store, l2_options])) }

  before { wait_for_connections(leaver, other) }

  # A writes "a" and is held after its L2 write; B writes "b"; A, once it has
  # B's message, publishes "a" and leaves (+after+: :close or :exit).
  def reordered_write_then(after)
    leaver.gate_writes("k")
    leaver.write_async("k", "a", after: after)
    expect(leaver.await_gated(10)).to eq([true, "a"])

    other.write("k", "b")
    # Once the leaver has the other's barrier, it has the other's "b".
    settle(other, leaver)
    expect(other.l2_read("k")).to eq("b")

    leaver.release_gate
  end

  it "sends the conflict invalidation when it closes right after the write" do
    reordered_write_then(:close)
    leaver.await_async(10)

    eventually(timeout: 5, message: "the other process kept the leaver's value while L2 holds its own") do
      other.read("k") == "b"
    end
    expect(other.l1_read("k")).to eq([:miss]).or eq([:hit, "b"])
  end

  it "sends the conflict invalidation when the process exits right after the write" do
    reordered_write_then(:exit)
    eventually(timeout: 10, message: "the leaving process did not exit") { !leaver.alive? }

    eventually(timeout: 5, message: "the other process kept the leaver's value while L2 holds its own") do
      other.read("k") == "b"
    end
  end
end
