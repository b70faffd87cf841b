# frozen_string_literal: true

require "etc"
require "open3"
require "time"
require "active_support/version"

module Bench
  # What the figures were measured on: the lines at the top of the report.
  module Environment
    ROOT = File.expand_path("../..", __dir__)

    module_function

    def describe
      {
        "Date" => Time.now.utc.iso8601,
        "Commit" => commit,
        "CPU" => "#{cpu_model}, #{Etc.nprocessors} cores",
        "Load average at start" => File.read("/proc/loadavg").split.first(3).join(" "),
        "Kernel" => "#{Etc.uname[:sysname]} #{Etc.uname[:release]}",
        "Ruby" => RUBY_DESCRIPTION,
        "ActiveSupport" => ActiveSupport::VERSION::STRING,
        "Redis server" => command("redis-server", "--version")[/v=(\S+)/, 1] || "unknown",
        "rustc" => rustc
      }
    end

    def cpu_model
      File.read("/proc/cpuinfo")[/^model name\s*:\s*(.+)$/, 1] || "unknown CPU"
    end

    # The checkout at +root+'s commit, and whether its lib/ or ext/ differ from it.
    def commit(root = ROOT)
      sha = command("git", "-C", root, "rev-parse", "--short", "HEAD").strip
      dirty = !command("git", "-C", root, "status", "--porcelain", "--", "lib", "ext").strip.empty?
      sha.empty? ? "unknown" : "#{sha}#{" (with uncommitted changes to lib/ or ext/)" if dirty}"
    end

    # A checkout for bench/compare's report: where it is and its commit.
    def describe_checkout(root)
      "#{root} (commit #{commit(root)})"
    end

    def rustc
      cargo_bin = File.join(Dir.home, ".cargo", "bin", "rustc")
      rustc = File.executable?(cargo_bin) ? cargo_bin : "rustc"
      command(rustc, "--version").strip.then { |version| version.empty? ? "unknown" : version }
    end

    # The command's stdout, or "" when it cannot run.
    def command(*args)
      output, _status = Open3.capture2(*args, err: File::NULL)
      output
    rescue SystemCallError
      ""
    end
  end
end
