# frozen_string_literal: true

require_relative "timing"
require_relative "environment"
require_relative "fixtures"
require_relative "stores"
require_relative "micro"
require_relative "propagation"
require_relative "topologies"
require_relative "flood"
require_relative "blip"
require_relative "l1_memory"
require_relative "rss_growth"
require_relative "fail_safe_outage"
require_relative "stampede"
require_relative "report"

module Bench
  # One benchmark run: starts what it needs (redis-servers, peer processes),
  # runs the sections asked for, stops everything it started, and returns the
  # report (Markdown).
  class Suite
    def initialize(options)
      @options = options
      @scale = options.scale
    end

    def run
      started = Timing.now
      @fixtures = Fixtures.new
      results = { environment: Environment.describe, scale: @scale, full: @options.full?,
                  sections: @options.sections }
      begin
        @bus = @fixtures.redis
        Options::SECTIONS.each do |section|
          section_results(section, results) if @options.run?(section)
        end
      ensure
        @fixtures.stop_all
      end
      Report.new(results.merge(seconds: Timing.now - started)).to_s
    end

    private

    def section_results(section, results)
      progress(section) do
        case section
        when "micro" then micro(results)
        when "propagation" then results[:propagation] = Propagation.new(@fixtures, bus: @bus.url, scale: @scale).run
        when "topologies" then results[:topologies] = Topologies.new(@fixtures, scale: @scale).run
        when "flood" then results[:flood] = Flood.new(@fixtures, scale: @scale, rate: @options.flood_rate).run
        when "blip" then results[:blip] = Blip.new(@fixtures, scale: @scale).run
        when "memory" then memory(results)
        when "rss" then results[:rss] = RssGrowth.new(@fixtures, bus_url: @bus.url, scale: @scale).run
        when "failsafe" then results[:fail_safe] = FailSafeOutage.new(@fixtures, bus_url: @bus.url, scale: @scale).run
        when "stampede" then results[:stampede] = Stampede.new(@fixtures, scale: @scale).run
        end
      end
    end

    def micro(results)
      stores = Stores.build(l2_url: @fixtures.redis.url, bus_url: @bus.url, channel: @fixtures.channel("micro"))
      micro = Micro.new(stores, scale: @scale)
      results[:micro] = micro.run
      results[:repetitions] = micro.repetitions
    ensure
      Stores.close(stores) if stores
    end

    def memory(results)
      memory = L1Memory.new(@fixtures, scale: @scale)
      results[:memory] = memory.run
      results[:memory_repetitions] = memory.repetitions
    end

    def progress(section)
      started = Timing.now
      warn "bench: #{section}…"
      yield
      warn format("bench: %<section>s done in %<seconds>.1f s", section: section, seconds: Timing.now - started)
    end
  end
end
