# frozen_string_literal: true

# Nothing from the bus is inflated past the largest entry the receiving
# process accepts (its L1 budget, size:): a compressed value from a peer that
# would inflate beyond it is not held (the key is dropped instead, and the
# message counted in stats[:rejected]), and the receiver's memory never grows
# by what the payload claims.
RSpec.describe "Sync: compressed values from the bus" do
  include SyncHelpers

  let(:bus) { start_redis }
  # A peer with a large budget ships a value of 128 MiB of zeros by value: it
  # deflates to about 128 KiB.
  let(:sender) do
    spawn_peer(:sender, **bus_options(bus, cache: :memory_store, compress: true, size: 1 << 30,
                                           broadcast_max_bytes: 1 << 20))
  end
  let(:receiver) { spawn_peer(:receiver, **bus_options(bus, cache: :memory_store, size: 32 << 20)) }

  before { wait_for_connections(sender, receiver) }

  it "are inflated at most to the receiver's largest entry, and not held past it" do
    sender.write("bomb", "small first")
    eventually { receiver.l1_read("bomb") == [:hit, "small first"] }
    peak = receiver.peak_rss
    rejected = receiver.stats[:rejected]

    sender.call(:write_many, prefix: "bomb", count: 1, sizes: [128 << 20], keys: 1, within: 60)
    settle(sender, receiver, timeout: 30)

    expect(receiver.l1_read("bomb0")).to eq([:miss])
    expect(receiver.stats[:rejected]).to eq(rejected + 1)
    expect(receiver.peak_rss - peak).to be < (64 << 20)
  end
end
