# frozen_string_literal: true

require_relative "format"
require_relative "goals"
require_relative "stores"
require_relative "propagation"
require_relative "report/blip_section"
require_relative "report/flood_section"
require_relative "report/memory_sections"
require_relative "report/topology_section"
require_relative "report/fail_safe_section"
require_relative "report/stampede_section"

module Bench
  # The Markdown report of one run: what it ran on, each section's table, and
  # the goals. +results+ holds the sections that ran (:micro, :propagation,
  # :topologies, :flood, :blip, :memory, :rss, :fail_safe, :stampede), plus :environment, :scale, :full,
  # :sections, :repetitions and :seconds. The flood section is Report::FloodSection
  # (report/flood_section.rb), the memory and RSS sections
  # Report::MemorySections (report/memory_sections.rb), the topology section
  # Report::TopologySection (report/topology_section.rb), the bus blip
  # section Report::BlipSection (report/blip_section.rb), the fail-safe section
  # Report::FailSafeSection (report/fail_safe_section.rb), the stampede section
  # Report::StampedeSection (report/stampede_section.rb).
  class Report
    HIT_FIGURES = ["read hit (100-byte String)", "read hit (small Hash)", "read hit (small Hash, 2 tags)",
                   "fetch hit (small Hash)", "read_multi (20 keys)", "fetch_multi (20 keys)"].freeze

    include BlipSection
    include FloodSection
    include MemorySections
    include TopologySection
    include FailSafeSection
    include StampedeSection

    def initialize(results)
      @results = results
    end

    # The whole report, Markdown, ending in a newline.
    def to_s
      sections = [header, micro, propagation, topologies, flood, blip, memory, rss, fail_safe, stampede, goals]
      sections.compact.join("\n\n") << "\n"
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

    def goals
      rows = Goals.new(@results).all.map do |goal|
        [goal.name, goal.measured, goal.target, { true => "met", false => "**not met**", nil => "not run" }[goal.met]]
      end
      "## Goals\n\n#{Format.table(%w[Goal Measured Target Result], rows)}"
    end
  end
end
