# frozen_string_literal: true

# The public contract of an ActiveSupport::Cache::Store, as ActiveSupport 6.1
# implements it. The examples are proven against ActiveSupport's own
# MemoryStore and FileStore (spec/unit/memory_store_contract_spec.rb).
#
# The including example group provides a factory for fresh, empty stores:
#
#   let(:store_factory) { ->(**options) { MyStore.new(**options) } }
#   it_behaves_like "an ActiveSupport cache store"
#
# Every call to the factory must return an independent, empty store.
#
# Metadata the including group may set where a store legitimately differs:
#
#   instruments_cleanup: false
#     The store's #cleanup publishes no cache_cleanup.active_support event
#     (FileStore 6.1 does not instrument cleanup; MemoryStore does). The
#     cleanup-instrumentation example is then not defined for that group.
#
#   supports_dot_keys: false
#     The store cannot hold the keys "." and ".." (FileStore 6.1 maps a key to
#     a file name of the same spelling, and "." or ".." name directories, so
#     writing raises Errno::EBUSY/EISDIR). An in-memory store must support
#     them: any String is a valid key.
#
#   cleanup_removes_from_backend: false
#     The store keeps entries in a backend that expires them by the real clock
#     and has no cleanup of its own (Redis: RedisCacheStore#cleanup raises
#     NotImplementedError), so an entry expired only by a travelled clock
#     survives #cleanup there and is readable again when the clock is turned
#     back. The example that turns the clock back is then not defined.
#
# The areas live in spec/support/shared_examples/cache_store_contract/.
RSpec.shared_examples "an ActiveSupport cache store" do
  include CacheStoreContract::Helpers

  subject(:cache) { store_factory.call }

  it_behaves_like "an ActiveSupport cache store: values"
  it_behaves_like "an ActiveSupport cache store: fetch"
  it_behaves_like "an ActiveSupport cache store: expiry and versions"
  it_behaves_like "an ActiveSupport cache store: multi-key operations"
  it_behaves_like "an ActiveSupport cache store: keys and namespaces"
  it_behaves_like "an ActiveSupport cache store: deleting and maintenance"
  it_behaves_like "an ActiveSupport cache store: instrumentation"
end
