# frozen_string_literal: true

require "tmpdir"
require_relative "redis_server/process_control"
require_relative "redis_server/commands"

# A private redis-server on a free loopback port, for specs, bin/demo and the
# benchmarks. It is started and stopped by pid (never by name), keeps no data
# on disk, and every server still running at exit is stopped (unless started
# with stop_at_exit: false, for callers whose own exit hooks still need it).
#
# Its process is started, signalled and reaped by RedisServer::ProcessControl
# (redis_server/process_control.rb); RedisServer::Commands (redis_server/commands.rb)
# gives its URL and sends it single commands.
class RedisServer
  START_TIMEOUT = 10
  STOP_TIMEOUT = 5

  @running = []
  class << self
    attr_reader :running

    # Starts a server and returns it.
    def start(**options)
      new(**options).tap(&:start)
    end
  end

  at_exit { RedisServer.running.dup.each(&:stop) }

  include ProcessControl
  include Commands

  attr_reader :port, :pid

  # +arguments+ are added to the command line (<tt>["--replicaof", "127.0.0.1", port]</tt>).
  def initialize(port: nil, executable: ENV.fetch("REDIS_SERVER", "redis-server"), stop_at_exit: true,
                 arguments: [])
    @port = port
    @stop_at_exit = stop_at_exit
    @executable = executable
    @arguments = arguments.map(&:to_s)
    @dir = Dir.mktmpdir("synced-memory-store-redis")
  end

  private

  # The server's command line (RedisSentinel has its own).
  def command_line
    [@executable, "--port", port.to_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
     "--dir", @dir, "--logfile", log_path, "--daemonize", "no", *@arguments]
  end
end
