# frozen_string_literal: true

require_relative "format"
require_relative "goals"
require_relative "stores"
require_relative "propagation"
require_relative "flood"
require_relative "l1_memory"
require_relative "rss_growth"

module Bench
  # The Markdown report of one run: what it ran on, each section's table, and
  # the goals. +results+ holds the sections that ran (:micro, :propagation,
  # :flood, :memory, :rss), plus :environment, :scale, :full, :sections,
  # :repetitions and :seconds.
  class Report
    HIT_FIGURES = ["read hit (100-byte String)", "read hit (small Hash)", "fetch hit (small Hash)",
                   "read_multi (20 keys)", "fetch_multi (20 keys)"].freeze

    def initialize(results)
      @results = results
    end

    def to_s
      [header, micro, propagation, flood, memory, rss, goals].compact.join("\n\n") << "\n"
    end

    private

    def header
      environment = @results[:environment].merge(
        "Scale" => @results[:full] ? "1 (full run)" : "#{@results[:scale]} (#{@results[:sections].join(", ")})",
        "Run time" => "#{@results[:seconds].round} s"
      )
      "# SyncedMemoryStore benchmarks\n\nProduced by `bench/run`.\n\n#{Format.table(%w[Item Value], environment.to_a)}"
    end

    def micro
      figures = @results[:micro] or return
      labels = Stores::LABELS
      ratios = ["#{Stores::SMS_MEMORY} / #{Stores::MEMORY}", "#{Stores::SMS_REDIS} / #{Stores::REDIS}",
                "#{Stores::SMS_MEMORY} hit / #{Stores::REDIS}"]
      rows = figures.map do |figure|
        us = figure.microseconds
        [figure.name, *labels.map { |label| Format.us(us[label]) },
         Format.ratio(us[Stores::SMS_MEMORY] / us[Stores::MEMORY]),
         Format.ratio(us[Stores::SMS_REDIS] / us[Stores::REDIS]),
         HIT_FIGURES.include?(figure.name) ? Format.ratio(us[Stores::SMS_MEMORY] / us[Stores::REDIS]) : ""]
      end
      <<~MD.chomp
        ## Single-process figures

        µs per call, the median of #{@results[:repetitions]} repetitions, the four stores measured interleaved in one process. Both SyncedMemoryStores run with sync on (a bus redis-server of their own, apart from the L2's). Ratios below 1 mean SyncedMemoryStore is faster.

        #{Format.table(["Figure", *labels, *ratios], rows)}

        #{figures.map { |figure| "- **#{figure.name}**: #{figure.description}." }.join("\n")}
      MD
    end

    def propagation
      series = @results[:propagation] or return
      rows = series.map do |s|
        [s.readers, s.mode == :tight ? "tight loop" : "sleeps #{(Propagation::SLEEPY_INTERVAL * 1e6).round} µs",
         Format.micros(s.read_period), Format.micros(s.max_gap), Format.count(s.writes),
         *%i[visible seen].flat_map do |of|
           [Format.micros(s.percentile(0.5, of: of)), Format.micros(s.percentile(0.99, of: of)),
            Format.micros(s.max(of: of))]
         end,
         Format.micros(s.percentile(0.99, of: :write_call)), Format.micros(s.percentile(0.99, of: :after_return)),
         "#{s.missed}#{" (#{s.missed_in_pause} in a pause)" if s.missed.positive?} of #{Format.count(s.observations)}"]
      end
      <<~MD.chomp
        ## Propagation latency

        The writer writes 1, 2, 3 … to one key, 2–5 ms apart; reader processes read that key in a loop. Each process's store has its own MemoryStore L2, so values reach readers only over the bus (sync on, a bus redis-server on loopback). All times are CLOCK_MONOTONIC, one clock for all processes, pooled over the readers, from the moment the write began in the writer process until:

        - **visible**: the reader process's bus thread had applied the new value to its L1 (the store's `stats[:last_applied_at]` when the reader first saw the value), so from then on any read in that process returns it;
        - **seen**: the end of the reader's first read that returned it; this adds the reader's own time to its next look (its time between reads, and any time it was itself off the CPU).

        Both include the writer's own write call (L2 write, L1 write, queueing for the bus); "write call p99" is that alone, and "bus p99" is from the write call returning until visible: the publisher thread, Redis and the reader's subscriber thread (negative when the value was visible before the writer's call returned: the bus threads ran while the writer's own thread waited for a CPU).

        Missed: (reader, update) pairs the reader never saw; "in a pause": the reader itself was off the CPU meanwhile (over 1 ms between two reads, plus twice the sleep of a sleeping reader). Each configuration was run #{series.first.runs.size} time(s); p50 and p99 are the medians of the runs' figures, max and missed over all runs.

        #{Format.table(["Reader processes", "Reader", "Median time between reads (µs)", "Longest gap between reads (µs)", "Updates", "visible p50 (µs)", "visible p99 (µs)", "visible max (µs)", "seen p50 (µs)", "seen p99 (µs)", "seen max (µs)", "write call p99 (µs)", "bus p99 (µs)", "Missed"], rows)}
      MD
    end

    def flood
      result = @results[:flood] or return
      <<~MD.chomp
        ## Bus apply throughput

        Two processes with L1-only synced stores on a bus redis-server of their own. Live: one process writes as fast as one Ruby thread can (single writes over #{Format.count(Flood::KEYS)} keys, #{Flood::VALUE_BYTES}-byte values) for #{result.window} s windows; the other applies. Capacity: that flood is recorded off the bus, then published again all at once to the applier (one raw write of every PUBLISH), faster than it applies; capacity = changes / time from the start of that replay until the applier's stats[:applied] shows all of them. Each figure is the median of #{result.rounds} round(s).

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
         "#{Format.count(result.backlog_messages)} messages, published in #{milliseconds(result.replay_seconds)}, " \
         "applied in #{milliseconds(result.drain_seconds)}; #{result.backlog_rejected} rejected"],
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

    def memory
      memory = @results[:memory] or return
      per_entry = memory[:per_entry]
      budget = memory[:budget]
      <<~MD.chomp
        ## L1 memory

        Each measured in a fresh process holding one store (sync: false, no L2); RSS is VmRSS after GC.start and GC.compact. Each figure is the median of #{@results[:memory_repetitions]} measurement(s).

        #{Format.table(%w[Figure Value], memory_rows(per_entry, budget))}
      MD
    end

    def memory_rows(per_entry, budget)
      [
        ["Bytes per entry: #{Format.count(per_entry.entry_count)} entries, #{L1Memory::VALUE_BYTES}-byte String values",
         "RSS growth #{per_entry.rss_per_entry.round} B/entry; stats[:l1_bytes] #{per_entry.l1_per_entry.round} " \
         "B/entry (key + value + ENTRY_OVERHEAD); RSS / counted = " \
         "#{Format.ratio(per_entry.rss_per_entry / per_entry.l1_per_entry)}"],
        ["Budget adherence: budget", Format.mib(budget.budget)],
        ["Written (mixed sizes #{L1Memory::MIXED_SIZES.minmax.join("–")} B, distinct keys)",
         "#{Format.count(budget.written)} entries, ≈ #{Format.mib(budget.bytes_written)} by the weigher's count"],
        ["Kept", "#{Format.count(budget.kept)} entries"],
        ["stats[:l1_bytes]", of_budget(budget.l1_bytes, budget.budget)],
        ["Process RSS growth", of_budget(budget.rss_growth, budget.budget)]
      ]
    end

    def of_budget(bytes, budget)
      "#{Format.mib(bytes)} (#{Format.percent(bytes.fdiv(budget))} of the budget)"
    end

    def rss
      result = @results[:rss] or return
      warm = result.warm[1]
      rows = result.samples.each_with_index.map do |(writes, bytes), index|
        [Format.count(writes), Format.mib(bytes),
         index.zero? ? "warm-up" : Format.percent((bytes - warm).fdiv(warm), sign: true)]
      end
      <<~MD.chomp
        ## Process RSS over many writes

        One process, one store with sync on and a MemoryStore L2, writing #{result.value_bytes}-byte Strings round-robin over #{Format.count(result.keys)} keys (each write goes to the L2, L1 and the bus; the process applies its own echoes). RSS is VmRSS after GC.start and GC.compact, once the writes are published. Growth after warm-up: #{Format.percent(result.growth, sign: true)} (#{result.bytes_per_write.round(3)} B per write).

        #{Format.table(["Writes", "RSS", "Since warm-up"], rows)}
      MD
    end

    def goals
      rows = Goals.new(@results).all.map do |goal|
        [goal.name, goal.measured, goal.target, { true => "met", false => "**not met**", nil => "not run" }[goal.met]]
      end
      "## Goals\n\n#{Format.table(%w[Goal Measured Target Result], rows)}"
    end
  end
end
