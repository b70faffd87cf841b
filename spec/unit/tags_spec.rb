# frozen_string_literal: true

# Tags within one process (spec/integration/sync/tags_spec.rb has the
# processes): write and fetch with tags:, invalidate_tags, and what can go
# wrong around them — a version gone missing, a write that read a version
# just replaced, values that look like the stored form, bad input.
RSpec.describe "SyncedMemoryStore::Store tags" do
  tag_key = ->(tag) { "#{SyncedMemoryStore::Store::TAG_KEY_PREFIX}#{tag}" }

  shared_examples "tags" do
    it "makes every entry carrying an invalidated tag a miss, and leaves the others" do
      store.write("user", { "name" => "Ada" }, tags: ["user:1", "org:7"])
      store.write("org", "Acme", tags: "org:7")
      store.write("other", "kept", tags: "user:2")
      store.write("plain", "kept")
      expect(store.read("user")).to eq("name" => "Ada")

      expect(store.invalidate_tags("user:1")).to be(true)

      expect(store.read("user")).to be_nil
      expect(store.exist?("user")).to be(false)
      expect(store.read_multi("user", "org", "other", "plain")).to eq("org" => "Acme", "other" => "kept",
                                                                      "plain" => "kept")
      store.invalidate_tags(["org:7"])
      expect(store.read("org")).to be_nil
    end

    it "makes an entry written after the invalidation a hit again" do
      store.write("k", "old", tags: "t")
      store.invalidate_tags("t")
      store.write("k", "new", tags: "t")
      expect(store.read("k")).to eq("new")
    end

    it "runs fetch's block once the tag moved, and writes the result with the tags" do
      expect(store.fetch("k", tags: ["t"]) { "first" }).to eq("first")
      expect(store.fetch("k", tags: ["t"]) { "never" }).to eq("first")
      store.invalidate_tags("t")
      expect(store.fetch("k", tags: ["t"]) { "second" }).to eq("second")
      store.invalidate_tags("t")
      expect(store.read("k")).to be_nil
    end

    it "tags every value of write_multi and fetch_multi" do
      store.write_multi({ "a" => 1, "b" => 2 }, tags: "t")
      expect(store.read_multi("a", "b")).to eq("a" => 1, "b" => 2)
      store.invalidate_tags("t")
      expect(store.read_multi("a", "b")).to eq({})

      expect(store.fetch_multi("a", "b", tags: "t") { |name| name * 2 }).to eq("a" => "aa", "b" => "bb")
      expect(store.fetch_multi("a", "b", tags: "t") { "never" }).to eq("a" => "aa", "b" => "bb")
      store.invalidate_tags("t")
      expect(store.read_multi("a", "b")).to eq({})
    end

    it "keeps tags apart by namespace, as keys are" do
      store.write("k", "one", tags: "t", namespace: "ns1")
      store.write("k", "two", tags: "t", namespace: "ns2")
      store.invalidate_tags("t", namespace: "ns1")
      expect(store.read("k", namespace: "ns1")).to be_nil
      expect(store.read("k", namespace: "ns2")).to eq("two")
    end

    it "treats a tag whose version went missing as moved, and a new version never revives older entries" do
      store.write("old", "stale", tags: "t")
      store.delete(tag_key.call("t"))
      expect(store.read("old")).to be_nil

      store.write("new", "fresh", tags: "t")
      expect(store.read("new")).to eq("fresh")
      expect(store.read("old")).to be_nil
    end

    it "treats tag versions removed by delete_matched or clear as moved" do
      store.write("k", "v", tags: "t")
      store.delete_matched("#{SyncedMemoryStore::Store::TAG_KEY_PREFIX}*")
      expect(store.read("k")).to be_nil
      store.write("k", "v", tags: "t")
      store.clear
      store.write("j", "w", tags: "t")
      expect(store.read("j")).to eq("w")
      expect(store.read("k")).to be_nil
    end

    it "stores the entry it read with the versions it recorded, even past an invalidation, " \
       "when a write read the tag's version just before it moved" do
      original = store.method(:current_tag_version)
      raced = true
      allow(store).to receive(:current_tag_version) do |key|
        version = original.call(key)
        unless raced
          raced = true
          store.invalidate_tags("t")
        end
        version
      end
      store.write("seed", "x", tags: "t")
      raced = false
      store.write("k", "written with the old version", tags: "t")

      expect(raced).to be(true)
      expect(store.read("k")).to be_nil
    end

    it "reads back an untagged value that has the stored form of a tagged one as itself" do
      lookalike = [SyncedMemoryStore::Tagged::MARKER, "inner", { tag_key.call("t") => "v" }]
      store.write("k", lookalike)
      store.write_multi({ "m" => lookalike })
      expect(store.read("k")).to eq(lookalike)
      expect(store.read_multi("m")).to eq("m" => lookalike)
      store.invalidate_tags("t")
      expect(store.fetch("k") { "never" }).to eq(lookalike)
    end

    it "keeps an entry's version and expiry with its tags" do
      store.write("k", "v", tags: "t", version: "1", expires_in: 60)
      expect(store.read("k", version: "1")).to eq("v")
      expect(store.read("k", version: "2")).to be_nil
      travel = Time.now + 120
      allow(Time).to receive(:now).and_return(travel)
      expect(store.read("k", version: "1")).to be_nil
    end

    it "gives the tags no expiry of their own (the store's expires_in would end every tagged entry with it)" do
      expiring = SyncedMemoryStore::Store.new(sync: false, cache: l2, expires_in: 60)
      expiring.write("k", "v", tags: "t")
      later = Time.now + 120
      allow(Time).to receive(:now).and_return(later)
      expiring.write("k", "v2", tags: "t", expires_in: 600)
      expect(expiring.read("k")).to eq("v2")
      expect(expiring.read(tag_key.call("t"))).to be_a(String)
    end

    it "keeps the tags of a stale entry rewritten by race_condition_ttl" do
      store.write("k", "stale", tags: "t", expires_in: 1)
      later = Time.now + 1.5
      allow(Time).to receive(:now).and_return(later)
      served = nil
      regenerate = lambda do
        store.fetch("k", race_condition_ttl: 10, tags: "t") do
          served = store.read("k")
          store.invalidate_tags("t")
          raise "regeneration failed"
        end
      end
      expect(&regenerate).to raise_error("regeneration failed")
      expect(served).to eq("stale")
      expect(store.read("k")).to be_nil
    end

    it "refuses tags that are not Strings or Arrays of Strings, storing nothing" do
      [5, false, [:sym], [""], "", { "t" => 1 }, ["ok", nil]].each do |tags|
        expect { store.write("k", "v", tags: tags) }.to raise_error(ArgumentError, /tags: must be a String/)
        expect { store.fetch("k", tags: tags) { "v" } }.to raise_error(ArgumentError, /tags:/)
        expect { store.write_multi({ "k" => "v" }, tags: tags) }.to raise_error(ArgumentError, /tags:/)
      end
      expect { store.invalidate_tags(7) }.to raise_error(ArgumentError, /tags: must be a String/)
      expect { store.invalidate_tags }.to raise_error(ArgumentError, /at least one tag/)
      expect { store.write("k", "v", tags: "t", raw: true) }.to raise_error(ArgumentError, /raw: true/)
      expect(store.read("k")).to be_nil
    end

    it "announces invalidate_tags as cache_invalidate_tags.active_support" do
      events = []
      subscriber = ActiveSupport::Notifications.subscribe("cache_invalidate_tags.active_support") do |*args|
        events << args.last
      end
      store.invalidate_tags("a", "b")
      expect(events.size).to eq(1)
      expect(events.first[:key].to_s).to include("a").and include("b")
    ensure
      ActiveSupport::Notifications.unsubscribe(subscriber)
    end
  end

  context "with no L2" do
    subject(:store) { SyncedMemoryStore::Store.new(sync: false) }

    let(:l2) { nil }

    include_examples "tags"
  end

  context "with a MemoryStore L2" do
    subject(:store) { SyncedMemoryStore::Store.new(sync: false, cache: l2) }

    let(:l2) { ActiveSupport::Cache::MemoryStore.new }

    include_examples "tags"

    it "judges an entry filled from L2 by the tags' versions in L2" do
      store.write("k", "v", tags: "t")
      other = SyncedMemoryStore::Store.new(sync: false, cache: l2)
      expect(other.read("k")).to eq("v")
      store.invalidate_tags("t")
      fresh = SyncedMemoryStore::Store.new(sync: false, cache: l2)
      expect(fresh.read("k")).to be_nil
      expect(fresh.read_multi("k")).to eq({})
    end

    it "keeps the stored form in L2, which SyncedMemoryStore::Tagged takes apart" do
      store.write("k", { "a" => 1 }, tags: "t")
      stored = l2.read("k")
      expect(SyncedMemoryStore::Tagged.tagged?(stored)).to be(true)
      expect(SyncedMemoryStore::Tagged.value(stored)).to eq("a" => 1)
      expect(SyncedMemoryStore::Tagged.versions(stored)).to eq(tag_key.call("t") => l2.read(tag_key.call("t")))
    end
  end

  context "with a coder" do
    subject(:store) { SyncedMemoryStore::Store.new(sync: false, cache: l2, coder: Marshal) }

    let(:l2) { ActiveSupport::Cache::MemoryStore.new }

    include_examples "tags"
  end
end
