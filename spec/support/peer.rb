# frozen_string_literal: true

require "socket"
require_relative "peer/processes"
require_relative "peer/requests"

# Another Ruby process holding SyncedMemoryStore::Store objects, driven by the
# test over a UNIX socket (spec/support/peer_process.rb is the program it runs).
# Each request waits for its response with a deadline, so a hung peer fails
# the test rather than hanging it; a peer that missed a deadline is unusable
# afterwards. #kill ends the process by pid.
#
#   peer = Peer.launch(name: "a", dir: dir).connect
#   peer.open_store(:main, redis: url, channel: "c", cache: :memory_store)
#   peer.write("k", "v")            # SyncedMemoryStore::Store#write in the peer
#   peer.read("k", store: :other)   # a second store of the same process
#
# Exceptions raised in the peer are raised here with the same class when the
# class exists here (SyncedMemoryStore::ClosedError …), else as RemoteError.
#
# This file holds what a test calls on a peer; Peer::Processes (peer/processes.rb)
# starts, watches and kills the processes, and Peer::Requests (peer/requests.rb)
# carries each request and its response.
class Peer
  Error = Class.new(StandardError)
  TimeoutError = Class.new(Error)
  RemoteError = Class.new(Error)

  # Default deadline of one request, in seconds.
  DEFAULT_WITHIN = 15
  # How long a new process may take to load the gem and connect back.
  START_TIMEOUT = 30

  PROGRAM = File.expand_path("peer_process.rb", __dir__)
  LIB = File.expand_path("../../lib", __dir__)
  # Where PROGRAM is in any checkout of the gem.
  PROGRAM_IN_CHECKOUT = "spec/support/peer_process.rb"

  # Store methods forwarded as they are (see PeerProcess::STORE_METHODS).
  STORE_METHODS = %i[
    read write delete delete_multi delete_matched clear increment decrement read_multi write_multi exist? stats
    connected? wait_for_connection flush_sync settle close closed? invalidate_tags
  ].freeze

  # The peer's own commands (see the command_* methods of PeerProcess).
  COMMANDS = %i[
    open_store l1_read l2_read l2_write node_id now sms_threads write_series timed_write start_reader
    reader_progress stop_reader read_async write_async await_async gate_reads gate_writes await_gated
    release_gate peak_rss random_ops rss write_many flood read_latency soak_start soak_tally soak_stop
    soak_reopen soak_observe fetch_failing stampede_start stampede_result open_plain_store hit_samples
    fetch_counting block_runs
  ].freeze

  extend Processes
  include Requests

  attr_reader :name, :pid, :log_path

  def initialize(socket, name:, pid:, log_path:, child:)
    @socket = socket
    @name = name
    @pid = pid
    @log_path = log_path
    @child = child
    @buffer = String.new(encoding: Encoding::BINARY)
    @next_id = 0
    @awaiting = nil
    @broken = nil
  end

  # The peer's name and pid.
  def inspect
    "#<Peer #{name} pid=#{pid}>"
  end

  STORE_METHODS.each do |method|
    define_method(method) do |*args, store: :main, within: DEFAULT_WITHIN, **options|
      call(:store, method, args, options, store: store, within: within)
    end
  end

  COMMANDS.each do |command|
    define_method(command) do |*args, store: :main, within: DEFAULT_WITHIN, **options|
      call(command, *args, store: store, within: within, **options)
    end
  end

  # fetch with a block whose value is +computed+: [value, whether the block ran].
  def fetch(name, computed, store: :main, **options)
    call(:fetch, name, computed, options, store: store)
  end

  # Forks this peer's process (Process.fork, so through Process._fork); the
  # child serves requests as a new Peer, with its stores as the fork left them.
  def fork_peer(name:, dir:)
    socket_path = File.join(dir, "#{name}.sock")
    server = UNIXServer.new(socket_path)
    begin
      child_pid = call(:fork_peer, socket_path)
      socket = Peer.accept(server, child_pid, child: false, log_path: log_path)
      Peer.new(socket, name: name, pid: child_pid, log_path: log_path, child: false)
    ensure
      Peer.unlisten(server, socket_path)
    end
  end

  # Ends the process (SIGKILL, by pid). Idempotent.
  def kill
    return if @killed

    @killed = true
    @socket.close unless @socket.closed?
    Peer.kill_pid(pid, child: @child)
  end

  # Whether the process still runs (a peer that exited on its own is reaped).
  def alive?
    !@killed && Peer.alive?(pid, child: @child)
  end

  # Asks the process to exit (SIGTERM, by pid: Ruby runs its at_exit hooks,
  # which settle every open store) and waits up to +timeout+ seconds for it
  # to end; SIGKILLs it if it has not. Returns whether it ended by itself.
  def terminate(timeout = 10)
    return false if @killed

    Process.kill(:TERM, pid)
    deadline = monotonic + timeout
    sleep 0.01 while (running = Peer.alive?(pid, child: @child)) && monotonic < deadline
    if running
      kill
      return false
    end

    # Reaped: its pid may belong to another process by now, so no more signals.
    @killed = true
    @socket.close unless @socket.closed?
    true
  end

  # The last +lines+ lines of the process's log (its stdout and stderr).
  def log_tail(lines = 40)
    Peer.tail(log_path, lines)
  end

  # "peer NAME (pid PID)", as error messages name the peer.
  def to_s
    "peer #{name} (pid #{pid})"
  end

  private

  def monotonic
    Peer.monotonic
  end
end
