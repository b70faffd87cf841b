# frozen_string_literal: true

# How names become keys (Strings, Symbols, Integers, Arrays, Hashes, objects,
# long keys, unusual characters and encodings) and how namespace: scopes them.
RSpec.shared_examples "an ActiveSupport cache store: keys and namespaces" do
  describe "keys" do
    it "treats a Symbol and the equal String as the same key" do
      cache.write(:city, "Duckburgh")

      expect(cache.read("city")).to eq("Duckburgh")
    end

    it "treats an Integer and its String form as the same key" do
      cache.write(1, "one")

      expect(cache.read("1")).to eq("one")
    end

    it "is case sensitive" do
      cache.write("foo", "bar")

      expect(cache.read("FOO")).to be_nil
      expect(cache.read("Foo")).to be_nil
    end

    it "joins the elements of an Array name with slashes" do
      cache.write([:fu, "foo", 1], "bar")

      expect(cache.read("fu/foo/1")).to eq("bar")
    end

    it "treats a one-element Array like its element" do
      cache.write(["foo"], "bar")

      expect(cache.read("foo")).to eq("bar")
    end

    it "expands a Hash name into sorted key=value pairs, so insertion order does not matter" do
      cache.write({ fu: 2, foo: 1 }, "bar")

      expect(cache.read("foo=1/fu=2")).to eq("bar")
      expect(cache.read({ foo: 1, fu: 2 })).to eq("bar")
    end

    it "uses cache_key for an object that responds to it" do
      cache.write(CacheStoreContract::KeyedModel.new("model/1"), "bar")

      expect(cache.read("model/1")).to eq("bar")
    end

    it "prefers cache_key over to_param" do
      cache.write(CacheStoreContract::KeyAndParamModel.new("model/1"), "bar")

      expect(cache.read("model/1")).to eq("bar")
      expect(cache.read("to-param-must-not-be-used")).to be_nil
    end

    it "does not use cache_key_with_version to build the key" do
      cache.write(CacheStoreContract::UnversionedKeyModel.new("model/1"), "bar")

      expect(cache.read("model/1")).to eq("bar")
    end

    it "uses to_param for an object without cache_key" do
      cache.write(CacheStoreContract::ParamModel.new("param-key"), "bar")

      expect(cache.read("param-key")).to eq("bar")
    end

    it "expands each object in an Array name through its cache_key" do
      one = CacheStoreContract::KeyedModel.new("model/1")
      two = CacheStoreContract::KeyedModel.new("model/2")
      three = CacheStoreContract::KeyedModel.new("model/3")
      cache.write([one, three], "one and three")
      cache.write([two, three], "two and three")

      expect(cache.read([one, three])).to eq("one and three")
      expect(cache.read([two, three])).to eq("two and three")
      expect(cache.read("model/1/model/3")).to eq("one and three")
    end

    it "supports 2 KB keys and keeps them apart from longer keys with the same prefix" do
      key = "x" * 2048
      longer = "#{key}x"

      expect(cache.write(key, "bar")).to be_truthy
      expect(cache.read(key)).to eq("bar")
      expect(cache.fetch(key)).to eq("bar")
      expect(cache.read(longer)).to be_nil
      expect(cache.read_multi(key, longer)).to eq({ key => "bar" })
      expect(cache.delete(key)).to be_truthy
      expect(cache.exist?(key)).to be(false)
    end

    [
      "#/:*(<+=> )&$%@?;'\"\\`~-",
      "spaces and\ttabs\nand newlines",
      "percent %20 and plus + signs",
      "\u00fcml\u00e4ut \u65e5\u672c\u8a9e \u{1F986}",
      "../../etc/passwd",
      "./."
    ].each do |key|
      it "round-trips the unusual key #{key.inspect}" do
        expect(cache.write(key, "1", raw: true)).to be_truthy
        expect(cache.read(key)).to eq("1")
        expect(cache.fetch(key)).to eq("1")
        expect(cache.delete(key)).to be_truthy
        expect(cache.fetch(key, raw: true) { |_name| "2" }).to eq("2")
        expect(cache.increment(key)).to eq(3)
        expect(cache.decrement(key)).to eq(2)
      end
    end

    if metadata.fetch(:supports_dot_keys, true)
      %w[. ..].each do |key|
        it "round-trips the key #{key.inspect}" do
          expect(cache.write(key, "value")).to be_truthy
          expect(cache.read(key)).to eq("value")
          expect(cache.delete(key)).to be_truthy
        end
      end
    end

    it "accepts a key in every encoding Ruby knows" do
      aggregate_failures do
        Encoding.list.each do |encoding|
          key = String.new("foo", encoding: encoding)

          expect(cache.write(key, "1")).to be_truthy, "write with #{encoding}"
          expect(cache.read(key)).to eq("1"), "read with #{encoding}"
          expect(cache.fetch(key) { |_name| "2" }).to eq("1"), "fetch with #{encoding}"
          expect(cache.delete(key)).to be_truthy, "delete with #{encoding}"
          expect(cache.exist?(key)).to be(false), "exist? with #{encoding}"
        end
      end
    end

    it "reads a key's bytes as UTF-8, whatever the key's encoding" do
      utf8 = "\u00fcmlaut"
      binary = utf8.b
      cache.write(binary, "umlaut")

      expect(cache.read(utf8)).to eq("umlaut")
      expect(cache.read(binary)).to eq("umlaut")
    end

    it "round-trips a key whose bytes are not valid UTF-8" do
      key = "\xFF\xFEkey".b
      cache.write(key, "value")

      expect(cache.read(key)).to eq("value")
      expect(cache.read_multi(key)).to eq({ key => "value" })
      expect(cache.delete(key)).to be_truthy
    end

    it "leaves the caller's key and its encoding unchanged" do
      key = "\u00fcmlaut".b
      cache.write(key, "value")

      expect(key.encoding).to eq(Encoding::BINARY)
      expect(key).to eq("\u00fcmlaut".b)
    end
  end

  describe "namespace:" do
    it "keeps entries written under a per-call namespace apart from un-namespaced ones" do
      cache.write("key", "plain")
      cache.write("key", "spaced", namespace: "ns")

      expect(cache.read("key")).to eq("plain")
      expect(cache.read("key", namespace: "ns")).to eq("spaced")
      expect(cache.read("key", namespace: "other")).to be_nil
    end

    it "applies a store-wide namespace to every call" do
      store = store_factory.call(namespace: "ns")
      store.write("key", "value")

      expect(store.read("key")).to eq("value")
      expect(store.exist?("key")).to be(true)
      expect(store.read("key", namespace: "other")).to be_nil
    end

    it "lets a per-call namespace override the store-wide one" do
      store = store_factory.call(namespace: "ns")
      store.write("key", "default")
      store.write("key", "override", namespace: "other")

      expect(store.read("key")).to eq("default")
      expect(store.read("key", namespace: "other")).to eq("override")
    end

    it "prefixes the key with \"<namespace>:\", as every ActiveSupport store does" do
      cache.write("key", "value", namespace: "ns")

      expect(cache.read("ns:key")).to eq("value")
    end

    it "evaluates a Proc namespace on every call" do
      current = "v1"
      store = store_factory.call(namespace: -> { current })
      store.write("key", "first")

      current = "v2"
      expect(store.read("key")).to be_nil
      store.write("key", "second")

      current = "v1"
      expect(store.read("key")).to eq("first")
    end

    it "scopes fetch, exist?, delete and the multi-key operations too" do
      store = store_factory.call(namespace: "ns")
      store.write("key", "ns value")
      store.write("key", "other value", namespace: "other")

      expect(store.fetch("key") { |_name| "generated" }).to eq("ns value")
      expect(store.read_multi("key", namespace: "other")).to eq({ "key" => "other value" })
      expect(store.delete("key")).to be_truthy
      expect(store.exist?("key")).to be(false)
      expect(store.exist?("key", namespace: "other")).to be(true)
    end
  end
end
