# frozen_string_literal: true

require_relative "soak_settings"
require_relative "fleet"
require_relative "bus_chaos"
require_relative "process_chaos"
require_relative "convergence"
require_relative "soak_report"

# One run of the fault-injection soak (spec/reliability/fault_injection_soak_spec.rb),
# in rounds of about SoakSettings#round_seconds of chaos each. Each round:
#
# 1. chaos: the Fleet's processes run their workloads against a faulty L2
#    while BusChaos kills and freezes the bus and ProcessChaos closes, ends
#    and kills processes;
# 2. calm: the chaos ends, the bus is back and every store subscribed; the
#    workloads (and their L2 faults) go on for SoakSettings#calm_seconds,
#    longer than the bounds within which the chaos may leave a process
#    stale (l1_expires_in for a process killed between its L2 write and its
#    publish, health_timeout for an outage), so nothing the chaos did can
#    excuse a stale read afterwards, while every L1 keeps filling;
# 3. the writers stop (and the faults with them); once nothing is in flight
#    (every change published and echoed, then a barrier from each process to
#    every other) every live process's reads must equal L2. This check is
#    made while L1s still hold what the workload left in them: one made only
#    after waiting out l1_expires_in would find every L1 empty, and could
#    not fail;
# 4. the workloads start again, with their faults but no other chaos, and
#    stop for another check, SoakSettings#checks_per_round times in all,
#    SoakSettings#check_interval apart. A stale value shows only if the
#    race that made it came just before a stop, so the soak stops often.
#
# After the last round, once l1_expires_in + health_timeout have passed
# since the writers stopped, the check is made again (polling, with a
# deadline), to tell a divergence that stays from one that the bound ends.
class Soak
  Result = Struct.new(:settings, :fleet, :bus_chaos, :checks, :late_check, :timings, keyword_init: true) do
    def divergent_keys
      (checks + [late_check]).flat_map(&:keys).uniq
    end
  end

  # +fixtures+: the example (SyncHelpers), which starts the redis-servers
  # and processes and stops them after it.
  def initialize(settings, fixtures:)
    @settings = settings
    @fixtures = fixtures
    @rng = Random.new(settings.seed)
    @timings = Hash.new(0.0)
  end

  def run
    started = monotonic
    start_fleet
    checks = Array.new(@settings.rounds) { |round| run_round(round + 1) }.flatten
    @fleet.close_books
    late = timed(:bounds) { check_after_bounds }
    @timings[:wall] = monotonic - started
    Result.new(settings: @settings, fleet: @fleet, bus_chaos: @bus_chaos, checks: checks, late_check: late,
               timings: @timings)
  end

  private

  def start_fleet
    @bus = @fixtures.start_redis
    l2_server = @fixtures.start_redis
    @convergence = Convergence.new(l2_url: l2_server.url, namespace: @fixtures.l2_namespace,
                                   keys: @settings.keys + SoakWorkload::Operations::HOT_KEYS,
                                   counters: @settings.counters, tag_keys: SoakWorkload::Operations.tag_keys)
    @fleet = Fleet.new(@settings, fixtures: @fixtures, store_options: store_options(l2_server))
    @bus_chaos = BusChaos.new(@bus, rng: Random.new(@rng.rand(1 << 30)), gap: @settings.bus_gap,
                                    down: @settings.bus_down)
    timed(:start) { @fleet.start(@settings.processes) }
  end

  # One round (see the class documentation); returns its checks.
  def run_round(round)
    @fleet.start_workloads
    timed(:chaos) { chaos(@settings.seconds.fdiv(@settings.rounds)) }
    timed(:calm) { calm }
    Array.new(@settings.checks_per_round) do |index|
      if index.positive?
        @fleet.start_workloads
        # Work between two checks: a duration, not a wait for anything.
        timed(:between_checks) { sleep @settings.check_interval }
      end
      check("round #{round} check #{index + 1}")
    end
  end

  def check(label)
    timed(:quiesce) { stop_and_quiesce }
    timed(:check) { @convergence.check(@fleet.peers, label: label) }
  end

  def store_options(l2_server)
    { redis: @bus.url, channel: @fixtures.channel, l1_expires_in: @settings.l1_expires_in,
      health_interval: @settings.health_interval, health_timeout: @settings.health_timeout,
      reconnect_max: @settings.reconnect_max, bus_log: @settings.bus_log,
      cache: [:faulty_redis_cache_store, { url: l2_server.url, namespace: @fixtures.l2_namespace,
                                           faults: @settings.faults }] }
  end

  def chaos(seconds)
    process_chaos = ProcessChaos.new(@fleet, rng: Random.new(@rng.rand(1 << 30)), gap: @settings.process_gap,
                                             actions: @settings.process_actions)
    @bus_chaos.start if @settings.bus_chaos
    process_chaos.start if @settings.process_chaos
    # The chaos's duration, not a wait for anything.
    sleep seconds
  ensure
    process_chaos&.stop
    @bus_chaos.stop
  end

  # The bus is back (BusChaos#stop leaves it running); once every store is
  # subscribed, the workloads run on for the bounds to pass.
  def calm
    @fleet.wait_for_connections(30)
    # The bounds of what the chaos may excuse, running out while the
    # workloads go on: a duration, not a wait for anything.
    sleep @settings.calm_seconds
  end

  # Stops the writers, then waits until nothing is in flight: every process
  # has published what it queued and had every change of its own echoed
  # (neither can start again once the writers stop), then a barrier from
  # each process to every process proves each has applied everything every
  # other one published.
  def stop_and_quiesce
    @fleet.stop_workloads
    @writers_stopped = monotonic
    peers = @fleet.peers
    peers.each { |peer| peer.flush_sync(10, within: 20) }
    @fleet.wait_until_quiet(@fixtures)
    peers.each { |sender| @fixtures.settle(sender, *peers, timeout: 10) }
  end

  # Waits until l1_expires_in + health_timeout have passed since the writers
  # stopped, then compares until the reads agree or a deadline passes.
  def check_after_bounds
    bound = @writers_stopped + @settings.l1_expires_in + @settings.health_timeout
    sleep(bound - monotonic) if bound > monotonic
    deadline = monotonic + 2
    loop do
      check = @convergence.check(@fleet.peers, label: "after the bounds")
      return check if check.divergences.empty? || monotonic > deadline

      sleep 0.1
    end
  end

  def timed(phase)
    started = monotonic
    yield
  ensure
    @timings[phase] += monotonic - started
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end
