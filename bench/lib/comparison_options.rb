# frozen_string_literal: true

require "optparse"

module Bench
  # bench/compare's command line.
  class ComparisonOptions
    READER_COUNTS = [1, 8].freeze

    attr_reader :baseline, :segments, :writes, :reader_counts, :save, :saved

    def self.parse(argv)
      new.tap { |options| options.parse(argv) }
    end

    def initialize
      @baseline = nil
      @segments = 50
      @writes = 200
      @reader_counts = READER_COUNTS
      @output = nil
      @save = nil
      @saved = []
    end

    def parse(argv)
      parser.parse!(argv)
      raise OptionParser::InvalidArgument, "unexpected arguments: #{argv.join(" ")}" unless argv.empty?
      raise OptionParser::MissingArgument, "--baseline DIR or --from FILES is required" unless @baseline || from?
      raise OptionParser::InvalidArgument, "--from measures nothing: no --baseline" if @baseline && from?

      self
    end

    # Whether the report is made from runs saved earlier (--from), measuring nothing.
    def from?
      !@saved.empty?
    end

    # Where the report goes: under tmp/bench/ unless --output says otherwise.
    def output
      @output || File.expand_path("../../tmp/bench/compare-#{File.basename(@baseline || "saved")}.md", __dir__)
    end

    private

    def parser
      OptionParser.new do |opts|
        opts.banner = "Usage: bench/compare --baseline DIR [--segments N] [--writes N] [--readers 1,8] " \
                      "[--output FILE] [--save FILE] | --from FILE,..."
        measurement_options(opts)
        report_options(opts)
      end
    end

    def measurement_options(opts)
      opts.on("--baseline DIR", "another checkout of this gem, built (bin/compile), to compare against") do |dir|
        @baseline = checkout(dir)
      end
      opts.on("--segments N", Integer, "segments per build and reader count (default 50)") do |value|
        @segments = positive(value)
      end
      opts.on("--writes N", Integer, "writes in each segment (default 200, at least 50)") do |value|
        raise OptionParser::InvalidArgument, "must be at least 50" if value < 50

        @writes = value
      end
      opts.on("--readers LIST", Array, "reader counts to measure, of 1 and 8 (default 1,8)") do |list|
        counts = list.map { |count| Integer(count, exception: false) }
        raise OptionParser::InvalidArgument, "only 1 and 8" unless !counts.empty? && (counts - READER_COUNTS).empty?

        @reader_counts = READER_COUNTS & counts
      end
    end

    def report_options(opts)
      opts.on("--output FILE", "write the report there (default: under tmp/bench/)") do |path|
        @output = File.expand_path(path)
      end
      opts.on("--save FILE", "also write every segment's runs there, for --from") do |path|
        @save = File.expand_path(path)
      end
      opts.on("--from FILES", Array, "measure nothing: report on the runs --save wrote, pooled") do |paths|
        missing = paths.reject { |path| File.file?(path) }
        raise OptionParser::InvalidArgument, "no such file: #{missing.join(", ")}" unless missing.empty?

        @saved = paths.map { |path| File.expand_path(path) }
      end
    end

    def positive(value)
      raise OptionParser::InvalidArgument, "must be positive" unless value.positive?

      value
    end

    # The checkout's root, once it is shown to hold a built gem and the peer
    # program the comparison runs there.
    def checkout(dir)
      root = File.expand_path(dir)
      unless File.file?(File.join(root, "spec/support/peer_process.rb"))
        raise OptionParser::InvalidArgument, "#{dir}: not a checkout of this gem (no spec/support/peer_process.rb)"
      end
      if Dir.glob(File.join(root, "lib/synced_memory_store/**/synced_memory_store.so")).empty?
        raise OptionParser::InvalidArgument, "#{dir}: not built (run bin/compile there)"
      end

      root
    end
  end
end
