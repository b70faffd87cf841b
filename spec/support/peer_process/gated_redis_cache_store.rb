# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# A RedisCacheStore whose reads and writes can be held, to recreate races
# deterministically. Once #gate(key) is called, the next read of that key
# reads Redis as usual and then, before returning what it read, blocks until
# #release: a reader that fetched an old value from L2 just before another
# process changed the key. Once #gate(key, writes: true) is called, the next
# write of that key reaches Redis and then blocks until #release: a writer
# between its L2 write and what follows it (its publish).
class GatedRedisCacheStore < ActiveSupport::Cache::RedisCacheStore
  # Longest a gated call stays held, so a test that never releases it cannot
  # wedge the peer forever.
  HOLD_LIMIT = 60

  def initialize(**options)
    super
    @gate_lock = Mutex.new
    @gate_changed = ConditionVariable.new
    @gated = nil
    @held = nil
    @released = true
  end

  # Arms the gate for the next read (or, with +writes+, write) of +name+ (as
  # the cache store sees it).
  def gate(name, writes: false)
    @gate_lock.synchronize do
      @gated = [writes ? :write : :read, normalize_key(name, options)]
      @held = nil
      @released = false
    end
  end

  # Waits until a gated call has reached Redis and is being held; returns
  # [true, value it read or wrote] or [false, nil] after +timeout+ seconds.
  def await_held(timeout)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    @gate_lock.synchronize do
      until @held
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        return [false, nil] if left <= 0

        @gate_changed.wait(@gate_lock, left)
      end
      [true, @held.first]
    end
  end

  # Lets the held call (if any) return, and disarms the gate.
  def release
    @gate_lock.synchronize do
      @released = true
      @gated = nil
      @gate_changed.broadcast
    end
  end

  private

  def read_entry(key, **options)
    entry = super
    hold(entry) if gated?(:read, key)
    entry
  end

  def write_entry(key, entry, **options)
    written = super
    hold(entry) if gated?(:write, key)
    written
  end

  def gated?(kind, key)
    @gate_lock.synchronize { @gated == [kind, key] && !@held }
  end

  def hold(entry)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + HOLD_LIMIT
    @gate_lock.synchronize do
      @held = [entry&.value]
      @gate_changed.broadcast
      until @released
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        break if left <= 0

        @gate_changed.wait(@gate_lock, left)
      end
    end
  end
end
