# frozen_string_literal: true

require "socket"
require "tmpdir"
require "fileutils"

# A private redis-server on a free loopback port, for specs, bin/demo and the
# benchmarks. It is started and stopped by pid (never by name), keeps no data
# on disk, and every server still running at exit is stopped (unless started
# with stop_at_exit: false, for callers whose own exit hooks still need it).
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

  attr_reader :port, :pid

  def initialize(port: nil, executable: ENV.fetch("REDIS_SERVER", "redis-server"), stop_at_exit: true)
    @port = port
    @stop_at_exit = stop_at_exit
    @executable = executable
    @dir = Dir.mktmpdir("synced-memory-store-redis")
  end

  # Starts the server (on the port it had before, after #kill) and waits until it answers PING.
  def start
    attempts = @port ? 1 : 5
    attempts.times do
      @port ||= free_port
      spawn_server
      return self if wait_until_ready

      stop
      @port = nil if attempts > 1
    end
    raise "redis-server did not start; see #{log_path}: #{File.exist?(log_path) ? File.read(log_path)[-2000..] : ""}"
  end

  def url(db = 0)
    "redis://127.0.0.1:#{port}/#{db}"
  end

  def running?
    !@pid.nil?
  end

  # Freezes the server (SIGSTOP): connections stay open but nothing answers.
  def pause
    Process.kill(:STOP, @pid)
  end

  # Thaws a paused server (SIGCONT).
  def resume
    Process.kill(:CONT, @pid)
  end

  # Kills the server abruptly (SIGKILL); #start brings it back on the same port.
  def kill
    return unless @pid

    Process.kill(:KILL, @pid)
    reap(STOP_TIMEOUT)
  end

  # Stops the server (SIGTERM, then SIGKILL after a deadline) and removes its directory.
  def stop
    return unless @pid

    begin
      Process.kill(:CONT, @pid)
      Process.kill(:TERM, @pid)
    rescue Errno::ESRCH
      nil
    end
    Process.kill(:KILL, @pid) unless reap(STOP_TIMEOUT)
    reap(STOP_TIMEOUT)
  rescue Errno::ESRCH
    @pid = nil
  ensure
    RedisServer.running.delete(self)
    FileUtils.rm_rf(@dir) unless @pid
  end

  # Sends one command over a fresh connection and returns the raw reply line.
  def command(*args)
    TCPSocket.open("127.0.0.1", port) do |socket|
      socket.write(args.map(&:to_s).each_with_object(+"*#{args.size}\r\n") { |a, s| s << "$#{a.bytesize}\r\n#{a}\r\n" })
      socket.gets&.chomp
    end
  end

  private

  def log_path
    File.join(@dir, "redis.log")
  end

  def spawn_server
    @pid = Process.spawn(
      @executable, "--port", port.to_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--dir", @dir, "--logfile", log_path, "--daemonize", "no",
      in: File::NULL, out: File::NULL, err: File::NULL
    )
    RedisServer.running << self if @stop_at_exit
  end

  def wait_until_ready
    deadline = monotonic + START_TIMEOUT
    while monotonic < deadline
      return false unless alive?
      return true if ping == "+PONG"

      sleep 0.01
    end
    false
  end

  def ping
    command("PING")
  rescue SystemCallError, IOError
    nil
  end

  def alive?
    Process.waitpid(@pid, Process::WNOHANG).nil?
  rescue Errno::ECHILD
    false
  end

  def reap(timeout)
    return true unless @pid

    deadline = monotonic + timeout
    while monotonic < deadline
      if Process.waitpid(@pid, Process::WNOHANG)
        @pid = nil
        return true
      end
      sleep 0.01
    end
    false
  rescue Errno::ECHILD
    @pid = nil
    true
  end

  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end
