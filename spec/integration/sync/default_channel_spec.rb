# frozen_string_literal: true

# Redis pub/sub ignores the database number, so stores on /0 and /1 of one
# server (two applications sharing a server) would see each other's changes
# on one channel. The default channel names the database, so they do not; an
# explicit channel: is taken as given.
RSpec.describe "Sync: the default channel" do
  include SyncHelpers

  let(:bus) { start_redis }

  def store(**options)
    SyncedMemoryStore::Store.new(cache: :memory_store, **options).tap do |store|
      stores << store
      store.wait_for_connection
    end
  end

  def stores
    @stores ||= []
  end

  after { stores.each(&:close) }

  it "keeps stores on different databases of one server apart" do
    zero = store(redis: bus.url(0))
    one = store(redis: bus.url(1))
    one_too = store(redis: bus.url(1))
    one.write("k", "written on /1")
    eventually { one_too.read("k") == "written on /1" }

    zero.write("k", "written on /0")
    zero.flush_sync
    one.write("barrier", "b")
    eventually { one_too.read("barrier") == "b" }

    expect(one_too.read("k")).to eq("written on /1")
    expect(zero.inspect).to include("channel synced_memory_store:0")
    expect(one.inspect).to include("channel synced_memory_store:1")
  end

  it "takes an explicit channel as given, whatever the database" do
    zero = store(redis: bus.url(0), channel: "shared")
    one = store(redis: bus.url(1), channel: "shared")

    zero.write("k", "written on /0")
    eventually(message: "stores on one channel never synced") { one.read("k") == "written on /0" }
  end
end
