# frozen_string_literal: true

# The ActiveSupport store contract (spec/support/shared_examples), which
# spec/unit/memory_store_contract_spec.rb proves against ActiveSupport's own
# stores, held against SyncedMemoryStore::Store with and without an L2.
RSpec.describe SyncedMemoryStore::Store do
  context "with no L2 (L1 only)" do
    let(:store_factory) { ->(**options) { described_class.new(sync: false, cache: nil, **options) } }

    it_behaves_like "an ActiveSupport cache store"
  end

  context "with a MemoryStore L2" do
    let(:store_factory) do
      ->(**options) { described_class.new(sync: false, cache: ActiveSupport::Cache::MemoryStore.new, **options) }
    end

    it_behaves_like "an ActiveSupport cache store"
  end
end
