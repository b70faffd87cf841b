# frozen_string_literal: true

# Stampede protection across processes: when several processes miss one key
# in #fetch at once, the bus's single order picks one of them to run the
# block; the others wait for its value (see Store::FetchLease). Real
# processes, one real redis-server as the bus and a RedisCacheStore L2 they
# share.
RSpec.describe "Sync: a fetch miss is computed by one process while the others wait for it" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:l2) { start_redis }
  let(:store_options) { bus_options(bus, cache: [:redis_cache_store, { url: l2.url }]) }

  # The result of one stampede thread: [:ok, value, seconds] or [:error, message, seconds].
  def values(result)
    result[:results].map { |outcome| outcome[0..1] }
  end

  context "with two processes" do
    let(:peers) { spawn_peers(:first, :second, **store_options) }
    let(:first) { peers.first }
    let(:second) { peers.last }

    before { wait_for_connections(*peers) }

    it "makes a process that misses a key another process is computing wait for that value" do
      first.stampede_start("report", threads: 1, seconds: 1.0, value: "from first")
      eventually(message: "the first process never won its lease") { first.stats[:lease_won] == 1 }

      second.stampede_start("report", threads: 3, seconds: 0, value: "from second")

      expect(values(second.stampede_result(10))).to all(eq([:ok, "from first"]))
      expect(second.stampede_result(1)[:runs]).to eq(0)
      expect(first.stampede_result(10)).to include(runs: 1)
      expect(second.stats).to include(lease_claims: 1, lease_won: 0, lease_waits: 1, lease_taken: 1,
                                      lease_wait_timeouts: 0, fetch_waits: 2)
    end

    it "lets the next process compute at once when the computing one raises, long before its lease ends" do
      first.stampede_start("report", threads: 1, seconds: 0.5, value: "never", raises: "boom", options: { lease: 60 })
      eventually(message: "the first process never won its lease") { first.stats[:lease_won] == 1 }

      second.stampede_start("report", threads: 1, seconds: 0, value: "from second", options: { lease: 60 })

      expect(values(first.stampede_result(10))).to eq([[:error, "boom"]])
      result = second.stampede_result(10)
      expect(values(result)).to eq([[:ok, "from second"]])
      expect(result[:runs]).to eq(1)
      expect(result[:results].first[2]).to be < 5
      expect(second.stats).to include(lease_waits: 1, lease_won: 1, lease_wait_timeouts: 0)
    end

    it "stops waiting for a process that died once its lease runs out" do
      first.stampede_start("report", threads: 1, seconds: 120, value: "never", options: { lease: 5 })
      eventually(message: "the first process never won its lease") { first.stats[:lease_won] == 1 }
      second.stampede_start("report", threads: 1, seconds: 0, value: "from second",
                                      options: { lease: 60, lock_timeout: 60 })
      eventually(message: "the second process never claimed the key") { second.stats[:lease_claims] == 1 }

      first.kill

      result = second.stampede_result(40)
      expect(values(result)).to eq([[:ok, "from second"]])
      expect(result[:runs]).to eq(1)
      # The dead holder's lease (5 s from its arrival) ended the wait, not
      # the waiter's own 60 s.
      expect(result[:results].first[2]).to be < 30
      expect(second.stats).to include(lease_waits: 1, lease_wait_timeouts: 0, lease_won: 1)
    end

    it "bounds the wait by lock_timeout, then computes" do
      first.stampede_start("report", threads: 1, seconds: 120, value: "never", options: { lease: 60 })
      eventually(message: "the first process never won its lease") { first.stats[:lease_won] == 1 }

      second.stampede_start("report", threads: 1, seconds: 0, value: "from second", options: { lock_timeout: 0.3 })

      expect(values(second.stampede_result(10))).to eq([[:ok, "from second"]])
      expect(second.stats).to include(lease_waits: 1, lease_wait_timeouts: 1)
    end

    it "takes no part in leases with lease: false, or for a forced fetch" do
      first.stampede_start("report", threads: 1, seconds: 120, value: "never")
      eventually(message: "the first process never won its lease") { first.stats[:lease_won] == 1 }

      second.stampede_start("report", threads: 1, seconds: 0, value: "unleased", options: { lease: false })
      expect(values(second.stampede_result(10))).to eq([[:ok, "unleased"]])
      second.stampede_start("forced", threads: 1, seconds: 0, value: "forced", options: { force: true })
      expect(values(second.stampede_result(10))).to eq([[:ok, "forced"]])
      expect(second.stats).to include(lease_claims: 0, lease_waits: 0)
    end

    it "computes without a lease while the bus is down" do
      bus.stop
      eventually(message: "the second process still trusts the bus") { second.stats[:trusted] == false }

      second.stampede_start("report", threads: 1, seconds: 0, value: "alone")

      result = second.stampede_result(10)
      expect(values(result)).to eq([[:ok, "alone"]])
      expect(result[:runs]).to eq(1)
      expect(second.stats).to include(lease_claims: 0, lease_waits: 0)
    end
  end

  it "runs the block of a cold key once when 3 processes of 4 threads miss it together" do
    peers = spawn_peers(:a, :b, :c, **store_options)
    wait_for_connections(*peers)
    at = peers.first.now + 1.0

    peers.each { |peer| peer.stampede_start("cold", threads: 4, seconds: 0.05, value: "v", at: at) }

    results = peers.map { |peer| peer.stampede_result(20) }
    expect(results.sum { |result| result[:runs] }).to eq(1)
    expect(results.flat_map { |result| values(result) }).to all(eq([:ok, "v"]))
    # Only each process's runner (the thread its own single-flight chose)
    # claims a lease.
    expect(peers.map { |peer| peer.stats[:lease_claims] }).to all(eq(1))
    expect(peers.sum { |peer| peer.stats[:lease_won] }).to eq(1)
  end
end
