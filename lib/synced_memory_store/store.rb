# frozen_string_literal: true

require "active_support/core_ext/hash/slice"
require "active_support/core_ext/hash/except"

require_relative "glob"
require_relative "tagged"
require_relative "flights"
require_relative "fail_safe_policy"
require_relative "failed_refreshes"
require_relative "lease_counts"
require_relative "refresh_pool"
require_relative "store/active_support_versions"
require_relative "store/options"
require_relative "store/direct_path"
require_relative "store/entries"
require_relative "store/changes"
require_relative "store/reads"
require_relative "store/lifecycle"
require_relative "store/counters"
require_relative "store/maintenance"
require_relative "store/single_flight"
require_relative "store/tags"
require_relative "store/fail_safe"
require_relative "store/fetch_lease"
require_relative "store/refresh_ahead"

module SyncedMemoryStore
  # A two-level ActiveSupport cache store. L1 is this process's memory, held by
  # the native core as bytes (never Ruby objects) within a byte budget; L2 is any
  # ActiveSupport store, or none.
  #
  #   store = SyncedMemoryStore::Store.new(
  #     cache: ActiveSupport::Cache::RedisCacheStore.new(url: ENV["REDIS_URL"]),
  #     size: 32.megabytes
  #   )
  #
  # Reads are answered from L1, else from L2, whose entry then fills L1 (a fill
  # is never written back to L2, and a fill that raced with a change to its key
  # is dropped rather than installed). Writes go to L2 first, then L1; a write L2
  # refuses or fails leaves the key out of L1, so L1 never holds what L2 lost.
  # Deletes, clears, delete_matched and cleanup act on both levels. With an L2,
  # increment and decrement use its atomic counter and drop the key from L1;
  # without one they are atomic within the process.
  #
  # Values are copied in and out: a read returns a new object each time.
  # Strings, Integers, Floats, nil, true and false are stored natively; other
  # values with Marshal (so a value Marshal cannot dump raises TypeError and
  # nothing is stored). A +coder:+ given to the store encodes whole entries
  # instead; an entry this process cannot decode (another coder, a class it
  # does not have) reads as a miss. Expiry is judged with Ruby's +Time.now+,
  # like every ActiveSupport store, so +travel_to+ works in tests.
  #
  # Thread safety: every method may be called from any thread. L1 is a
  # concurrent map; no lock is taken on a read. Threads that miss one key in
  # #fetch at once run its block once between them (see SingleFlight;
  # +lock_timeout+ bounds the wait), and with sync on so do processes that
  # miss it at once (see FetchLease; +lease+ bounds the wait).
  #
  # With +sync+ on (the default), every process's L1 is kept in sync through
  # Redis pub/sub: writes are shipped by value (or, past +broadcast_max_bytes+,
  # as invalidations), deletes and clears as invalidations, by native threads
  # that never hold the GVL; a Ruby thread never waits on the bus. A change
  # whose L2 call began always ends in a message, whatever the call raises.
  # See the README's "How sync works" for the guarantees and the ordering
  # argument.
  #
  # Options, besides ActiveSupport's (+namespace+, +expires_in+, +expires_at+,
  # +race_condition_ttl+, +compress+, +compress_threshold+, +coder+, +skip_nil+,
  # +version+ …): see the README's option table.
  # Per call: +force_miss: true+ makes reads miss and fetch run its block;
  # <tt>persist: false</tt> writes L1 only and removes the key from L2;
  # <tt>silent: true</tt> changes this process only, telling no other.
  class Store < ActiveSupport::Cache::Store
    include Options
    include DirectPath
    include Entries
    include Changes
    include Reads
    include Lifecycle
    include Counters
    include Maintenance
    include SingleFlight
    include FetchLease
    include Tags
    # After SingleFlight: a fail-safe fetch wraps the flight it takes part in.
    include FailSafe
    include RefreshAhead

    # Returned by the native read for "no usable entry"; nil is a cached value.
    MISS = Object.new.freeze
    private_constant :MISS

    # Versioned (recyclable) cache keys are supported, as in MemoryStore.
    def self.supports_cache_versioning?
      true
    end

    # See the class documentation for the options.
    def initialize(options = nil)
      options = (options || {}).dup
      settings = options.extract!(*STORE_OPTIONS)
      # L1 is memory: like MemoryStore, compress only when asked to.
      options[:compress] = false unless options.key?(:compress)
      super(options)
      # ActiveSupport 8.1 sets it; set before, every hit would look up an
      # instance variable the object does not have (a slow path in Ruby).
      @max_key_size = nil unless instance_variable_defined?(:@max_key_size)
      @entry_coder = entry_coder(options)
      @l2 = L2.wrap(settings[:cache])
      start_fail_safe(settings[:fail_safe])
      @node = Node.new(node_options(settings).merge(keep_expired: !@fail_safe.nil?))
      @forks = Node.forks
      @counter_lock = Mutex.new
      @lock_timeout = seconds_or_off(settings.fetch(:lock_timeout, DEFAULT_LOCK_TIMEOUT), ConfigurationError)
      @flights = Flights.new
      @lease = lease_or_off(settings.fetch(:lease, DEFAULT_LEASE), ConfigurationError)
      @lease_counts = LeaseCounts.new
      start_refresh_ahead(settings[:refresh_ahead])
      start_bus_events
      SyncedMemoryStore.track(self)
    end

    # Reads +name+; see ActiveSupport::Cache::Store#read. A plain String key read
    # with no listener and no debug logger takes a direct path: one L1 lookup
    # and one decode.
    def read(name, options = nil)
      if (key = direct_key(name, options)) && quiet?(:read)
        value = @node.read_hit(key, nil, MISS)
        value = untagged(value) if value.instance_of?(Array)
        return value unless MISS.equal?(value)
      end
      super
    end

    # Fetches +name+, running the block on a miss; see
    # ActiveSupport::Cache::Store#fetch. Hits take the direct path of #read.
    # With +tags:+, what the block returns is written with them (see Tags).
    # With +refresh_ahead:+, a hit on an entry late in its life queues its
    # refresh (see RefreshAhead).
    def fetch(name, options = nil, &block)
      check_tags(options[:tags]) if options
      return super unless block

      refreshing = @refresh_ahead || options&.key?(:refresh_ahead)
      if (key = direct_key(name, options)) && quiet?(:read) && quiet?(:fetch_hit)
        value = refreshing ? read_hit_refreshing(name, key, options, &block) : @node.read_hit(key, nil, MISS)
        value = untagged(value) if value.instance_of?(Array)
        return value unless MISS.equal?(value)
      end
      return super unless refreshing

      value = super
      refresh_if_due(name, options, &block)
      value
    end

    # Reads several names at once; names L1 lacks are read from L2 in one call.
    def read_multi(*names)
      return super unless quiet?(:read_multi)

      options = merged_options(names.extract_options!)
      read_multi_entries(names, **options)
    end

    # Writes +value+ under +name+; see ActiveSupport::Cache::Store#write.
    # <tt>tags: ["user:1", …]</tt> tags it for #invalidate_tags. A
    # plain String key written with no listener and no debug logger skips
    # ActiveSupport's key and version normalization (it would change nothing).
    def write(name, value, options = nil)
      return super unless quiet?(:write)

      options = merged_options(options)
      key, version = key_and_version(name, options)
      store_value(key, value, version, expiry(options), options)
    end

    # Writes every <tt>name => value</tt> of +hash+; see
    # ActiveSupport::Cache::Store#write_multi. With nobody listening, entries
    # are built only where an L2 or a coder needs them, and plain String keys
    # skip normalization, as in #write. A subclass or singleton that overrides
    # #write_multi_entries (ActiveSupport's store provider interface) gets
    # every call, and so does a call with +tags:+ (every value gets them).
    def write_multi(hash, options = nil)
      hash = unflown(hash)
      unless quiet?(:write_multi) && method(:write_multi_entries).owner.equal?(Changes) && !options&.dig(:tags)
        return super(hash, options)
      end

      options = merged_options(options)
      expires_at = expiry(options)
      if @l2 || @entry_coder
        entries = hash.each_with_object({}) do |(name, value), memo|
          key, version = key_and_version(name, options)
          memo[key] = build_entry(value, version, expires_at)
        end
        return write_multi_entries(entries, **options)
      end

      node = bus_node
      hash.each do |name, value|
        key, version = key_and_version(name, options)
        value = tagged_for_write(value, nil, options) || value
        store_in_l1(node, key, value, options, version: version, expires_at: expires_at)
      end
      hash
    end
  end
end
