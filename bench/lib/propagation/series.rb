# frozen_string_literal: true

require_relative "../timing"

module Bench
  class Propagation
    # One configuration (reader processes, mode), measured REPETITIONS times.
    # Each Run has +latencies+ pooled over the readers (seconds from the
    # write's start to the end of the reader's first read returning the value);
    # +missed+ (reader, value) pairs never seen, +missed_in_pause+ of those
    # while a tight reader was itself paused (GC, descheduled); +read_periods+
    # each reader's mean time from one read's start to the next's.
    # +visible+ is the same measured to when the reader's bus thread applied the
    # value (the store's stats[:last_applied_at], read as the value was first seen): when
    # it became visible in that process's L1, however long the reader then took
    # to look (never later than when it was seen).
    # +write_calls+: how long each of the writer's write calls took (part of
    # every latency); +after_return+: from the write call returning until
    # visible, the bus's share.
    Run = Struct.new(:latencies, :visible, :write_calls, :after_return, :missed, :missed_in_pause, :read_periods,
                     :max_gap, keyword_init: true)

    # Series#percentile's figures: the Run field each is taken from.
    FIGURES = { seen: :latencies, visible: :visible, write_call: :write_calls, after_return: :after_return }.freeze

    # The results of one configuration (+readers+ reader processes in +mode+,
    # +writes+ writes each run): its Runs, and the figures the report and the
    # goals take from them.
    Series = Struct.new(:readers, :mode, :writes, :runs, keyword_init: true) do
      # The median over the runs of each run's +fraction+ percentile, of the
      # latencies to the reader's first look (+:seen+), to L1 (+:visible+),
      # from the write returning to L1 (+:after_return+), or of the write
      # calls (+:write_call+).
      def percentile(fraction, of: :seen)
        Timing.median(runs.map do |run|
          values = run.public_send(FIGURES.fetch(of))
          values.empty? ? Float::NAN : Timing.percentile(values, fraction)
        end)
      end

      # The largest of the figure +of+ (as #percentile) over every run.
      def max(of: :seen)
        runs.flat_map(&FIGURES.fetch(of)).max || Float::NAN
      end

      # (reader, update) pairs over every run: how many updates could have been missed.
      def observations
        writes * readers * runs.size
      end

      # (reader, update) pairs never seen, over every run.
      def missed
        runs.sum(&:missed)
      end

      # Of #missed, those while the reader was itself paused.
      def missed_in_pause
        runs.sum(&:missed_in_pause)
      end

      # The median, over every reader of every run, of its mean time from one
      # read's start to the next's.
      def read_period
        Timing.median(runs.flat_map(&:read_periods))
      end

      # The longest time between two reads of one reader, over every run.
      def max_gap
        runs.map(&:max_gap).max
      end
    end
  end
end
