# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# Several processes changing a few keys at once, with a RedisCacheStore L2 they
# share: writes, deletes, write_multi, glob delete_matched and clears race with
# each other and with read-through fills. Once they stop and the bus is quiet,
# every process must hold in L1 only what L2 holds (reads fall through to L2
# on a miss, so "every read equals L2" is the property).
#
# Seeded: the seed is printed; SEED=1234 replays the same operations (their
# timing, and so the interleaving, still varies).
RSpec.describe "Sync: concurrent writers in several processes" do
  include SyncHelpers

  let(:seed) { Integer(ENV.fetch("SEED") { Random.new_seed % 1_000_000 }) }
  let(:keys) { Array.new(8) { |i| "k#{i}" } }
  let(:rounds) { 3 }
  let(:operations_per_round) { 150 }

  let(:bus) { start_redis }
  let(:l2_server) { start_redis }
  let(:l2) { ActiveSupport::Cache::RedisCacheStore.new(url: l2_server.url, namespace: l2_namespace) }
  let(:peers) do
    spawn_peers(:p0, :p1, :p2, :p3,
                **bus_options(bus, cache: [:redis_cache_store, { url: l2_server.url, namespace: l2_namespace }]))
  end

  # Runs one round of random operations in every peer at once.
  def run_round(round)
    peers.each_with_index do |peer, index|
      peer.call_async(:random_ops, seed: (seed * 1000) + (round * 10) + index, count: operations_per_round,
                                   keys: keys, tag: "#{peer.name}r#{round}")
    end
    peers.map { |peer| peer.await(60) }
  end

  # Waits until nothing is left in flight anywhere: each peer has published
  # everything it queued and had every change of its own echoed (neither can
  # start again once the peers stop working), then a barrier from each peer to
  # every peer proves each has applied everything every other one published.
  def wait_for_quiet_bus
    peers.each { |peer| peer.flush_sync(10) }
    eventually(timeout: 20, message: "changes still queued or awaiting their echo") do
      peers.all? { |peer| peer.stats.values_at(:queued, :pending) == [0, 0] }
    end
    peers.each { |sender| settle(sender, *peers, timeout: 10) }
  end

  def disagreements(round)
    expected = keys.to_h { |key| [key, l2.read(key)] }
    peers.flat_map do |peer|
      keys.filter_map do |key|
        l1 = peer.l1_read(key)
        read = peer.read(key)
        next if [[:miss], [:hit, expected[key]]].include?(l1) && read == expected[key]

        "round #{round}: #{peer.name} holds #{l1.inspect} and reads #{read.inspect} for #{key}; " \
          "L2 holds #{expected[key].inspect}"
      end
    end
  end

  it "leaves every process's L1 agreeing with the shared L2 once the writers stop (SEED replays)" do
    puts "\n[sync convergence] SEED=#{seed}"
    wait_for_connections(*peers)

    rounds.times do |round|
      tallies = run_round(round)
      wait_for_quiet_bus

      problems = disagreements(round)
      stats = peers.map(&:stats)
      puts "[sync convergence] round #{round}: #{tallies.map { |tally| tally.values.sum }.sum} operations " \
           "(#{tallies.inject { |a, b| a.merge(b) { |_, x, y| x + y } }.sort.to_h}); " \
           "conflicts #{stats.sum { |s| s[:conflicts] }}, published #{stats.sum { |s| s[:published] }}, " \
           "dropped #{stats.sum { |s| s[:dropped] }}, reconnects #{stats.sum { |s| s[:reconnects] }}"
      expect(problems).to be_empty, "SEED=#{seed}\n#{problems.join("\n")}"
    end
  end
end
