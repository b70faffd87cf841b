# frozen_string_literal: true

require "timeout"

# A change whose L2 call began ends in a bus message whatever the call raises:
# the value, or an invalidation of its keys. Without that, an L2 that changed
# and then raised (ActiveSupport 6.1's MemoryStore writes a write_multi one
# entry at a time; Rack::Timeout interrupts a write after the SET reached
# Redis) leaves every L1, the writer's included, serving the value L2 no
# longer holds. Two stores of this process share one L2 and one bus, as two
# processes would.
RSpec.describe "Sync: a change that raises after touching L2" do
  include SyncHelpers

  # A MemoryStore whose writes and deletes raise after changing it, once armed.
  let(:raising_l2) do
    Class.new(ActiveSupport::Cache::MemoryStore) do
      attr_accessor :raise_after_change

      private

      def write_entry(key, entry, **options)
        written = super
        raise Timeout::Error, "interrupted after the write" if raise_after_change

        written
      end

      def delete_entry(key, **options)
        deleted = super
        raise Timeout::Error, "interrupted after the delete" if raise_after_change

        deleted
      end
    end.new
  end
  let(:bus) { start_redis }
  let(:l2) { ActiveSupport::Cache::MemoryStore.new }
  let(:writer) { store(l2) }
  let(:reader) { store(l2) }

  def store(cache)
    SyncedMemoryStore::Store.new(cache: cache, **bus_options(bus)).tap { |store| stores << store }
  end

  def stores
    @stores ||= []
  end

  after { stores.each(&:close) }

  before do
    [writer, reader].each(&:wait_for_connection)
    writer.write("k", "old")
    expect(reader.read("k")).to eq("old")
  end

  # Waits until the reader has applied everything the writer published.
  def settled
    writer.flush_sync
    token = SecureRandom.hex(4)
    writer.write("barrier", token)
    eventually { reader.stats[:l1_entries].positive? && reader.read("barrier") == token }
  end

  it "invalidates every L1 when write_multi raises after L2 stored some of its entries" do
    expect { writer.write_multi({ "k" => "new", "z" => proc {} }) }.to raise_error(TypeError)
    expect(l2.read("k")).to eq("new") # ActiveSupport's MemoryStore wrote "k" before "z" raised

    eventually(message: "an L1 still serves the value L2 replaced") do
      writer.read("k") == "new" && reader.read("k") == "new"
    end
    expect(writer.stats[:invalidated]).to be >= 1
  end

  context "with an L2 that raises after changing" do
    let(:l2) { raising_l2 }

    it "invalidates every L1 when a write raises after the L2 stored it" do
      l2.raise_after_change = true
      expect { writer.write("k", "new") }.to raise_error(Timeout::Error)
      l2.raise_after_change = false
      expect(l2.read("k")).to eq("new")

      eventually(message: "an L1 still serves the value L2 replaced") do
        writer.read("k") == "new" && reader.read("k") == "new"
      end
    end

    it "invalidates every L1 when a delete raises after the L2 deleted" do
      l2.raise_after_change = true
      expect { writer.delete("k") }.to raise_error(Timeout::Error)
      l2.raise_after_change = false
      expect(l2.read("k")).to be_nil

      eventually(message: "an L1 still serves the value L2 deleted") do
        writer.read("k").nil? && reader.read("k").nil?
      end
    end

    it "invalidates every L1 when a write_multi raises after the L2 stored it" do
      l2.raise_after_change = true
      expect { writer.write_multi({ "k" => "new", "j" => "also new" }) }.to raise_error(Timeout::Error)
      l2.raise_after_change = false

      eventually(message: "an L1 still serves the value L2 replaced") do
        writer.read("k") == "new" && reader.read("k") == "new"
      end
    end
  end

  it "keeps the value where L2 refused the write (unless_exist) and announces nothing wrong" do
    expect(writer.write("k", "other", unless_exist: true)).to be(false)
    settled

    expect(writer.read("k")).to eq("old")
    expect(reader.read("k")).to eq("old")
  end
end
