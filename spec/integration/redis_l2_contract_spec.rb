# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# The ActiveSupport store contract held against SyncedMemoryStore::Store with a
# RedisCacheStore L2 on a real redis-server started for this file.
RSpec.describe SyncedMemoryStore::Store, "with a RedisCacheStore L2", cleanup_removes_from_backend: false do
  before(:all) { @redis_server = RedisServer.start }
  after(:all) { @redis_server&.stop }

  let(:redis_url) { @redis_server.url }
  # Each store gets its own L2 namespace, so every example starts with an empty cache.
  let(:store_factory) do
    counter = 0
    lambda do |**options|
      counter += 1
      l2 = ActiveSupport::Cache::RedisCacheStore.new(url: redis_url,
                                                     namespace: "contract-#{SecureRandom.hex(4)}-#{counter}")
      described_class.new(sync: false, cache: l2, **options)
    end
  end

  it_behaves_like "an ActiveSupport cache store"
end
