# frozen_string_literal: true

# A redis: URL may ask for RESP3 (`?protocol=resp3`). The bus speaks the
# protocol its pub/sub code reads on each connection whatever the URL asks:
# RESP2 to one server, whether the subscriber reads its connection itself or
# through the Redis client library (as it does with bus_log:, TLS or
# Sentinel). Before, the library's connection took the URL's RESP3, and its
# subscription was never confirmed: the store never connected.
RSpec.describe "Sync: a redis URL that asks for RESP3" do
  include SyncHelpers

  let(:bus) { start_redis }

  def store(**options)
    SyncedMemoryStore::Store.new(cache: :memory_store, redis: "#{bus.url}?protocol=resp3", **options).tap do |store|
      stores << store
    end
  end

  def stores
    @stores ||= []
  end

  after { stores.each(&:close) }

  [{}, { bus_log: true }].each do |options|
    it "connects and syncs (#{options.empty? ? "the subscriber's own reader" : "the library's, with bus_log:"})" do
      writer = store(**options)
      reader = store(**options)
      [writer, reader].each { |each| each.wait_for_connection(5) }
      reader.read("k")
      writer.write("k", "v")
      eventually(message: "the change never reached the other store") { reader.read("k") == "v" }
      expect(reader.stats[:last_error]).to be_nil
    end
  end
end
