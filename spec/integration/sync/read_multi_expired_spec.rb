# frozen_string_literal: true

# read_multi leaves expired entries it finds in L2 to the L2. Deleting them
# would race with a fresh value written between the multi-get and the delete:
# L2 would lose the fresh value while every L1 kept it, and nobody would be
# told. Here the L2 read that finds the expired entry is held until another
# store has written the fresh value.
RSpec.describe "Sync: read_multi finding an expired entry in L2" do
  include SyncHelpers

  # A MemoryStore whose next read of a key can be held after reading it.
  let(:l2) do
    Class.new(ActiveSupport::Cache::MemoryStore) do
      attr_reader :held

      def hold_next_read(key)
        @gated = key
        @held = nil
        @released = false
      end

      def release
        @released = true
      end

      private

      def read_entry(key, **options)
        entry = super
        if @gated && key == @gated
          @gated = nil
          @held = [entry]
          deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
          sleep 0.001 until @released || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        end
        entry
      end
    end.new
  end
  let(:bus) { start_redis }
  let(:reader) { SyncedMemoryStore::Store.new(cache: l2, **bus_options(bus)) }
  let(:writer) { SyncedMemoryStore::Store.new(cache: l2, **bus_options(bus)) }

  after { [reader, writer].each(&:close) }

  it "never deletes from L2 a fresh value written while it was reading" do
    [reader, writer].each(&:wait_for_connection)
    travel_to(Time.now) do
      writer.write("k", "stale", expires_in: 1)
      travel(2)
      l2.hold_next_read("k")
      multi = Thread.new { reader.read_multi("k", "other") }
      held = wait_until(message: "the L2 read was never held") { l2.held }
      expect(held.first).to be_expired

      writer.write("k", "fresh")
      eventually { reader.read("k") == "fresh" }
      l2.release
      expect(multi.join(10)&.value).to eq({})
    end

    expect(l2.read("k")).to eq("fresh")
    expect([reader.read("k"), writer.read("k")]).to eq(%w[fresh fresh])
  end
end
