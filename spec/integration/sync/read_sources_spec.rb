# frozen_string_literal: true

# The payloads of cache_read and cache_read_multi say where each hit came
# from: this process's memory (:l1) or the second level (:l2).
RSpec.describe "Sync: where a hit came from, in the instrumentation" do
  include CacheStoreContract::Helpers

  let(:l2) { ActiveSupport::Cache::MemoryStore.new }
  let(:cache) { SyncedMemoryStore::Store.new(sync: false, cache: l2) }

  it "says :l1 for a hit from memory and :l2 for one from the second level" do
    cache.write("here", "in both levels")
    l2.write("there", "in L2 only")

    events = cache_events do
      cache.read("here")
      cache.read("there")
      cache.fetch("here") { "unused" }
    end

    reads = events.select { |event| event.name == "cache_read.active_support" }
    expect(reads.map { |event| event.payload[:source] }).to eq(%i[l1 l2 l1])
  end

  it "says, for read_multi, where each name that hit came from" do
    cache.write("here", "in both levels")
    l2.write("there", "in L2 only")

    events = cache_events { cache.read_multi("here", "there", "nowhere") }

    expect(events.map { |event| event.payload[:sources] }).to eq([{ "here" => :l1, "there" => :l2 }])
  end

  it "says nothing about a source on a miss" do
    events = cache_events { cache.read("nowhere") }

    expect(events.first.payload).not_to include(:source)
  end
end
