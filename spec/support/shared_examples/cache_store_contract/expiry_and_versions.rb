# frozen_string_literal: true

# expires_in: (per store and per call) and version: (explicit, and recyclable
# keys taken from objects that respond to cache_key and cache_version).
RSpec.shared_examples "an ActiveSupport cache store: expiry and versions" do
  describe "expires_in:" do
    let(:written_at) { Time.at(1_700_000_000) }

    before { travel_to written_at }

    it "keeps an entry readable until expires_in seconds have passed" do
      cache.write("key", "value", expires_in: 60)

      travel_to written_at + 59
      expect(cache.read("key")).to eq("value")
      expect(cache.exist?("key")).to be(true)
    end

    it "expires an entry as soon as exactly expires_in seconds have passed" do
      cache.write("key", "value", expires_in: 60)

      travel_to written_at + 60
      expect(cache.read("key")).to be_nil
      expect(cache.exist?("key")).to be(false)
    end

    it "accepts an ActiveSupport::Duration" do
      cache.write("key", "value", expires_in: 1.minute)

      travel_to written_at + 59
      expect(cache.read("key")).to eq("value")
      travel_to written_at + 61
      expect(cache.read("key")).to be_nil
    end

    it "expires each entry on its own schedule" do
      cache.write("short", "value", expires_in: 60)
      cache.write("long", "value", expires_in: 120)

      travel_to written_at + 61
      expect([cache.read("short"), cache.read("long")]).to eq([nil, "value"])
      travel_to written_at + 121
      expect([cache.read("short"), cache.read("long")]).to eq([nil, nil])
    end

    it "never expires an entry written without expires_in" do
      cache.write("key", "value")

      travel_to written_at + (10 * 365 * 24 * 60 * 60)
      expect(cache.read("key")).to eq("value")
    end

    it "applies a store-wide expires_in to every write" do
      store = store_factory.call(expires_in: 60)
      store.write("key", "value")

      travel_to written_at + 61
      expect(store.read("key")).to be_nil
    end

    it "lets expires_in on a write override the store-wide default" do
      store = store_factory.call(expires_in: 60)
      store.write("shorter", "value", expires_in: 10)
      store.write("longer", "value", expires_in: 120)

      travel_to written_at + 11
      expect(store.read("shorter")).to be_nil
      travel_to written_at + 61
      expect(store.read("longer")).to eq("value")
    end

    it "lets expires_in: nil on a write disable the store-wide default" do
      store = store_factory.call(expires_in: 60)
      store.write("key", "value", expires_in: nil)

      travel_to written_at + 3600
      expect(store.read("key")).to eq("value")
    end

    it "removes an expired entry when it is read, so it does not come back if the clock is turned back" do
      cache.write("key", "value", expires_in: 60)
      travel_to written_at + 61
      cache.read("key")

      travel_to written_at + 1
      expect(cache.read("key")).to be_nil
    end
  end

  describe "version:" do
    it "returns a value to a read with the same version" do
      cache.write("key", "value", version: 1)

      expect(cache.read("key", version: 1)).to eq("value")
    end

    it "misses when the read asks for a different version" do
      cache.write("key", "value", version: 1)

      expect(cache.read("key", version: 2)).to be_nil
    end

    it "compares versions by their to_param, so 1 and \"1\" are the same version" do
      cache.write("key", "value", version: 1)

      expect(cache.read("key", version: "1")).to eq("value")
    end

    it "returns a versioned entry to a read that asks for no version" do
      cache.write("key", "value", version: 1)

      expect(cache.read("key")).to eq("value")
    end

    it "returns an unversioned entry to a read that asks for a version" do
      cache.write("key", "value")

      expect(cache.read("key", version: 7)).to eq("value")
    end

    it "keeps one entry per key: writing another version replaces the previous one" do
      cache.write("key", "one", version: 1)
      cache.write("key", "two", version: 2)

      expect(cache.read("key", version: 1)).to be_nil
      expect(cache.read("key", version: 2)).to eq("two")
    end

    it "answers exist? only for a matching version" do
      cache.write("key", "value", version: 1)

      expect(cache.exist?("key", version: 1)).to be(true)
      expect(cache.exist?("key", version: 2)).to be(false)
    end

    it "makes #fetch hit for the same version" do
      cache.fetch("key", version: 1) { |_name| "one" }

      expect { |block| cache.fetch("key", version: 1, &block) }.not_to yield_control
      expect(cache.read("key", version: 1)).to eq("one")
    end

    it "makes #fetch regenerate on a version mismatch and store the new version" do
      cache.fetch("key", version: 1) { |_name| "one" }

      expect(cache.fetch("key", version: 2) { |_name| "two" }).to eq("two")
      expect(cache.read("key", version: 2)).to eq("two")
      expect(cache.read("key", version: 1)).to be_nil
    end

    context "with objects responding to cache_key and cache_version (recyclable keys)" do
      let(:model_v1) { CacheStoreContract::VersionedModel.new("model/1", 1) }
      let(:model_v2) { CacheStoreContract::VersionedModel.new("model/1", 2) }
      let(:other_v1) { CacheStoreContract::VersionedModel.new("model/2", 1) }
      let(:other_v2) { CacheStoreContract::VersionedModel.new("model/2", 2) }

      it "reads the value back with an object of the same version" do
        cache.write(model_v1, "value")

        expect(cache.read(model_v1)).to eq("value")
      end

      it "misses for the same cache_key with another cache_version" do
        cache.write(model_v1, "value")

        expect(cache.read(model_v2)).to be_nil
        expect(cache.exist?(model_v2)).to be(false)
      end

      it "stores the entry under the cache_key alone, so new versions recycle the same key" do
        cache.write(model_v1, "one")
        expect(cache.read("model/1")).to eq("one")

        cache.write(model_v2, "two")
        expect(cache.read(model_v1)).to be_nil
        expect(cache.read(model_v2)).to eq("two")
        expect(cache.read("model/1")).to eq("two")
      end

      it "takes the version from an object nested in an Array key" do
        cache.write(["something", model_v1], "value")

        expect(cache.read(["something", model_v1])).to eq("value")
        expect(cache.read(["something", model_v2])).to be_nil
      end

      it "combines the versions of several objects in an Array key" do
        cache.write([model_v1, other_v1], "value")

        expect(cache.read([model_v1, other_v1])).to eq("value")
        expect(cache.read([model_v1, other_v2])).to be_nil
      end

      it "lets an explicit version: option take precedence over cache_version" do
        cache.write(model_v1, "value", version: 5)

        expect(cache.read(model_v1)).to be_nil
        expect(cache.read(model_v1, version: 5)).to eq("value")
      end

      it "makes #fetch hit for the current version and regenerate for a new one" do
        cache.fetch(model_v1) { |_name| "one" }

        expect(cache.fetch(model_v1) { |_name| "ignored" }).to eq("one")
        expect(cache.fetch(model_v2) { |_name| "two" }).to eq("two")
        expect(cache.read(model_v2)).to eq("two")
      end
    end
  end
end
