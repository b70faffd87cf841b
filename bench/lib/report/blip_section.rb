# frozen_string_literal: true

require_relative "../format"
require_relative "../blip"
require_relative "../timing"

module Bench
  class Report
    # The report's "Bus blip" section, from Blip's runs: the reader's L1 hit
    # rate before a 200 ms stall of the bus and in the second after it, with
    # the channel's log off and on.
    module BlipSection
      private

      def blip
        runs = @results[:blip] or return
        rows = runs.map do |mode, mode_runs|
          median = ->(name) { Timing.median(mode_runs.map { |run| run[name] }) }
          ["bus_log: #{Blip::MODES[mode]}", percent(median[:before]), percent(median[:after]),
           "#{median[:applied].round} of #{Blip::CHANGED} (#{median[:applied_from_l1].round} from L1)",
           mode_runs.sum(&:resumed).to_s]
        end
        <<~MD.chomp
          ## Bus blip

          A writer and a reader process share a RedisCacheStore L2 and a bus redis-server of their own (health_timeout 0.1 s). The reader holds #{Format.count(Blip::KEYS)} keys in L1 and reads them at random, one read every #{(Blip::READ_INTERVAL * 1e6).round} µs; the bus's server is stopped (SIGSTOP) for #{(Blip::OUTAGE * 1000).round} ms while the writer changes #{Blip::CHANGED} of the keys, then continued. Hit rates are the share of the reader's reads answered from L1 in the #{Blip::WINDOW} s before the stop and in the #{Blip::WINDOW} s from the SIGCONT (the subscription is rebuilt within that second; until then reads go to L2 in both modes). "Changes read": of the keys changed during the stall, how many the reader reads with their new value afterwards. Medians of #{runs.values.first.size} run(s) per mode, the modes alternating.

          #{Format.table(["Log", "L1 hit rate before", "L1 hit rate, first second after", "Changes read", "Resubscriptions that kept L1"], rows)}
        MD
      end

      def percent(rate)
        rate.nan? ? "n/a" : format("%.1f%%", rate * 100)
      end
    end
  end
end
