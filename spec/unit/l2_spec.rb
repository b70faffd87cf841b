# frozen_string_literal: true

# How the store uses its L2 (here a MemoryStore whose entry hooks can be
# watched and paused): fills, no write-back, the fill guard, multi-reads.
RSpec.describe SyncedMemoryStore::Store, "with an L2" do
  # A MemoryStore that records its entry-level calls and can hold a read_entry
  # open until the test lets it go, to stage races deterministically.
  let(:l2_class) do
    Class.new(ActiveSupport::Cache::MemoryStore) do
      attr_reader :calls
      attr_accessor :gate

      def initialize(*)
        super
        @calls = Hash.new(0)
      end

      private

      def read_entry(key, **options)
        @calls[:read_entry] += 1
        entry = super
        gate&.call
        entry
      end

      def write_entry(key, entry, **options)
        @calls[:write_entry] += 1
        super
      end
    end
  end
  let(:l2) { l2_class.new }
  let(:store) { described_class.new(sync: false, cache: l2) }

  it "fills L1 from L2 on a miss and then answers from memory" do
    l2.write("k", "from L2")

    expect(store.read("k")).to eq("from L2")
    expect(store.read("k")).to eq("from L2")
    expect(l2.calls[:read_entry]).to eq(1)
    expect(store.stats).to include(l2_hits: 1, l1_hits: 1)
  end

  it "never writes a fill back to L2" do
    l2.write("k", "from L2")
    writes = l2.calls[:write_entry]

    store.read("k")
    store.fetch("k") { "not used" }
    store.read_multi("k")

    expect(l2.calls[:write_entry]).to eq(writes)
  end

  # Starts store.read(+key+) on a thread, holds it inside L2's read_entry
  # while the block runs, then lets it finish; returns the thread.
  def read_held_in_l2(key)
    reading = Queue.new
    proceed = Queue.new
    l2.gate = lambda {
      reading << true
      proceed.pop
    }
    reader = Thread.new { store.read(key) }
    reading.pop
    l2.gate = nil
    yield
    proceed << true
    reader
  end

  it "fills L1 with L2's expiry and version" do
    freeze_time
    l2.write("k", "v", expires_in: 60, version: "3")
    expect(store.read("k", version: "3")).to eq("v")
    expect(store.read("k", version: "4")).to be_nil

    travel 60
    expect(store.read("k", version: "3")).to be_nil
  end

  it "does not install a value read from L2 when the key changed while L2 was being read" do
    l2.write("k", "old")
    reader = read_held_in_l2("k") { store.write("k", "new") }

    expect(reader.value).to eq("old") # the read began before the write
    expect(store.read("k")).to eq("new")
    expect(l2.read("k")).to eq("new")
  end

  it "does not install a value read from L2 when the store was cleared while L2 was being read" do
    l2.write("k", "old")
    read_held_in_l2("k") do
      l2.write("k", "rewritten after the clear") # as another process would, after our clear reached it
      store.instance_variable_get(:@node).clear(publish: false)
    end.join

    expect(store.read("k")).to eq("rewritten after the clear")
  end

  it "reads every L1 miss of a read_multi from L2 and fills L1 with them" do
    store.write("in L1", 1)
    l2.write("in L2 only", 2)

    expect(store.read_multi("in L1", "in L2 only", "nowhere")).to eq("in L1" => 1, "in L2 only" => 2)
    reads = l2.calls[:read_entry]
    expect(store.read_multi("in L1", "in L2 only")).to eq("in L1" => 1, "in L2 only" => 2)
    expect(l2.calls[:read_entry]).to eq(reads)
  end

  it "leaves a key out of L1 when L2 refuses the write" do
    l2.write("k", "existing")

    expect(store.write("k", "new", unless_exist: true)).to be(false)
    expect(store.read("k")).to eq("existing")
  end

  it "stores nothing anywhere for a value that cannot be serialized, keeping the previous value" do
    store.write("k", "previous")

    expect { store.write("k", -> {}) }.to raise_error(TypeError)
    expect(store.read("k")).to eq("previous")
    expect(l2.read("k")).to eq("previous")
  end

  it "takes back a value that L2 accepted but L1 cannot encode" do
    # A MemoryStore keeping entries as they are: NullCoder up to ActiveSupport
    # 7.0, coder: nil (the pass-through coder) from 7.1.
    coder = defined?(ActiveSupport::Cache::NullCoder) ? ActiveSupport::Cache::NullCoder : nil
    permissive = ActiveSupport::Cache::MemoryStore.new(coder: coder)
    cache = described_class.new(sync: false, cache: permissive)

    expect { cache.write("k", -> {}) }.to raise_error(TypeError)
    expect(permissive.exist?("k")).to be(false)
    expect(cache.exist?("k")).to be(false)
  end

  it "deletes, clears and delete_matched on both levels" do
    %w[a b c].each { |key| store.write(key, key) }
    store.delete("a")
    store.delete_matched(/b/)

    expect([l2.exist?("a"), l2.exist?("b"), l2.exist?("c")]).to eq([false, false, true])
    store.clear
    expect(l2.exist?("c")).to be(false)
    expect(store.read("c")).to be_nil
  end

  it "reports each operation once, not again from the L2" do
    events = []
    subscriber = ActiveSupport::Notifications.subscribe(/cache_/) { |name, *| events << name }
    store.write("k", "v")
    store.cleanup
    store.delete_matched(/k/)
    store.clear

    expect(events).to eq(%w[cache_write.active_support cache_cleanup.active_support
                            cache_delete_matched.active_support])
  ensure
    ActiveSupport::Notifications.unsubscribe(subscriber)
  end
end
