# frozen_string_literal: true

# The program a Peer (spec/support/peer.rb) runs in a child process:
#
#   ruby -I lib spec/support/peer_process.rb SOCKET_PATH
#
# It connects to the test's UNIX socket and serves requests, one per line
# (see PeerWire), each answered by one response line. It holds any number of
# SyncedMemoryStore::Store objects by name (:main unless told otherwise).
#
# spec_helper requires every file under spec/support; this one only runs as a
# program, so it does nothing when required. What it is made of is under
# spec/support/peer_process/, whose files only define classes and modules
# (harmless in the test process), so it loads them itself, below.
return unless File.expand_path($PROGRAM_NAME) == File.expand_path(__FILE__)

require "socket"
require "synced_memory_store"
require "active_support/cache/redis_cache_store"
require_relative "peer_wire"
require_relative "soak/faulty_redis_cache_store"
require_relative "soak/workload"
require_relative "peer_process/gated_redis_cache_store"
require_relative "peer_process/reader"
require_relative "peer_process/stores"
require_relative "peer_process/timed_writes_and_readers"
require_relative "peer_process/background_calls"
require_relative "peer_process/l2_gate"
require_relative "peer_process/random_work"
require_relative "peer_process/measurements"
require_relative "peer_process/bulk_work"
require_relative "peer_process/forking"
require_relative "peer_process/soak"
require_relative "peer_process/failing_fetch"
require_relative "peer_process/stampedes"

$stdout.sync = true
$stderr.sync = true

# Serves one connection's requests until it closes. A request names a
# command, which the command_<name> method of that name answers (Peer::COMMANDS
# lists them), with the request's store (:main unless told otherwise) as
# #store; its value, or the exception it raised, goes back as the response.
# The commands come in groups, a module each under spec/support/peer_process/;
# the state they share is set up here.
class PeerProcess
  include Stores
  include TimedWritesAndReaders
  include BackgroundCalls
  include L2Gate
  include RandomWork
  include Measurements
  include BulkWork
  include Forking
  include Soak
  include FailingFetch
  include Stampedes

  def initialize(socket, stores = {})
    @socket = socket
    # Stores by name, and the options each was opened with (Soak reopens one with them).
    @stores = stores
    @store_options = {}
    # Readers by name (TimedWritesAndReaders).
    @readers = {}
    # The thread of the background call (BackgroundCalls).
    @async = nil
    # The soak's workload, made by the first soak_start (Soak).
    @workload = nil
    # Faults injected by every FaultyRedisCacheStore this process opens.
    @fault_tally = Tally.new
    # The threads of the stampede under way (Stampedes).
    @stampede = nil
    # Runs of fetch_counting's block by key, from any thread (Stores).
    @block_runs = Hash.new(0)
    @block_runs_lock = Mutex.new
  end

  # Answers each request line with a response line until the connection closes.
  def serve
    while (line = @socket.gets)
      id, command, args, options, store = PeerWire.decode(line)
      @socket.write(PeerWire.encode(respond(id, command, args, options, store)))
    end
  end

  private

  def respond(id, command, args, options, store)
    @store_name = store
    handler = "command_#{command}"
    raise ArgumentError, "unknown peer command #{command.inspect}" unless respond_to?(handler, true)

    [id, :ok, send(handler, *args, **options)]
  rescue Exception => e # rubocop:disable Lint/RescueException -- every failure goes back to the test
    [id, :error, e.class.name, e.message, e.backtrace&.first(15)]
  end

  def store
    @stores.fetch(@store_name) { raise ArgumentError, "this peer has no store named #{@store_name.inspect}" }
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end

PeerProcess.new(UNIXSocket.new(ARGV.fetch(0))).serve
