# frozen_string_literal: true

# Building a store never waits for the bus: with Redis down (nothing on the
# port) or unresponsive (SIGSTOPped), the constructor returns at once and the
# store works as a plain two-level store, its L1 untrusted, until the bus
# threads get through on their own; then it syncs like any other.
RSpec.describe "Sync: Redis unavailable when the store is built" do
  include SyncHelpers

  let(:port) { closed_port }
  let(:store_options) do
    { redis: "redis://127.0.0.1:#{port}/0", channel: channel, cache: :memory_store, reconnect_max: 0.2 }
  end

  def expect_two_level_store(peer)
    expect(peer.write("k", "v")).to be(true)
    expect(peer.read("k")).to eq("v")
    expect(peer.fetch("f", "computed")).to eq(["computed", true])
    expect(peer.fetch("f", "again")).to eq(["computed", false])
    expect(peer.l1_read("k")).to eq([:miss]) # untrusted: served from L2
    expect(peer.stats).to include(connected: false, trusted: false)
  end

  def expect_sync_with_another_process(peer)
    other = spawn_peer(:other, **store_options)
    wait_for_connections(other)
    other.write("synced", "by value")
    eventually(message: "a write from another process never reached the store") do
      peer.l1_read("synced") == [:hit, "by value"]
    end
    peer.write("back", "too")
    eventually(message: "the store's write never reached another process") do
      other.l1_read("back") == [:hit, "too"]
    end
  end

  it "builds at once with nothing listening, works through L2, and connects when Redis starts" do
    peer = spawn_peer(:store)
    expect(peer.open_store(:main, store_options)).to be < 0.5

    expect(peer.connected?).to be(false)
    expect_two_level_store(peer)
    started = monotonic
    expect { peer.wait_for_connection(0.2) }.to raise_error(SyncedMemoryStore::ConnectionError)
    expect(monotonic - started).to be >= 0.2

    start_redis(port: port)
    started = monotonic
    eventually(timeout: 2, message: "the store never connected by itself (reconnect_max: 0.2)") { peer.connected? }
    puts format("\n[sync redis down] connected %<ms>.0f ms after redis-server answered",
                ms: (monotonic - started) * 1000)
    expect(peer.stats[:trusted]).to be(true)
    expect_sync_with_another_process(peer)
  end

  it "builds at once while Redis accepts connections but never answers (SIGSTOP), and connects on SIGCONT" do
    frozen = start_redis(port: port)
    frozen.pause
    peer = spawn_peer(:store)
    # A health_timeout far longer than the constructor may take: it must not wait for it.
    expect(peer.open_store(:main, store_options.merge(health_timeout: 2))).to be < 0.5

    expect(peer.connected?).to be(false)
    expect_two_level_store(peer)

    frozen.resume
    eventually(timeout: 5, message: "the store never connected after SIGCONT") { peer.connected? }
    expect_sync_with_another_process(peer)
  end
end
