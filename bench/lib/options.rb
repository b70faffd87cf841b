# frozen_string_literal: true

require "optparse"

module Bench
  # bench/run's command line.
  class Options
    SECTIONS = %w[micro propagation topologies flood blip memory rss failsafe stampede].freeze
    DEFAULT_OUTPUT = File.expand_path("../results/latest.md", __dir__)

    attr_reader :scale, :sections, :flood_rate

    def self.parse(argv)
      new.tap { |options| options.parse(argv) }
    end

    def initialize
      @scale = 1.0
      @sections = SECTIONS
      @output = nil
      @flood_rate = nil
    end

    def parse(argv)
      parser.parse!(argv)
      raise OptionParser::InvalidArgument, "unexpected arguments: #{argv.join(" ")}" unless argv.empty?

      self
    end

    # Where the report goes: bench/results/latest.md for a full run, a file
    # under tmp/ for a scaled or partial one (so a smoke run never replaces the
    # committed results), unless --output says otherwise.
    def output
      return @output if @output
      return DEFAULT_OUTPUT if full?

      File.expand_path("../../tmp/bench/scale-#{@scale}-#{@sections.join("-")}.md", __dir__)
    end

    def full?
      (@scale - 1).abs < Float::EPSILON && @sections == SECTIONS && @flood_rate.nil?
    end

    def run?(section)
      @sections.include?(section)
    end

    private

    def parser
      OptionParser.new do |opts|
        opts.banner = "Usage: bench/run [--scale FACTOR] [--only SECTION,...] [--flood-rate CHANGES] [--output FILE]"
        opts.on("--scale FACTOR", Float, "scale every count and duration (default 1; 0.05 for a smoke run)") do |value|
          raise OptionParser::InvalidArgument, "must be positive" unless value.positive?

          @scale = value
        end
        opts.on("--only SECTIONS", Array, "run only these sections: #{SECTIONS.join(", ")}") do |list|
          unknown = list - SECTIONS
          raise OptionParser::InvalidArgument, "unknown sections: #{unknown.join(", ")}" unless unknown.empty?

          @sections = SECTIONS & list
        end
        opts.on("--flood-rate CHANGES", Integer, "the flood section's live floods write this many changes per " \
                                                 "second (default: as fast as one Ruby thread can)") do |value|
          raise OptionParser::InvalidArgument, "must be positive" unless value.positive?

          @flood_rate = value
        end
        opts.on("--output FILE", "write the report there (default: bench/results/latest.md for a full run, " \
                                 "tmp/bench/ otherwise)") do |path|
          @output = File.expand_path(path)
        end
      end
    end
  end
end
