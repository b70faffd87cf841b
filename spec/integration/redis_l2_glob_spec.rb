# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# A glob delete_matched over a RedisCacheStore L2: Redis matches the glob byte
# by byte, and every L1 must drop exactly what Redis deleted, or it would serve
# the deleted value for good.
RSpec.describe SyncedMemoryStore::Store, "delete_matched with a glob over a RedisCacheStore L2" do
  before(:all) { @redis_server = RedisServer.start }
  after(:all) { @redis_server&.stop }

  let(:l2) do
    ActiveSupport::Cache::RedisCacheStore.new(url: @redis_server.url, namespace: "spec-#{SecureRandom.hex(4)}")
  end
  let(:store) { described_class.new(sync: false, cache: l2) }

  it "drops a key from L2 and L1 when ? matches the bytes of its multibyte character" do
    store.write("user:é", "cached")
    store.write("user:éa", "kept")
    expect(store.read("user:é")).to eq("cached")

    store.delete_matched("user:??")

    expect(l2.read("user:é")).to be_nil
    expect(store.read("user:é")).to be_nil
    expect(store.read("user:éa")).to eq("kept")
  end

  it "drops a key from L2 and L1 when an unclosed [ makes a class of the rest of the glob" do
    store.write("user:a", "cached")
    store.write("user:[ab", "kept")

    store.delete_matched("user:[ab")

    expect(l2.read("user:a")).to be_nil
    expect(store.read("user:a")).to be_nil
    expect(store.read("user:[ab")).to eq("kept")
  end

  it "drops a key that is not valid UTF-8 from L2 and L1, matching its bytes as they are" do
    key = "user:\xFF"
    store.write(key, "cached")

    store.delete_matched("user:?")

    expect(l2.read(key)).to be_nil
    expect(store.read(key)).to be_nil
  end

  context "with another process sharing the L2 and the bus" do
    include SyncHelpers

    let(:peers) do
      l2_options = { url: @redis_server.url, namespace: l2_namespace }
      spawn_peers(:writer, :reader, **bus_options(start_redis, cache: [:redis_cache_store, l2_options]))
    end
    let(:writer) { peers.first }
    let(:reader) { peers.last }

    before { wait_for_connections(writer, reader) }

    it "makes the other process's L1 drop what Redis matched, byte by byte" do
      writer.write_multi({ "user:é" => "cached", "user:a" => "cached", "user:éa" => "kept" })
      eventually { %w[user:é user:a user:éa].all? { |key| reader.l1_read(key).first == :hit } }

      writer.delete_matched("user:??")
      writer.delete_matched("user:[ab")

      eventually(message: "the reader's L1 still serves keys Redis deleted") do
        reader.l1_read("user:é") == [:miss] && reader.l1_read("user:a") == [:miss]
      end
      # Ordered after both delete_matched on the bus: once it arrived, so had they.
      settle(writer, reader)
      expect(reader.l1_read("user:éa")).to eq([:hit, "kept"])
      expect(reader.read("user:é")).to be_nil
    end
  end
end
