# frozen_string_literal: true

# l1_expires_in: caps how long any entry lives in L1, however it got there (a
# fill from L2, a local write, a value from the bus). It bounds what no
# process can detect: a writer that changed L2 and was cut off from the bus
# (or killed) before publishing. Here that writer is played by writing L2
# directly, behind every L1's back.
RSpec.describe "Sync: l1_expires_in" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:l2_server) { start_redis }
  let(:l2) { [:redis_cache_store, { url: l2_server.url, namespace: l2_namespace }] }

  it "ends a stale value no message will ever correct within the cap" do
    writer, capped, uncapped = spawn_peers(:writer, :capped, :uncapped, **bus_options(bus, cache: l2))
    capped.open_store(:main, bus_options(bus, cache: l2, l1_expires_in: 0.5))
    wait_for_connections(writer, capped, uncapped)
    writer.write("k", "old")
    eventually { capped.l1_read("k") == [:hit, "old"] && uncapped.l1_read("k") == [:hit, "old"] }

    writer.l2_write("k", "new") # a change that never reaches the bus
    changed_at = monotonic

    eventually(timeout: 3, message: "the capped store kept the stale value past l1_expires_in") do
      capped.read("k") == "new"
    end
    expect(monotonic - changed_at).to be < 1.5
    # Without the cap nothing ends it (the bound the cap exists for).
    expect(uncapped.read("k")).to eq("old")
  end

  it "caps entries filled from L2, written here and received by value alike" do
    writer, reader = spawn_peers(:writer, :reader, **bus_options(bus, cache: l2, l1_expires_in: 0.3))
    wait_for_connections(writer, reader)
    writer.l2_write("filled", "from L2")
    expect(reader.read("filled")).to eq("from L2")
    writer.write("written", "here", expires_in: 3600)
    eventually { reader.l1_read("written") == [:hit, "here"] }

    eventually(timeout: 3, message: "an entry outlived l1_expires_in") do
      [reader.l1_read("filled"), reader.l1_read("written"), writer.l1_read("written")].all?([:miss])
    end
    expect(reader.read("written")).to eq("here") # still in L2, refilled
  end

  it "must be a positive number of seconds" do
    [0, -1, "soon"].each do |bad|
      expect { SyncedMemoryStore::Store.new(sync: false, l1_expires_in: bad) }
        .to raise_error(SyncedMemoryStore::ConfigurationError, /l1_expires_in/)
    end
  end
end
