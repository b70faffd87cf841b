# frozen_string_literal: true

require "io/wait"
require "socket"
require "rbconfig"
require_relative "peer_wire"

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

  # Store methods forwarded as they are (see PeerProcess::STORE_METHODS).
  STORE_METHODS = %i[
    read write delete delete_multi delete_matched clear increment decrement read_multi write_multi exist? stats
    connected? wait_for_connection flush_sync settle close closed?
  ].freeze

  # The peer's own commands (see the command_* methods of PeerProcess).
  COMMANDS = %i[
    open_store l1_read l2_read l2_write node_id now sms_threads write_series timed_write start_reader
    reader_progress stop_reader read_async write_async await_async gate_reads gate_writes await_gated
    release_gate peak_rss random_ops rss write_many flood read_latency soak_start soak_tally soak_stop
    soak_reopen soak_observe
  ].freeze

  # A process being started, until #connect.
  Launch = Struct.new(:name, :pid, :server, :socket_path, :log_path) do
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

  class << self
    # Starts a peer process; #connect on the result waits until it is ready.
    def launch(name:, dir:)
      socket_path = File.join(dir, "#{name}.sock")
      log_path = File.join(dir, "#{name}.log")
      server = UNIXServer.new(socket_path)
      pid = Process.spawn(RbConfig.ruby, "-I", LIB, PROGRAM, socket_path,
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

    def unlisten(server, socket_path)
      server.close
      File.unlink(socket_path)
    rescue SystemCallError
      nil
    end

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

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    def tail(path, lines = 40)
      return "(no log)" unless path && File.exist?(path)

      File.readlines(path).last(lines).join
    end
  end

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

  def inspect
    "#<Peer #{name} pid=#{pid}>"
  end

  # Sends a request and waits up to +within+ seconds for its response.
  def call(command, *args, store: :main, within: DEFAULT_WITHIN, **options)
    call_async(command, *args, store: store, **options)
    await(within)
  end

  # Sends a request without waiting; #await collects the response. One request
  # at a time per peer.
  def call_async(command, *args, store: :main, **options)
    raise Error, "#{self}: unusable after #{@broken}" if @broken
    raise Error, "#{self}: a request is already waiting for its response" if @awaiting

    @awaiting = (@next_id += 1)
    @socket.write(PeerWire.encode([@awaiting, command, args, options, store]))
    self
  rescue SystemCallError, IOError => e
    broken!("#{e.class} sending #{command}")
  end

  # The response to the request sent by #call_async, waiting up to +within+ s.
  def await(within = DEFAULT_WITHIN)
    raise Error, "#{self}: nothing was asked" unless @awaiting

    id, status, *rest = PeerWire.decode(read_line(monotonic + within))
    raise Error, "#{self}: response #{id} to request #{@awaiting}" unless id == @awaiting

    @awaiting = nil
    return rest.first if status == :ok

    raise remote_error(*rest)
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

  def log_tail(lines = 40)
    Peer.tail(log_path, lines)
  end

  def to_s
    "peer #{name} (pid #{pid})"
  end

  private

  def read_line(deadline)
    loop do
      if (newline = @buffer.index("\n"))
        return @buffer.slice!(0..newline)
      end

      left = deadline - monotonic
      broken!("no response within the deadline") if left <= 0
      next unless @socket.wait_readable(left)

      chunk = @socket.read_nonblock(1 << 16, exception: false)
      broken!("the process closed the connection (exited?)") if chunk.nil?
      @buffer << chunk unless chunk == :wait_readable
    end
  rescue SystemCallError, IOError => e
    broken!("#{e.class}: #{e.message}")
  end

  def broken!(why)
    @broken = why
    error = why.include?("deadline") ? TimeoutError : Error
    raise error, "#{self}: #{why}; its log:\n#{log_tail}"
  end

  def remote_error(class_name, message, backtrace)
    text = "#{message} (raised in #{self} as #{class_name})"
    klass = begin
      Object.const_get(class_name)
    rescue NameError
      nil
    end
    klass = RemoteError unless klass.is_a?(Class) && klass <= StandardError
    error = begin
      klass.new(text)
    rescue StandardError
      RemoteError.new(text)
    end
    error.set_backtrace(Array(backtrace) + caller)
    error
  end

  def monotonic
    Peer.monotonic
  end
end
