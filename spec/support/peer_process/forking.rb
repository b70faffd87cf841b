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

    # Forks +forks+ children one after another, the way Puma forks workers
    # from a master whose bus threads are waiting (for changes, for events).
    # Each child starts a few threads of its own, then makes +writes+ changes
    # and waits up to 2 s for each to be published. Between forks this process
    # allocates and frees memory, so that each child starts from another heap.
    # Returns { forks:, stuck: (children whose change was not published),
    # crashed: (children killed by a signal) }.
    def command_fork_churn(forks:, writes:)
      heap = []
      outcomes = Array.new(forks) do
        rand(1..40).times { heap << ("x" * rand(24..5000)) }
        heap.shift(rand(0..heap.size))
        _, status = Process.wait2(Process.fork { exit!(publishes_every_change?(writes) ? 0 : 1) })
        outcome(status)
      end
      { forks: forks, stuck: outcomes.count(:stuck), crashed: outcomes.count(:crashed) }
    end

    def outcome(status)
      return :crashed if status.signaled?

      status.success? ? :ok : :stuck
    end

    def publishes_every_change?(writes)
      threads = Array.new(4) { Thread.new { sleep } }
      writes.times.all? do |i|
        store.write("fork-churn-#{i}", i)
        store.flush_sync(2)
      rescue SyncedMemoryStore::ConnectionError
        false
      end
    ensure
      threads&.each(&:kill)
    end
  end
end
