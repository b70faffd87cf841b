# frozen_string_literal: true

require "active_support/core_ext/numeric/bytes"
require "active_support/core_ext/string/output_safety"

RSpec.describe SyncedMemoryStore::Store do
  subject(:store) { described_class.new(sync: false, **options) }

  let(:options) { {} }

  describe "options" do
    it "rejects a size that is not a sensible byte count, naming the option" do
      [0, -1, 100].each do |size|
        expect { described_class.new(sync: false, size: size) }
          .to raise_error(SyncedMemoryStore::ConfigurationError, /size:.*#{size}/)
      end
      expect { described_class.new(sync: false, size: "lots") }
        .to raise_error(SyncedMemoryStore::ConfigurationError, /size:.*"lots"/)
    end

    it "rejects a cache: that is not a store, a store name or lookup arguments" do
      expect { described_class.new(sync: false, cache: 42) }
        .to raise_error(SyncedMemoryStore::ConfigurationError, /cache:.*42/)
    end

    it "refuses another SyncedMemoryStore as its L2" do
      inner = described_class.new(sync: false)
      expect { described_class.new(sync: false, cache: inner) }
        .to raise_error(SyncedMemoryStore::ConfigurationError, /cache: cannot be another/)
    end

    it "accepts cache: as a store name or as lookup_store arguments" do
      by_name = described_class.new(sync: false, cache: :memory_store)
      by_args = described_class.new(sync: false, cache: [:memory_store, { size: 1.megabyte }])

      [by_name, by_args].each do |cache|
        cache.write("k", "v")
        expect(cache.inspect).to include("l2=ActiveSupport::Cache::MemoryStore")
      end
    end

    it "rejects a coder: that cannot dump and load" do
      expect { described_class.new(sync: false, coder: Object.new) }
        .to raise_error(SyncedMemoryStore::ConfigurationError, /coder: must respond to dump and load/)
    end

    it "keeps its own options out of the ActiveSupport options passed to writes" do
      cache = described_class.new(sync: false, cache: :memory_store, size: 1.megabyte, expires_in: 60)
      # Exactly what MemoryStore keeps (ActiveSupport 7.0+ add compress_threshold: to every store's).
      expect(cache.options).to eq(ActiveSupport::Cache::MemoryStore.new(expires_in: 60).options)
      expect(cache.options).to include(compress: false, expires_in: 60)
    end
  end

  describe "L1 byte budget" do
    let(:options) { { size: 256.kilobytes } }

    it "stays within size: as entries are added, evicting the least recently used" do
      value = "x" * 1000
      2000.times { |i| store.write("key-#{i}", value) }

      stats = store.stats
      expect(stats[:l1_bytes]).to be <= 256.kilobytes
      expect(stats[:l1_bytes]).to be > 200.kilobytes
      expect(stats[:l1_entries]).to be < 2000
      expect(store.read("key-1999")).to eq(value)
      expect(store.read("key-0")).to be_nil
    end

    it "counts compressed entries by their compressed size" do
      plain = described_class.new(sync: false)
      packed = described_class.new(sync: false, compress: true)
      [plain, packed].each { |cache| cache.write("big", "0" * 100_000) }

      expect(packed.stats[:l1_bytes]).to be < plain.stats[:l1_bytes] / 10
      expect(packed.read("big")).to eq("0" * 100_000)
    end
  end

  describe "expiry" do
    it "never returns an expired entry, by Ruby's clock" do
      freeze_time
      store.write("k", "v", expires_in: 60)
      travel 59
      expect(store.read("k")).to eq("v")
      travel 1
      expect(store.read("k")).to be_nil
      expect(store.fetch("k") { "fresh" }).to eq("fresh")
    end

    it "evicts expired entries from memory without being read" do
      store.write("short", "v", expires_in: 0.05)
      store.write("long", "v", expires_in: 60)

      wait_until(message: "the expired entry was never evicted") { store.stats[:l1_entries] == 1 }
      expect(store.read("long")).to eq("v")
    end
  end

  describe "values" do
    {
      "a UTF-8 String" => "héllo",
      "a binary String" => "\xFF\x00".b,
      "a US-ASCII String" => "plain".encode(Encoding::US_ASCII),
      "a String in another encoding" => "日本".encode(Encoding::Shift_JIS),
      "a large Integer" => 2**80,
      "a negative Integer" => -(2**62),
      "an Integer at the edge of i64" => (2**63) - 1,
      "negative zero" => -0.0,
      "infinity" => Float::INFINITY,
      "a Symbol" => :sym,
      "a Time" => Time.at(1_700_000_000, 123_456, :usec),
      "a nested structure" => { "a" => [1, 2.5, nil, true, { b: "c" }] }
    }.each do |description, value|
      it "round-trips #{description} with its class and encoding" do
        store.write("k", value)
        read = store.read("k")

        expect(read).to eql(value)
        expect(read.encoding).to eq(value.encoding) if value.is_a?(String)
      end
    end

    it "round-trips NaN" do
      store.write("k", Float::NAN)
      expect(store.read("k")).to be_nan
    end

    it "keeps String subclasses and Strings with instance variables intact" do
      safe = ActiveSupport::SafeBuffer.new("<b>safe</b>")
      tagged = +"tagged"
      tagged.instance_variable_set(:@tag, 1)
      store.write("safe", safe)
      store.write("tagged", tagged)

      expect(store.read("safe")).to be_a(ActiveSupport::SafeBuffer).and be_html_safe
      expect(store.read("tagged").instance_variable_get(:@tag)).to eq(1)
    end

    it "returns an unfrozen copy of a frozen String" do
      store.write("k", "frozen")
      expect(store.read("k")).not_to be_frozen
    end
  end

  describe "per-call options kept from the original gem" do
    let(:l2) { ActiveSupport::Cache::MemoryStore.new }
    let(:options) { { cache: l2 } }

    it "force_miss: makes reads miss and fetch run its block" do
      store.write("k", "cached")

      expect(store.read("k", force_miss: true)).to be_nil
      expect(store.exist?("k", force_miss: true)).to be(false)
      expect(store.fetch("k", force_miss: true) { "computed" }).to eq("computed")
      expect(store.read("k")).to eq("computed")
    end

    it "persist: false keeps the value out of L2 and removes an older one there" do
      store.write("k", "persisted")
      store.write("k", "memory only", persist: false)

      expect(store.read("k")).to eq("memory only")
      expect(l2.read("k")).to be_nil
    end
  end

  describe "the store provider interface" do
    let(:recording_class) do
      Class.new(described_class) do
        attr_reader :written

        def write_multi_entries(entries, **options)
          (@written ||= []) << entries.transform_values(&:value)
          super
        end
      end
    end

    it "routes write_multi and fetch_multi through an overridden write_multi_entries, even with nobody listening" do
      store = recording_class.new(sync: false)
      store.write_multi("a" => 1, "b" => 2)
      store.fetch_multi("c") { |key| key * 2 }

      expect(store.written).to eq([{ "a" => 1, "b" => 2 }, { "c" => "cc" }])
      expect(store.read_multi("a", "b", "c")).to eq("a" => 1, "b" => 2, "c" => "cc")
    end
  end

  describe "#stats and #inspect" do
    it "counts hits and misses at each level" do
      cache = described_class.new(sync: false, cache: ActiveSupport::Cache::MemoryStore.new)
      cache.write("k", "v")
      cache.read("k")
      cache.read("missing")

      expect(cache.stats).to include(l1_hits: 1, l1_misses: 1, l2_hits: 0, l2_misses: 1, l1_entries: 1)
      expect(cache.stats[:l1_bytes]).to be_positive
    end

    it "shows sizes but never connection settings" do
      require "active_support/cache/redis_cache_store"
      l2 = ActiveSupport::Cache::RedisCacheStore.new(url: "redis://user:s3cret@127.0.0.1:1/0")
      cache = described_class.new(sync: false, cache: l2, namespace: "app")

      expect(cache.inspect).to include("entries=0", "size=0", "l2=ActiveSupport::Cache::RedisCacheStore")
      expect(cache.inspect).not_to include("s3cret")
    end
  end

  describe "increment and decrement without an L2" do
    it "are atomic within the process" do
      store.write("counter", 0)
      threads = Array.new(8) { Thread.new { 250.times { store.increment("counter") } } }
      threads.each(&:join)

      expect(store.read("counter")).to eq(2000)
    end

    it "keep the entry's expiry" do
      freeze_time
      store.write("counter", 1, expires_in: 60)
      travel 30
      store.increment("counter")
      travel 31
      expect(store.read("counter")).to be_nil
    end
  end

  describe "delete_matched" do
    it "takes Redis-style globs as well as Regexps" do
      %w[user:1 user:2 users user:10 post:1].each { |key| store.write(key, key) }

      store.delete_matched("user:?")
      expect(%w[user:1 user:2 users user:10 post:1].select { |key| store.exist?(key) })
        .to eq(%w[users user:10 post:1])
    end

    it "rejects other matchers" do
      expect { store.delete_matched(:user) }.to raise_error(ArgumentError, /Regexp or a glob String/)
    end
  end
end
