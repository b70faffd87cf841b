# frozen_string_literal: true

class PeerProcess
  # The commands that open this process's stores and use them: open_store
  # (with a GatedRedisCacheStore or a FaultyRedisCacheStore as L2 when asked),
  # store (any of STORE_METHODS, forwarded as it is), fetch with a block, and
  # what a test must see past the store's API: L1 alone (l1_read), L2 alone
  # (l2_read, l2_write) and the native node's id.
  module Stores
    # Store methods a request may call (see Peer::STORE_METHODS).
    STORE_METHODS = %i[
      read write delete delete_multi delete_matched clear increment decrement read_multi write_multi exist? stats
      connected? wait_for_connection flush_sync settle close closed? invalidate_tags
    ].freeze

    # Returned by the native read for "nothing usable in L1".
    L1_MISS = Object.new.freeze

    private

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

    # fetch with a block that counts its runs in this process (on any
    # thread: a refresh-ahead runs it in the background), then takes
    # +seconds+ (a slow computation) and returns "+prefix+ <run>"; returns
    # [value, whether the block ran in this call].
    def command_fetch_counting(name, prefix, options, seconds = 0)
      ran = false
      value = store.fetch(name, options) do
        ran = true
        run = count_block_run(name)
        sleep(seconds) if seconds.positive?
        "#{prefix} #{run}"
      end
      [value, ran]
    end

    # How many times fetch_counting's block ran in this process for +name+.
    def command_block_runs(name)
      @block_runs_lock.synchronize { @block_runs[name] }
    end

    def count_block_run(name)
      @block_runs_lock.synchronize { @block_runs[name] += 1 }
    end

    # What L1 alone holds for +key+, as a read would use it now (trust included):
    # [:hit, value] or [:miss]. Never reads L2, never fills. (bench/compare
    # also runs this program on builds from before read_hit: their node's
    # read does the same with a last argument of false.)
    def command_l1_read(key)
      node = store.instance_variable_get(:@node)
      value = node.respond_to?(:read_hit) ? node.read_hit(key, nil, L1_MISS) : node.read(key, nil, L1_MISS, false)
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
  end
end
