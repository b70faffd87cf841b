# frozen_string_literal: true

module SyncedMemoryStore
  # Which L2 the +cache:+ option names.
  class L2
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
  end
end
