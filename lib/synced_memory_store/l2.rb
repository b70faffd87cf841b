# frozen_string_literal: true

module SyncedMemoryStore
  # The second level: any ActiveSupport cache store, reached through its
  # entry-level methods (+read_entry+, +write_entry+ …) so that L1 learns each
  # entry's expiry and version, and so that the L2 emits no instrumentation
  # events of its own for work the store already reports.
  #
  # Keys given to an L2 are the store's normalized keys (its namespace
  # included); the L2 applies its own key normalization on top (its namespace,
  # RedisCacheStore's truncation of long keys), exactly as if the key had been
  # passed to its public API. Failures follow the L2's own failure behaviour:
  # RedisCacheStore and MemCacheStore turn connection errors into misses (or
  # +false+ for writes) and report them to their error handler.
  class L2
    # Set (fiber-locally) while the store calls one of the L2's public methods
    # on its own behalf: the store instruments the operation once, so the L2's
    # events and debug log lines for it would be duplicates.
    MUTED = :synced_memory_store_l2_muted

    # Prepended to the L2's singleton class: instrumentation passes straight
    # through to the block while MUTED is set, and is untouched otherwise, so
    # code using the same store object directly still sees its events.
    module Muting
      private

      %i[instrument instrument_multi _instrument].each do |name|
        define_method(name) do |*args, **kwargs, &block|
          Thread.current[MUTED] ? block&.call({}) : super(*args, **kwargs, &block)
        end
      end
    end

    # Options that are the store's business and never reach the L2: the L2
    # applies its own namespace and compression settings.
    LOCAL_OPTIONS = %i[namespace compress compress_threshold event persist silent force force_miss coder].freeze

    # Builds the L2 for the +cache:+ option: a store instance, a store name
    # (+:redis_cache_store+) or lookup_store arguments
    # (<tt>[:redis_cache_store, { url: … }]</tt>). Returns nil for nil.
    def self.wrap(spec)
      store = resolve(spec)
      return unless store

      if loaded_store?(store, :RedisCacheStore)
        RedisL2.new(store)
      elsif loaded_store?(store, :MemCacheStore)
        MemCacheL2.new(store)
      else
        new(store)
      end
    end

    def self.resolve(spec)
      case spec
      when nil, ActiveSupport::Cache::Store then store = spec
      when Symbol, Array then store = ActiveSupport::Cache.lookup_store(*spec)
      else
        raise ConfigurationError,
              "cache: must be an ActiveSupport::Cache::Store, a store name such as :redis_cache_store, " \
              "or lookup_store arguments such as [:redis_cache_store, { url: ... }] (got #{spec.inspect})"
      end
      if store.is_a?(SyncedMemoryStore::Store)
        raise ConfigurationError, "cache: cannot be another SyncedMemoryStore::Store (its L1 would shadow this one)"
      end

      store
    end
    private_class_method :resolve

    # True when +store+ is an instance of the named ActiveSupport store class,
    # without autoloading that class (RedisCacheStore requires the redis gem).
    def self.loaded_store?(store, name)
      ActiveSupport::Cache.autoload?(name).nil? && store.is_a?(ActiveSupport::Cache.const_get(name))
    end
    private_class_method :loaded_store?

    # The wrapped ActiveSupport store.
    attr_reader :store

    def initialize(store)
      @store = store
      # Stores that keep ActiveSupport's key normalization turn a normalized key
      # into itself when they have no namespace; skipping the call then saves
      # the work on every L2 access. (Redis, Memcached and file stores override
      # it to encode, truncate or map keys to paths.)
      @plain_keys = store.class.instance_method(:normalize_key).owner == ActiveSupport::Cache::Store
      store.singleton_class.prepend(Muting)
    end

    # The entry under +key+ (an ActiveSupport::Cache::Entry, expired or not), or nil.
    def read_entry(key, options)
      @store.send(:read_entry, l2_key(key), **l2_options(options))
    end

    # The entries under +keys+ as <tt>{ key => Entry }</tt>, leaving out misses.
    # Stores without a multi-get are read key by key, as their own read_multi does.
    def read_multi_entries(keys, options)
      keys.each_with_object({}) do |key, entries|
        entry = read_entry(key, options)
        entries[key] = entry if entry
      end
    end

    # Writes +entry+; true when the L2 stored it.
    def write_entry(key, entry, options)
      @store.send(:write_entry, l2_key(key), entry, **l2_options(options)) ? true : false
    end

    # Writes <tt>{ key => Entry }</tt>; true when the L2 reported success.
    def write_multi_entries(entries, options)
      l2_entries = entries.transform_keys { |key| l2_key(key) }
      @store.send(:write_multi_entries, l2_entries, **l2_options(options)) ? true : false
    end

    # Deletes +key+; true when an entry was there.
    def delete_entry(key, options)
      deleted?(@store.send(:delete_entry, l2_key(key), **l2_options(options)))
    end

    # Deletes +keys+; returns how many were there.
    def delete_multi_entries(keys, options)
      @store.send(:delete_multi_entries, keys.map { |key| l2_key(key) }, **l2_options(options)).to_i
    end

    # The L2's atomic counter (+operation+ is :increment or :decrement).
    def count(operation, key, amount, options)
      muted { @store.public_send(operation, key, amount, **l2_options(options)) }
    end

    def clear
      muted { @store.clear }
    end

    # Removes expired entries where the L2 supports it; stores that expire
    # entries themselves (Redis, Memcached) don't, and that is fine.
    def cleanup
      muted { @store.cleanup }
    rescue NotImplementedError
      nil
    end

    # Deletes the keys matching +pattern+, a Regexp over this store's keys, or
    # +glob+, the Redis-style pattern it was made from when the caller gave one.
    def delete_matched(pattern, _glob)
      muted { @store.delete_matched(pattern) }
    end

    # +value+ as the L2 returns it after a <tt>raw: true</tt> write (most
    # stores ignore raw and return the value itself).
    def raw_value(value)
      value
    end

    # The L2's class, for inspect and stats (never its connection settings).
    def description
      @store.class.name
    end

    private

    def muted
      previous = Thread.current[MUTED]
      Thread.current[MUTED] = true
      yield
    ensure
      Thread.current[MUTED] = previous
    end

    def l2_key(key)
      return key if @plain_keys && @store.options[:namespace].nil? && key.encoding.equal?(Encoding::UTF_8)

      @store.send(:normalize_key, key, @store.options)
    end

    # The L2's own options with the call's options over them, as the L2's own
    # public methods would merge them. Never empty, so stores whose hooks take a
    # positional options Hash (RedisCacheStore#delete_entry in 6.1) are satisfied.
    def l2_options(options)
      @store.options.merge(options.except(*LOCAL_OPTIONS))
    end

    def deleted?(result)
      if result.is_a?(Integer)
        result.positive?
      else
        (result ? true : false)
      end
    end
  end

  # A RedisCacheStore L2: multi-reads are one MGET, and delete_matched takes
  # Regexps too (by scanning the namespace, since Redis only matches globs).
  class RedisL2 < L2
    SCAN_BATCH = 1000

    # Redis stores raw values as Strings.
    def raw_value(value)
      value.to_s
    end

    def read_multi_entries(keys, options)
      return {} if keys.empty?

      raw = options[:raw] ? true : false
      payloads = @store.send(:failsafe, :read_multi_entries, returning: nil) do
        with_connection { |redis| redis.mget(*keys.map { |key| l2_key(key) }) }
      end
      return {} unless payloads

      keys.zip(payloads).each_with_object({}) do |(key, payload), entries|
        entry = payload && @store.send(:deserialize_entry, payload, raw: raw)
        entries[key] = entry if entry
      end
    end

    def delete_matched(pattern, glob)
      return muted { @store.delete_matched(glob) } if glob

      prefix = @store.send(:namespace_key, "", @store.options)
      @store.send(:failsafe, :delete_matched) do
        with_connection { |redis| delete_scanned(redis, prefix, pattern) }
      end
    end

    private

    def delete_scanned(redis, prefix, pattern)
      redis.scan_each(match: "#{glob_escape(prefix)}*", count: SCAN_BATCH).each_slice(SCAN_BATCH) do |l2_keys|
        doomed = l2_keys.select { |l2_key| pattern.match?(l2_key.delete_prefix(prefix)) }
        redis.del(*doomed) unless doomed.empty?
      end
    end

    def glob_escape(text)
      text.gsub(/[*?\[\]\\]/) { |char| "\\#{char}" }
    end

    # ActiveSupport 6.1/7.0 call +with+ on the client (a Redis or a
    # ConnectionPool); 7.1+ call +then+, which both answer there.
    def with_connection(&)
      client = @store.redis
      client.respond_to?(:with) ? client.with(&) : client.then(&)
    end
  end

  # A MemCacheStore L2: multi-reads are one get_multi.
  class MemCacheL2 < L2
    # Memcached stores raw values as Strings.
    def raw_value(value)
      value.to_s
    end

    def read_multi_entries(keys, options)
      return {} if keys.empty?

      by_l2_key = keys.to_h { |key| [l2_key(key), key] }
      payloads = @store.send(:rescue_error_with, nil) do
        @store.instance_variable_get(:@data).with { |client| client.get_multi(by_l2_key.keys, options) }
      end
      return {} unless payloads

      payloads.each_with_object({}) do |(l2_key, payload), entries|
        entry = deserialize(payload, options)
        entries[by_l2_key.fetch(l2_key)] = entry if entry
      end
    end

    def delete_matched(_pattern, _glob)
      muted { @store.delete_matched(nil) }
    end

    private

    # 6.1 takes the payload alone; 7.0+ also take raw:.
    def deserialize(payload, options)
      if @store.method(:deserialize_entry).arity == 1
        @store.send(:deserialize_entry, payload)
      else
        @store.send(:deserialize_entry, payload, raw: options[:raw] ? true : false)
      end
    end
  end
end
