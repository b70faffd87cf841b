# frozen_string_literal: true

# The original README's two irb windows, automated. A private redis-server on a
# free loopback port carries the sync messages; "window 1" (this process) and
# "window 2" (a second process) each run a SyncedMemoryStore whose L2 is its own
# in-process MemoryStore, so a value can only reach window 2 over the bus.
# Window 1 writes, updates and deletes; window 2 shows what it sees and when.
# Everything the demo starts, it stops. Run it with bin/demo, which prepares
# the machine first.

require "json"
require "rbconfig"

LIB = File.expand_path("../lib", __dir__)

# Window 2: answers "watch for this value" requests from window 1 over a pipe:
# it says it is watching, then spins on store.read until the value shows up
# and reports when it did.
if ARGV.first == "--window-2"
  $LOAD_PATH.unshift(LIB)
  require "synced_memory_store"
  store = SyncedMemoryStore::Store.new(redis: ARGV[1], cache: ActiveSupport::Cache::MemoryStore.new)
  store.wait_for_connection
  store.read("warm-up") # loads the read path's code before anything is timed
  $stdout.sync = true
  puts JSON.generate(ready: Process.pid)
  $stdin.each_line do |line|
    request = JSON.parse(line)
    case request["op"]
    when "watch"
      puts JSON.generate(watching: true)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 2
      value = nil
      loop do
        value = store.read(request["key"])
        break if value == request["value"] || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      end
      puts JSON.generate(value: value, at: Process.clock_gettime(Process::CLOCK_MONOTONIC))
    when "stats"
      puts JSON.generate(store.stats)
    when "exit"
      store.close
      break
    end
  end
  exit
end

$LOAD_PATH.unshift(LIB)
require "synced_memory_store"
require_relative "../spec/support/redis_server"

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def ask(window, request)
  window.puts(JSON.generate(request))
  JSON.parse(window.gets || raise("window 2 exited"))
end

# Has window 2 watch for +value+, then writes it (or deletes, for nil) in
# window 1; returns what window 2 read and the microseconds from the start of
# the write until window 2 saw it.
def propagate(store, window, key, value)
  ask(window, op: "watch", key: key, value: value)
  started_at = now
  value.nil? ? store.delete(key) : store.write(key, value)
  answer = JSON.parse(window.gets || raise("window 2 exited"))
  [answer["value"], ((answer["at"] - started_at) * 1_000_000).round]
end

redis = RedisServer.start
window = nil
begin
  puts "Started a private redis-server for the bus at #{redis.url}"
  window = IO.popen([RbConfig.ruby, __FILE__, "--window-2", redis.url], "r+")
  window.sync = true
  JSON.parse(window.gets || raise("window 2 did not start"))
  store = SyncedMemoryStore::Store.new(redis: redis.url, cache: ActiveSupport::Cache::MemoryStore.new)
  store.wait_for_connection
  store.write("warm-up", true) # loads the write path's code before anything is timed
  puts "Window 1 is pid #{Process.pid}; window 2 is pid #{window.pid}. Each store's L2 is its own MemoryStore."

  puts "\nwindow 1: cache.write(\"key\", \"it works\")"
  value, micros = propagate(store, window, "key", "it works")
  puts "window 2: cache.read(\"key\") # => #{value.inspect}   (seen #{micros} µs after the write began)"

  puts "\nwindow 1: cache.write(\"key\", \"updated\")"
  value, micros = propagate(store, window, "key", "updated")
  puts "window 2: cache.read(\"key\") # => #{value.inspect}   (#{micros} µs)"

  puts "\nwindow 1: cache.delete(\"key\")"
  value, micros = propagate(store, window, "key", nil)
  puts "window 2: cache.read(\"key\") # => #{value.inspect}   (#{micros} µs)"

  rounds = 200
  latencies = Array.new(rounds) { |i| propagate(store, window, "counter", i).last }.sort
  puts "\n#{rounds} more writes, window 2 reading in a tight loop:"
  puts "  propagation p50 #{latencies[rounds / 2]} µs, p99 #{latencies[(rounds * 0.99).floor]} µs, " \
       "max #{latencies.last} µs"

  puts "\nWindow 1 stats: #{store.stats.slice(:published, :received, :applied, :rejected).inspect}"
  puts "Window 2 stats: #{ask(window, op: "stats").slice("published", "received", "applied", "l1_hits").inspect}"
  store.close
ensure
  if window
    window.puts(JSON.generate(op: "exit")) rescue nil # rubocop:disable Style/RescueModifier
    Process.wait(window.pid)
  end
  redis.stop
  puts "\nStopped window 2 and the private redis-server."
end
