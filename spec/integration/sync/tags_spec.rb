# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# Tags across processes: two processes, each with its own store, on one bus
# and one RedisCacheStore L2. An invalidate_tags in one makes every entry
# carrying the tag a miss in the other and in L2; the races that could leave
# an entry current past an invalidation are made to happen every time with
# GatedRedisCacheStore (it holds a read or write of one key at L2).
RSpec.describe "Sync: tags across processes" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:l2_server) { start_redis }
  let(:l2_options) { { url: l2_server.url, namespace: l2_namespace } }
  let(:l2) { ActiveSupport::Cache::RedisCacheStore.new(**l2_options) }
  let(:peers) do
    [spawn_peer(:writer, **bus_options(bus, cache: [:redis_cache_store, l2_options])),
     spawn_peer(:reader, **bus_options(bus, cache: [:gated_redis_cache_store, l2_options]))]
  end
  let(:writer) { peers.first }
  let(:reader) { peers.last }

  def tag_key(tag)
    "#{SyncedMemoryStore::Store::TAG_KEY_PREFIX}#{tag}"
  end

  # What a read against L2 alone returns for +key+: the value inside a
  # tagged entry whose recorded versions are the tags' versions in L2, nil
  # when one differs or is gone.
  def l2_view(key)
    stored = l2.read(key)
    return stored unless SyncedMemoryStore::Tagged.tagged?(stored)

    current = SyncedMemoryStore::Tagged.versions(stored).all? { |tag, version| l2.read(tag) == version }
    SyncedMemoryStore::Tagged.value(stored) if current
  end

  before { wait_for_connections(writer, reader) }

  it "serves a tagged entry from every process's memory, and makes it a miss everywhere once its tag is " \
     "invalidated in another process" do
    writer.write("user:1", { "name" => "Ada" }, tags: ["user:1", "org:7"])
    writer.write("org:7", "Acme", tags: "org:7")
    settle(writer, reader)
    expect(reader.l1_read("user:1").first).to eq(:hit)
    expect(reader.read("user:1")).to eq("name" => "Ada")
    l1_hits = reader.stats[:l1_hits]
    expect(reader.read("user:1")).to eq("name" => "Ada")
    expect(reader.stats[:l2_hits]).to eq(0)
    expect(reader.stats[:l1_hits]).to be > l1_hits

    reader.invalidate_tags("user:1")
    expect(reader.read("user:1")).to be_nil
    eventually(message: "the writer still reads the invalidated entry") { writer.read("user:1").nil? }
    expect(l2_view("user:1")).to be_nil
    expect(reader.read_multi("user:1", "org:7")).to eq("org:7" => "Acme")
    expect(writer.read_multi("user:1", "org:7")).to eq("org:7" => "Acme")
    expect(l2_view("org:7")).to eq("Acme")

    expect(writer.fetch("user:1", { "name" => "Bea" }, tags: ["user:1"])).to eq([{ "name" => "Bea" }, true])
    settle(writer, reader)
    expect(reader.fetch("user:1", "never", tags: ["user:1"])).to eq([{ "name" => "Bea" }, false])
  end

  it "leaves an entry written with a tag version read just before an invalidation a miss everywhere" do
    l2.write(tag_key("t"), "first") # in L2 only: the reader's write reads it from there
    reader.gate_reads(tag_key("t"))
    reader.write_async("k", "written with the old version", tags: ["t"])
    expect(reader.await_gated(10).first).to be(true)

    writer.invalidate_tags("t")
    settle(writer, reader)
    reader.release_gate
    reader.await_async(10)
    settle(reader, writer)

    expect(SyncedMemoryStore::Tagged.versions(l2.read("k"))).to eq(tag_key("t") => "first")
    expect(l2_view("k")).to be_nil
    expect(reader.read("k")).to be_nil
    expect(writer.read("k")).to be_nil
  end

  it "never serves an entry that a fill brought from L2 while its tag was invalidated" do
    # In L2 only, as another process wrote them: the reader fills k from L2.
    stored = SyncedMemoryStore::Tagged.wrap("old", { tag_key("t") => "first" })
    l2.write(tag_key("t"), "first")
    l2.write("k", stored)
    reader.gate_reads("k")
    reader.read_async("k")
    expect(reader.await_gated(10)).to eq([true, stored])

    writer.invalidate_tags("t")
    settle(writer, reader)
    reader.release_gate
    expect(reader.await_async(10)).to be_nil

    expect(reader.read("k")).to be_nil
    expect(reader.read_multi("k")).to eq({})
    expect(writer.read("k")).to be_nil
  end

  it "treats a tag whose version is gone from L2 and from every L1 as invalidated, and a new version revives " \
     "no older entry" do
    writer.write("old", "stale", tags: "t")
    settle(writer, reader)
    expect(reader.read("old")).to eq("stale")

    writer.delete(tag_key("t"))
    eventually { reader.l1_read(tag_key("t")) == [:miss] }
    expect(reader.read("old")).to be_nil
    expect(l2.read(tag_key("t"))).to be_nil

    reader.write("new", "fresh", tags: "t")
    settle(reader, writer)
    expect(writer.read("new")).to eq("fresh")
    expect([writer.read("old"), reader.read("old"), l2_view("old")]).to eq([nil, nil, nil])
  end

  it "invalidates the tags of write_multi entries in every process" do
    writer.write_multi({ "a" => 1, "b" => 2 }, tags: ["t"])
    settle(writer, reader)
    expect(reader.read_multi("a", "b")).to eq("a" => 1, "b" => 2)
    writer.invalidate_tags("t")
    eventually { reader.read_multi("a", "b").empty? }
    expect([l2_view("a"), l2_view("b")]).to eq([nil, nil])
  end
end
