# frozen_string_literal: true

require_relative "../format"

module Bench
  class Flood
    # Flood's figures, each the median of its rounds, with the ratios that the
    # report and the goals take from them.
    Result = Struct.new(:window, :rounds, :fixed_rate, :flood_rate, :idle_rate, :reading_rate, :quiet, :flooded,
                        :elsewhere, :caught_up, :applier_stats, :capacity, :backlog, :backlog_messages, :drain_seconds,
                        :backlog_rejected, :flood_holds, :backlog_rate, :backlog_holds,
                        keyword_init: true) do
      # Relative increase of read latency (+figure+: :p50 or :p99) during the flood.
      def slowdown(figure = :p50)
        (flooded[figure] / quiet[figure]) - 1
      end

      # Relative decrease of reads per second during the flood, against no
      # flood (or, with against: :elsewhere, against the flood on another
      # channel: what applying it costs).
      def read_rate_loss(against: :quiet)
        1 - (rate(flooded) / rate(public_send(against)))
      end

      # How fast the flooder wrote in the live floods, in words.
      def pace
        return "as fast as one Ruby thread could" unless fixed_rate

        "at most #{Format.count(fixed_rate)} changes/s (bench/run --flood-rate)"
      end

      # Reads per second of +figures+ (one of quiet, flooded, elsewhere).
      def rate(figures)
        figures[:reads] / figures[:seconds]
      end
    end
  end
end
