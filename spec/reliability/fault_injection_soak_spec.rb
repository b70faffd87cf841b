# frozen_string_literal: true

require_relative "support/soak"

# The store's promise under as much trouble as we can make: several
# processes, each with several threads, doing random reads, writes,
# write_multi, fetches, deletes, delete_multi, delete_matched (globs and
# Regexps), increments and the odd clear on a few shared keys, with an L2
# (RedisCacheStore on its own redis-server) that fails before and after its
# commands and stalls, while the bus's redis-server is killed and frozen and
# processes are closed, ended and killed mid-work. Once the chaos has ended
# and the writers have stopped, every live process must read what L2 holds
# for every key. See spec/reliability/support/soak.rb for the phases.
#
#   bundle exec rspec spec/reliability                  # the quick run (60 s of chaos)
#   SOAK_SECONDS=900 bundle exec rspec spec/reliability # the long run
#   SOAK_SEED=1234 …                                    # replays a run's random choices
#
# (spec/reliability/support/soak_settings.rb lists every knob.)
RSpec.describe "Reliability: a fault-injection soak", :soak do
  include SyncHelpers

  def report(result)
    puts "", *SoakReport.new(result).lines
  end

  it "leaves every live process reading what L2 holds once the writers stop, through L2 faults, " \
     "bus outages and processes closed, exited and killed" do
    result = Soak.new(SoakSettings.build, fixtures: self).run
    report(result)
    fleet = result.fleet

    aggregate_failures do
      expect(fleet.anomalies).to be_empty,
                                 "anomalies (SOAK_SEED=#{result.settings.seed}):\n#{fleet.anomalies.join("\n")}"
      expect(fleet.unexpected).to be_empty,
                                  "unexpected errors in the workload:\n#{fleet.unexpected.map(&:inspect).join("\n")}"
      expect(result.checks.sum(&:l1_hits)).to be_positive, "no read was answered by L1: the check compared nothing"
      expect(result.divergent_keys).to be_empty, SoakReport.new(result).failure_message
    end
  end

  # The check above must be able to fail: silent writes change L2 and their
  # own process's L1 and, by design, tell no other process, so the other
  # processes keep the value the write before shipped them, which the check
  # must report. The bound (l1_expires_in) then ends it, which the second
  # check must see. Reads and writes only (half of them silent), so that
  # most keys end on a silent write over a value every L1 holds.
  it "reports the divergences that silent writes leave, until l1_expires_in ends them" do
    only_reads_and_writes = SoakWorkload::WEIGHTS.to_h { |operation, _| [operation, 0] }
                                                 .merge(read: 2600, write: 1500)
    settings = SoakSettings.build(env: ENV.to_h.slice("SOAK_SEED"), seconds: 4, checks_per_round: 1, processes: 3,
                                  silent: 0.5, weights: only_reads_and_writes,
                                  bus_chaos: false, process_chaos: false,
                                  faults: { before: 0.0, after: 0.0, stall: 0.0 })
    result = Soak.new(settings, fixtures: self).run
    report(result)

    expect(result.checks.flat_map(&:divergences)).not_to be_empty,
                                                         "silent writes left no divergence: the check is blind"
    expect(result.late_check.divergences).to be_empty
  end
end
