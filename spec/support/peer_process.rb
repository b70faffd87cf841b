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
# program, so it does nothing when required.
return unless File.expand_path($PROGRAM_NAME) == File.expand_path(__FILE__)

require "socket"
require "synced_memory_store"
require "active_support/cache/redis_cache_store"
require_relative "peer_wire"
require_relative "soak/faulty_redis_cache_store"
require_relative "soak/workload"
require_relative "peer_process/gated_redis_cache_store"
require_relative "peer_process/reader"

$stdout.sync = true
$stderr.sync = true

# Serves one connection's requests until it closes.
class PeerProcess
  # Store methods a request may call (see Peer::STORE_METHODS).
  STORE_METHODS = %i[
    read write delete delete_multi delete_matched clear increment decrement read_multi write_multi exist? stats
    connected? wait_for_connection flush_sync settle close closed?
  ].freeze

  # Returned by the native read for "nothing usable in L1".
  L1_MISS = Object.new.freeze

  def initialize(socket, stores = {})
    @socket = socket
    @stores = stores
    @store_options = {}
    @readers = {}
    @async = nil
    @workload = nil
    # Faults injected by every FaultyRedisCacheStore this process opens.
    @fault_tally = Tally.new
  end

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

  # --- stores -----------------------------------------------------------------

  # Opens a store under +name+; returns how long the constructor took (seconds).
  # cache: [:gated_redis_cache_store, { url:, namespace: }] makes a
  # GatedRedisCacheStore L2, and [:faulty_redis_cache_store, { url:,
  # namespace:, faults:, fault_seed: }] a FaultyRedisCacheStore (its faults
  # counted in this process's fault tally); any other cache: is given to the
  # store as is.
  def command_open_store(name, options)
    @store_options[name] = options
    options = options.dup
    cache = options[:cache]
    if cache.is_a?(Array) && cache.first == :gated_redis_cache_store
      options[:cache] = GatedRedisCacheStore.new(**cache.last)
    elsif cache.is_a?(Array) && cache.first == :faulty_redis_cache_store
      options[:cache] = faulty_redis_cache_store(cache.last)
    end
    started = monotonic
    @stores[name] = SyncedMemoryStore::Store.new(options)
    monotonic - started
  end

  # A new FaultyRedisCacheStore; each one (a store reopened, say) rolls its
  # own dice, derived from +fault_seed+.
  def faulty_redis_cache_store(options)
    @faulty_opened = (@faulty_opened || 0) + 1
    seed = options.fetch(:fault_seed, 0) + @faulty_opened
    FaultyRedisCacheStore.new(**options, fault_seed: seed, fault_tally: @fault_tally)
  end

  def command_store(method, args, options)
    raise ArgumentError, "not a store method: #{method.inspect}" unless STORE_METHODS.include?(method)

    store.public_send(method, *args, **options)
  end

  # fetch with a block returning +computed+; returns [value, whether the block ran].
  def command_fetch(name, computed, options)
    ran = false
    value = store.fetch(name, options) do
      ran = true
      computed
    end
    [value, ran]
  end

  # What L1 alone holds for +key+, as a read would use it now (trust included):
  # [:hit, value] or [:miss]. Never reads L2, never fills.
  def command_l1_read(key)
    value = store.instance_variable_get(:@node).read_hit(key, L1_MISS)
    L1_MISS.equal?(value) ? [:miss] : [:hit, value]
  end

  # Reads and writes the store's L2 directly (not through L1, not published).
  def command_l2_read(key)
    store.instance_variable_get(:@l2).store.read(key)
  end

  def command_l2_write(key, value)
    store.instance_variable_get(:@l2).store.write(key, value)
  end

  # The native node's id (a forked child's store gets a new one).
  def command_node_id
    store.instance_variable_get(:@node).id
  end

  def command_now
    monotonic
  end

  # Native threads of this process whose name starts with "sms-" (the bus
  # threads of every store).
  def command_sms_threads
    Dir.glob("/proc/self/task/*/comm").count do |comm|
      File.read(comm).start_with?("sms-")
    rescue Errno::ENOENT, Errno::ESRCH
      false
    end
  end

  # --- timed writes and readers -----------------------------------------------

  # Writes +values+ to +key+ one by one, waiting +gaps[i]+ seconds after the
  # i-th write; returns [[value, started, returned], ...] (monotonic seconds).
  def command_write_series(key, values, gaps, options = {})
    values.each_with_index.map do |value, index|
      started = monotonic
      store.write(key, value, options)
      returned = monotonic
      # A genuine gap between writes: how far apart updates are is what the
      # caller measures against.
      sleep gaps[index] if gaps[index].positive?
      [value, started, returned]
    end
  end

  # Writes +value+ under +key+ and returns [result, started, returned].
  def command_timed_write(key, value, options = {})
    started = monotonic
    result = store.write(key, value, options)
    [result, started, monotonic]
  end

  # Starts a Reader of +key+ (see Reader); returns once its loop is running.
  def command_start_reader(key, mode:, interval: 0.001, max_seconds: 30, name: :reader)
    raise ArgumentError, "a reader named #{name.inspect} is running" if @readers[name]
    raise ArgumentError, "mode: must be :tight or :sleepy" unless %i[tight sleepy].include?(mode)

    @readers[name] = Reader.new(store, key, interval: mode == :sleepy ? interval : nil, max_seconds: max_seconds)
    true
  end

  # [start time of the reader's latest read, runs recorded, whether it still runs].
  def command_reader_progress(name: :reader)
    reader = @readers.fetch(name)
    [reader.last_start, reader.runs.size, reader.alive?]
  end

  # Stops the reader and returns its record (see Reader#stop).
  def command_stop_reader(name: :reader)
    reader = @readers.delete(name) or raise ArgumentError, "no reader named #{name.inspect}"
    reader.stop
  end

  # --- a read or write in the background, and the L2 gate ---------------------

  def command_read_async(key, options = {})
    background { store.read(key, options) }
  end

  # Writes in the background; then, with +after+, closes the store (:close)
  # or ends the process the way a finished script does (:exit: the main
  # thread exits and at_exit handlers run).
  def command_write_async(key, value, after: nil)
    cache = store
    background do
      cache.write(key, value)
      cache.close if after == :close
      Thread.main.raise(SystemExit) if after == :exit
      true
    end
  end

  def background(&)
    raise ArgumentError, "a background call is running" if @async&.alive?

    @async = Thread.new(&)
    true
  end

  # The background call's value, once it returns (or raises after +timeout+).
  def command_await_async(timeout)
    @async.join(timeout) or raise "the background call did not return within #{timeout} s"
    @async.value
  end

  def command_gate_reads(key)
    gated_l2.gate(key)
    true
  end

  def command_gate_writes(key)
    gated_l2.gate(key, writes: true)
    true
  end

  # [whether a call is held at the gate, the value it read or wrote].
  def command_await_gated(timeout)
    gated_l2.await_held(timeout)
  end

  def command_release_gate
    gated_l2.release
    true
  end

  # The largest resident set size this process has had (VmHWM, bytes).
  def command_peak_rss
    File.read("/proc/self/status")[/^VmHWM:\s+(\d+) kB/, 1].to_i * 1024
  end

  def gated_l2
    l2 = store.instance_variable_get(:@l2)&.store
    raise ArgumentError, "this store's L2 is not a GatedRedisCacheStore" unless l2.is_a?(GatedRedisCacheStore)

    l2
  end

  # --- random work ---------------------------------------------------------------

  # +count+ random operations over +keys+, driven by +seed+: writes, deletes,
  # reads (which fill L1 from L2), read_multi, write_multi, glob deletes and
  # clears. Values name this peer (+tag+) and the step. Returns a tally.
  def command_random_ops(seed:, count:, keys:, tag:)
    rng = Random.new(seed)
    tally = Hash.new(0)
    count.times do |step|
      operation = random_op(rng, store, keys, "#{tag}-#{step}")
      tally[operation] += 1
    end
    tally
  end

  # Cumulative odds (out of 100) of each random operation.
  OPERATIONS = [[38, :write], [54, :delete], [82, :read], [89, :read_multi], [95, :write_multi],
                [98, :delete_matched], [100, :clear]].freeze

  def random_op(rng, cache, keys, value)
    roll = rng.rand(100)
    operation = OPERATIONS.find { |limit, _| roll < limit }.last
    key = keys.sample(random: rng)
    case operation
    when :write then cache.write(key, value)
    when :delete then cache.delete(key)
    when :read then cache.read(key)
    when :read_multi then cache.read_multi(*keys.sample(3, random: rng))
    when :write_multi then cache.write_multi(keys.sample(2, random: rng).to_h { |k| [k, "#{value}m"] })
    when :delete_matched then cache.delete_matched("k[0-3]")
    when :clear then cache.clear
    end
    operation
  end

  # --- the soak (spec/reliability) -----------------------------------------------

  # Starts the SoakWorkload (created on the first call, with +options+; see
  # there) on this store with +threads+ threads from +seed+, and turns the
  # L2's faults on; returns once its threads run. The threads look the store
  # up by name before each operation, so they go on with the store
  # #command_soak_reopen opens.
  def command_soak_start(threads:, seed:, **options)
    name = @store_name
    @workload ||= SoakWorkload.new(store: -> { @stores.fetch(name) }, **options)
    faulty_l2&.faults_on = true
    @workload.start(threads: threads, seed: seed)
    true
  end

  # What the workload and the L2 faults did so far, since the process
  # started, and the store's stats: { operations:, errors:, unexpected:
  # (errors neither injected nor from a closed store), faults:, stats: }.
  def command_soak_tally
    raise ArgumentError, "no soak workload was started" unless @workload

    { operations: @workload.operations.to_h, errors: @workload.errors.to_h, unexpected: @workload.unexpected,
      faults: @fault_tally.to_h, stats: store.stats }
  end

  # Stops the workload, then the L2's faults; returns #command_soak_tally.
  def command_soak_stop
    raise ArgumentError, "no soak workload was started" unless @workload

    @workload.stop
    faulty_l2&.faults_on = false
    command_soak_tally
  end

  # Closes this store, as an application shutting one down would (workload
  # threads still calling it get ClosedError), and opens a fresh one with
  # the same options under the same name. Returns the closed store's stats.
  def command_soak_reopen(timeout: 5)
    closing = store
    stats = closing.stats
    closing.close(timeout)
    command_open_store(@store_name, @store_options.fetch(@store_name))
    stats
  end

  # { key => [what L1 holds (as #command_l1_read), what #read returns] } for
  # each of +keys+, reading the ones in +raw_keys+ with raw: true.
  def command_soak_observe(keys, raw_keys)
    keys.to_h { |key| [key, [command_l1_read(key), store.read(key, raw: raw_keys.include?(key))]] }
  end

  # This store's L2 if it is a FaultyRedisCacheStore.
  def faulty_l2
    l2 = store.instance_variable_get(:@l2)&.store
    l2 if l2.is_a?(FaultyRedisCacheStore)
  end

  # --- bulk work and measurements (for bench/) -----------------------------------

  # This process's resident set size (VmRSS, bytes) after a full garbage
  # collection (and, with compact: true, GC.compact), so that Ruby's garbage
  # counts as little as it can.
  def command_rss(compact: true)
    GC.start
    if compact
      GC.compact
      GC.start
    end
    File.read("/proc/self/status")[/^VmRSS:\s+(\d+) kB/, 1].to_i * 1024
  end

  # Writes +count+ String values, the i-th (i counting from +offset+) under
  # "<prefix><i>", or "<prefix><i % keys>" with +keys+ (a fixed key space),
  # sized sizes[i % sizes.size] bytes. Returns the seconds it took.
  def command_write_many(prefix:, count:, sizes:, keys: nil, offset: 0)
    values = sizes.uniq.to_h { |size| [size, "v" * size] }
    started = monotonic
    (offset...(offset + count)).each do |i|
      store.write("#{prefix}#{keys ? i % keys : i}", values.fetch(sizes[i % sizes.size]))
    end
    monotonic - started
  end

  # Writes as fast as this thread can for +seconds+, cycling over +keys+ keys
  # ("<prefix><i>") with +value_bytes+-byte values that alternate between two
  # contents on each pass: one write per key, or write_multi batches of +batch+
  # keys. Every 100 changes it holds back (sleeping 100 µs) while more than
  # +max_queued+ changes wait for the publisher, so the queue never overflows
  # into a "drop everything". Returns { changes:, seconds:, holds: }.
  def command_flood(seconds:, batch: 1, keys: 10_000, value_bytes: 32, max_queued: 20_000, prefix: "flood-")
    names = Array.new(keys) { |i| "#{prefix}#{i}" }
    work = %w[a b].flat_map do |fill|
      value = fill * value_bytes
      batch == 1 ? names.map { |name| [name, value] } : names.each_slice(batch).map { |s| s.to_h { |n| [n, value] } }
    end
    flood(work, seconds, max_queued)
  end

  def flood(work, seconds, max_queued)
    changes = holds = 0
    started = monotonic
    deadline = started + seconds
    work.each_slice(work.first.is_a?(Hash) ? 1 : 100).cycle do |items|
      break if monotonic >= deadline

      (holds += 1) && sleep(0.0001) while store.stats[:queued] > max_queued
      items.each { |item| item.is_a?(Hash) ? store.write_multi(item) : store.write(*item) }
      changes += items.sum { |item| item.is_a?(Hash) ? item.size : 1 }
    end
    { changes: changes, seconds: monotonic - started, holds: holds }
  end

  # Reads +key+ over and over on this thread for +seconds+, timing each read.
  # Returns { reads:, seconds:, p50:, p99:, max: (seconds per read), and the
  # increase of the store's l1_hits, applied and received counters meanwhile }.
  def command_read_latency(key, seconds:)
    before = store.stats
    samples = []
    started = monotonic
    deadline = started + seconds
    while (read_start = monotonic) < deadline
      store.read(key)
      samples << (monotonic - read_start)
    end
    elapsed = monotonic - started
    after = store.stats
    samples.sort!
    { reads: samples.size, seconds: elapsed, p50: samples[samples.size / 2],
      p99: samples[(samples.size * 0.99).ceil - 1], max: samples.last,
      **%i[l1_hits applied received].to_h { |counter| [counter, after[counter] - before[counter]] } }
  end

  # --- fork ----------------------------------------------------------------------

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

PeerProcess.new(UNIXSocket.new(ARGV.fetch(0))).serve
