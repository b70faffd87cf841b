# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# The stale-fill race, across processes, made deterministic:
#
#   1. the reader misses k in L1 and reads the OLD value from L2, then is held
#      (GatedRedisCacheStore: after reading Redis, before returning);
#   2. the writer changes k (L2, then the bus), and the reader applies the
#      message while its read is still held;
#   3. the held read is released and would now fill L1 with the OLD value.
#
# The racing read may return the old value (it began before the change), but
# afterwards the reader's L1 must not hold it: its next read returns the new
# state. What prevents the fill is the guard in L1::fill
# (ext/synced_memory_store/src/l1.rs): the key's stripe generation refuses it
# after a change to the key (the by-value, invalidation and delete examples),
# the epoch after a clear, and the fence after a pattern delete, which cannot
# bump the generation of a key that is not in L1 yet (the delete_matched
# examples, from another process or from the reader's own process).
RSpec.describe "Sync: a read-through fill racing a change from another process" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:l2_server) { start_redis }
  let(:l2) { ActiveSupport::Cache::RedisCacheStore.new(url: l2_server.url, namespace: l2_namespace) }
  let(:peers) do
    l2_options = { url: l2_server.url, namespace: l2_namespace }
    [
      spawn_peer(:writer, **bus_options(bus, cache: [:redis_cache_store, l2_options], broadcast_max_bytes: 1024)),
      spawn_peer(:reader, **bus_options(bus, cache: [:gated_redis_cache_store, l2_options]))
    ]
  end
  let(:writer) { peers.first }
  let(:reader) { peers.last }

  before do
    wait_for_connections(writer, reader)
    l2.write("k", "old")
    expect(reader.l1_read("k")).to eq([:miss])
  end

  # Runs the race with +change+ made by the writer in step 2; returns what the
  # racing read returned.
  def race(&change)
    reader.gate_reads("k")
    reader.read_async("k")
    expect(reader.await_gated(10)).to eq([true, "old"])

    applied = reader.stats[:applied]
    change.call
    # The barrier comes after the change on the bus: once the reader has the
    # barrier, it has applied the change, and its read is still held.
    settle(writer, reader)
    expect(reader.stats[:applied]).to be >= applied + 2

    reader.release_gate
    reader.await_async(10)
  end

  # Runs the race with the reader itself changing the keys while its own
  # read is held (another thread of its process).
  def race_here(&change)
    reader.gate_reads("k")
    reader.read_async("k")
    expect(reader.await_gated(10)).to eq([true, "old"])
    change.call
    reader.release_gate
    reader.await_async(10)
  end

  it "never lets the old value replace a newer one that arrived by value" do
    racing = race { writer.write("k", "new") }

    expect(racing).to eq("old").or eq("new")
    expect(reader.l1_read("k")).to eq([:hit, "new"])
    expect(reader.read("k")).to eq("new")
  end

  it "never installs the old value after an invalidation (an entry over broadcast_max_bytes)" do
    big = "n" * 4096
    racing = race { writer.write("k", big) }

    expect(racing).to eq("old").or eq(big)
    expect(reader.l1_read("k")).to eq([:miss])
    expect(reader.read("k")).to eq(big)
  end

  it "never installs the old value after a delete" do
    racing = race { writer.delete("k") }

    expect(racing).to eq("old").or be_nil
    expect(reader.l1_read("k")).to eq([:miss])
    expect(reader.read("k")).to be_nil
  end

  it "never installs the old value after a clear" do
    racing = race { writer.clear }

    expect(racing).to eq("old").or be_nil
    expect(reader.l1_read("k")).to eq([:miss])
    expect(reader.read("k")).to be_nil
  end

  it "never installs the old value after another process's delete_matched with a glob" do
    racing = race { writer.delete_matched("k*") }

    expect(racing).to eq("old").or be_nil
    expect(reader.l1_read("k")).to eq([:miss])
    expect(reader.read("k")).to be_nil
  end

  it "never installs the old value after another process's delete_matched with a Regexp" do
    racing = race { writer.delete_matched(/\Ak\z/) }

    expect(racing).to eq("old").or be_nil
    expect(reader.l1_read("k")).to eq([:miss])
    expect(reader.read("k")).to be_nil
  end

  it "never installs the old value after another process's delete_multi" do
    racing = race { writer.delete_multi(%w[k other]) }

    expect(racing).to eq("old").or be_nil
    expect(reader.l1_read("k")).to eq([:miss])
    expect(reader.read("k")).to be_nil
  end

  it "never installs the old value after its own process's delete_matched with a glob" do
    racing = race_here { reader.delete_matched("k*") }

    expect(racing).to eq("old").or be_nil
    expect(reader.l1_read("k")).to eq([:miss])
    expect(reader.read("k")).to be_nil
  end

  it "never installs the old value after its own process's delete_matched with a Regexp" do
    racing = race_here { reader.delete_matched(/\Ak\z/) }

    expect(racing).to eq("old").or be_nil
    expect(reader.l1_read("k")).to eq([:miss])
    expect(reader.read("k")).to be_nil
  end

  it "installs the value it read when nothing changed meanwhile (the gate itself changes nothing)" do
    reader.gate_reads("k")
    reader.read_async("k")
    expect(reader.await_gated(10)).to eq([true, "old"])
    reader.release_gate

    expect(reader.await_async(10)).to eq("old")
    expect(reader.l1_read("k")).to eq([:hit, "old"])
  end
end
