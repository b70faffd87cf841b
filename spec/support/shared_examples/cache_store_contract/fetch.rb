# frozen_string_literal: true

# #fetch: hits, misses, force:, skip_nil:, and race_condition_ttl:.
#
# Literal blocks take a |_name| parameter only so that rubocop's
# Style/RedundantFetchBlock, which mistakes Store#fetch for Hash#fetch, does not
# "correct" them into fetch(key, value) - that would pass the value as options.
RSpec.shared_examples "an ActiveSupport cache store: fetch" do
  describe "#fetch" do
    context "when the key is cached" do
      before { cache.write("key", "cached") }

      it "returns the cached value without calling the block" do
        expect(cache.fetch("key") { |_name| "generated" }).to eq("cached")
        expect { |block| cache.fetch("key", &block) }.not_to yield_control
      end

      it "leaves the cached value as it was" do
        cache.fetch("key") { |_name| "generated" }

        expect(cache.read("key")).to eq("cached")
      end
    end

    context "when the cached value is nil" do
      before { cache.write("key", nil) }

      it "treats the nil as a hit: returns nil without calling the block" do
        expect { |block| cache.fetch("key", &block) }.not_to yield_control
        expect(cache.fetch("key") { |_name| "generated" }).to be_nil
      end
    end

    context "when the key is missing" do
      it "calls the block with the name exactly as it was passed" do
        expect { |block| cache.fetch("key", &block) }.to yield_with_args("key", *fetch_block_extras)
        expect { |block| cache.fetch(:symbol_key, &block) }.to yield_with_args(:symbol_key, *fetch_block_extras)
      end

      it "calls the block with the un-namespaced name in a namespaced store" do
        store = store_factory.call(namespace: "ns")

        expect { |block| store.fetch("key", &block) }.to yield_with_args("key", *fetch_block_extras)
      end

      it "calls the block with the key object when the name is an object" do
        model = CacheStoreContract::KeyedModel.new("model/1", "Title")

        expect(cache.fetch(model) { |name, *| name.title }).to eq("Title")
        expect { |block| cache.fetch(CacheStoreContract::KeyedModel.new("model/2"), &block) }
          .to yield_with_args(CacheStoreContract::KeyedModel.new("model/2"), *fetch_block_extras)
      end

      it "returns the block's value and writes it to the cache" do
        expect(cache.fetch("key") { |_name| "generated" }).to eq("generated")
        expect(cache.read("key")).to eq("generated")
      end

      it "calls the block only once across repeated fetches" do
        calls = 0
        2.times do
          cache.fetch("key") do
            calls += 1
            "generated"
          end
        end

        expect(calls).to eq(1)
      end

      it "caches a nil returned by the block" do
        expect(cache.fetch("key") { |_name| nil }).to be_nil

        expect(cache.exist?("key")).to be(true)
        expect { |block| cache.fetch("key", &block) }.not_to yield_control
      end

      it "passes write options such as expires_in: on to the write" do
        travel_to Time.at(1_700_000_000)
        cache.fetch("key", expires_in: 60) { |_name| "generated" }

        travel_to Time.at(1_700_000_061)
        expect(cache.read("key")).to be_nil
      end

      it "propagates an error raised by the block and caches nothing" do
        expect { cache.fetch("key") { raise ArgumentError, "boom" } }.to raise_error(ArgumentError, "boom")

        expect(cache.exist?("key")).to be(false)
      end
    end

    context "without a block" do
      it "returns the cached value like #read" do
        cache.write("key", "cached")

        expect(cache.fetch("key")).to eq("cached")
      end

      it "returns nil on a miss and writes nothing" do
        expect(cache.fetch("key")).to be_nil
        expect(cache.exist?("key")).to be(false)
      end
    end

    context "with force: true" do
      before { cache.write("key", "cached") }

      it "calls the block even though the key is cached, and returns and writes its value" do
        expect(cache.fetch("key", force: true) { |_name| "forced" }).to eq("forced")
        expect(cache.read("key")).to eq("forced")
      end

      it "raises ArgumentError without a block and leaves the cached value alone" do
        expect { cache.fetch("key", force: true) }.to raise_error(ArgumentError)

        expect(cache.read("key")).to eq("cached")
      end
    end

    context "with skip_nil: true" do
      it "does not cache a nil returned by the block" do
        expect(cache.fetch("key", skip_nil: true) { |_name| nil }).to be_nil

        expect(cache.exist?("key")).to be(false)
      end

      it "still caches a non-nil value" do
        expect(cache.fetch("key", skip_nil: true) { |_name| "generated" }).to eq("generated")

        expect(cache.read("key")).to eq("generated")
      end
    end

    context "when the cached entry has expired" do
      it "calls the block and writes the new value" do
        travel_to Time.at(1_700_000_000)
        cache.write("key", "old", expires_in: 60)
        travel_to Time.at(1_700_000_061)

        expect(cache.fetch("key") { |_name| "new" }).to eq("new")
        expect(cache.read("key")).to eq("new")
      end
    end
  end

  describe "#fetch with race_condition_ttl:" do
    let(:written_at) { Time.at(1_700_000_000) }

    before do
      travel_to written_at
      cache.write("key", "stale", expires_in: 60)
    end

    context "when the entry expired less than race_condition_ttl ago" do
      before { travel_to written_at + 61 }

      it "serves the stale value to other readers while the block regenerates it" do
        seen_by_readers = nil
        result = cache.fetch("key", race_condition_ttl: 10) do
          seen_by_readers = cache.read("key")
          "fresh"
        end

        expect(seen_by_readers).to eq("stale")
        expect(result).to eq("fresh")
        expect(cache.read("key")).to eq("fresh")
      end

      it "makes a concurrent fetch return the stale value without calling its own block" do
        concurrent = nil
        cache.fetch("key", race_condition_ttl: 10) do
          concurrent = cache.fetch("key", race_condition_ttl: 10) { |_name| "from the concurrent block" }
          "fresh"
        end

        expect(concurrent).to eq("stale")
      end

      it "keeps serving the stale value for race_condition_ttl seconds, and no longer, when the block raises" do
        expect do
          cache.fetch("key", race_condition_ttl: 10) { raise ArgumentError, "regeneration failed" }
        end.to raise_error(ArgumentError, "regeneration failed")

        expect(cache.read("key")).to eq("stale")
        travel_to written_at + 70
        expect(cache.read("key")).to eq("stale")
        travel_to written_at + 72
        expect(cache.read("key")).to be_nil
      end

      it "regenerates on a later fetch once a failed regeneration's grace period is over" do
        expect { cache.fetch("key", race_condition_ttl: 10) { raise ArgumentError } }.to raise_error(ArgumentError)
        travel_to written_at + 72

        expect(cache.fetch("key", race_condition_ttl: 10) { |_name| "fresh" }).to eq("fresh")
      end
    end

    context "when the entry expired longer ago than race_condition_ttl" do
      it "does not serve the stale value while regenerating" do
        travel_to written_at + 75
        seen_by_readers = :not_read
        result = cache.fetch("key", race_condition_ttl: 10) do
          seen_by_readers = cache.read("key")
          "fresh"
        end

        expect(seen_by_readers).to be_nil
        expect(result).to eq("fresh")
      end
    end

    context "without race_condition_ttl" do
      it "does not serve the stale value while regenerating" do
        travel_to written_at + 61
        seen_by_readers = :not_read
        result = cache.fetch("key") do
          seen_by_readers = cache.read("key")
          "fresh"
        end

        expect(seen_by_readers).to be_nil
        expect(result).to eq("fresh")
      end
    end
  end
end
