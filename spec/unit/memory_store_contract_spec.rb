# frozen_string_literal: true

require "fileutils"
require "tmpdir"

# Proves that the "an ActiveSupport cache store" shared examples describe real
# ActiveSupport 6.1 behaviour: they must pass against ActiveSupport's own stores.
RSpec.describe ActiveSupport::Cache::MemoryStore do
  let(:store_factory) { ->(**options) { described_class.new(**options) } }

  it_behaves_like "an ActiveSupport cache store"
end

# A second, very different implementation, to catch MemoryStore-only
# assumptions in the contract. Where FileStore 6.1 legitimately differs it opts
# out through metadata documented in the shared examples' header:
# - instruments_cleanup: false  - its #cleanup publishes no cache_cleanup event;
# - supports_dot_keys: false    - the keys "." and ".." collide with directory
#                                 names on disk.
RSpec.describe ActiveSupport::Cache::FileStore, instruments_cleanup: false, supports_dot_keys: false do
  let(:cache_dirs) { [] }
  let(:store_factory) do
    lambda do |**options|
      dir = Dir.mktmpdir("cache-store-contract")
      cache_dirs << dir
      described_class.new(dir, **options)
    end
  end

  after { cache_dirs.each { |dir| FileUtils.rm_rf(dir) } }

  it_behaves_like "an ActiveSupport cache store"
end
