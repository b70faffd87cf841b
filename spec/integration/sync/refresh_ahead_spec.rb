# frozen_string_literal: true

# Refresh-ahead across processes: two processes keep reading a hot key through
# its refresh window; the block runs once between them (the lease settles
# which), both keep serving hits meanwhile, and the new value reaches both.
# Real processes, one real redis-server as the bus and a RedisCacheStore L2.
RSpec.describe "Sync: a hot key is refreshed ahead of its expiry once across processes" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:l2) { start_redis }
  let(:store_options) { bus_options(bus, cache: [:redis_cache_store, { url: l2.url }], refresh_ahead: 0.5) }
  let(:peers) { spawn_peers(:first, :second, **store_options) }
  let(:first) { peers.first }
  let(:second) { peers.last }

  before { wait_for_connections(*peers) }

  it "runs the block once, never makes a reader wait, and brings the new value to both" do
    expect(first.fetch_counting("hot", "first", { expires_in: 3 })).to eq(["first 1", true])
    eventually(message: "the write never reached the second process") { second.l1_read("hot") == [:hit, "first 1"] }

    seen = []
    eventually(timeout: 10, message: "the refreshed value never reached both") do
      # Both hit the key (late in its life, they refresh it ahead): never a miss, never the block here.
      answers = [first, second].map { |peer| peer.fetch_counting("hot", peer.name, { expires_in: 3 }) }
      seen.concat(answers)
      answers.map(&:first).uniq.size == 1 && answers.first.first != "first 1"
    end
    refreshed = seen.last.first

    expect(seen.map(&:last)).to all(be(false))
    expect(seen.map(&:first).uniq - ["first 1", refreshed]).to be_empty
    expect(first.block_runs("hot") + second.block_runs("hot")).to eq(2)
    refreshes = [first, second].map { |peer| peer.stats.slice(:refreshes_ahead, :refresh_ahead_errors) }
    expect(refreshes.sum { |stats| stats[:refreshes_ahead] }).to eq(1)
    expect(refreshes.sum { |stats| stats[:refresh_ahead_errors] }).to eq(0)
    # The refreshed entry is what L2 holds, and each L1 holds it.
    expect(first.l2_read("hot")).to eq(refreshed)
    expect([first, second].map { |peer| peer.l1_read("hot") }).to all(eq([:hit, refreshed]))
  end

  it "leaves the key to the process whose refresh holds its lease, and serves hits meanwhile" do
    first.fetch_counting("slow", "value", { expires_in: 6 })
    eventually { second.l1_read("slow") == [:hit, "value 1"] }
    eventually(timeout: 10, message: "the first process never started a refresh") do
      expect(first.fetch_counting("slow", "value", { expires_in: 6 }, 1.5)).to eq(["value 1", false])
      first.block_runs("slow") == 2
    end

    # The first process's refresh holds the lease while its block runs.
    expect(second.fetch_counting("slow", "value", { expires_in: 6 })).to eq(["value 1", false])
    eventually(message: "the second process never gave up its refresh") do
      second.stats[:refresh_ahead_skipped] == 1
    end
    eventually(timeout: 10) { [first, second].all? { |peer| peer.l1_read("slow") == [:hit, "value 2"] } }
    expect(second.block_runs("slow")).to eq(0)
    expect(second.stats).to include(refreshes_ahead: 0, lease_claims: 1, lease_won: 0)
    expect(first.stats).to include(refreshes_ahead: 1)
  end
end
