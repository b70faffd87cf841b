# frozen_string_literal: true

class PeerProcess
  # fork_peer: forks this process; the child serves a new connection (a Peer
  # on the test's side) with the stores as the fork left them.
  module Forking
    private

    # Forks a child that serves the same commands (over a connection to
    # +socket_path+) with the stores as they are after the fork; returns its pid.
    def command_fork_peer(socket_path)
      pid = Process.fork do
        @socket.close
        PeerProcess.new(UNIXSocket.new(socket_path), @stores).serve
        exit!(0)
      end
      Process.detach(pid)
      pid
    end
  end
end
