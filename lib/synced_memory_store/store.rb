# frozen_string_literal: true

require "active_support/core_ext/hash/slice"
require "active_support/core_ext/hash/except"

require_relative "glob"

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
  # instead. Expiry is judged with Ruby's +Time.now+, like every ActiveSupport
  # store, so +travel_to+ works in tests.
  #
  # Thread safety: every method may be called from any thread. L1 is a
  # concurrent map; no lock is taken on a read.
  #
  # With +sync+ on (the default), every process's L1 is kept in sync through
  # Redis pub/sub: writes are shipped by value (or, past +broadcast_max_bytes+,
  # as invalidations), deletes and clears as invalidations, by native threads
  # that never hold the GVL; a Ruby thread never waits on the bus. See the
  # README's "How sync works" for the guarantees and the ordering argument.
  #
  # Options, besides ActiveSupport's (+namespace+, +expires_in+, +expires_at+,
  # +race_condition_ttl+, +compress+, +compress_threshold+, +coder+, +skip_nil+,
  # +version+ …): see the README's option table.
  # Per call: +force_miss: true+ makes reads miss and fetch run its block;
  # <tt>persist: false</tt> writes L1 only and removes the key from L2;
  # <tt>silent: true</tt> changes this process only, telling no other.
  class Store < ActiveSupport::Cache::Store
    # Options of the bus, passed to the native core as given.
    BUS_OPTIONS = %i[channel secret broadcast_max_bytes queue_capacity health_interval health_timeout
                     reconnect_max].freeze

    # Options consumed by this store; the others are ActiveSupport's.
    STORE_OPTIONS = (%i[cache redis size sync] + BUS_OPTIONS).freeze

    # How long #wait_for_connection, #flush_sync and #close wait in one native
    # call: short, so that Ruby can deliver interrupts (Ctrl-C, Thread#raise)
    # between calls.
    WAIT_SLICE = 0.05

    # Default L1 byte budget.
    DEFAULT_SIZE = 32 * 1024 * 1024

    # ActiveSupport's default compression threshold, for +compress: true+.
    DEFAULT_COMPRESS_THRESHOLD = 1024

    # How long L1 keeps an expired entry written with +race_condition_ttl+, so
    # the reader that regenerates it can serve the stale value meanwhile
    # (RedisCacheStore and MemCacheStore pad their TTLs the same way).
    RACE_CONDITION_GRACE = 300.0

    # Returned by the native read for "no usable entry"; nil is a cached value.
    MISS = Object.new.freeze
    private_constant :MISS

    # Stands in for the node of a closed store: every use raises.
    class ClosedNode
      def method_missing(*)
        raise ClosedError, "this SyncedMemoryStore::Store was closed"
      end

      def respond_to_missing?(*)
        true
      end
    end
    private_constant :ClosedNode

    UTF8 = Encoding::UTF_8
    private_constant :UTF8

    # ActiveSupport 6.1's Entry keeps its expiry relative to a creation stamp.
    RELATIVE_EXPIRY = ActiveSupport.gem_version < Gem::Version.new("7.0")
    private_constant :RELATIVE_EXPIRY

    EVENTS = Hash.new { |events, operation| events[operation] = "cache_#{operation}.active_support".freeze }
    private_constant :EVENTS

    # Versioned (recyclable) cache keys are supported, as in MemoryStore.
    def self.supports_cache_versioning?
      true
    end

    # See the class documentation for the options.
    def initialize(options = nil)
      options = (options || {}).dup
      settings = options.extract!(*STORE_OPTIONS)
      @entry_coder = coder_option(options[:coder]) if options.key?(:coder)
      # L1 is memory: like MemoryStore, compress only when asked to.
      options[:compress] = false unless options.key?(:compress)
      super(options)
      @l2 = L2.wrap(settings[:cache])
      @node = Node.new(settings.fetch(:size, DEFAULT_SIZE), bus_options(settings))
      @forks = Node.forks
      @counter_lock = Mutex.new
      SyncedMemoryStore.track(self)
    end

    # Reads +name+; see ActiveSupport::Cache::Store#read. A plain String key read
    # with no listener and no debug logger takes a direct path: one L1 lookup
    # and one decode.
    def read(name, options = nil)
      if (key = direct_key(name, options)) && quiet?(:read)
        value = @node.read(key, nil, MISS, false)
        return value unless MISS.equal?(value)
      end
      super
    end

    # Fetches +name+, running the block on a miss; see
    # ActiveSupport::Cache::Store#fetch. Hits take the direct path of #read.
    def fetch(name, options = nil, &block)
      if block && (key = direct_key(name, options)) && quiet?(:read) && quiet?(:fetch_hit)
        value = @node.read(key, nil, MISS, false)
        return value unless MISS.equal?(value)
      end
      super
    end

    # Reads several names at once; names L1 lacks are read from L2 in one call.
    def read_multi(*names)
      return super unless quiet?(:read_multi)

      options = merged_options(names.extract_options!)
      read_multi_entries(names, **options)
    end

    # Writes +value+ under +name+; see ActiveSupport::Cache::Store#write. A
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
    # every call.
    def write_multi(hash, options = nil)
      return super unless quiet?(:write_multi) && method(:write_multi_entries).owner.equal?(Store)

      options = merged_options(options)
      expires_at = expiry(options)
      if @l2 || @entry_coder
        entries = hash.each_with_object({}) do |(name, value), memo|
          key, version = key_and_version(name, options)
          memo[key] = build_entry(value, version, expires_at)
        end
        return write_multi_entries(entries, **options)
      end

      bus_node
      hash.each do |name, value|
        key, version = key_and_version(name, options)
        store_in_l1(key, value, version, expires_at, options, publish: publish?(options))
      end
      hash
    end

    # Adds +amount+ to the number under +name+. With an L2, its atomic counter
    # does it (RedisCacheStore and MemCacheStore count raw values; read them
    # with <tt>raw: true</tt>); without one, the read and write are atomic
    # within this process. Returns the new number, or nil when there was none.
    def increment(name, amount = 1, options = nil)
      count(:increment, name, amount, options)
    end

    # Subtracts +amount+ from the number under +name+; see #increment.
    def decrement(name, amount = 1, options = nil)
      count(:decrement, name, amount, options)
    end

    # Removes expired entries from L1, and from L2 where the L2 supports it.
    # Returns how many L1 entries were removed.
    def cleanup(_options = nil)
      instrument(:cleanup, { size: @node.stats[:l1_entries] }) do
        removed = @node.purge_expired(Time.now.to_f)
        @l2&.cleanup
        removed
      end
    end

    # Deletes everything, from L2 too (for a RedisCacheStore without a
    # namespace that is FLUSHDB, as it is for RedisCacheStore#clear).
    def clear(options = nil)
      node = bus_node
      @l2&.clear
      node.clear(publish?(options || {}))
      true
    end

    # Deletes the keys matching +matcher+: a Regexp, or a String that is a
    # Redis glob (<tt>*</tt>, <tt>?</tt>, <tt>[abc]</tt>, backslash escapes),
    # matched byte by byte exactly as Redis matches it (see Glob), both applied
    # within the namespace.
    def delete_matched(matcher, options = nil)
      unless matcher.is_a?(Regexp) || matcher.is_a?(String)
        raise ArgumentError, "delete_matched takes a Regexp or a glob String (got #{matcher.inspect})"
      end

      options = merged_options(options)
      instrument(:delete_matched, matcher.inspect) do
        glob = namespace_key(matcher, options) if matcher.is_a?(String)
        pattern = glob ? Glob.to_regexp(glob) : key_matcher(matcher, options)
        node = bus_node
        @l2&.delete_matched(pattern, glob)
        # Other processes match a glob natively; a Regexp they cannot run
        # without Ruby, so it makes them drop everything (they refill from L2).
        matched = node.keys.select { |key| glob ? Glob.match?(glob, key) : pattern.match?(key.scrub) }
        node.delete_matched(matched, glob, publish?(options))
      end
    end

    # Counters and state: :l1_hits, :l1_misses, :l2_hits, :l2_misses,
    # :l1_entries, :l1_bytes, :l1_budget; and for the bus :published (changes
    # sent), :received (messages, own echoes included), :applied (changes),
    # :rejected (messages that failed to decode or verify), :reconnects,
    # :dropped (changes lost to a full queue, replaced by a clear), :conflicts
    # (concurrent writes invalidated everywhere), :queued, :pending, :connected
    # and :trusted (whether reads may use L1 now).
    def stats
      @node.stats
    end

    # Whether the subscription to the bus is up (always false with sync off).
    def connected?
      @node.connected?
    end

    # Waits up to +timeout+ seconds for the subscription to the bus; true, or
    # raises SyncedMemoryStore::ConnectionError. Construction never waits: the
    # store works as a two-level store until the bus is up.
    def wait_for_connection(timeout = 5)
      raise ConnectionError, "this store has sync: false, so it has no bus to connect to" unless @node.sync?
      return true if wait_in_slices(timeout) { |slice| @node.wait_for_connection(slice) }

      raise ConnectionError, "not subscribed to #{@node.bus_description} within #{timeout}s"
    end

    # Waits up to +timeout+ seconds until every change this process queued for
    # the bus has been published; true, or raises SyncedMemoryStore::ConnectionError.
    def flush_sync(timeout = 5)
      return true if wait_in_slices(timeout) { |slice| @node.flush(slice) }

      raise ConnectionError, "queued changes not published to #{@node.bus_description} within #{timeout}s"
    end

    # Stops the bus threads (publishing what is queued first, while Redis is
    # reachable) and makes the store unusable: any later call raises
    # SyncedMemoryStore::ClosedError. Idempotent.
    def close(timeout = 5)
      return if @closed

      @closed = true
      node = @node
      @node = ClosedNode.new
      wait_in_slices(timeout) { |slice| node.close(slice) }
      nil
    end

    # Whether #close was called.
    def closed?
      @closed ? true : false
    end

    # A summary with sizes; never shows connection credentials or secrets.
    def inspect
      return "#<#{self.class.name} closed>" if @closed

      stats = @node.stats
      bus = @node.sync? ? "#{@node.bus_description}#{" signed" if @node.signed?} connected=#{stats[:connected]}" : "off"
      "#<#{self.class.name} entries=#{stats[:l1_entries]} size=#{stats[:l1_bytes]} " \
        "budget=#{stats[:l1_budget]} l2=#{@l2 ? @l2.description : "none"} sync=#{bus} options=#{@options.inspect}>"
    end

    # Whether this store was created in another process (a parent) and has not
    # been given its own node here yet. (The native side counts every fork(),
    # including forks that bypass Process._fork, so this costs no system call.)
    def inherited?
      @forks != Node.forks
    end

    # In a forked child: a new node (threads, connections, id) replaces the one
    # inherited from the parent, whose threads did not survive the fork. Called
    # by the Process._fork hook, and from write paths when the pid changed.
    def after_fork
      return if @closed || !inherited?

      inherited = @node
      @node = inherited.respawn
      inherited.abandon_after_fork
      @forks = Node.forks
      @counter_lock = Mutex.new
    end

    private

    # The L1 key for a direct read, or nil when the call needs ActiveSupport's
    # general path: a key that is not a plain non-empty String, a version, a
    # per-call or Proc namespace, race_condition_ttl, force.
    def direct_key(name, options)
      return unless name.instance_of?(String) && !name.empty? && !@entry_coder && name.encoding.equal?(UTF8)
      return if options && (options.key?(:namespace) || shapes_reads?(options))

      store_options = @options
      return if shapes_reads?(store_options)

      namespace = store_options[:namespace]
      return name unless namespace
      return unless namespace.is_a?(String)

      "#{namespace}:#{name}"
    end

    # The normalized key and version of +name+ under merged +options+, skipping
    # ActiveSupport's normalization for a plain String key, which it would not
    # change.
    def key_and_version(name, options)
      key = direct_key(name, options.equal?(@options) ? nil : options)
      key ? [key, nil] : [normalize_key(name, options), normalize_version(name, options)]
    end

    def shapes_reads?(options)
      options[:force] || options[:force_miss] || options[:race_condition_ttl] || options[:version]
    end

    # True when nobody listens to the operation's event and no debug logger
    # would log it, so skipping ActiveSupport's instrumentation changes nothing.
    def quiet?(operation)
      !(logger&.debug? && !silence?) && !ActiveSupport::Notifications.notifier.listening?(EVENTS[operation])
    end

    # Adds +force_miss+ (force) and, on ActiveSupport < 7.1, +expires_at+
    # (converted to expires_in as 7.1 does) to ActiveSupport's merging.
    def merged_options(call_options)
      options = super
      options = options.merge(force: true) if options[:force_miss] && !options[:force]
      if options.key?(:expires_at)
        expires_at = options[:expires_at]
        options = options.except(:expires_at)
        options[:expires_in] = expires_at.to_f - Time.now.to_f if expires_at
      end
      options
    end

    # The native bus options for the store's settings, or nil with sync off.
    def bus_options(settings)
      sync = settings.fetch(:sync, true)
      raise ConfigurationError, "sync: must be true or false (got #{sync.inspect})" unless [true, false].include?(sync)
      return unless sync

      options = settings.slice(*BUS_OPTIONS).compact
      options[:secret] = options[:secret].to_s if options.key?(:secret)
      options[:redis] = RedisOption.normalize(settings[:redis])
      options
    end

    def publish?(options)
      !options[:silent]
    end

    # The node, after making sure the store is open (before L2 is touched) and
    # that the node belongs to this process: a fork that bypassed Process._fork
    # is caught here, before anything is published.
    def bus_node
      raise ClosedError, "this SyncedMemoryStore::Store was closed" if @closed

      after_fork if inherited?
      @node
    end

    # Runs the L2 half of a change to +key+, registered with the bus first so a
    # concurrent change from another process is noticed (see the README's "How
    # sync works"). The block ends with a node write or delete that passes
    # <tt>begun: publish</tt>, or raises, and then the registration is dropped.
    def changing(key, publish)
      node = bus_node
      begin
        node.begin(key) if publish
        yield node
      rescue Exception # rubocop:disable Lint/RescueException -- whatever stopped it, the change never reached L1
        node.abandon(key) if publish
        raise
      end
    end

    # Calls the block with short timeouts until it returns true or +timeout+
    # seconds have passed; returns whether it returned true.
    def wait_in_slices(timeout)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout.to_f
      loop do
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        return true if yield(left.clamp(0, WAIT_SLICE))
        return false if left <= 0
      end
    end

    def coder_option(coder)
      return if coder.nil?
      return coder if coder.respond_to?(:dump) && coder.respond_to?(:load)

      raise ConfigurationError, "coder: must respond to dump and load (got #{coder.inspect})"
    end

    # The absolute expiry (seconds since the epoch, by Ruby's clock) for
    # +options+, or nil. ActiveSupport's Entry computes it the same way.
    def expiry(options)
      expires_in = options[:expires_in]
      Time.now.to_f + expires_in.to_f if expires_in
    end

    # How long L1 may keep an entry expiring at +expires_at+: until then, plus
    # the race_condition_ttl grace; at least the +expires_in+ the caller gave.
    def keep_for(expires_at, options)
      return unless expires_at

      seconds = options[:expires_in]&.to_f || (expires_at - Time.now.to_f)
      options[:race_condition_ttl] ? seconds + RACE_CONDITION_GRACE : seconds
    end

    def compress_threshold(options)
      options[:compress_threshold] || DEFAULT_COMPRESS_THRESHOLD if options[:compress]
    end

    # Stores +value+ in L2 (unless <tt>persist: false</tt>, which removes the
    # key from L2) and then in L1, publishing it unless <tt>silent: true</tt>.
    # Returns false, leaving the key out of every L1, when L2 refuses
    # (unless_exist found an entry) or fails. A raw value goes to L1 in the form
    # the L2 gives it back in, so every process reads the same. A value that
    # cannot be serialized raises TypeError with nothing stored: L2 raises before
    # storing, and a value only L1 cannot encode is taken back out of L2.
    def store_value(key, value, version, expires_at, options, entry: nil)
      publish = publish?(options)
      unless @l2
        bus_node
        return store_in_l1(key, value, version, expires_at, options, entry: entry, publish: publish)
      end

      changing(key, publish) do |node|
        if options[:persist] == false
          @l2.delete_entry(key, options)
        else
          entry ||= build_entry(value, version, expires_at)
          unless @l2.write_entry(key, l2_entry(entry), options)
            node.delete(key, publish, publish)
            return false
          end
          value = @l2.raw_value(value) if options[:raw]
        end
        begin
          store_in_l1(key, value, version, expires_at, options, entry: entry, publish: publish, begun: publish)
        rescue TypeError
          @l2.delete_entry(key, options) unless options[:persist] == false
          node.delete(key, publish, publish)
          raise
        end
      end
    end

    # The L1 half of a write (the node was checked for a fork by the caller).
    def store_in_l1(key, value, version, expires_at, options, entry: nil, publish: true, begun: false)
      unless_exist = options[:unless_exist] && !@l2
      keep = keep_for(expires_at, options)
      if @entry_coder
        payload = @entry_coder.dump(entry || build_entry(value, version, expires_at))
        return @node.write(key, payload, true, version, expires_at, keep, nil, unless_exist, publish, begun)
      end
      @node.write(key, value, false, version, expires_at, keep, compress_threshold(options), unless_exist, publish,
                  begun)
    end

    # An ActiveSupport entry with exactly this version and expiry, built the same
    # way every time from the same inputs. (6.1 and 7.0 take compress options in
    # Entry.new, 7.1+ ignore them. 6.1 stamps a creation time and keeps the
    # expiry relative to it; the stamp is pinned to the expiry so the entry is
    # the same whenever it is rebuilt and expires_at stays exact. 7.0+ keep an
    # absolute expiry and a fixed creation time themselves.)
    def build_entry(value, version, expires_at, compressed: false)
      entry = ActiveSupport::Cache::Entry.new(value, version: version, compress: compressed, compress_threshold: 0)
      if RELATIVE_EXPIRY
        entry.instance_variable_set(:@created_at, expires_at || 0.0)
        entry.instance_variable_set(:@expires_in, expires_at ? 0.0 : nil)
      elsif expires_at
        entry.expires_at = expires_at
      end
      entry
    end

    # The entry as L2 would build it from its own compression settings: on
    # ActiveSupport < 7.0 compression happens in Entry.new, later in the L2's
    # serializer, which reads the L2's options itself.
    def l2_entry(entry)
      l2_options = @l2.store.options
      return entry unless l2_options[:compress] && ActiveSupport.gem_version < Gem::Version.new("7.0")

      l2 = ActiveSupport::Cache::Entry.new(
        entry.value, version: entry.version, compress: true,
                     compress_threshold: l2_options[:compress_threshold] || DEFAULT_COMPRESS_THRESHOLD
      )
      l2.expires_at = entry.expires_at if entry.expires_at
      l2
    end

    # ActiveSupport's hook: the entry under +key+ from L1, else from L2 (which
    # then fills L1). Expired entries are returned, for ActiveSupport to judge
    # (race_condition_ttl serves them).
    def read_entry(key, **options)
      return if options[:force_miss]

      parts = @node.entry(key)
      return entry_from_l1(*parts) if parts

      entry_from_l2(key, options)
    end

    def entry_from_l1(value, version, expires_at, flags)
      return @entry_coder.load(value) if flags.anybits?(2)

      build_entry(value, version, expires_at, compressed: flags.anybits?(1))
    end

    # Reads +key+ from L2 and fills L1 with it, unless the key changed (or L1
    # was cleared) while L2 was being read.
    def entry_from_l2(key, options)
      return unless @l2

      ticket = @node.ticket
      entry = @l2.read_entry(key, options)
      @node.count_l2(!entry.nil?)
      fill(key, entry, ticket, options) if entry && !entry.expired?
      entry
    end

    def fill(key, entry, ticket, options)
      expires_at = entry.expires_at
      keep = keep_for(expires_at, options)
      if @entry_coder
        @node.fill(key, @entry_coder.dump(entry), true, entry.version, expires_at, keep, nil, ticket)
      else
        @node.fill(key, entry.value, false, entry.version, expires_at, keep, compress_threshold(options), ticket)
      end
    rescue TypeError
      # L2's coder holds a value Marshal cannot dump: serve it from L2 only.
      false
    end

    # ActiveSupport's hook for writes it builds itself (race_condition_ttl
    # extensions, generic paths).
    def write_entry(key, entry, **options)
      store_value(key, entry.value, entry.version, entry.expires_at, options, entry: entry) ? true : false
    end

    # ActiveSupport's hook: reads names, L1 first, then every miss from L2 in
    # one multi-read; returns <tt>{ name => value }</tt> in the order given.
    def read_multi_entries(names, **options)
      return {} if options[:force_miss]

      found = {}
      missing = {}
      names.each do |name|
        key = normalize_key(name, options)
        version = normalize_version(name, options)
        value = l1_value(key, version)
        if MISS.equal?(value)
          missing[key] = [name, version]
        else
          found[name] = value
        end
      end
      read_missing_from_l2(missing, found, options) if @l2 && !missing.empty?
      names.each_with_object({}) { |name, values| values[name] = found[name] if found.key?(name) }
    end

    # The value under +key+ in L1, judged by expiry and +version+, or MISS.
    def l1_value(key, version)
      return @node.read(key, version, MISS, true) unless @entry_coder

      parts = @node.entry(key)
      return MISS unless parts

      entry = entry_from_l1(*parts)
      if entry.expired?
        @node.delete(key, false, false)
        MISS
      else
        entry.mismatched?(version) ? MISS : entry.value
      end
    end

    def read_missing_from_l2(missing, found, options)
      ticket = @node.ticket
      entries = @l2.read_multi_entries(missing.keys, options)
      missing.each do |key, (name, version)|
        entry = entries[key]
        @node.count_l2(!entry.nil?)
        next unless entry

        if entry.expired?
          @l2.delete_entry(key, options)
        else
          fill(key, entry, ticket, options)
          found[name] = entry.value unless entry.mismatched?(version)
        end
      end
    end

    # ActiveSupport's hook: writes <tt>{ key => Entry }</tt>, to L2 in one call.
    def write_multi_entries(entries, **options)
      return true if entries.empty?

      publish = publish?(options)
      node = bus_node
      unless @l2
        entries.each do |key, entry|
          store_in_l1(key, entry.value, entry.version, entry.expires_at, options, entry: entry, publish: publish)
        end
        return true
      end

      changing_all(node, entries.keys, publish) do
        return false unless write_multi_to_l2(node, entries, options, publish)

        entries.each do |key, entry|
          value = options[:raw] && options[:persist] != false ? @l2.raw_value(entry.value) : entry.value
          store_in_l1(key, value, entry.version, entry.expires_at, options, entry: entry, publish: publish,
                                                                            begun: publish)
        end
        true
      end
    end

    # The L2 half of write_multi_entries; false (with the keys dropped from
    # every L1) when the L2 reports a failure.
    def write_multi_to_l2(node, entries, options, publish)
      if options[:persist] == false
        @l2.delete_multi_entries(entries.keys, options)
        return true
      end
      return true if @l2.write_multi_entries(entries.transform_values { |entry| l2_entry(entry) }, options)

      entries.each_key { |key| node.delete(key, publish, publish) }
      false
    end

    # #changing for several keys at once (multi-key L2 calls).
    def changing_all(node, keys, publish)
      keys.each { |key| node.begin(key) } if publish
      yield
    rescue Exception # rubocop:disable Lint/RescueException -- as in #changing
      keys.each { |key| node.abandon(key) } if publish
      raise
    end

    # ActiveSupport's hook: deletes +key+ from both levels, and from every
    # other process's L1 unless <tt>silent: true</tt>.
    def delete_entry(key, **options)
      publish = publish?(options)
      changing(key, publish) do |node|
        deleted = @l2 ? @l2.delete_entry(key, options) : false
        node.delete(key, publish, publish) || deleted
      end
    end

    # ActiveSupport's hook: deletes +keys+ from both levels; returns how many
    # existed (by L2's count when there is an L2, which holds everything L1 does).
    def delete_multi_entries(keys, **options)
      publish = publish?(options)
      node = bus_node
      changing_all(node, keys, publish) do
        l2_count = @l2&.delete_multi_entries(keys, options)
        l1_count = keys.count { |key| node.delete(key, publish, publish) }
        l2_count || l1_count
      end
    end

    def count(operation, name, amount, options)
      options = merged_options(options)
      key = normalize_key(name, options)
      instrument(operation, key, { amount: amount }) do
        if @l2
          publish = publish?(options)
          changing(key, publish) do |node|
            result = @l2.count(operation, key, amount, options)
            node.delete(key, publish, publish)
            result
          end
        else
          delta = operation == :increment ? amount : -amount
          @counter_lock.synchronize { count_in_l1(key, normalize_version(name, options), delta, options) }
        end
      end
    end

    # Adds +delta+ to the entry under +key+, keeping its expiry and version;
    # nil (and nothing written) when there is no live entry.
    def count_in_l1(key, version, delta, options)
      entry = read_entry(key, **options)
      return if entry.nil? || entry.expired? || entry.mismatched?(version)

      number = entry.value.to_i + delta
      store_value(key, number, entry.version, entry.expires_at, options)
      number
    end
  end
end
