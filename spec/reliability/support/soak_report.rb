# frozen_string_literal: true

# The figures of one soak run (a Soak::Result), as lines for the test's
# output, and the message of a failed run: each divergence (key, process,
# what it holds, what L2 holds) followed by the same figures.
class SoakReport
  def initialize(result)
    @result = result
    @fleet = result.fleet
  end

  def lines
    [@result.settings.summary, timings, processes, operations, errors, faults, bus, live_stores, gone_stores,
     *checks].map { |line| "[soak] #{line}" }
  end

  # Every divergence, by round, then the figures.
  def failure_message
    ["#{@result.divergent_keys.size} divergent keys (SOAK_SEED=#{@result.settings.seed}):", *divergences,
     *lines].join("\n")
  end

  private

  # One line per round, then the sums, then the check after the bounds.
  def checks
    by_round = @result.checks.group_by { |check| check.label[/\Around \d+/] }.map do |round, checks|
      "#{round}, checks when the writers stopped: #{summary(checks)}"
    end
    [*by_round, "all rounds: #{summary(@result.checks)}",
     "check after waiting out l1_expires_in + health_timeout: #{@result.late_check}"]
  end

  def summary(checks)
    "checks: #{checks.size}, reads compared: #{checks.sum(&:compared)} (#{checks.sum(&:l1_hits)} answered by L1), " \
      "keys tagged in L2: #{checks.sum(&:tagged)} (#{checks.sum(&:tagged_current)} current), " \
      "divergent keys: #{checks.flat_map(&:keys).uniq.size}"
  end

  # Divergences that outlive the bounds come again, last ("after the bounds").
  def divergences
    (@result.checks + [@result.late_check]).flat_map do |check|
      check.divergences.map { |divergence| "  #{check.label}: #{divergence}" }
    end
  end

  def timings
    t = @result.timings
    format("wall %<wall>.1f s (start %<start>.1f, chaos %<chaos>.1f, calm %<calm>.1f, work between checks " \
           "%<between_checks>.1f, stop and quiesce %<quiesce>.1f, checks %<check>.1f, bounds %<bounds>.1f)",
           **t, between_checks: t[:between_checks])
  end

  def processes
    events = @fleet.events
    "processes: started #{events[:started]}, stores closed and reopened #{events[:stores_reopened]}, " \
      "exited (SIGTERM) #{events[:exited]}, killed (SIGKILL) #{events[:killed]}, " \
      "lost #{events[:lost]}; live at the end: #{@fleet.peers.map(&:name).join(" ")}"
  end

  def operations
    "operations: #{@fleet.operations.total} (#{@fleet.operations})"
  end

  def errors
    "errors met by the workload: #{@fleet.errors}; anomalies: #{@fleet.anomalies.size}"
  end

  def faults
    faults = @fleet.faults.to_h
    total = faults.values.sum
    "L2 faults injected: #{total} (#{group(faults, 0)}); failures raised to the caller " \
      "#{sum_where(faults) { |kind, _, outcome| kind != "stall" && outcome == "raised" }}, caught by the failsafe " \
      "#{sum_where(faults) { |_, _, outcome| outcome == "caught" }}; by call: #{group(faults, 1)}"
  end

  def bus
    "bus: #{@result.bus_chaos}"
  end

  def live_stores
    stats = @fleet.final.map do |peer, tally|
      "#{peer.name} #{tally[:stats].slice(*Fleet::STATS).map { |name, count| "#{name}=#{count}" }.join(" ")}"
    end
    "live stores: #{stats.join("; ")}"
  end

  def gone_stores
    "stores closed, exited or killed (summed): #{@fleet.retired_stats}"
  end

  # Sums of the "kind/call/outcome" fault counts by the +index+-th part.
  def group(faults, index)
    faults.each_with_object(Hash.new(0)) { |(name, count), sums| sums[name.split("/")[index]] += count }
          .sort.map { |part, count| "#{part}=#{count}" }.join(" ")
  end

  def sum_where(faults)
    faults.sum { |name, count| yield(*name.split("/")) ? count : 0 }
  end
end
