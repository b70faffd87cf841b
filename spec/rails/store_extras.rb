# frozen_string_literal: true

# Per-store tests that are ours, not Rails': each module here is included into the test class for
# the stores whose `extras:` names it (spec/rails/stores.rb), AFTER Rails' behaviour modules, so a
# method defined here with the same name as one of Rails' tests replaces that test for those stores
# only. Keep each addition or override small and say why it differs from Rails' behaviour tests.
#
# Rails' behaviour modules don't pin down what a large value under a store's *default* compression
# settings looks like; each of Rails' store tests adds that itself, because the default is a store
# decision. The helpers used (assert_compressed/assert_uncompressed) and the sample values come from
# Rails' CacheStoreBehavior, loaded by the harness before these modules are included.
module RailsCacheBehaviors
  # ActiveSupport::Cache::MemoryStore turns compression off by default (memory_store.rb: "Disable
  # compression by default"), as Rails' own MemoryStore test checks too. (From ActiveSupport 7.1
  # CacheStoreCompressionBehavior checks that itself, through compression_always_disabled_by_default?.)
  module MemoryStoreExtras
    if CacheStoreBehavior.const_defined?(:LARGE_STRING)
      def test_large_string_with_default_compression_settings
        assert_uncompressed(CacheStoreBehavior::LARGE_STRING)
      end

      def test_large_object_with_default_compression_settings
        assert_uncompressed(CacheStoreBehavior::LARGE_OBJECT)
      end
    end
  end

  # SyncedMemoryStore::Store, whatever its L2: its L1 is memory, so like MemoryStore it compresses
  # only when asked to (the L2 keeps its own compression settings).
  module SyncedStoreExtras
    include MemoryStoreExtras
  end
end
