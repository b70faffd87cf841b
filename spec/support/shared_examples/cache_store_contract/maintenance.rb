# frozen_string_literal: true

# exist?, delete, delete_multi, unless_exist:, increment/decrement, cleanup,
# clear and delete_matched.
RSpec.shared_examples "an ActiveSupport cache store: deleting and maintenance" do
  let(:written_at) { Time.at(1_700_000_000) }

  describe "#exist?" do
    it "is true for a written key and false for one never written" do
      cache.write("key", "value")

      expect(cache.exist?("key")).to be(true)
      expect(cache.exist?("never-written")).to be(false)
    end

    it "is true for a key whose cached value is nil" do
      cache.write("key", nil)

      expect(cache.exist?("key")).to be(true)
    end

    it "is true for a key whose cached value is false" do
      cache.write("key", false)

      expect(cache.exist?("key")).to be(true)
    end

    it "is false once the entry has expired" do
      travel_to written_at
      cache.write("key", "value", expires_in: 60)

      travel_to written_at + 61
      expect(cache.exist?("key")).to be(false)
    end

    it "is false for a version that does not match" do
      cache.write("key", "value", version: 1)

      expect(cache.exist?("key", version: 2)).to be(false)
    end
  end

  describe "#delete" do
    it "removes the entry and returns a truthy value" do
      cache.write("key", "value")

      expect(cache.delete("key")).to be_truthy
      expect(cache.exist?("key")).to be(false)
      expect(cache.read("key")).to be_nil
    end

    it "returns a falsey value for a key that is not cached" do
      expect(cache.delete("never-written")).to be_falsey
    end

    it "leaves other entries in place" do
      cache.write("key", "value")
      cache.write("other", "value")

      cache.delete("key")

      expect(cache.read("other")).to eq("value")
    end
  end

  describe "#delete_multi" do
    it "removes every named entry and returns how many were deleted" do
      cache.write("foo", "bar")
      cache.write("hello", "world")
      cache.write("kept", "value")

      expect(cache.delete_multi(%w[foo does-not-exist hello])).to eq(2)
      expect(cache.exist?("foo")).to be(false)
      expect(cache.exist?("hello")).to be(false)
      expect(cache.read("kept")).to eq("value")
    end

    it "returns 0 when none of the names is cached" do
      expect(cache.delete_multi(%w[a b])).to eq(0)
    end
  end

  describe "write with unless_exist: true" do
    it "writes and returns a truthy value when the key is absent" do
      expect(cache.write("key", "value", unless_exist: true)).to be_truthy
      expect(cache.read("key")).to eq("value")
    end

    it "returns false and keeps the cached value when the key is present" do
      cache.write("key", "first")

      expect(cache.write("key", "second", unless_exist: true)).to be(false)
      expect(cache.read("key")).to eq("first")
    end
  end

  describe "#increment and #decrement" do
    it "increments an integer value by 1 and returns the new value" do
      cache.write("counter", 1, raw: true)

      expect(cache.increment("counter")).to eq(2)
      expect(cache.read("counter", raw: true).to_i).to eq(2)
      expect(cache.increment("counter")).to eq(3)
      expect(cache.read("counter", raw: true).to_i).to eq(3)
    end

    it "increments by the given amount" do
      cache.write("counter", 1, raw: true)

      expect(cache.increment("counter", 5)).to eq(6)
      expect(cache.read("counter", raw: true).to_i).to eq(6)
    end

    it "decrements an integer value by 1 and returns the new value" do
      cache.write("counter", 3, raw: true)

      expect(cache.decrement("counter")).to eq(2)
      expect(cache.read("counter", raw: true).to_i).to eq(2)
      expect(cache.decrement("counter")).to eq(1)
    end

    it "decrements by the given amount, going below zero" do
      cache.write("counter", 3, raw: true)

      expect(cache.decrement("counter", 5)).to eq(-2)
      expect(cache.read("counter", raw: true).to_i).to eq(-2)
    end

    it "increments a String holding an integer, as raw values are stored" do
      cache.write("counter", "41", raw: true)

      expect(cache.increment("counter")).to eq(42)
    end

    it "respects the namespace" do
      # Counters are written raw, as Rails' own tests write them: stores whose
      # backend counts (Redis, Memcached) only count raw values.
      cache.write("counter", 1, namespace: "ns", raw: true)
      cache.write("counter", 10)

      expect(cache.increment("counter", 1, namespace: "ns")).to eq(2)
      expect(cache.read("counter")).to eq(10)
    end

    # Stores differ on a missing key: MemoryStore and FileStore return nil and
    # write nothing; RedisCacheStore starts the counter from zero. Rails' own
    # behaviour tests accept both, and so does this contract.
    {
      "#increment" => [:increment, 1],
      "#increment with an amount" => [:increment, 100],
      "#decrement" => [:decrement, -1],
      "#decrement with an amount" => [:decrement, -100]
    }.each do |description, (operation, delta)|
      it "#{description} on a missing key either returns nil and writes nothing, or starts from zero" do
        result = cache.public_send(operation, "missing", delta.abs)

        if result.nil?
          expect(cache.exist?("missing")).to be(false)
        else
          expect(result).to eq(delta)
          expect(cache.read("missing", raw: true).to_i).to eq(delta)
        end
      end
    end
  end

  describe "#cleanup" do
    before do
      travel_to written_at
      cache.write("expiring", "value", expires_in: 60)
      cache.write("lasting", "value", expires_in: 3600)
      cache.write("forever", "value")
    end

    if metadata.fetch(:cleanup_removes_from_backend, true)
      it "removes expired entries, so they do not come back if the clock is turned back" do
        travel_to written_at + 61
        cache.cleanup

        travel_to written_at + 1
        expect(cache.read("expiring")).to be_nil
        expect(cache.exist?("expiring")).to be(false)
      end
    end

    it "keeps entries that have not expired" do
      travel_to written_at + 61
      cache.cleanup

      expect(cache.read("lasting")).to eq("value")
      expect(cache.read("forever")).to eq("value")
    end

    it "removes nothing while every entry is live" do
      travel_to written_at + 30
      cache.cleanup

      expect(cache.read_multi("expiring", "lasting", "forever").keys)
        .to contain_exactly("expiring", "lasting", "forever")
    end
  end

  describe "#clear" do
    it "removes every entry, whatever its namespace" do
      cache.write("foo", "bar")
      cache.write("foo", "bar", namespace: "ns")
      cache.write("versioned", "value", version: 1)

      cache.clear

      expect(cache.read("foo")).to be_nil
      expect(cache.read("foo", namespace: "ns")).to be_nil
      expect(cache.read("versioned", version: 1)).to be_nil
    end

    it "leaves the store usable" do
      cache.write("foo", "bar")
      cache.clear

      cache.write("foo", "baz")
      expect(cache.read("foo")).to eq("baz")
    end
  end

  describe "#delete_matched" do
    before do
      cache.write("foo", "bar")
      cache.write("fu", "baz")
      cache.write("foo/bar", "baz")
      cache.write("fu/baz", "bar")
    end

    it "deletes the entries whose key matches the Regexp and keeps the rest" do
      cache.delete_matched(/oo/)

      expect(cache.exist?("foo")).to be(false)
      expect(cache.exist?("foo/bar")).to be(false)
      expect(cache.exist?("fu")).to be(true)
      expect(cache.exist?("fu/baz")).to be(true)
    end

    it "matches anchors against the key" do
      cache.write("xfoo", "value")

      cache.delete_matched(/^foo/)

      expect(cache.exist?("foo")).to be(false)
      expect(cache.exist?("foo/bar")).to be(false)
      expect(cache.exist?("xfoo")).to be(true)
    end

    it "honours the Regexp's options" do
      cache.delete_matched(/FOO/i)

      expect(cache.exist?("foo")).to be(false)
      expect(cache.exist?("fu")).to be(true)
    end

    context "with a store-wide namespace" do
      subject(:cache) { store_factory.call(namespace: "ns") }

      before do
        cache.write("foo", "other", namespace: "other")
        cache.write("xfoo", "value")
      end

      it "deletes only matching entries in the store's namespace" do
        cache.delete_matched(/foo/)

        expect(cache.exist?("foo")).to be(false)
        expect(cache.exist?("xfoo")).to be(false)
        expect(cache.exist?("fu")).to be(true)
        expect(cache.exist?("foo", namespace: "other")).to be(true)
      end

      it "anchors ^ at the start of the name, after the namespace" do
        cache.delete_matched(/^foo/)

        expect(cache.exist?("foo")).to be(false)
        expect(cache.exist?("foo/bar")).to be(false)
        expect(cache.exist?("xfoo")).to be(true)
      end

      it "deletes in the namespace given to the call instead, when one is given" do
        cache.delete_matched(/foo/, namespace: "other")

        expect(cache.exist?("foo", namespace: "other")).to be(false)
        expect(cache.exist?("foo")).to be(true)
      end
    end

    context "with a Proc namespace" do
      subject(:cache) { store_factory.call(namespace: -> { namespace_holder[:current] }) }

      let(:namespace_holder) { { current: "v1" } }

      it "deletes in the namespace the Proc returns at the time of the call" do
        namespace_holder[:current] = "v2"
        cache.write("foo", "v2 value")

        cache.delete_matched(/^foo/)

        expect(cache.exist?("foo")).to be(false)
        namespace_holder[:current] = "v1"
        expect(cache.read("foo")).to eq("bar")
      end
    end
  end
end
