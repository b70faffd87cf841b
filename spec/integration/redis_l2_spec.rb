# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# The store over a RedisCacheStore L2 on a real redis-server: round trips and
# what happens when Redis is unreachable.
RSpec.describe SyncedMemoryStore::Store, "with a RedisCacheStore L2" do
  before(:all) { @redis_server = RedisServer.start }
  after(:all) { @redis_server&.stop }

  let(:errors) { [] }
  let(:l2) do
    ActiveSupport::Cache::RedisCacheStore.new(
      url: @redis_server.url, namespace: "spec-#{SecureRandom.hex(4)}",
      error_handler: ->(method:, exception:, returning:) { errors << [method, exception.class, returning] }
    )
  end
  let(:store) { described_class.new(sync: false, cache: l2) }

  def command_calls(command)
    stats = @redis_server.then { |server| Redis.new(url: server.url).info("commandstats") }
    stats.dig(command, "calls").to_i
  end

  it "reads all L1 misses of a read_multi with one MGET" do
    10.times { |i| l2.write("k#{i}", i) }
    mgets = command_calls("mget")

    names = Array.new(10) { |i| "k#{i}" }
    values = store.read_multi(*names, "missing")

    expect(values).to eq(Array.new(10) { |i| ["k#{i}", i] }.to_h)
    expect(command_calls("mget")).to eq(mgets + 1)
  end

  it "counts with Redis's atomic INCRBY and drops the stale copy from L1" do
    store.write("counter", 5, raw: true)
    expect(store.read("counter", raw: true)).to eq("5")

    expect(store.increment("counter", 3)).to eq(8)
    expect(store.read("counter", raw: true)).to eq("8")
    expect(store.decrement("counter")).to eq(7)
  end

  context "when Redis is unreachable" do
    let(:l2) do
      ActiveSupport::Cache::RedisCacheStore.new(
        url: "redis://127.0.0.1:#{LoopbackPort.free}/0", connect_timeout: 0.2,
        error_handler: ->(method:, exception:, returning:) { errors << [method, exception.class, returning] }
      )
    end

    it "treats reads as misses and reports the error to the L2's error handler" do
      expect(store.read("k")).to be_nil
      expect(store.fetch("k") { "computed" }).to eq("computed")
      expect(errors.map(&:first)).to include(:read_entry)
    end

    it "returns what RedisCacheStore returns for a failed write (7.2+: nil) and keeps the value out of L1" do
      expect(store.write("k", "v")).to be(CacheStoreContract::Versions.since?("7.2") ? nil : false)
      expect(store.stats[:l1_entries]).to eq(0)
      expect(store.read("k")).to be_nil
      expect(errors.map(&:first)).to include(:write_entry)
    end
  end

  context "when Redis goes away after values were cached" do
    it "keeps serving L1 hits without touching Redis" do
      server = RedisServer.start
      cache = described_class.new(sync: false, cache: ActiveSupport::Cache::RedisCacheStore.new(url: server.url))
      cache.write("k", "v")
      server.stop

      expect(cache.read("k")).to eq("v")
    end
  end
end
