# frozen_string_literal: true

require "tmpdir"
require_relative "redis_server/process_control"
require_relative "redis_server/commands"
require_relative "redis_server/tls"

# A private redis-server on a free loopback port, for specs, bin/demo and the
# benchmarks. It is started and stopped by pid (never by name), keeps no data
# on disk, and every server still running at exit is stopped (unless started
# with stop_at_exit: false, for callers whose own exit hooks still need it).
#
# Its process is started, signalled and reaped by RedisServer::ProcessControl
# (redis_server/process_control.rb); RedisServer::Commands (redis_server/commands.rb)
# gives its URL and sends it single commands. With +tls:+ (a RedisServer::Tls,
# redis_server/tls.rb) it listens with TLS only, and its URL is rediss://.
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

  attr_reader :port, :pid, :dir, :tls

  # +arguments+ are added to the server's command line (e.g. cluster
  # settings); +tls+ makes it listen with TLS only (see RedisServer::Tls).
  def initialize(port: nil, executable: ENV.fetch("REDIS_SERVER", "redis-server"), stop_at_exit: true, tls: nil,
                 arguments: [])
    @port = port
    @tls = tls
    @arguments = arguments
    @stop_at_exit = stop_at_exit
    @executable = executable
    @dir = Dir.mktmpdir("synced-memory-store-redis")
  end

  private

  # The server's command line (RedisSentinel has its own).
  def command_line
    [@executable, *listen_arguments, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
     "--dir", @dir, "--logfile", log_path, "--daemonize", "no", *@arguments.map(&:to_s)]
  end
end
