# frozen_string_literal: true

require "io/wait"
require "socket"
require "rbconfig"

class Peer
  # Peer's class methods for the processes themselves: starting one
  # (Peer.launch), waiting for it to connect back (accept), telling whether
  # it still runs and killing it, always by pid, never by name. A peer
  # process that is not our child (a forked peer) is signalled the same way
  # but reaped by its own parent.
  module Processes
    # Starts a peer process, with +env+ added to its environment; #connect on
    # the result waits until it is ready. With +checkout+ (the root of another
    # checkout of this gem, built), the process runs that checkout's lib/ and
    # peer program instead of this one's (bench/compare's baseline).
    def launch(name:, dir:, env: {}, checkout: nil)
      socket_path = File.join(dir, "#{name}.sock")
      log_path = File.join(dir, "#{name}.log")
      server = UNIXServer.new(socket_path)
      lib, program = checkout ? [File.join(checkout, "lib"), File.join(checkout, PROGRAM_IN_CHECKOUT)] : [LIB, PROGRAM]
      pid = Process.spawn(env, RbConfig.ruby, "-I", lib, program, socket_path,
                          in: File::NULL, out: [log_path, "a"], err: %i[child out])
      Launch.new(name, pid, server, socket_path, log_path)
    end

    # Waits for the process +pid+ to connect to +server+.
    def accept(server, pid, child:, log_path:)
      deadline = monotonic + START_TIMEOUT
      loop do
        socket = server.accept_nonblock(exception: false)
        return socket unless socket == :wait_readable

        unless alive?(pid, child: child)
          raise Error, "peer process #{pid} exited before connecting; its log:\n#{tail(log_path)}"
        end

        left = deadline - monotonic
        raise TimeoutError, "peer process #{pid} did not connect within #{START_TIMEOUT} s" if left <= 0

        server.wait_readable([left, 0.05].min)
      end
    end

    # Stops listening on +server+ and removes its socket file (a peer that
    # connected keeps its connection).
    def unlisten(server, socket_path)
      server.close
      File.unlink(socket_path)
    rescue SystemCallError
      nil
    end

    # Whether the process +pid+ still runs. A +child+ of this process that
    # exited is reaped by the check; any other is only probed (signal 0).
    def alive?(pid, child:)
      if child
        Process.waitpid(pid, Process::WNOHANG).nil?
      else
        Process.kill(0, pid)
        true
      end
    rescue Errno::ECHILD, Errno::ESRCH
      false
    end

    # SIGKILLs +pid+ and waits (boundedly) until it is gone.
    def kill_pid(pid, child:)
      Process.kill(:KILL, pid)
      if child
        Process.wait(pid)
      else
        # Not our child: its parent (or init) reaps it.
        deadline = monotonic + 5
        sleep 0.005 while alive?(pid, child: false) && monotonic < deadline
      end
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end

    # CLOCK_MONOTONIC seconds, the clock of every deadline here.
    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # The last +lines+ lines of the log at +path+, for error messages.
    def tail(path, lines = 40)
      return "(no log)" unless path && File.exist?(path)

      File.readlines(path).last(lines).join
    end
  end

  # A process being started, until #connect.
  Launch = Struct.new(:name, :pid, :server, :socket_path, :log_path) do
    # Waits until the process connects back and returns its Peer; kills the
    # process if it does not. Either way the listening socket is removed.
    def connect
      Peer.new(Peer.accept(server, pid, child: true, log_path: log_path), name: name, pid: pid,
                                                                          log_path: log_path, child: true)
    rescue StandardError
      Peer.kill_pid(pid, child: true)
      raise
    ensure
      Peer.unlisten(server, socket_path)
    end
  end
end
