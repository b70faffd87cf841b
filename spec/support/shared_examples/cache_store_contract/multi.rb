# frozen_string_literal: true

# #read_multi, #write_multi and #fetch_multi.
RSpec.shared_examples "an ActiveSupport cache store: multi-key operations" do
  let(:written_at) { Time.at(1_700_000_000) }

  describe "#read_multi" do
    it "returns a Hash of the names that hit, leaving misses out" do
      cache.write("foo", "bar")
      cache.write("fu", "baz")
      cache.write("fud", "biz")

      expect(cache.read_multi("foo", "fu", "missing")).to eq({ "foo" => "bar", "fu" => "baz" })
    end

    it "keys the result by the names exactly as they were passed" do
      model = CacheStoreContract::KeyedModel.new("model/1")
      cache.write("symbol", 1)
      cache.write("model/1", 2)

      expect(cache.read_multi(:symbol, model)).to eq({ symbol: 1, model => 2 })
    end

    it "includes names whose cached value is nil" do
      cache.write("nothing", nil)

      expect(cache.read_multi("nothing", "missing")).to eq({ "nothing" => nil })
    end

    it "returns an empty Hash when given no names" do
      expect(cache.read_multi).to eq({})
    end

    it "leaves out expired entries" do
      travel_to written_at
      cache.write("short", "value", expires_in: 10)
      cache.write("long", "value")

      travel_to written_at + 11
      expect(cache.read_multi("short", "long")).to eq({ "long" => "value" })
    end

    it "leaves out entries whose version does not match the object's cache_version" do
      model_v1 = CacheStoreContract::VersionedModel.new("model/1", 1)
      model_v2 = CacheStoreContract::VersionedModel.new("model/1", 2)
      other = CacheStoreContract::VersionedModel.new("model/2", 1)
      cache.write(model_v1, "one")
      cache.write(other, "other")

      expect(cache.read_multi(model_v2, other)).to eq({ other => "other" })
    end

    it "applies options such as version: to every name" do
      cache.write("a", 1, version: 1)
      cache.write("b", 2, version: 2)

      expect(cache.read_multi("a", "b", version: 1)).to eq({ "a" => 1 })
    end
  end

  describe "#write_multi" do
    it "writes every pair" do
      cache.write_multi({ "foo" => "bar", "egg" => "spam" })

      expect([cache.read("foo"), cache.read("egg")]).to eq(%w[bar spam])
    end

    it "applies options such as expires_in: to every pair" do
      travel_to written_at
      cache.write_multi({ "foo" => "bar", "egg" => "spam" }, expires_in: 60)

      travel_to written_at + 59
      expect(cache.read_multi("foo", "egg")).to eq({ "foo" => "bar", "egg" => "spam" })
      travel_to written_at + 61
      expect(cache.read_multi("foo", "egg")).to eq({})
    end

    it "stores the cache_version of object names" do
      model_v1 = CacheStoreContract::VersionedModel.new("model/1", 1)
      model_v2 = CacheStoreContract::VersionedModel.new("model/1", 2)

      cache.write_multi({ model_v1 => "one" })

      expect(cache.read(model_v1)).to eq("one")
      expect(cache.read(model_v2)).to be_nil
    end
  end

  describe "#fetch_multi" do
    it "returns cached values and generates missing ones, keyed by name" do
      cache.write("foo", "bar")
      cache.write("fud", "biz")

      values = cache.fetch_multi("foo", "fu", "fud") { |name| name * 2 }

      expect(values).to eq({ "foo" => "bar", "fu" => "fufu", "fud" => "biz" })
    end

    it "orders the result like the names it was given" do
      cache.write("bam", "BAM")

      values = cache.fetch_multi("foo", "bar", "bam", &:upcase)

      expect(values.keys).to eq(%w[foo bar bam])
    end

    it "calls the block once per missing name, with that name, and never for hits" do
      cache.write("hit", "cached")

      expect { |block| cache.fetch_multi("miss-1", "hit", "miss-2", &block) }
        .to yield_successive_args("miss-1", "miss-2")
    end

    it "writes the generated values to the cache" do
      cache.fetch_multi("foo", "fu") { |name| name * 2 }

      expect(cache.read_multi("foo", "fu")).to eq({ "foo" => "foofoo", "fu" => "fufu" })
    end

    it "keys the result by the original name objects" do
      first = CacheStoreContract::KeyedModel.new("foo", "FOO!")
      second = CacheStoreContract::KeyedModel.new("bar", "BAR!")
      cache.write("bar", "BAM!")

      values = cache.fetch_multi(first, second, &:title)

      expect(values).to eq({ first => "FOO!", second => "BAM!" })
      expect(cache.read("foo")).to eq("FOO!")
    end

    it "treats a cached nil as a hit" do
      cache.write("nothing", nil)

      expect { |block| cache.fetch_multi("nothing", &block) }.not_to yield_control
      expect(cache.fetch_multi("nothing") { "generated" }).to eq({ "nothing" => nil })
    end

    it "raises ArgumentError without a block and writes nothing" do
      expect { cache.fetch_multi("foo", "bar") }.to raise_error(ArgumentError)

      expect(cache.read_multi("foo", "bar")).to eq({})
    end

    it "applies options such as expires_in: to the generated values" do
      travel_to written_at
      cache.fetch_multi("foo", expires_in: 60) { "bar" }

      travel_to written_at + 59
      expect(cache.read("foo")).to eq("bar")
      travel_to written_at + 61
      expect(cache.read("foo")).to be_nil
    end

    it "regenerates entries that have expired" do
      travel_to written_at
      cache.write("foo", "old", expires_in: 10)

      travel_to written_at + 11
      expect(cache.fetch_multi("foo") { "new" }).to eq({ "foo" => "new" })
      expect(cache.read("foo")).to eq("new")
    end

    it "regenerates entries whose version does not match and stores the new version" do
      model_v1 = CacheStoreContract::VersionedModel.new("model/1", 1)
      other_v1 = CacheStoreContract::VersionedModel.new("model/2", 1)
      other_v2 = CacheStoreContract::VersionedModel.new("model/2", 2)

      first = cache.fetch_multi(model_v1, other_v1, &:cache_key)
      second = cache.fetch_multi(model_v1, other_v2) { |model| "#{model.cache_key} again" }

      expect(first).to eq({ model_v1 => "model/1", other_v1 => "model/2" })
      expect(second).to eq({ model_v1 => "model/1", other_v2 => "model/2 again" })
      expect(cache.read(other_v2)).to eq("model/2 again")
    end
  end
end
