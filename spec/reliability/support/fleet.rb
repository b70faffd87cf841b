# frozen_string_literal: true

require_relative "fleet/workloads"

# The soak's peer processes (spec/reliability): starts them, each with one
# store (a FaultyRedisCacheStore L2, the shared bus) and its SoakWorkload,
# closes and reopens their stores, ends them (SIGTERM, so the stores settle
# at exit, or SIGKILL, so nothing does) and replaces each one that ends, so
# that as many run as were started. It keeps the books: processes started,
# stores reopened, processes exited or killed; the operations, errors and
# faults of every process (counted up to just before it ended); the stats of
# every store that is gone; and anomalies (a process that died by itself,
# a request that failed, an error the workload did not expect). Workloads
# run in rounds (see Soak): #start_workloads, then #stop_workloads (both in
# Fleet::Workloads, fleet/workloads.rb).
#
# +fixtures+ is the example (SyncHelpers): it spawns the processes and stops
# them, by pid, after the example.
class Fleet
  # The store stats the report sums.
  STATS = %i[conflicts missed invalidated reconnects resumed replayed rejected dropped refreshes_ahead
             refresh_ahead_skipped refresh_ahead_errors].freeze

  # Longest a request to a peer may take: closing a store waits up to 5 s
  # for its changes to settle, more while the bus is down.
  WITHIN = 40

  include Workloads

  attr_reader :peers, :events, :operations, :errors, :faults, :retired_stats, :unexpected, :anomalies, :final

  def initialize(settings, fixtures:, store_options:)
    @settings = settings
    @fixtures = fixtures
    @store_options = store_options
    @peers = []
    @started = 0
    @events = Tally.new
    @operations = Tally.new
    @errors = Tally.new
    @faults = Tally.new
    @retired_stats = Tally.new
    @unexpected = []
    @anomalies = []
    @final = {}
    # How many times the workloads were started: it seeds them.
    @runs = 0
  end

  # Starts +count+ processes at once and waits until each store is
  # subscribed to the bus.
  def start(count)
    names = Array.new(count) { next_name }
    fresh = @fixtures.spawn_peers(*names)
    fresh.each { |peer| peer.open_store(:main, store_options(peer)) }
    @fixtures.wait_for_connections(*fresh, timeout: 20)
    @peers.concat(fresh)
  end

  # Closes +peer+'s store while its workload runs and opens a fresh one.
  def reopen_store(peer)
    stats = peer.soak_reopen(timeout: 5, within: WITHIN)
    @retired_stats.merge!(stats.slice(*STATS))
    @events.add(:stores_reopened)
  rescue StandardError => e
    lost(peer, "reopening its store", e)
  end

  # Ends +peer+'s process with SIGTERM (its at_exit hooks settle its store)
  # while its workload runs, and starts a replacement.
  def exit_process(peer)
    retire(peer) do
      exited = peer.terminate(20)
      @events.add(exited ? :exited : :exit_forced)
      @anomalies << "#{peer} did not exit within 20 s of SIGTERM (killed)" unless exited
    end
  end

  # SIGKILLs +peer+'s process mid-work, and starts a replacement.
  def kill_process(peer)
    retire(peer) do
      peer.kill
      @events.add(:killed)
    end
  end

  # Adds the live processes' counts (#final) to the books, once the last
  # round has stopped. (Their stores' stats are reported one by one.)
  def close_books
    @final.each { |peer, tally| absorb(peer, tally, stats: false) }
  end

  # Waits until every live store is subscribed to the bus.
  def wait_for_connections(timeout)
    @peers.each { |peer| peer.wait_for_connection(timeout, within: timeout + 10) }
  end

  private

  def next_name
    "p#{@started += 1}".tap { @events.add(:started) }
  end

  # Each process rolls its own dice, from the soak's seed and the process's
  # number: its workload's from the workloads' start too (one per thread),
  # its faults' from the stores it opens.
  def seed_of(peer)
    (@settings.seed * 1_000_000_000) + (Integer(peer.name.delete_prefix("p")) * 1_000_000)
  end

  # The stores of odd-numbered processes refresh ahead (when the settings
  # say so), so that refreshes mix with every other process's changes.
  def store_options(peer)
    options = @store_options.dup
    kind, cache = options.fetch(:cache)
    options[:cache] = [kind, cache.merge(fault_seed: seed_of(peer) + 500_000)]
    number = Integer(peer.name.delete_prefix("p"))
    options[:refresh_ahead] = @settings.refresh_ahead if @settings.refresh_ahead && number.odd?
    options
  end

  # Takes +peer+'s tally, runs the block that ends it, and starts another.
  def retire(peer)
    absorb(peer, peer.soak_tally(within: WITHIN))
    @peers.delete(peer)
    yield
    replace
  rescue StandardError => e
    lost(peer, "ending it", e)
  end

  def replace
    peer = @fixtures.spawn_peer(next_name)
    peer.open_store(:main, store_options(peer))
    start_workload(peer)
    @peers << peer
  end

  # A process that failed a request (it died, or hung): noted, killed,
  # replaced.
  def lost(peer, doing, error)
    @anomalies << "#{peer}: #{error.class} while #{doing}: #{error.message.lines.first&.strip}"
    @peers.delete(peer)
    peer.kill
    @events.add(:lost)
    replace
  end

  def absorb(peer, tally, stats: true)
    @operations.merge!(tally[:operations])
    @errors.merge!(tally[:errors])
    @faults.merge!(tally[:faults])
    @retired_stats.merge!(tally[:stats].slice(*STATS)) if stats
    tally[:unexpected].each { |error| @unexpected << [peer.name, *error] }
  end
end
