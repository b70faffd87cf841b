# frozen_string_literal: true

require "socket"
require_relative "../loopback_port"
require "fileutils"

class RedisServer
  # The redis-server process of a RedisServer: spawned on a free loopback port
  # (another one if that port was taken meanwhile), ready once it answers PING,
  # frozen and thawed, killed or stopped, and reaped, always by its pid. #stop
  # also removes its directory; after #kill, #start brings it back on the same port.
  module ProcessControl
    # Starts the server (on the port it had before, after #kill) and waits until it answers PING.
    def start
      attempts = @port ? 1 : 5
      attempts.times do
        @port ||= LoopbackPort.free
        spawn_server
        return self if wait_until_ready

        stop
        @port = nil if attempts > 1
      end
      raise "redis-server did not start; see #{log_path}: #{File.exist?(log_path) ? File.read(log_path)[-2000..] : ""}"
    end

    # Whether its process was started and not yet reaped.
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

    private

    def log_path
      File.join(@dir, "redis.log")
    end

    def spawn_server
      @pid = Process.spawn(*command_line, in: File::NULL, out: File::NULL, err: File::NULL)
      RedisServer.running << self if @stop_at_exit
    end

    # A plain port, or (RedisServer::Tls) a TLS port only.
    def listen_arguments
      tls ? tls.listen_arguments(port) : ["--port", port.to_s]
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

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
