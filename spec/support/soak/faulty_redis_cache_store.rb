# frozen_string_literal: true

require "timeout"
require "active_support/cache/redis_cache_store"
require_relative "tally"

# A RedisCacheStore that misbehaves on purpose, as the L2 of the soak's peer
# processes (spec/reliability). Each call it makes to Redis may, with the
# probabilities given in +faults:+,
#
# - fail before the command (+before+): the change is not made;
# - fail after the command (+after+): the change is made but the caller sees
#   an error, as when the reply to a SET is lost;
# - stall (+stall+) for up to +stall_max+ seconds, before or after the
#   command, which widens every race between a process's L2 call and its bus
#   message.
#
# The calls ActiveSupport 6.1 wraps in its failsafe (read_entry, write_entry,
# write_multi_entries, delete_entry, increment, decrement, clear, and
# SyncedMemoryStore's own MGET for read_multi and SCAN for a Regexp
# delete_matched) fail inside that failsafe, half the time with a Redis error,
# which it turns into a miss (or false, for a write) as it would a lost
# connection, and half the time with a Timeout::Error, which it lets through
# to the caller. delete_multi and delete_matched with a glob have no failsafe
# in 6.1, so either kind reaches the caller there, as a real error would.
#
# Every fault is counted in +fault_tally+ under "kind/method/outcome"
# ("after/write_entry/raised", "stall/read_entry/before" …). With
# <tt>faults_on = false</tt> it is a plain RedisCacheStore.
class FaultyRedisCacheStore < ActiveSupport::Cache::RedisCacheStore
  # An injected failure that no failsafe catches.
  InjectedTimeout = Class.new(Timeout::Error)
  # An injected failure RedisCacheStore's failsafe catches, as it catches a
  # lost connection.
  InjectedRedisError = Class.new(Redis::TimeoutError)

  # Set while a call runs inside a failsafe (a namespaced #clear runs
  # #delete_matched inside one), so that a fault is counted as caught there.
  IN_FAILSAFE = :faulty_redis_cache_store_in_failsafe

  # No faults unless asked for.
  DEFAULT_FAULTS = { before: 0.0, after: 0.0, stall: 0.0, stall_max: 0.02 }.freeze

  attr_reader :faults
  # Whether faults are injected (calls already under way carry theirs out).
  attr_accessor :faults_on

  def initialize(faults: {}, fault_seed: Random.new_seed, fault_tally: Tally.new, **options)
    super(**options)
    unknown = faults.keys - DEFAULT_FAULTS.keys
    raise ArgumentError, "unknown faults: #{unknown.inspect}" unless unknown.empty?

    @faults = DEFAULT_FAULTS.merge(faults)
    @fault_rng = Random.new(fault_seed)
    @fault_lock = Mutex.new
    @fault_tally = fault_tally
    @faults_on = true
  end

  def delete_matched(matcher, options = nil)
    with_faults(:delete_matched, caught: false) { super }
  end

  private

  def failsafe(method, returning: nil, &command)
    super do
      outer = Thread.current[IN_FAILSAFE]
      Thread.current[IN_FAILSAFE] = true
      with_faults(method, caught: true, &command)
    ensure
      Thread.current[IN_FAILSAFE] = outer
    end
  end

  def delete_multi_entries(entries, **options)
    with_faults(:delete_multi_entries, caught: false) { super }
  end

  # Runs the Redis command (the block) with whatever faults the dice choose.
  def with_faults(method, caught:)
    return yield unless @faults_on

    caught ||= Thread.current[IN_FAILSAFE] ? true : false
    before, after, stall, stall_at, redis_error = plan
    stall(method, stall, stall_at) if stall && stall_at == :before
    fail_call(:before, method, caught, redis_error) if before
    result = yield
    stall(method, stall, stall_at) if stall && stall_at == :after
    fail_call(:after, method, caught, redis_error) if after
    result
  end

  # The dice for one call: [fail before?, fail after?, stall seconds or nil,
  # :before or :after the command, whether a failure is a Redis error].
  def plan
    @fault_lock.synchronize do
      rng = @fault_rng
      before = rng.rand < @faults[:before]
      after = !before && rng.rand < @faults[:after]
      stall = rng.rand * @faults[:stall_max] if rng.rand < @faults[:stall]
      [before, after, stall, rng.rand < 0.5 ? :before : :after, rng.rand < 0.5]
    end
  end

  def stall(method, seconds, stall_at)
    @fault_tally.add("stall/#{method}/#{stall_at}")
    # A pause is the fault itself here, not a way of waiting for something.
    sleep seconds
  end

  def fail_call(moment, method, caught, redis_error)
    message = "injected fault #{moment} #{method}"
    if redis_error
      @fault_tally.add("#{moment}/#{method}/#{caught ? "caught" : "raised"}")
      raise InjectedRedisError, message
    end

    @fault_tally.add("#{moment}/#{method}/raised")
    raise InjectedTimeout, message
  end
end
