# frozen_string_literal: true

# The knobs of the fault-injection soak (spec/reliability), with the quick
# run's defaults. Each can be set from the environment:
#
#   SOAK_SECONDS=900      seconds of chaos (default 60: the quick run of the suite),
#                         in rounds of about 20 s, each followed by 4 checks
#   SOAK_SEED=1234        seed of every random choice (printed by each run)
#   SOAK_PROCESSES=4      peer processes kept alive
#   SOAK_THREADS=3        workload threads in each
#   SOAK_FAULTS="before=0.01,after=0.01,stall=0.05,stall_max=0.02"
#                         probabilities (per L2 call) of FaultyRedisCacheStore's faults
#   SOAK_BUS_LOG=false    the stores' bus_log: (default true: frozen-bus outages then
#                         resume from the channel's log, restarts drop L1; false, or a length)
#
# The seed replays the choices (operations, keys, values, faults, which
# process is killed and when in the sequence), not their timing: the
# interleavings still vary from run to run.
SoakSettings = Struct.new(
  :seconds, :round_seconds, :checks_per_round, :check_interval, :seed, :processes, :threads, :keys, :counters,
  :l1_expires_in, :health_interval, :health_timeout, :reconnect_max, :bus_log, :refresh_ahead, :fetch_expires_in,
  :faults, :weights, :pause, :silent,
  :bus_chaos, :bus_gap, :bus_down,
  :process_chaos, :process_gap, :process_actions,
  keyword_init: true
) do
  def self.defaults
    {
      seconds: 60, seed: Random.new_seed % 1_000_000, processes: 4, threads: 3,
      # Chaos in rounds of about round_seconds, each followed by
      # checks_per_round checks, check_interval seconds of work apart.
      round_seconds: 20, checks_per_round: 4, check_interval: 1.0,
      keys: Array.new(20) { |i| "k#{i}" }, counters: Array.new(4) { |i| "n#{i}" },
      # The bound for what no node can detect (a process killed between its
      # L2 write and its publish), and fast detection of bus outages.
      l1_expires_in: 2.0, health_interval: 0.05, health_timeout: 0.3, reconnect_max: 0.2,
      # The channel's log: a frozen bus is then resumed from it (L1 kept), a
      # restarted one is not.
      bus_log: true,
      # The refresh_ahead: of the odd-numbered processes' stores (nil: none),
      # and the expires_in of half the fetches (seconds, drawn from the
      # range): short, so that hot keys keep entering their refresh window.
      refresh_ahead: 0.5, fetch_expires_in: 0.3..1.5,
      faults: { before: 0.01, after: 0.01, stall: 0.05, stall_max: 0.02 },
      # Changes to SoakWorkload::WEIGHTS, the odds of each operation.
      weights: {},
      # Longest pause of a workload thread between two operations (seconds),
      # and the share of writes made silent (only to prove the check can fail).
      pause: 0.004, silent: 0.0,
      # Seconds between two bus outages, and how long one lasts.
      bus_chaos: true, bus_gap: 1.5..5.0, bus_down: 0.05..1.5,
      # Seconds between two process events, and their relative odds.
      process_chaos: true, process_gap: 1.0..4.0, process_actions: { reopen: 3, exit: 2, kill: 4 }
    }
  end

  # The defaults, then +overrides+, then the environment.
  def self.build(env: ENV, **overrides)
    settings = new(**defaults, **overrides)
    settings.seconds = Float(env["SOAK_SECONDS"]) if env["SOAK_SECONDS"]
    settings.seed = Integer(env["SOAK_SEED"]) if env["SOAK_SEED"]
    settings.processes = Integer(env["SOAK_PROCESSES"]) if env["SOAK_PROCESSES"]
    settings.threads = Integer(env["SOAK_THREADS"]) if env["SOAK_THREADS"]
    settings.faults = settings.faults.merge(parse_faults(env["SOAK_FAULTS"])) if env["SOAK_FAULTS"]
    settings.bus_log = parse_bus_log(env["SOAK_BUS_LOG"]) if env["SOAK_BUS_LOG"]
    settings
  end

  def self.parse_bus_log(text)
    case text
    when "true" then true
    when "false", "0" then false
    else Integer(text)
    end
  end

  def self.parse_faults(text)
    text.split(",").to_h do |pair|
      name, value = pair.split("=", 2)
      [name.strip.to_sym, Float(value)]
    end
  end

  # What the seed and the environment chose, in one line.
  def summary
    "SOAK_SEED=#{seed} SOAK_SECONDS=#{format("%g", seconds)} (rounds: #{rounds}): " \
      "#{processes} processes x #{threads} threads, #{keys.size} keys + #{counters.size} counters, " \
      "l1_expires_in #{l1_expires_in} s, health #{health_interval}/#{health_timeout} s, bus_log #{bus_log}, " \
      "refresh_ahead #{refresh_ahead || "off"} (odd processes), fetches expiring in #{fetch_expires_in} s, " \
      "L2 faults #{faults.map { |name, odds| "#{name}=#{odds}" }.join(",")}" \
      "#{", silent writes #{silent}" if silent.positive?}" \
      "#{", bus chaos off" unless bus_chaos}#{", process chaos off" unless process_chaos}"
  end

  # How many rounds (see Soak) the chaos is cut into.
  def rounds
    [(seconds / round_seconds).round, 1].max
  end

  # How long the workload goes on after the chaos ends, before it stops:
  # long enough for what the chaos may leave stale within the documented
  # bounds (l1_expires_in, health_timeout) to end, while L1s keep filling
  # with fresh entries for the check to look at.
  def calm_seconds
    l1_expires_in + health_timeout + 1.0
  end
end
