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
    include Muting

    # Options that are the store's business and never reach the L2: the L2
    # applies its own namespace and compression settings.
    LOCAL_OPTIONS = %i[namespace compress compress_threshold event persist silent force force_miss coder
                       fail_safe].freeze

    # The wrapped ActiveSupport store.
    attr_reader :store

    def initialize(store)
      @store = store
      # Stores that keep ActiveSupport's key normalization turn a normalized key
      # into itself when they have no namespace; skipping the call then saves
      # the work on every L2 access. (Redis, Memcached and file stores override
      # it to encode, truncate or map keys to paths.)
      @plain_keys = store.class.instance_method(:normalize_key).owner == ActiveSupport::Cache::Store
      store.singleton_class.prepend(Muting::Instrumentation)
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

    # Writes +entry+: true when the L2 stored it, false when it refused (or,
    # before ActiveSupport 7.2, failed), nil when it failed (7.2+).
    def write_entry(key, entry, options)
      written = @store.send(:write_entry, l2_key(key), entry, **l2_options(options))
      written && true
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
end
