# frozen_string_literal: true

require "securerandom"

# Reading and writing values: supported types, copy semantics, serialization
# failures, compression, custom coders and store-level metadata.
RSpec.shared_examples "an ActiveSupport cache store: values" do
  describe "#write and #read" do
    {
      "a String" => "Duckburgh",
      "a Hash with String keys" => { "name" => "Scrooge", "coins" => [1, 2, 3], "vault" => { "floor" => 3 } },
      "an Integer" => 42,
      "a Float" => 3.25,
      "nil" => nil,
      "false" => false,
      "true" => true,
      "an Array" => ["a", 1, nil, [2.5, "b"]],
      "a Time (with sub-second precision)" => Time.at(1_700_000_000, 123_456, :usec)
    }.each do |description, value|
      it "stores and returns #{description}" do
        expect(cache.write("key", value)).to be_truthy
        expect(cache.read("key")).to eq(value)
      end
    end

    it "returns nil for a key that was never written" do
      expect(cache.read("never-written")).to be_nil
    end

    it "replaces the value when a key is written again" do
      cache.write("key", "first")
      cache.write("key", "second")

      expect(cache.read("key")).to eq("second")
    end

    it "keeps entries under different keys apart" do
      cache.write("one", 1)
      cache.write("two", 2)

      expect([cache.read("one"), cache.read("two")]).to eq([1, 2])
    end
  end

  describe "value isolation" do
    it "returns a copy, so mutating a read Hash does not change the cached value" do
      cache.write("key", { "list" => [1], "name" => +"Scrooge" })

      read = cache.read("key")
      read["list"] << 2
      read["name"] << " McDuck"
      read["added"] = true

      expect(cache.read("key")).to eq({ "list" => [1], "name" => "Scrooge" })
    end

    it "returns a copy, so mutating a read String does not change the cached value" do
      cache.write("key", +"bar")

      cache.read("key") << "baz"

      expect(cache.read("key")).to eq("bar")
    end

    it "stores a copy, so mutating the written object afterwards does not change the cached value" do
      hash = { "list" => [1] }
      string = +"bar"
      cache.write("hash", hash)
      cache.write("string", string)

      hash["list"] << 2
      string << "baz"

      expect([cache.read("hash"), cache.read("string")]).to eq([{ "list" => [1] }, "bar"])
    end

    it "returns a different object on every read of a Hash" do
      cache.write("key", { "a" => 1 })

      expect(cache.read("key")).not_to equal(cache.read("key"))
    end

    it "returns a different object on every read of a String" do
      cache.write("key", "bar")

      expect(cache.read("key")).not_to equal(cache.read("key"))
    end

    it "leaves the caller's object unfrozen and mutable" do
      value = +"bar"
      cache.write("key", value)

      expect(value).not_to be_frozen
      expect { value.gsub!(/.*/, "baz") }.not_to raise_error
    end
  end

  describe "writing a value that cannot be serialized" do
    let(:io) { File.open(File::NULL) }

    after { io.close }

    {
      "a Proc" => ->(_io) { proc { :unserializable } },
      "an instance of an anonymous class holding a Proc" => lambda do |_io|
        anonymous_class = Class.new do
          def initialize
            @callback = proc { :unserializable }
          end
        end
        anonymous_class.new
      end,
      "an IO" => ->(io) { io }
    }.each do |description, build|
      context "when the value is #{description}" do
        let(:value) { build.call(io) }

        it "raises TypeError and leaves the key absent" do
          expect { cache.write("key", value) }.to raise_error(TypeError)

          expect(cache.exist?("key")).to be(false)
          expect(cache.read("key")).to be_nil
        end

        it "keeps the value previously cached under the key" do
          cache.write("key", "previous")

          expect { cache.write("key", value) }.to raise_error(TypeError)

          expect(cache.read("key")).to eq("previous")
        end

        it "raises TypeError from #fetch and caches nothing" do
          expect { cache.fetch("key") { value } }.to raise_error(TypeError)

          expect(cache.exist?("key")).to be(false)
        end
      end
    end
  end

  describe "compression" do
    let(:large_string) { "Duckburgh " * 500 }
    let(:values) do
      [large_string, "tiny", "", { "data" => large_string }, [1, 2, 3], nil, 7, 1.5, true, false]
    end

    def round_trip(store, values, **write_options)
      values.each_with_index { |value, index| store.write("key-#{index}", value, **write_options) }
      values.each_index.map { |index| store.read("key-#{index}") }
    end

    it "round-trips every kind of value with compress: true and a 1-byte threshold on the store" do
      store = store_factory.call(compress: true, compress_threshold: 1)

      expect(round_trip(store, values)).to eq(values)
    end

    it "round-trips every kind of value with compress: true and a 1-byte threshold on the write" do
      expect(round_trip(cache, values, compress: true, compress_threshold: 1)).to eq(values)
    end

    it "round-trips every kind of value with compress: false" do
      store = store_factory.call(compress: false)

      expect(round_trip(store, values)).to eq(values)
    end

    it "round-trips incompressible binary data" do
      binary = SecureRandom.random_bytes(1024)
      store = store_factory.call(compress: true, compress_threshold: 1)
      store.write("key", binary)

      expect(store.read("key")).to eq(binary)
      expect(store.read("key").encoding).to eq(Encoding::BINARY)
    end

    it "returns a fresh copy of a compressed value on every read" do
      store = store_factory.call(compress: true, compress_threshold: 1)
      store.write("key", { "data" => large_string })

      store.read("key")["data"] << "mutated"

      expect(store.read("key")).to eq({ "data" => large_string })
    end
  end

  describe "a custom coder:" do
    subject(:cache) { store_factory.call(coder: coder) }

    let(:coder) { CacheStoreContract::SpyCoder.new }

    it "hands the coder an ActiveSupport::Cache::Entry holding the value on write" do
      cache.write("key", "bar")

      expect(coder.dumped_entries.size).to eq(1)
      expect(coder.dumped_entries.first).to be_an_instance_of(ActiveSupport::Cache::Entry)
      expect(coder.dumped_entries.first.value).to eq("bar")
    end

    it "hands the coder an Entry carrying the normalized version and the expiry time" do
      travel_to Time.at(1_700_000_000)

      cache.write("key", "bar", version: 3, expires_in: 60)

      entry = coder.dumped_entries.last
      expect(entry.version).to eq("3")
      expect(entry.expires_at).to eq(1_700_000_060.0)
    end

    it "loads an ActiveSupport::Cache::Entry through the coder on a read hit" do
      cache.write("key", "bar")

      expect(cache.read("key")).to eq("bar")
      expect(coder.loaded_entries.size).to eq(1)
      expect(coder.loaded_entries.first).to be_an_instance_of(ActiveSupport::Cache::Entry)
      expect(coder.loaded_entries.first.value).to eq("bar")
    end

    it "does not use the coder on a read miss" do
      expect(cache.read("missing")).to be_nil

      expect(coder.loaded_entries).to be_empty
      expect(coder.dumped_entries).to be_empty
    end

    it "dumps one Entry per pair in #write_multi" do
      cache.write_multi({ "foo" => "bar", "egg" => "spam" })

      expect(coder.dumped_entries).to all(be_an_instance_of(ActiveSupport::Cache::Entry))
      expect(coder.dumped_entries.map(&:value)).to contain_exactly("bar", "spam")
    end

    it "loads one Entry per hit in #read_multi" do
      cache.write_multi({ "foo" => "bar", "egg" => "spam" })

      cache.read_multi("foo", "egg", "missing")

      expect(coder.loaded_entries).to all(be_an_instance_of(ActiveSupport::Cache::Entry))
      expect(coder.loaded_entries.map(&:value)).to contain_exactly("bar", "spam")
    end

    it "loads but does not dump on a #fetch hit" do
      cache.write("key", "bar")
      coder.dumped_entries.clear

      cache.fetch("key") { |_name| "generated" }

      expect(coder.loaded_entries.map(&:value)).to eq(["bar"])
      expect(coder.dumped_entries).to be_empty
    end

    it "dumps the generated value but loads nothing on a #fetch miss" do
      cache.fetch("key") { |_name| "generated" }

      expect(coder.dumped_entries.map(&:value)).to eq(["generated"])
      expect(coder.loaded_entries).to be_empty
    end
  end

  describe "store metadata" do
    it "declares support for cache versioning on its class" do
      expect(cache.class.supports_cache_versioning?).to be(true)
    end

    it "describes itself with #inspect without raising" do
      store = store_factory.call(namespace: "ns", expires_in: 60)
      store.write("key", "value")

      expect(store.inspect).to be_a(String)
    end

    it "exposes the options it was built with through #options" do
      store = store_factory.call(namespace: "ns", expires_in: 60)

      expect(store.options).to include(namespace: "ns", expires_in: 60)
    end

    it "can be silenced for good with #silence!, which returns the store" do
      expect(cache.silence!).to equal(cache)
      expect(cache).to be_silence
    end

    it "is silenced only for the duration of a #mute block" do
      silenced_inside = cache.mute { cache.silence? }

      expect(silenced_inside).to be(true)
      expect(cache).not_to be_silence
    end
  end
end
