# frozen_string_literal: true

require_relative "../format"
require_relative "../flood"

module Bench
  class Report
    # The report's "Bus apply throughput" section, from a Flood::Result: the
    # apply rates and the capacity, then the applier's reader with and without
    # the flood.
    module FloodSection
      private

      def flood
        result = @results[:flood] or return
        <<~MD.chomp
          ## Bus apply throughput

          Two processes with L1-only synced stores on a bus redis-server of their own. Live: one process writes #{result.pace} (single writes over #{Format.count(Flood::KEYS)} keys, #{Flood::VALUE_BYTES}-byte values) for #{result.window} s windows; the other applies. Capacity: the applier is stopped (SIGSTOP) while the other floods a channel of their own, so a backlog waits in Redis and in the applier's socket; capacity = changes / time from continuing the applier (SIGCONT) until its stats[:applied] shows all of them. Each figure is the median of #{result.rounds} round(s).

          #{Format.table(%w[Figure Value], flood_rows(result))}

          A Ruby thread of the applying process reads one cached key (the small Hash) in a loop, each read timed: without a flood, during the flood, and during the same flood on a channel the applier does not listen to. On two cores the flooder's Ruby thread takes one core by itself and Redis a share of the other, so the last row separates what applying the flood costs the reader from what sharing the machine with the flooder costs it:

          #{Format.table(["Reader", "Reads/s", "p50 (µs)", "p99 (µs)", "max (µs)"], reader_rows(result))}
        MD
      end

      def flood_rows(result)
        [
          ["Flooder's write rate (times it waited for its publish queue)",
           "#{Format.count(result.flood_rate)} changes/s (#{Format.count(result.flood_holds)})"],
          ["Applied by the other process, idle", "#{Format.count(result.idle_rate)} changes/s"],
          ["Applied by the other process, while a Ruby thread reads", "#{Format.count(result.reading_rate)} changes/s"],
          ["Applier caught up with everything published", result.caught_up ? "yes" : "NO"],
          ["Applier reconnects / dropped / rejected",
           result.applier_stats.values_at(:reconnects, :dropped, :rejected).join(" / ")],
          ["Capacity (backlog applied per second)",
           "#{Format.count(result.capacity)} changes/s: #{Format.count(result.backlog)} changes in " \
           "#{Format.count(result.backlog_messages)} messages, applied in #{milliseconds(result.drain_seconds)} " \
           "once the stopped applier continued; #{result.backlog_rejected} rejected"],
          ["Backlog written at (times the flooder waited for its publish queue)",
           "#{Format.count(result.backlog_rate)} changes/s (#{Format.count(result.backlog_holds)})"]
        ]
      end

      def milliseconds(seconds)
        "#{(seconds * 1000).round} ms"
      end

      def reader_rows(result)
        [
          reader_row("no flood", result, result.quiet),
          reader_row("during the flood", result, result.flooded),
          change_row("change", result, :quiet),
          reader_row("during the same flood on another channel (nothing to apply)", result, result.elsewhere),
          change_row("during the flood vs on another channel: what applying costs", result, :elsewhere)
        ]
      end

      def reader_row(name, result, figures)
        [name, Format.count(result.rate(figures)), *%i[p50 p99 max].map { |f| Format.micros(figures[f]) }]
      end

      def change_row(name, result, against)
        base = result.public_send(against)
        [name, Format.percent(-result.read_rate_loss(against: against), sign: true),
         *%i[p50 p99 max].map { |f| Format.percent((result.flooded[f] / base[f]) - 1, sign: true) }]
      end
    end
  end
end
